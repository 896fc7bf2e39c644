"""Bias audit: the Jigsaw unintended-bias AUCs (Borkan et al. 2019, "Nuanced Metrics for Measuring Unintended
Bias with Real Data for Text Classification") per identity group, on the p(extremist) score.

For a group g, with *positives* = rows expected extremist and *background* = rows that do not mention g:

- **subgroup AUC**: AUC on the rows that mention g. Low: the model cannot separate hate about g from other talk
  about g.
- **BPSN** (background positive, subgroup negative): AUC on background positives + subgroup negatives. Low: harmless
  rows about g score higher than extremist rows about others (false positives on the identity).
- **BNSP** (background negative, subgroup positive): AUC on background negatives + subgroup positives. Low: hate
  about g scores lower than harmless rows elsewhere (false negatives on the identity).

The functional suite says which group a row is about (``group``); for other files ``detect_groups`` finds group
mentions with a small lexicon in English, Urdu script and Roman Urdu.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

from serving import labels as L
from serving.text import normalize

GROUPS = ("shia", "sunni", "ahmadi", "hazara", "baloch", "pashtun", "sindhi", "muhajir", "punjabi", "christian",
          "hindu", "sikh", "afghan_refugee", "women", "transgender", "state")
#: The issue's goal for BPSN and BNSP.
GOAL = 0.90
#: A BPSN (BNSP) value is judged against the goal only when the group has this many negatives (positives): with
#: one or two rows on the subgroup side the AUC says more about those rows than about the model.
MIN_SUPPORT = 5

# Words that name a group or its members (after serving.text.normalize and lower-casing). Urdu words that are
# also common verbs or nouns (سنی "heard", سکھ "comfort") are only matched in forms that are unambiguous.
_LEXICON = {
    "shia": r"\bshi(?:a|ah|as|ahs|ite|ites|ia|iya|ya|yon|on|ye)\b|\bahl[- ]e[- ]tash[iy]+\w*|\br[a@]f[iz]d[ah]\b"
            r"|\br[a@]fz[iy]\w*|شیع[ہوں]|اہل ?تشیع|رافض",
    "sunni": r"\bsunn(?:i|is|iyon|ion)\b|\bahl[- ]e[- ]sunnat\b|سنیوں|اہلِ? ?سنت|سنی (?:مسلمان|برادری|علما|مسلک)",
    "ahmadi": r"\bahm[ae]d(?:i|is|iyon|iyya|ies)\b|\bq[a@]d[iy]+[a@]n[iy]\w*|احمدی|قادیان",
    "hazara": r"\bhazar(?:a|as|ah)\b|ہزارہ",
    "baloch": r"\bbal[ou]+ch(?:i|is|on)?\b|بلوچ(?:وں|ی)?(?!ستان)\b",
    "pashtun": r"\bp[auo]k?[hs]?h?t[ou]+n(?:s|on)?\b|\bpa?th[a]+n(?:s|on)?\b|پشتون|پختون|پٹھان",
    "sindhi": r"\bsindh?i(?:s|yon)?\b|سندھی",
    "muhajir": r"(?<!afghan )\bm[uo]h[a]+j+ir(?:s|on)?\b|(?<!افغان )مہاجر(?!ین)|\burdu[- ]speaking\b",
    "punjabi": r"\bp[au]njab(?:i|is|iyon)\b|پنجابی",
    "christian": r"\bchristians?\b|\b[ie]+sai(?:s|yon)?\b|\bmasihi\b|مسیحی|عیسائی",
    "hindu": r"\bhind[uo]+(?:s|on)?\b|ہندو(?!ستان)",
    "sikh": r"\bsikh(?:s|on)?\b|سکھوں|سکھ (?:برادری|یاتری)|\bسکھ\b",
    "afghan_refugee": r"\bafghan(?:s|i|is)?\b|افغان(?!ستان)",
    "women": r"\bwom[ae]n\b|\bgirls?\b|\bfemales?\b|\bwi(?:fe|ves)\b|\baur[a]?t(?:ein|ain|on|en)?\b|\blar?kiy[ao]n\b"
             r"|\bbiwi\b|عورت|خواتین|لڑکی|لڑکیاں|بیوی",
    "transgender": r"\btrans(?:gender)?\b|\bkh?a?w?a+ja ?sira\w*|\bhijra\w*|\bkh[u*]sr\w*|خواجہ ?سرا|ٹرانس|ہیجڑ|کھسر",
    "state": r"\barmy\b|\bsoldiers?\b|\bpolice(?:men|man)?\b|\bcops?\b|\bfc\b|\bfauj[i]?\b|\brangers\b|\bsipahi\b"
             r"|فوج|پولیس|ایف ?سی|رینجرز|سپاہی",
}
_PATTERNS = {g: re.compile(p, re.IGNORECASE) for g, p in _LEXICON.items()}
_ANY_GROUP = re.compile("|".join(f"(?:{p})" for p in _LEXICON.values()), re.IGNORECASE)


def detect_groups(text: str) -> set[str]:
    """Groups named in ``text`` (lexicon match on the normalised, lower-cased text)."""
    t = normalize(text).lower()
    return {g for g, pat in _PATTERNS.items() if pat.search(t)}


def mask_groups(text: str, token: str = "G") -> str:
    """``text`` normalised and lower-cased with every word that names a group replaced by ``token`` (the lexicon of
    ``detect_groups``): "Shia X nahi hain" and "Hindu X nahi hain" become the same text."""
    return _ANY_GROUP.sub(token, normalize(text).lower())


def roc_auc(y: Sequence[int], scores: Sequence[float]) -> float | None:
    """ROC AUC (Mann-Whitney U with average ranks for ties); ``None`` unless both classes are present."""
    y = np.asarray(y, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average rank over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def subgroup_auc(y, scores, in_group) -> float | None:
    y, s, g = np.asarray(y, bool), np.asarray(scores, float), np.asarray(in_group, bool)
    return roc_auc(y[g], s[g])


def bpsn_auc(y, scores, in_group) -> float | None:
    """Background positives + subgroup negatives."""
    y, s, g = np.asarray(y, bool), np.asarray(scores, float), np.asarray(in_group, bool)
    mask = (g & ~y) | (~g & y)
    return roc_auc(y[mask], s[mask])


def bnsp_auc(y, scores, in_group) -> float | None:
    """Background negatives + subgroup positives."""
    y, s, g = np.asarray(y, bool), np.asarray(scores, float), np.asarray(in_group, bool)
    mask = (g & y) | (~g & ~y)
    return roc_auc(y[mask], s[mask])


def bias_table(y: Sequence[int], scores: Sequence[float], memberships: Sequence[Iterable[str]],
               groups: Sequence[str] = GROUPS, goal: float = GOAL, min_support: int = MIN_SUPPORT) -> dict:
    """Per group: rows, positives, negatives, subgroup AUC, BPSN, BNSP and ``meets_goal``: False when a judged
    BPSN or BNSP is under ``goal``, True when every judged one meets it, None when neither could be judged
    (BPSN needs ``min_support`` negatives in the group, BNSP as many positives)."""
    y = np.asarray(y, bool)
    s = np.asarray(scores, float)
    sets = [set(m) for m in memberships]
    out = {}
    for g in groups:
        in_g = np.asarray([g in m for m in sets], dtype=bool)
        if not in_g.any():
            out[g] = {"n": 0, "positives": 0, "negatives": 0, "subgroup_auc": None, "bpsn_auc": None,
                      "bnsp_auc": None, "meets_goal": None}
            continue
        row = {"n": int(in_g.sum()), "positives": int((in_g & y).sum()), "negatives": int((in_g & ~y).sum()),
               "subgroup_auc": subgroup_auc(y, s, in_g), "bpsn_auc": bpsn_auc(y, s, in_g),
               "bnsp_auc": bnsp_auc(y, s, in_g)}
        judged = [v for v, support in ((row["bpsn_auc"], row["negatives"]), (row["bnsp_auc"], row["positives"]))
                  if v is not None and support >= min_support]
        row["meets_goal"] = all(v >= goal for v in judged) if judged else None
        out[g] = row
    return out


def audit_examples(examples: Sequence, probs: np.ndarray, *, use_group_field: bool = True,
                   groups: Sequence[str] = GROUPS, goal: float = GOAL, min_support: int = MIN_SUPPORT) -> dict:
    """Bias table of labelled ``examples`` scored ``probs`` (rows x labels). Groups come from each row's ``group``
    field when ``use_group_field`` and the rows have one, else from ``detect_groups``."""
    e = L.LABEL2ID[L.EXTREMIST]
    y = [ex.label_id == e for ex in examples]
    has_field = use_group_field and any(ex.extra.get("group") for ex in examples)
    if has_field:
        members = [{ex.extra["group"]} if ex.extra.get("group") else set() for ex in examples]
    else:
        members = [detect_groups(ex.text) for ex in examples]
    table = bias_table(y, np.asarray(probs)[:, e], members, groups, goal, min_support)
    return {"source": "group field" if has_field else "lexicon", "n": len(examples),
            "identity_rows": sum(1 for m in members if m), "groups": table,
            "missing_goal": missing_goal(table, goal)}


def missing_goal(table: dict, goal: float = GOAL) -> list[str]:
    """Groups with a judged BPSN or BNSP under the goal (see ``bias_table``)."""
    return [g for g, r in table.items() if r["meets_goal"] is False]


def _num(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def render_table(audit: dict, goal: float = GOAL) -> list[str]:
    lines = ["| group | n | extremist | other | subgroup AUC | BPSN | BNSP |", "|---|---:|---:|---:|---:|---:|---:|"]
    for g, r in audit["groups"].items():
        cells = []
        for key in ("subgroup_auc", "bpsn_auc", "bnsp_auc"):
            v = r[key]
            cells.append(f"**{_num(v)}**" if key != "subgroup_auc" and v is not None and v < goal else _num(v))
        lines.append(f"| {g} | {r['n']} | {r['positives']} | {r['negatives']} | " + " | ".join(cells) + " |")
    missing = audit["missing_goal"]
    lines += ["", f"Groups from the {audit['source']}; {audit['identity_rows']} of {audit['n']} rows name a group. "
                  f"BPSN/BNSP under {goal:.2f} (bold): {', '.join(missing) if missing else 'none'} (judged only with "
                  f"at least {MIN_SUPPORT} group rows on the subgroup side; unjudged: "
                  f"{', '.join(g for g, r in audit['groups'].items() if r['meets_goal'] is None) or 'none'})."]
    return lines
