"""Evaluation: the ``metrics.json`` contract of DESIGN.md, slices, ``report.md`` and plots.

Per file: n, macro-F1 (over the labels present in that file), accuracy, per-label precision/recall/F1/support,
per-language and per-kind tables, confusion matrix (rows = true label, columns = predicted, in schema order),
expected calibration error, and where a file carries ``orig_label`` (the external sets) a per-``orig_label``
table of how each original category was labelled.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from serving import labels as L
from serving.predictor import decide
from training.calibrate import expected_calibration_error, reliability_bins
from training.data import Example, FieldMap, load_many

_IDS = list(range(len(L.LABELS)))


def _present(y: np.ndarray) -> list[int]:
    return sorted(set(int(v) for v in y))


def summary(y: np.ndarray, pred: np.ndarray) -> dict:
    present = _present(y)
    return {"n": int(len(y)),
            "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)) if len(y) else 0.0,
            "accuracy": float(accuracy_score(y, pred)) if len(y) else 0.0,
            "flagged": int((pred == L.LABEL2ID[L.FLAG_LABEL]).sum())}


def user_view(y: np.ndarray, pred: np.ndarray, review: np.ndarray | None = None) -> dict:
    """What a moderator feels: how many ordinary (gold neutral) posts get flagged, how many counter-speech posts
    get flagged, extremist precision and recall of the flag, and how many posts land in the review band."""
    e, c, n = (L.LABEL2ID[x] for x in (L.EXTREMIST, L.COUNTER_NARRATIVE, L.NEUTRAL))
    flag = pred == e
    tp = int((flag & (y == e)).sum())
    out = {"n": int(len(y)), "flagged": int(flag.sum()),
           "ordinary_flagged": float(flag[y == n].mean()) if (y == n).any() else None,
           "counter_flagged": float(flag[y == c].mean()) if (y == c).any() else None,
           "counter_not_flagged": float(1 - flag[y == c].mean()) if (y == c).any() else None,
           "extremist_precision": tp / int(flag.sum()) if flag.sum() else None,
           "extremist_recall": tp / int((y == e).sum()) if (y == e).any() else None}
    if review is not None:
        out["review_rate"] = float(np.mean(review)) if len(y) else 0.0
    return out


def extremist_average_precision(y: np.ndarray, probs: np.ndarray) -> float | None:
    """Average precision of the extremist probability against gold extremist rows: how well the model ranks
    extremist posts above the rest, whatever the threshold (recipes compare fairly when their profiles chose
    different thresholds). None without extremist rows or without any other row."""
    from sklearn.metrics import average_precision_score

    gold = np.asarray(y) == L.LABEL2ID[L.EXTREMIST]
    if len(gold) == 0 or gold.all() or not gold.any():
        return None
    return float(average_precision_score(gold, np.asarray(probs)[:, L.LABEL2ID[L.EXTREMIST]]))


def per_part_user(examples: Sequence[Example], y: np.ndarray, pred: np.ndarray, probs: np.ndarray) -> dict:
    """The user view per sampling part of the real posts (the rows' ``part`` field), overall and per language:
    ``random`` rows are a feed at its own prevalence (what a moderator of that feed sees), ``surfaced`` rows were
    picked by an earlier model (flagged or in doubt: the hard cases), ``all`` is a source taken whole. Rows without
    a part (written rows) are left out; {} when no row has one."""
    groups = defaultdict(lambda: defaultdict(list))
    for i, ex in enumerate(examples):
        part = ex.extra.get("part")
        if part:
            groups[str(part)]["all"].append(i)
            groups[str(part)][ex.lang or "(none)"].append(i)
    out = {}
    for part, by_lang in sorted(groups.items()):
        out[part] = {}
        for lang, idx in sorted(by_lang.items(), key=lambda kv: (kv[0] != "all", kv[0])):
            view = user_view(y[idx], pred[idx])
            view["extremist_posts"] = int((y[idx] == L.LABEL2ID[L.EXTREMIST]).sum())
            view["extremist_average_precision"] = extremist_average_precision(y[idx], probs[idx])
            out[part][lang] = view
    return out


def compute_metrics(examples: Sequence[Example], probs: np.ndarray, thresholds: dict | None,
                    profiles: dict | None = None, profile: str | None = None) -> dict:
    """Metrics of one file. ``profiles`` (name -> ``serving.profiles.Profile``): ``profile`` decides the labels
    reported (default: ``thresholds``), and every profile gets its user view under ``per_profile``."""
    y = np.asarray([ex.label_id for ex in examples])
    if profiles and profile:
        thresholds = profiles[profile].thresholds
    pred = decide(probs, thresholds) if len(examples) else np.zeros(0, dtype=int)
    out = summary(y, pred)
    out["labels_in_macro_f1"] = [L.ID2LABEL[i] for i in _present(y)]
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=_IDS, zero_division=0)
    out["per_label"] = {L.ID2LABEL[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                        "support": int(s[i])} for i in _IDS}
    out["confusion"] = confusion_matrix(y, pred, labels=_IDS).tolist() if len(y) else [[0] * 3] * 3
    out["ece"] = expected_calibration_error(probs, y)
    out["reliability"] = reliability_bins(probs, y)
    out["flagged_rate"] = float((pred == L.LABEL2ID[L.FLAG_LABEL]).mean()) if len(y) else 0.0
    e = L.LABEL2ID[L.EXTREMIST]
    review = profiles[profile].review(probs[:, e]) if (profiles and profile and len(y)) else None
    out["profile"] = profile
    out["user"] = user_view(y, pred, review)
    out["user"]["extremist_average_precision"] = extremist_average_precision(y, probs)
    if profiles and len(y):
        out["per_profile"] = {name: user_view(y, decide(probs, prof.thresholds), prof.review(probs[:, e]))
                              for name, prof in profiles.items()}
    for key, attr in (("per_lang", "lang"), ("per_kind", "kind"), ("per_source", "source"), ("per_origin", "origin")):
        groups = defaultdict(list)
        for i, ex in enumerate(examples):
            value = ex.extra.get(attr) if attr == "origin" else getattr(ex, attr)
            groups[value or "(none)"].append(i)
        if key == "per_origin" and len(groups) < 2:
            continue
        if key == "per_source" and len(groups) > 50:
            continue
        out[key] = {g: summary(y[idx], pred[idx]) for g, idx in sorted(groups.items())}
        if key == "per_lang":  # what a moderator of each language sees (issue 9 sets its goals per language)
            out["per_lang_user"] = {g: user_view(y[idx], pred[idx]) for g, idx in sorted(groups.items())}
    part_view = per_part_user(examples, y, pred, probs)
    if part_view:
        out["per_part_user"] = part_view
    orig = defaultdict(list)
    for i, ex in enumerate(examples):
        if "orig_label" in ex.extra:
            orig[str(ex.extra["orig_label"])].append(i)
    if orig:
        table = {}
        for g, idx in sorted(orig.items()):
            counts = np.bincount(pred[idx], minlength=len(L.LABELS))
            table[g] = {"n": len(idx), "true_label": L.ID2LABEL[int(y[idx[0]])],
                        "accuracy": float((pred[idx] == y[idx]).mean()),
                        "predicted": {L.ID2LABEL[i]: int(counts[i]) for i in _IDS},
                        "not_flagged": float(1 - counts[L.LABEL2ID[L.FLAG_LABEL]] / len(idx)),
                        "flagged": int(counts[L.LABEL2ID[L.FLAG_LABEL]])}
        out["per_orig_label"] = table
    if any(ex.extra.get("functionality") for ex in examples):  # the functional suite (issue 14)
        from training.functional import pass_rates

        out["per_functionality"] = pass_rates(examples, pred)
    return out


def _keys(texts: list[str], contexts: list | None) -> list[tuple[str, str | None]]:
    return [(t, contexts[i] if contexts is not None else None) for i, t in enumerate(texts)]


def _score(predictor, texts: list[str], contexts: list | None, batch: int, cache: dict | None = None
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities (and sub-type logits where the model has a head) in batches. ``cache``: ``(text, parent) ->
    (probs, sub-type logits)`` shared by the sets of one evaluation, so a row in several sets is scored once."""
    if cache is not None:
        keys = _keys(texts, contexts)
        todo = list(dict.fromkeys(k for k in keys if k not in cache))
        if todo:
            ctx = [c for _, c in todo]
            p, sub = _score(predictor, [t for t, _ in todo], ctx if any(ctx) else None, batch)
            cache.update({k: (p[i], None if sub is None else sub[i]) for i, k in enumerate(todo)})
        if not keys:
            return np.zeros((0, len(L.LABELS))), None
        rows = [cache[k] for k in keys]
        subs = None if any(r[1] is None for r in rows) else np.stack([r[1] for r in rows])
        return np.stack([r[0] for r in rows]), subs
    probs = np.zeros((len(texts), len(L.LABELS)))
    subs = None
    scores = getattr(predictor, "scores", None)
    for s in range(0, len(texts), batch):
        ctx = contexts[s:s + batch] if contexts is not None else None
        if scores is None:
            probs[s:s + batch] = (predictor.predict_proba(texts[s:s + batch]) if ctx is None else
                                  predictor.predict_proba(texts[s:s + batch], contexts=ctx))
            continue
        p, sub = scores(texts[s:s + batch], contexts=ctx)
        probs[s:s + batch] = p
        if sub is not None:
            subs = np.zeros((len(texts), sub.shape[1])) if subs is None else subs
            subs[s:s + batch] = sub
    return probs, subs


def subtype_metrics(examples: Sequence[Example], pred: np.ndarray, subs: np.ndarray, taxonomy: dict) -> dict:
    """Sub-type quality on rows whose kind is a sub-type of their label: accuracy of the served sub-type (a wrong
    label is a wrong sub-type), accuracy where the label is right, and per-sub-type precision/recall."""
    from serving.predictor import subtype_choice

    gold, got, right_label = [], [], []
    for i, ex in enumerate(examples):
        g = L.subtype_of(ex.label, ex.kind)
        if g is None:
            continue
        label = L.ID2LABEL[int(pred[i])]
        choice = subtype_choice(subs[i], label, taxonomy)
        gold.append(g)
        got.append(choice["name"] if choice else "")
        right_label.append(label == ex.label)
    if not gold:
        return {"n": 0}
    gold_a, got_a, ok = np.asarray(gold), np.asarray(got), np.asarray(right_label)
    per = {}
    for name in L.subtype_names(taxonomy):
        tp = int(((got_a == name) & (gold_a == name)).sum())
        n_pred, n_gold = int((got_a == name).sum()), int((gold_a == name).sum())
        if n_pred or n_gold:
            per[name] = {"precision": tp / n_pred if n_pred else None, "recall": tp / n_gold if n_gold else None,
                         "support": n_gold, "predicted": n_pred}
    return {"n": len(gold), "accuracy": float((gold_a == got_a).mean()),
            "accuracy_where_label_right": float((gold_a == got_a)[ok].mean()) if ok.any() else None,
            "per_subtype": per}


def context_metrics(examples: Sequence[Example], with_ctx: np.ndarray, without: np.ndarray) -> dict:
    """Rows with a parent post, labelled with and without it: accuracy each way, label flips that context made
    right and wrong, and the same on the rows whose reply alone is ambiguous (``ambiguous_alone``)."""
    y = np.asarray([ex.label_id for ex in examples])

    def part(idx: np.ndarray) -> dict:
        if not len(idx):
            return {"n": 0}
        a, b, t = with_ctx[idx], without[idx], y[idx]
        flipped = a != b
        return {"n": int(len(idx)), "accuracy_with_context": float((a == t).mean()),
                "accuracy_without_context": float((b == t).mean()),
                "gain_points": float(100 * ((a == t).mean() - (b == t).mean())),
                "flips": int(flipped.sum()), "flips_right": int((flipped & (a == t)).sum()),
                "flips_wrong": int((flipped & (b == t)).sum()),
                "flips_neither": int((flipped & (a != t) & (b != t)).sum())}

    ambiguous = np.asarray([bool(ex.extra.get("ambiguous_alone")) for ex in examples])
    out = {"all": part(np.arange(len(y))), "ambiguous_alone": part(np.flatnonzero(ambiguous)),
           "clear_alone": part(np.flatnonzero(~ambiguous))}
    patterns = defaultdict(list)
    for i, ex in enumerate(examples):
        if ex.extra.get("pattern"):
            patterns[str(ex.extra["pattern"])].append(i)
    if patterns:
        out["per_pattern"] = {k: part(np.asarray(v)) for k, v in sorted(patterns.items())}
    return out


def _inputs(examples: Sequence[Example], context_field: str | None) -> tuple[list[str], list | None]:
    """Texts and parent posts (None where no row of the set has one) as ``evaluate_examples`` scores them."""
    contexts = [ex.extra.get(context_field) or None for ex in examples] if context_field else None
    return [ex.text for ex in examples], (contexts if contexts and any(contexts) else None)


def cached_probs(cache: dict, examples: Sequence[Example], context_field: str | None = None) -> np.ndarray:
    """The probabilities an evaluation sharing ``cache`` (``evaluate_sets(cache=...)``) computed for these rows;
    a row it did not score is a KeyError."""
    return np.stack([cache[k][0] for k in _keys(*_inputs(examples, context_field))])


def evaluate_examples(predictor, examples: Sequence[Example], batch: int = 512,
                      profile: str | None = None, context_field: str | None = None, cache: dict | None = None
                      ) -> tuple[dict, np.ndarray]:
    """Metrics of one set. ``context_field``: read each row's parent post from this field (the model must read
    context); the rows that have one are also scored without it, for the ``context`` table. ``cache``: see
    ``_score`` (``evaluate_sets`` shares one across its sets)."""
    from serving.profiles import default_profile_name, profiles_of

    started = time.time()
    texts, contexts = _inputs(examples, context_field)
    probs, subs = _score(predictor, texts, contexts, batch, cache)
    profiles = profiles_of(predictor.meta)
    name = profile or default_profile_name(predictor.meta)
    metrics = compute_metrics(examples, probs, predictor.meta.thresholds, profiles, name)
    thresholds = profiles[name].thresholds if profiles and name in profiles else predictor.meta.thresholds
    pred = decide(probs, thresholds) if len(examples) else np.zeros(0, dtype=int)
    if subs is not None and predictor.meta.subtypes:
        metrics["subtypes"] = subtype_metrics(examples, pred, subs, predictor.meta.subtypes)
    if contexts is not None:
        idx = [i for i, c in enumerate(contexts) if c]
        alone, _ = _score(predictor, [texts[i] for i in idx], None, batch, cache)
        metrics["context"] = context_metrics([examples[i] for i in idx], pred[idx], decide(alone, thresholds))
        metrics["context"]["field"] = context_field
    metrics["seconds"] = time.time() - started
    metrics["posts_per_second"] = len(texts) / max(metrics["seconds"], 1e-9)
    return metrics, probs


def model_summary(predictor) -> dict:
    m = predictor.meta
    return {"name": m.name, "version": m.version, "sha256": m.sha256(), "kind": m.kind, "base_model": m.base_model,
            "backend": predictor.backend, "temperature": m.temperature, "thresholds": m.thresholds,
            "profiles": {k: {"thresholds": v.get("thresholds"), "review_band": v.get("review_band")}
                         for k, v in m.profiles.items()}, "default_profile": m.default_profile}


def evaluate_files(predictor, files: Sequence[str | Path], out_dir: str | Path, fields: FieldMap | None = None,
                   *, plots: bool = True, profile: str | None = None, context_field: str | None = None) -> dict:
    """Evaluate ``predictor`` on each file and write ``metrics.json``, ``report.md`` and plots into ``out_dir``."""
    sets = {Path(f).stem: load_many([f], fields or FieldMap(strict=False)) for f in files}
    return evaluate_sets(predictor, sets, out_dir, plots=plots, profile=profile, context_field=context_field)


def evaluate_sets(predictor, sets: dict[str, Sequence[Example]], out_dir: str | Path, *, plots: bool = True,
                  profile: str | None = None, context_field: str | None = None, cache: dict | None = None) -> dict:
    """Metrics, plots and a report of each named set. ``cache``: a dict to fill with what was scored (see
    ``_score``; ``(text, parent) -> (probabilities, sub-type logits)``), for a caller that needs the same scores."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"model": model_summary(predictor), "datasets": {}}
    cache = {} if cache is None else cache  # the per-file sets repeat the rows of "test": score each row once
    for name, examples in sets.items():
        metrics, probs = evaluate_examples(predictor, examples, profile=profile, context_field=context_field,
                                           cache=cache)
        result["datasets"][name] = metrics
        if plots:
            y = np.asarray([ex.label_id for ex in examples])
            plot_confusion(metrics["confusion"], out_dir / f"{name}_confusion.png", title=name)
            plot_reliability(probs, y, out_dir / f"{name}_reliability.png", title=name)
            if "per_functionality" in metrics:
                from training.functional import plot_pass_rates

                plot_pass_rates(metrics["per_functionality"], out_dir / f"{name}_functional.png", title=name)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "report.md").write_text(render_report(result, plots=plots), encoding="utf-8")
    return result


def _table(rows: dict, title: str) -> list[str]:
    lines = [f"| {title} | n | macro-F1 | accuracy | flagged |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {k} | {v['n']} | {v['macro_f1']:.3f} | {v['accuracy']:.3f} | {v.get('flagged', '')} |"
              for k, v in rows.items()]
    return lines


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _user_line(u: dict) -> str:
    return (f"ordinary (neutral) posts flagged {_pct(u['ordinary_flagged'])}, counter-speech flagged "
            f"{_pct(u['counter_flagged'])}, extremist precision {_num(u['extremist_precision'])}, recall "
            f"{_num(u['extremist_recall'])}" + (f", review band {_pct(u['review_rate'])}" if 'review_rate' in u else "")
            + (f", extremist average precision {_num(u['extremist_average_precision'])}"
               if u.get("extremist_average_precision") is not None else "")
            + f" ({u['flagged']} of {u['n']} flagged).")


def render_report(result: dict, *, plots: bool = True) -> str:
    m = result["model"]
    lines = [f"# Evaluation of {m['name']} {m['version']}", "",
             f"Backend `{m['backend']}`, model sha256 `{m['sha256'][:16]}…`, temperature {m['temperature']:.3f}, "
             f"thresholds {json.dumps(m['thresholds'])}.", ""]
    for name, d in result["datasets"].items():
        lines += [f"## {name}", "",
                  f"n = {d['n']}, macro-F1 = {d['macro_f1']:.3f} (over {', '.join(d['labels_in_macro_f1'])}), "
                  f"accuracy = {d['accuracy']:.3f}, ECE = {d['ece']:.3f}, flagged {100 * d['flagged_rate']:.1f}%, "
                  f"{d['posts_per_second']:.0f} posts/s.", "",
                  "| label | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {lab} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                  for lab, v in d["per_label"].items()]
        lines += ["", f"Under profile `{d.get('profile')}`: " + _user_line(d["user"]), ""]
        if d.get("per_profile"):
            lines += ["| profile | ordinary posts flagged | counter-speech flagged | extremist precision | "
                      "extremist recall | review band |", "|---|---:|---:|---:|---:|---:|"]
            lines += [f"| {k} | {_pct(v['ordinary_flagged'])} | {_pct(v['counter_flagged'])} | "
                      f"{_num(v['extremist_precision'])} | {_num(v['extremist_recall'])} | {_pct(v.get('review_rate'))} |"
                      for k, v in d["per_profile"].items()]
        lines += ["", "Confusion (rows true, columns predicted: " + ", ".join(L.LABELS) + "):", "", "```"]
        lines += ["  ".join(f"{c:>6}" for c in row) for row in d["confusion"]] + ["```", ""]
        lines += _table(d["per_lang"], "language") + [""]
        if len(d.get("per_kind", {})) > 1:
            lines += _table(d["per_kind"], "kind") + [""]
        if "per_origin" in d:
            lines += _table(d["per_origin"], "origin") + [""]
        if d.get("per_part_user"):
            lines += ["Real posts by sampling part (`random`: a feed at its own prevalence; `surfaced`: picked by an "
                      "earlier model as flagged or in doubt; `all`: a source taken whole), under profile "
                      f"`{d.get('profile')}`:", "",
                      "| part | language | n | ordinary posts flagged | counter-speech flagged | extremist precision | "
                      "extremist recall | extremist AP |", "|---|---|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {part} | {lang} | {v['n']} | {_pct(v['ordinary_flagged'])} | {_pct(v['counter_flagged'])} | "
                      f"{_num(v['extremist_precision'])} | {_num(v['extremist_recall'])} | "
                      f"{_num(v['extremist_average_precision'])} |"
                      for part, by_lang in d["per_part_user"].items() for lang, v in by_lang.items()] + [""]
        if "per_orig_label" in d:
            lines += ["| original label | n | true label | accuracy | flagged | not flagged |",
                      "|---|---:|---|---:|---:|---:|"]
            lines += [f"| {k} | {v['n']} | {v['true_label']} | {v['accuracy']:.3f} | {v.get('flagged', '')} | "
                      f"{v['not_flagged']:.3f} |" for k, v in d["per_orig_label"].items()]
            lines.append("")
        if d.get("subtypes", {}).get("n"):
            st = d["subtypes"]
            lines += [f"Sub-types ({st['n']} rows with a gold sub-type): accuracy {st['accuracy']:.3f} (a wrong label "
                      f"counts as a wrong sub-type), {_num(st['accuracy_where_label_right'])} where the label is right.",
                      "", "| sub-type | precision | recall | support | predicted |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {k} | {_num(v['precision'])} | {_num(v['recall'])} | {v['support']} | {v['predicted']} |"
                      for k, v in st["per_subtype"].items()] + [""]
        if "context" in d:
            lines += [f"Reply context (parents from `{d['context']['field']}`): the rows with a parent labelled with "
                      "and without it.", "", "| rows | n | accuracy with | without | gain (points) | flips right | "
                      "flips wrong |", "|---|---:|---:|---:|---:|---:|---:|"]
            parts = {k: v for k, v in d["context"].items() if k in ("all", "ambiguous_alone", "clear_alone")}
            parts.update({f"pattern {k}": v for k, v in d["context"].get("per_pattern", {}).items()})
            lines += [f"| {k} | {v['n']} | {v['accuracy_with_context']:.3f} | {v['accuracy_without_context']:.3f} | "
                      f"{v['gain_points']:+.1f} | {v['flips_right']} | {v['flips_wrong']} |"
                      for k, v in parts.items() if v.get("n")] + [""]
        if "per_functionality" in d:
            from training.functional import render_table as functional_table

            lines += ["Functional tests: pass rate per functionality and language.", "",
                      *functional_table(d["per_functionality"]), ""]
            if plots:
                lines += [f"![functional]({name}_functional.png)", ""]
        if plots:
            lines += [f"![confusion]({name}_confusion.png) ![reliability]({name}_reliability.png)", ""]
    return "\n".join(lines)


def plot_confusion(confusion: list[list[int]], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(_IDS, L.LABELS, rotation=30, ha="right")
    ax.set_yticks(_IDS, L.LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in _IDS:
        for j in _IDS:
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_title(f"Confusion: {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(probs: np.ndarray, y: np.ndarray, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = reliability_bins(probs, y)
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    if bins:
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
    ax.set_xlabel("confidence (top label)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability: {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
