"""Surface-cue probe: can the label be predicted from style alone?

A corpus that teaches stance should not let a classifier guess the label from length, punctuation, quotation
marks, emoji, script mix or the simulated platform (``register``). This module fits a seeded
``HistGradientBoostingClassifier`` on surface features only (never the words themselves) on one split and reports
macro-F1 on another, with and without the ``register`` field one-hot, plus the features that matter most by
permutation importance. Chance for three balanced labels is about 0.33; the corpus plan treats a probe far above
chance as a sign that the corpus still teaches style, not stance. ``counterpoint data validate`` runs it when the
files include a train and a test split.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

from serving import labels as L

# Quotation marks of every kind. A straight or curly single quote between two letters is an apostrophe
# (don't, ka'aba) and is not counted.
_DOUBLE_QUOTES = "\"“”„‟«»〝〞＂"
_SINGLE_QUOTES = "'‘’‚‛‹›`´"
_APOSTROPHE = re.compile(r"(?<=\w)['’](?=\w)")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b\S+\.(?:com|pk|org|net|ly|io)(?:/\S*)?\b", re.I)
_HASHTAG = re.compile(r"#\w+")
_MENTION = re.compile(r"@\w+")
_DIGIT = re.compile(r"\d")  # \d is Unicode-aware: 0-9, ٠-٩, ۰-۹

TEXT_FEATURES: tuple[str, ...] = (
    "chars", "words", "double_quotes", "single_quotes", "quote_marks", "exclaims", "questions", "commas",
    "periods", "colons", "dashes", "parens", "ellipses", "other_punct", "emojis", "hashtags", "mentions", "urls",
    "digits", "arabic_share", "latin_share", "upper_ratio", "mean_word_len", "newlines",
)


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return (0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2B00 <= cp <= 0x2BFF
            or 0x1F900 <= cp <= 0x1F9FF or cp in (0x2764, 0x2763, 0x203C, 0x2049, 0x2122, 0x2139))


def surface_features(text: str) -> list[float]:
    """Numeric surface features of one text, in the order of ``TEXT_FEATURES``."""
    words = text.split()
    no_apos = _APOSTROPHE.sub("", text)
    dq = sum(no_apos.count(c) for c in _DOUBLE_QUOTES)
    sq = sum(no_apos.count(c) for c in _SINGLE_QUOTES)
    arabic = latin = upper = 0
    other_punct = 0
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            if "ARABIC" in name:
                arabic += 1
            elif "LATIN" in name:
                latin += 1
                if ch.isupper():
                    upper += 1
        elif unicodedata.category(ch).startswith("P") and ch not in _DOUBLE_QUOTES + _SINGLE_QUOTES + "!?؟,،.۔:;-–—()…":
            other_punct += 1
    letters = max(arabic + latin, 1)
    return [
        float(len(text)),
        float(len(words)),
        float(dq),
        float(sq),
        float(dq + sq),
        float(text.count("!")),
        float(text.count("?") + text.count("؟")),
        float(text.count(",") + text.count("،")),
        float(text.count(".") + text.count("۔")),
        float(text.count(":") + text.count(";")),
        float(text.count("-") + text.count("–") + text.count("—")),
        float(text.count("(") + text.count(")")),
        float(text.count("…") + text.count("...")),
        float(other_punct),
        float(sum(_is_emoji(ch) for ch in text)),
        float(len(_HASHTAG.findall(text))),
        float(len(_MENTION.findall(text))),
        float(len(_URL.findall(text))),
        float(len(_DIGIT.findall(text))),
        arabic / letters,
        latin / letters,
        upper / max(latin, 1),
        (sum(len(w) for w in words) / len(words)) if words else 0.0,
        float(text.count("\n")),
    ]


@dataclass
class ProbeResult:
    f1_text: float
    f1_register: float
    chance: float
    n_train: int
    n_eval: int
    top_text: list[tuple[str, float]] = field(default_factory=list)
    top_register: list[tuple[str, float]] = field(default_factory=list)

    def line(self) -> str:
        return (f"surface probe: macro-F1 {self.f1_text:.2f} (text features), {self.f1_register:.2f} (with register), "
                f"chance {self.chance:.2f}")

    def render(self, k: int = 8) -> str:
        out = [self.line() + f"  [fit on {self.n_train} rows, scored on {self.n_eval}]"]
        if self.top_text:
            out.append("  top text features: " + ", ".join(f"{n} {v:.3f}" for n, v in self.top_text[:k]))
        if self.top_register:
            out.append("  top with register: " + ", ".join(f"{n} {v:.3f}" for n, v in self.top_register[:k]))
        return "\n".join(out)


def _register_of(row) -> str:
    if isinstance(row, dict):
        return str(row.get("register") or "")
    extra = getattr(row, "extra", None) or {}
    return str(extra.get("register") or getattr(row, "register", "") or "")


def _text_label(row) -> tuple[str, str]:
    if isinstance(row, dict):
        return row["text"], row["label"]
    return row.text, row.label


def _matrix(rows: Sequence, registers: list[str] | None):
    import numpy as np

    feats = [surface_features(_text_label(r)[0]) for r in rows]
    if registers is not None:
        for f, r in zip(feats, rows):
            reg = _register_of(r)
            f.extend(1.0 if reg == name else 0.0 for name in registers)
    return np.asarray(feats, dtype=float)


def _fit_score(train, evaluate, registers, seed: int, importance_repeats: int):
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import f1_score

    names = list(TEXT_FEATURES) + ([f"register={r}" for r in registers] if registers is not None else [])
    X_tr, X_ev = _matrix(train, registers), _matrix(evaluate, registers)
    y_tr = np.asarray([L.LABEL2ID[_text_label(r)[1]] for r in train])
    y_ev = np.asarray([L.LABEL2ID[_text_label(r)[1]] for r in evaluate])
    clf = HistGradientBoostingClassifier(random_state=seed, max_iter=200, learning_rate=0.1)
    clf.fit(X_tr, y_tr)
    f1 = float(f1_score(y_ev, clf.predict(X_ev), average="macro", labels=list(range(len(L.LABELS))),
                        zero_division=0))
    top: list[tuple[str, float]] = []
    if importance_repeats > 0:
        from sklearn.inspection import permutation_importance

        imp = permutation_importance(clf, X_ev, y_ev, scoring="f1_macro", n_repeats=importance_repeats,
                                     random_state=seed)
        top = sorted(zip(names, imp.importances_mean.tolist()), key=lambda t: -t[1])
    return f1, top


def run_probe(train: Sequence, evaluate: Sequence, *, seed: int = 0, importance_repeats: int = 3) -> ProbeResult:
    """Fit on ``train``, macro-F1 on ``evaluate``, with and without register. Rows are ``Example``s or dicts."""
    if not train or not evaluate:
        raise ValueError("the probe needs rows in both the fitting and the scoring split")
    import sklearn.ensemble  # noqa: F401  (load the OpenMP runtime before limiting it)
    import sklearn.inspection  # noqa: F401
    from threadpoolctl import threadpool_limits

    registers = sorted({_register_of(r) for r in train} - {""})
    # One thread: the fits are small, and OpenMP spin-waiting makes them slow (minutes) on a busy machine.
    with threadpool_limits(limits=1):
        f1_text, top_text = _fit_score(train, evaluate, None, seed, importance_repeats)
        f1_reg, top_reg = _fit_score(train, evaluate, registers, seed, importance_repeats)
    return ProbeResult(f1_text=f1_text, f1_register=f1_reg, chance=1.0 / len(L.LABELS), n_train=len(train),
                       n_eval=len(evaluate), top_text=top_text, top_register=top_reg)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m training.probe TRAIN.jsonl EVAL.jsonl``: print the probe figures and top features."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train")
    ap.add_argument("evaluate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lang", default=None, help="only rows of this language")
    a = ap.parse_args(argv)

    def load(p):
        rows = [json.loads(line) for line in open(p, encoding="utf-8") if line.strip()]
        return [r for r in rows if a.lang is None or r.get("lang") == a.lang]

    print(run_probe(load(a.train), load(a.evaluate), seed=a.seed, importance_repeats=a.repeats).render(12))


if __name__ == "__main__":
    main()
