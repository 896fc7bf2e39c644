"""``counterpoint compare``: champion vs challenger on the same frozen suites, per slice, with a paired bootstrap.

Both model folders label every row of every suite under their own default profile. Per suite and slice (all rows,
each language, written vs real posts, the counter-speech rows) the table gives each model's macro-F1 (labels present
in the slice), ordinary-post flag rate and extremist recall (``training.evaluate.user_view``), the macro-F1
difference (challenger - champion) and a paired bootstrap 95% interval of that difference (the same resampled rows
for both models, seeded, so the interval is reproducible).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from serving import labels as L
from serving.predictor import decide
from training.data import Example
from training.evaluate import user_view

DEFAULT_SUITES = ("data/labeled/test.jsonl", "data/labeled/test.real.jsonl")
COUNTER_SLICE = "counter_speech"
#: A suite whose ``orig_label`` has more values than this gets no ``orig=`` slices (they would be ids, not slices).
MAX_ORIG_SLICES = 40


def default_suites(root: str | Path = ".") -> list[Path]:
    """The test split and its real-post part, where present."""
    return [Path(root) / p for p in DEFAULT_SUITES if (Path(root) / p).exists()]


def _macro_f1_batch(y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Macro-F1 (labels present in each resample's gold) for every row of ``idx`` (resamples x n), vectorised."""
    k = len(L.LABELS)
    yy, pp = y[idx], pred[idx]
    f1s, present = [], []
    for c in range(k):
        tp = ((yy == c) & (pp == c)).sum(1)
        gold = (yy == c).sum(1)
        guessed = (pp == c).sum(1)
        denom = gold + guessed
        f1s.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
        present.append(gold > 0)
    f1s, present = np.array(f1s), np.array(present)
    return (f1s * present).sum(0) / np.maximum(present.sum(0), 1)


def slice_indices(examples: Sequence[Example]) -> dict[str, np.ndarray]:
    """Slice name -> row indices: ``all``, ``lang=<code>``, ``origin=<real|written>`` (when a suite mixes
    origins or is all real), ``orig=<value>`` (a public set's own label, e.g. a HateCheck functionality, where the
    rows carry ``orig_label`` with at most ``MAX_ORIG_SLICES`` values), ``counter_speech`` (gold counter_narrative
    rows)."""
    groups: dict[str, list[int]] = defaultdict(list)
    orig: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        groups["all"].append(i)
        groups[f"lang={ex.lang}"].append(i)
        groups[f"origin={ex.extra.get('origin') or 'written'}"].append(i)
        if ex.extra.get("orig_label") is not None:
            orig[f"orig={ex.extra['orig_label']}"].append(i)
        if ex.label == L.COUNTER_NARRATIVE:
            groups[COUNTER_SLICE].append(i)
    if len(orig) <= MAX_ORIG_SLICES:
        groups.update(orig)
    order = lambda name: (name != "all", name == COUNTER_SLICE, name)  # noqa: E731 (all first, counter-speech last)
    return {name: np.asarray(groups[name], dtype=int) for name in sorted(groups, key=order)}


def _figures(y: np.ndarray, pred: np.ndarray) -> dict:
    u = user_view(y, pred)
    f1 = float(_macro_f1_batch(y, pred, np.arange(len(y))[None, :])[0]) if len(y) else 0.0
    return {"macro_f1": f1, "ordinary_flagged": u["ordinary_flagged"], "extremist_recall": u["extremist_recall"]}


def compare_predictions(examples: Sequence[Example], pred_a: np.ndarray, pred_b: np.ndarray, *,
                        resamples: int = 1000, seed: int = 0) -> dict:
    """Per-slice figures of champion (``a``) and challenger (``b``) and the paired bootstrap of the macro-F1 gap."""
    y = np.asarray([L.LABEL2ID[ex.label] for ex in examples])
    rng = np.random.default_rng(seed)
    out = {}
    for name, idx in slice_indices(examples).items():
        ya, pa, pb = y[idx], pred_a[idx], pred_b[idx]
        row = {"n": int(len(idx)), "champion": _figures(ya, pa), "challenger": _figures(ya, pb)}
        row["diff"] = row["challenger"]["macro_f1"] - row["champion"]["macro_f1"]
        if len(idx) and resamples > 0:
            draw = rng.integers(0, len(idx), size=(resamples, len(idx)))
            gaps = _macro_f1_batch(ya, pb, draw) - _macro_f1_batch(ya, pa, draw)
            row["ci95"] = [float(np.percentile(gaps, 2.5)), float(np.percentile(gaps, 97.5))]
        else:
            row["ci95"] = None
        out[name] = row
    return out


def _labels_of(predictor, examples: Sequence[Example], batch: int = 512) -> np.ndarray:
    from serving.profiles import resolve

    texts = [ex.text for ex in examples]
    probs = np.zeros((len(texts), len(L.LABELS)))
    for s in range(0, len(texts), batch):
        probs[s:s + batch] = predictor.predict_proba(texts[s:s + batch])
    return decide(probs, resolve(predictor.meta).thresholds) if len(texts) else np.zeros(0, dtype=int)


def _model_id(predictor, folder: Path) -> dict:
    m = predictor.meta
    return {"folder": str(folder), "name": m.name, "version": m.version, "sha256": m.sha256()}


def compare_models(champion: str | Path, challenger: str | Path, suites: Sequence[str | Path], *,
                   resamples: int = 1000, seed: int = 0, backend: str = "auto") -> dict:
    """Evaluate both folders on every suite file; the ``compare.json`` document."""
    from serving.predictor import load_predictor
    from training.data import FieldMap, load_many

    if not suites:
        raise ValueError("no evaluation suites: pass --eval FILE (data/labeled/test.jsonl was not found)")
    a, b = load_predictor(champion, backend), load_predictor(challenger, backend)
    result = {"champion": _model_id(a, Path(champion)), "challenger": _model_id(b, Path(challenger)),
              "resamples": resamples, "seed": seed, "suites": {}}
    for path in suites:
        examples = load_many([path], FieldMap(strict=False))
        result["suites"][Path(path).name.removesuffix(".jsonl")] = compare_predictions(
            examples, _labels_of(a, examples), _labels_of(b, examples), resamples=resamples, seed=seed)
    return result


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def render_table(result: dict) -> str:
    """One plain-text table: suite, slice, n, each model's figures, the gap and its interval."""
    head = (f"{'suite':<14} {'slice':<18} {'n':>5}  {'F1 champ':>8} {'F1 chall':>8} {'diff':>7} {'95% CI':>17}  "
            f"{'ord.flag c/c':>13} {'ext.rec c/c':>13}")
    lines = [f"champion   {result['champion']['name']} {result['champion']['version']} ({result['champion']['folder']})",
             f"challenger {result['challenger']['name']} {result['challenger']['version']} "
             f"({result['challenger']['folder']})", head, "-" * len(head)]
    for suite, slices in result["suites"].items():
        for name, r in slices.items():
            ci = "-" if r["ci95"] is None else f"[{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}]"
            c, h = r["champion"], r["challenger"]
            lines.append(f"{suite:<14} {name:<18} {r['n']:>5}  {c['macro_f1']:>8.3f} {h['macro_f1']:>8.3f} "
                         f"{r['diff']:>+7.3f} {ci:>17}  "
                         f"{_f(c['ordinary_flagged']) + '/' + _f(h['ordinary_flagged']):>13} "
                         f"{_f(c['extremist_recall']) + '/' + _f(h['extremist_recall']):>13}")
    return "\n".join(lines)


def write_result(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return path
