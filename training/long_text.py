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
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from serving import labels as L
from serving.predictor import AGGREGATIONS, aggregate_windows, decide
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
                                        "parts": [i for i, _ in parts], "needle": needle[0]})
    return out


def _aggregated(predictor, texts: list[str]) -> dict[str, np.ndarray]:
    """Probabilities of ``texts`` under every aggregation, each window scored once."""
    norm = [normalize(t) for t in texts]
    if not norm:
        return {method: np.zeros((0, len(L.LABELS))) for method in AGGREGATIONS}
    window_probs = getattr(predictor, "window_probs", None)
    if window_probs is None:  # a model without windows (linear): every aggregation is the same
        probs = predictor.predict_proba(norm, normalized=True)
        return {method: probs for method in AGGREGATIONS}
    probs, owner = window_probs(norm)
    return {method: aggregate_windows(probs, owner, len(norm), method) for method in AGGREGATIONS}


def compare_aggregations(predictor, slices: dict[str, list[dict[str, Any]]], profile: str | None = None
                         ) -> dict[str, Any]:
    """For each window aggregation: flag rates of short and long neutral posts and the buried-extremist catch rate,
    under ``profile``'s thresholds (default: the folder's default profile)."""
    prof = resolve_profile(predictor.meta, profile)
    e = L.LABEL2ID[L.EXTREMIST]
    scored = {name: _aggregated(predictor, [row["text"] for row in rows]) for name, rows in slices.items()}
    windows = getattr(predictor, "window_costs", None)
    report: dict[str, Any] = {
        "profile": prof.name, "thresholds": prof.thresholds,
        "current": getattr(predictor.meta, "window_aggregation", "max"),
        "n": {name: len(rows) for name, rows in slices.items()},
        "mean_windows": {name: (float(np.mean([w for w, _ in windows([r["text"] for r in rows])])) if rows and windows
                                else 1.0) for name, rows in slices.items()},
        "goal": {"max_gap_points": MAX_GAP_POINTS, "min_buried_catch": MIN_BURIED_CATCH},
        "aggregations": {}}
    for method in AGGREGATIONS:
        rates = {}
        for name in slices:
            probs = scored[name][method]
            rates[name] = float((decide(probs, prof.thresholds) == e).mean()) if len(probs) else float("nan")
        gap = (rates["long_neutral"] - rates["short_neutral"]) * 100
        report["aggregations"][method] = {
            "short_neutral_flag_rate": rates["short_neutral"], "long_neutral_flag_rate": rates["long_neutral"],
            "gap_points": gap, "buried_catch_rate": rates["buried_extremist"],
            "meets_goal": bool(gap <= MAX_GAP_POINTS and rates["buried_extremist"] >= MIN_BURIED_CATCH)}
    return report


def render(report: dict[str, Any]) -> str:
    """The report as a small markdown table."""
    n = report["n"]
    lines = [f"long-text slice (profile {report['profile']}; model aggregation now: {report['current']}): "
             f"{n['short_neutral']} short neutral, {n['long_neutral']} long neutral, {n['buried_extremist']} buried "
             "extremist",
             "", "| aggregation | short neutral flagged | long neutral flagged | gap (points) | buried caught | goal |",
             "|---|---|---|---|---|---|"]
    for method, r in report["aggregations"].items():
        lines.append(f"| {method} | {r['short_neutral_flag_rate']:.3f} | {r['long_neutral_flag_rate']:.3f} | "
                     f"{r['gap_points']:+.1f} | {r['buried_catch_rate']:.3f} | {'met' if r['meets_goal'] else '-'} |")
    return "\n".join(lines)
