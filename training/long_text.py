"""Long texts: an evaluation slice built from corpus files, and a measurement of the window aggregations on it.

A transformer reads a long text in windows (``serving.predictor``) and combines the windows' probabilities with
the folder's ``window_aggregation``. Two things can go wrong, in opposite directions:

- **long neutral posts** get flagged more often than short ones, because every extra window is another chance of
  one noisy window (``max`` and, more so, ``noisy_or`` suffer from this);
- **one extremist sentence buried in a long neutral text** is diluted away (``topk_mean`` risks this).

``build_long_slice`` makes both kinds of text from labelled rows (neutral texts of one language joined until they
are long; one extremist text inserted at a random place among them), plus the short neutral texts they came from.
``compare_aggregations`` scores every window once and reports, for each aggregation, the flag rate of short and of
long neutral posts and the catch rate of buried extremist sentences, so the aggregation can be chosen by
measurement. Goal (issue 10): long neutral flagged no more than 2 points above short neutral, buried caught >= 90%.

It also reports where the trade-off lies: for each aggregation, the lowest extremist threshold at which long neutral
posts are flagged within the goal's 2 points of short ones (short posts keep the profile's threshold), and the share
of buried sentences still caught there, beside the share of the same sentences caught when scored alone at that
threshold (the ceiling any aggregation of those windows could reach). ``spans`` measures narrower windows over long
texts too (a buried sentence fills more of a narrow window, and a long text has more of them).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from serving import labels as L
from serving.predictor import AGGREGATIONS, aggregate_windows, decide, softmax
from serving.profiles import resolve as resolve_profile
from serving.text import normalize

#: The goal of issue 10.
MAX_GAP_POINTS = 2.0
MIN_BURIED_CATCH = 0.90


def build_long_slice(examples: Sequence[Any], *, n: int = 200, min_chars: int = 1500, seed: int = 13
                     ) -> dict[str, list[dict[str, Any]]]:
    """``{"short_neutral", "long_neutral", "buried_extremist"}``: lists of ``{"text", "lang", "parts"}``.

    ``examples``: rows with ``text``, ``label`` and ``lang`` (``training.data.Example`` or dicts). Long texts are
    built per language from that language's neutral texts, so a long post reads as one language; ``parts`` lists
    the ids used. ``n``: texts of each long kind (fewer when the rows do not allow them).
    """
    rng = random.Random(seed)
    get = (lambda ex, k: ex.get(k)) if examples and isinstance(examples[0], dict) else getattr
    neutral: dict[str, list[tuple[str, str]]] = defaultdict(list)
    extremist: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for ex in examples:
        item = (str(get(ex, "id")), get(ex, "text"))
        if get(ex, "label") == L.NEUTRAL:
            neutral[get(ex, "lang") or "other"].append(item)
        elif get(ex, "label") == L.EXTREMIST:
            extremist[get(ex, "lang") or "other"].append(item)
    langs = [lang for lang in sorted(neutral) if len(neutral[lang]) >= 3]
    out: dict[str, list[dict[str, Any]]] = {"short_neutral": [], "long_neutral": [], "buried_extremist": []}
    for lang in langs:
        out["short_neutral"] += [{"text": t, "lang": lang, "parts": [i]} for i, t in neutral[lang]]
    if not langs:
        return out

    def filler(lang: str) -> list[tuple[str, str]]:
        pool, parts, size = neutral[lang], [], 0
        while size < min_chars:
            part = rng.choice(pool)
            parts.append(part)
            size += len(part[1]) + 1
        return parts

    for k in range(n):
        lang = langs[k % len(langs)]
        parts = filler(lang)
        out["long_neutral"].append({"text": " ".join(t for _, t in parts), "lang": lang,
                                    "parts": [i for i, _ in parts]})
    buried_langs = [lang for lang in langs if extremist.get(lang)]
    for k in range(n if buried_langs else 0):
        lang = buried_langs[k % len(buried_langs)]
        parts = filler(lang)
        needle = rng.choice(extremist[lang])
        parts.insert(rng.randint(1, max(1, len(parts) - 1)), needle)  # never first: buried, not leading
        out["buried_extremist"].append({"text": " ".join(t for _, t in parts), "lang": lang,
                                        "parts": [i for i, _ in parts], "needle": needle[0],
                                        "needle_text": needle[1]})
    return out


#: Steps of the extremist threshold searched for the point where the long-text gap closes.
THRESHOLD_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


def _span_windows(predictor, norm: list[str], span: int) -> tuple[list[list[int]], list[int]]:
    """Windows of ``span`` text tokens (stride half a span) over texts longer than the model's own window; a text
    that fits one model window keeps it, so short posts score exactly as served."""
    full = predictor.max_length - 2
    stride = max(1, span // 2)
    windows, owner = [], []
    for i, enc in enumerate(predictor.tokenizer.encode_batch(norm, add_special_tokens=False)):
        ids = enc.ids
        starts, width = [0], full
        if len(ids) > full:
            starts, width = [], span
            for s in range(0, len(ids) - span + stride, stride):
                starts.append(s)
                if s + span >= len(ids):
                    break
        for s in starts:
            windows.append([predictor.cls_id, *ids[s:s + width], predictor.sep_id])
            owner.append(i)
    return windows, owner


def _aggregated(predictor, texts: list[str], span: int | None = None) -> dict[str, np.ndarray]:
    """Probabilities of ``texts`` under every aggregation, each window scored once (``span``: narrower windows over
    long texts than the model's own; None: the windows the model serves)."""
    norm = [normalize(t) for t in texts]
    if not norm:
        return {method: np.zeros((0, len(L.LABELS))) for method in AGGREGATIONS}
    window_probs = getattr(predictor, "window_probs", None)
    if window_probs is None:  # a model without windows (linear): every aggregation is the same
        probs = predictor.predict_proba(norm, normalized=True)
        return {method: probs for method in AGGREGATIONS}
    if span is None:
        probs, owner = window_probs(norm)
    else:
        windows, owner = _span_windows(predictor, norm, span)
        raw = predictor.blend_logits(predictor.score_windows(windows), owner, norm)
        probs = softmax(raw[:, :len(L.LABELS)], predictor.meta.temperature)
    return {method: aggregate_windows(probs, owner, len(norm), method) for method in AGGREGATIONS}


def _flag_rate(probs: np.ndarray, thresholds: dict[str, float], t_extremist: float | None = None) -> float:
    if not len(probs):
        return float("nan")
    th = dict(thresholds)
    if t_extremist is not None:
        th[L.EXTREMIST] = float(t_extremist)
    return float((decide(probs, th) == L.LABEL2ID[L.EXTREMIST]).mean())


def gap_closing_point(long_neutral: np.ndarray, buried: np.ndarray, needles: np.ndarray, short_rate: float,
                      thresholds: dict[str, float]) -> dict[str, Any]:
    """The lowest extremist threshold (no lower than the profile's) at which long neutral posts are flagged at most
    the goal's 2 points above ``short_rate``, with the buried catch rate there and the catch rate of the same
    sentences scored alone there. ``threshold`` None: no threshold closes the gap."""
    start = float(thresholds.get(L.EXTREMIST, 0.5))
    for t in THRESHOLD_GRID:
        if t < start - 1e-9:
            continue
        if (_flag_rate(long_neutral, thresholds, t) - short_rate) * 100 <= MAX_GAP_POINTS + 1e-9:
            return {"threshold": float(t), "long_neutral_flag_rate": _flag_rate(long_neutral, thresholds, t),
                    "buried_catch_rate": _flag_rate(buried, thresholds, t),
                    "needle_alone_catch_rate": _flag_rate(needles, thresholds, t)}
    return {"threshold": None}


def check_spans(predictor, spans: Sequence[int]) -> None:
    """Refuse a window span the model cannot read (``ValueError`` saying what to choose), before any scoring."""
    full = getattr(predictor, "max_length", 0) - 2
    for span in spans:
        if full > 0 and not 8 <= int(span) <= full:
            raise ValueError(f"a long-text window span of {span} tokens is outside 8..{full} (the model reads at most "
                             f"{full} text tokens a window); choose a narrower span")


def compare_aggregations(predictor, slices: dict[str, list[dict[str, Any]]], profile: str | None = None,
                         spans: Sequence[int] = ()) -> dict[str, Any]:
    """For each window aggregation: flag rates of short and long neutral posts and the buried-extremist catch rate,
    under ``profile``'s thresholds (default: the folder's default profile), and where the long-text gap would close
    (``gap_closing_point``). ``spans``: also measure windows of these many text tokens over long texts
    (``report["spans"]["<span>"]``, same fields)."""
    prof = resolve_profile(predictor.meta, profile)
    check_spans(predictor, spans)
    needles = [row.get("needle_text") for row in slices.get("buried_extremist", [])]
    needle_probs = (predictor.predict_proba([normalize(t) for t in needles], normalized=True)
                    if needles and all(needles) else np.zeros((0, len(L.LABELS))))
    windows = getattr(predictor, "window_costs", None)
    report: dict[str, Any] = {
        "profile": prof.name, "thresholds": prof.thresholds,
        "current": getattr(predictor.meta, "window_aggregation", "max"),
        "n": {name: len(rows) for name, rows in slices.items()},
        "mean_windows": {name: (float(np.mean([w for w, _ in windows([r["text"] for r in rows])])) if rows and windows
                                else 1.0) for name, rows in slices.items()},
        "goal": {"max_gap_points": MAX_GAP_POINTS, "min_buried_catch": MIN_BURIED_CATCH},
        "needle_alone_catch_rate": _flag_rate(needle_probs, prof.thresholds),
        "aggregations": _rates(predictor, slices, prof, needle_probs, None)}
    if spans and getattr(predictor, "window_probs", None) is not None:
        report["spans"] = {str(span): _rates(predictor, slices, prof, needle_probs, int(span)) for span in spans}
    return report


def _rates(predictor, slices, prof, needle_probs: np.ndarray, span: int | None) -> dict[str, Any]:
    scored = {name: _aggregated(predictor, [row["text"] for row in rows], span) for name, rows in slices.items()}
    out = {}
    for method in AGGREGATIONS:
        rates = {name: _flag_rate(scored[name][method], prof.thresholds) for name in slices}
        gap = (rates["long_neutral"] - rates["short_neutral"]) * 100
        out[method] = {
            "short_neutral_flag_rate": rates["short_neutral"], "long_neutral_flag_rate": rates["long_neutral"],
            "gap_points": gap, "buried_catch_rate": rates["buried_extremist"],
            "meets_goal": bool(gap <= MAX_GAP_POINTS and rates["buried_extremist"] >= MIN_BURIED_CATCH),
            "gap_closes": gap_closing_point(scored["long_neutral"][method], scored["buried_extremist"][method],
                                            needle_probs, rates["short_neutral"], prof.thresholds)}
    return out


def render(report: dict[str, Any]) -> str:
    """The report as a small markdown table."""
    n = report["n"]
    lines = [f"long-text slice (profile {report['profile']}; model aggregation now: {report['current']}): "
             f"{n['short_neutral']} short neutral, {n['long_neutral']} long neutral, {n['buried_extremist']} buried "
             "extremist",
             "", "| windows | aggregation | short neutral flagged | long neutral flagged | gap (points) | buried caught | "
             "goal | gap closes at t_e | buried caught there | alone caught there |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for where, table in [("served", report["aggregations"])] + [(f"{k} tokens", v) for k, v in
                                                               report.get("spans", {}).items()]:
        for method, r in table.items():
            c = r.get("gap_closes", {})
            closes = ("never | - | -" if c.get("threshold") is None else
                      f"{c['threshold']:.2f} | {c['buried_catch_rate']:.3f} | {c['needle_alone_catch_rate']:.3f}")
            lines.append(f"| {where} | {method} | {r['short_neutral_flag_rate']:.3f} | "
                         f"{r['long_neutral_flag_rate']:.3f} | {r['gap_points']:+.1f} | {r['buried_catch_rate']:.3f} | "
                         f"{'met' if r['meets_goal'] else '-'} | {closes} |")
    lines += ["", f"buried sentences scored alone, caught at the profile's threshold: "
                  f"{report.get('needle_alone_catch_rate', float('nan')):.3f}"]
    return "\n".join(lines)
