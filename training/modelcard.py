"""The generated model card (``README.md`` in every model folder)."""

from __future__ import annotations

import json
from pathlib import Path

from serving import labels as L
from serving.artifact import ModelMeta
from training.evaluate import _num, _pct  # the report's number formats, so card and report read alike


def _rows(table: dict) -> list[str]:
    return [f"| {k} | {v['n']} | {v['macro_f1']:.3f} | {v['accuracy']:.3f} |" for k, v in table.items()]


def _profile_lines(meta: ModelMeta) -> list[str]:
    """The threshold profiles with their precision and recall on real and on written dev posts."""
    if not meta.profiles:
        return []
    lines = ["", "## Threshold profiles", "",
             "Chosen on dev for stated operating points, not for balanced macro-F1 (serving/profiles.py). Pass "
             "`\"profile\"` in a request or `--profile` to `counterpoint label`; scores inside the review band "
             "return `review: true` so that a human decides.", "",
             "| profile | p(extremist) threshold | review band | target | met on dev | part | extremist precision | "
             "extremist recall | ordinary posts flagged | counter-speech not flagged | in review band |",
             "|---|---:|---|---|---|---|---:|---:|---:|---:|---:|"]
    for name, prof in meta.profiles.items():
        m = prof.get("metrics", {})
        band = prof.get("review_band")
        for part in ("real_dev", "written_dev"):
            v = m.get(part)
            if not v:
                continue
            lines.append(
                f"| {name}{' (default)' if name == meta.default_profile else ''} | "
                f"{prof['thresholds'].get(L.EXTREMIST, 0):.2f} | {band if band else '—'} | "
                f"{prof.get('description', '')} | {m.get('target_met_on_dev')} | {part} (n={v['n']}) | "
                f"{v['extremist_precision']:.3f} | {v['extremist_recall']:.3f} | {_pct(v['neutral_flagged'])} | "
                f"{_pct(v['counter_not_flagged'])} | {_pct(v['review_rate'])} |")
    return lines


def render_model_card(meta: ModelMeta, result: dict | None = None, audit: dict | None = None) -> str:
    test = (result or {}).get("datasets", {}).get("test") or meta.metrics.get("test", {})
    cal = meta.calibration
    onnx = meta.onnx
    par = onnx.get("parity", {})
    lines = [
        f"# {meta.name} ({meta.version})", "",
        "Counterpoint classifier: tells **extremist** content from **counter-narrative** and **neutral** content in "
        "English, Urdu (Arabic script) and Roman Urdu.", "",
        f"- Model kind: `{meta.kind}`" + (f", fine-tuned from `{meta.base_model}`" if meta.base_model else "")
        + (" in bfloat16 arithmetic (`train.precision`; weights kept and stored in float32/fp16 as usual)"
           if (meta.metrics or {}).get("train_precision") == "bf16" else "")
        + (f"; the linear TF-IDF baseline (`{meta.linear_blend['file']}`, fitted on the same training rows) holds a "
           f"{meta.linear_blend['weight']:g} share of the label logits of texts without a parent post"
           + (f" and a {meta.linear_blend['subtype_weight']:g} share of their sub-type logits (its own sub-type "
              "regressions)" if meta.linear_blend.get("subtype_weight") else "")
           if meta.linear_blend else ""),
        f"- Label schema v{meta.label_schema_version}, text normaliser v{meta.normaliser_version}",
        f"- Created {meta.created_at}; model sha256 `{meta.sha256()}`", "",
        "## Labels", "",
    ]
    lines += [f"- `{lab}`: {L.DESCRIPTIONS[lab]}" for lab in meta.labels]
    lines += [
        "", "## Intended use", "",
        "Triage support for moderators, researchers and media teams working against violent extremism in Pakistan: "
        "ranking and routing posts for human review, measuring the reach of counter-narratives, labelling research "
        "corpora. A `flagged` post is a candidate for review, never a verdict.", "",
        "## Out of scope", "",
        "Automated removal or sanctions without human review; judging individuals; languages other than English, "
        "Urdu and Roman Urdu; long documents (scored by their most extreme window of "
        f"{meta.max_length or 'n/a'} tokens).", "",
        "## Limitations", "",
        "- Trained on a corpus written by the project plus a few thousand annotated real posts (Roman Urdu comments, "
        "English tweets, Urdu Wikipedia sentences, Urdu-script versions of Roman Urdu posts, CrowdCounter hate "
        "posts and counter-speech replies; see `data/labeled/DATASHEET.md`). Real Urdu-script social media and "
        "real jihadist or separatist propaganda are absent: real extremist rows are mostly hate against a group. "
        "New slang and code words will be missed.",
        "- Public evaluation sets label hate speech, a proxy for extremism; scores on them measure a related task.",
        "- Sarcasm, coded language and replies without their context remain hard; quoting counter-speech is the "
        "case the corpus targets, but check the per-kind table before trusting one slice.",
        "- An English-only base tokenises Urdu script into single characters; compare per-language figures below.",
        "", "## Metrics (test split)", "",
    ]
    if test:
        lines += [f"Macro-F1 **{test['macro_f1']:.3f}**, accuracy {test['accuracy']:.3f}, n = {test['n']} "
                  f"(backend `{meta.metrics.get('backend', '?')}`).", "",
                  "| label | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                  for k, v in test["per_label"].items()]
        lines += ["", "| language | n | macro-F1 | accuracy |", "|---|---:|---:|---:|", *_rows(test["per_lang"])]
        if test.get("per_kind"):
            lines += ["", "| kind | n | macro-F1 | accuracy |", "|---|---:|---:|---:|", *_rows(test["per_kind"])]
    parts = {k: v for k, v in ((result or {}).get("datasets") or {}).items() if k.startswith("test") and "user" in v}
    if parts:
        lines += ["", "### Where the users are: each test file under the default profile", "",
                  "| test file | n | macro-F1 | ordinary posts flagged | counter-speech flagged | extremist precision | "
                  "extremist recall |", "|---|---:|---:|---:|---:|---:|---:|"]
        for k, v in parts.items():
            u = v["user"]
            lines.append(f"| {k} | {v['n']} | {v['macro_f1']:.3f} | {_pct(u['ordinary_flagged'])} | "
                         f"{_pct(u['counter_flagged'])} | {_num(u['extremist_precision'])} | "
                         f"{_num(u['extremist_recall'])} |")
        feeds = {k: v["per_part_user"]["random"] for k, v in parts.items()
                 if (v.get("per_part_user") or {}).get("random")}
        if feeds:
            lines += ["", "On a real feed (the `random` part of the real test posts, at the feed's own prevalence: "
                      "most posts ordinary, few extremist, so a handful of posts decide precision and recall):", "",
                      "| test file | language | n | ordinary posts flagged | extremist posts | extremist precision | "
                      "extremist recall |", "|---|---|---:|---:|---:|---:|---:|"]
            for k, by_lang in feeds.items():
                for lang, u in by_lang.items():
                    lines.append(f"| {k} | {lang} | {u['n']} | {_pct(u['ordinary_flagged'])} | {u.get('extremist_posts', 'n/a')} "
                                 f"| {_num(u['extremist_precision'])} | {_num(u['extremist_recall'])} |")
    datasets = (result or {}).get("datasets") or {}
    if meta.subtypes:
        lines += ["", "### Rhetoric sub-types", "",
                  "A second output names the rhetoric of the decided label (taxonomy in GUIDELINES.md §12): "
                  + "; ".join(f"`{lab}`: {', '.join(names)}" for lab, names in meta.subtypes.items()) + "."]
        lines += [f"- {k}: sub-type accuracy {v['subtypes']['accuracy']:.3f} on {v['subtypes']['n']} rows (a wrong "
                  "label counts as a wrong sub-type)" for k, v in datasets.items()
                  if k.startswith("test") and v.get("subtypes", {}).get("n")]
    if meta.context:
        lines += ["", "### Reply context", "",
                  "The model reads an optional parent post per text (`contexts` in the API, `--context-field` in batch "
                  "jobs); a text without one is judged as by a model without context."]
        for k, v in datasets.items():
            c = (v.get("context") or {}).get("ambiguous_alone") or {}
            if k.startswith("test") and c.get("n"):
                lines.append(f"- {k}: on {c['n']} replies that are ambiguous alone, accuracy "
                             f"{c['accuracy_with_context']:.3f} with the parent vs {c['accuracy_without_context']:.3f} "
                             "without.")
    lines += ["", "Full report: `eval/report.md`, `eval/metrics.json`.", "", "## Calibration", ""]
    if cal:
        lines += [f"Temperature {meta.temperature:.3f} fitted on dev (n = {cal.get('n')}); dev ECE "
                  f"{cal.get('ece_before', 0):.3f} before, {cal.get('ece_after', 0):.3f} after.",
                  f"Default profile `{meta.default_profile or 'default'}`, thresholds `{meta.thresholds}`. A text is "
                  "`extremist` and `flagged` when p(extremist) reaches its threshold; otherwise `counter_narrative` "
                  "when p(counter)/(p(counter)+p(neutral)) reaches its threshold; otherwise `neutral`."]
    lines += _profile_lines(meta)
    if onnx:
        fp32 = (f"`{onnx['fp32']}` (fp32, fused) and" if onnx.get("fp32") else
                "int8 only (the fp32 graph is not shipped; torch weights remain for retraining):")
        lines += ["", "## ONNX", "", f"{fp32} `{onnx.get('int8', '—')}` ({onnx.get('quantization', 'not quantised')})."]
        if par:
            lines.append(f"On the test split the {par['backend']} graph agrees with torch on "
                         f"{100 * par['argmax_agreement']:.2f}% of argmax labels and {100 * par['label_agreement']:.2f}% "
                         f"of thresholded labels; macro-F1 {par['macro_f1']:.4f} vs torch {par['reference_macro_f1']:.4f}.")
    if audit:  # written by `counterpoint audit --update-card` (issue 14)
        from training.audit import card_section

        lines += ["", *card_section(audit)]
    lines += ["", "## Training data", ""]
    for path, fp in meta.data.get("files", {}).items():
        lines.append(f"- `{path}` sha256 `{fp['sha256'][:16]}…`")
    rows = meta.data.get("rows", {})
    if rows:
        lines.append(f"- rows: {rows}")
    lines += ["", "## Use", "", "```python",
              "from serving.predictor import load_predictor",
              "predictor = load_predictor('path/to/this/folder')  # verifies checksums",
              "predictor.predict(['some post'])", "```", ""]
    if meta.kind == "transformer":
        lines += ["The folder also loads with `transformers.pipeline('text-classification', model=folder)` "
                  "(raw softmax, without Counterpoint's normalisation, calibration and thresholds).", ""]
    return "\n".join(lines)


def write_model_card(folder: Path, meta: ModelMeta, result: dict | None = None) -> None:
    audit_file = Path(folder) / "eval" / "audit.json"
    audit = json.loads(audit_file.read_text(encoding="utf-8")) if audit_file.is_file() else None
    (Path(folder) / "README.md").write_text(render_model_card(meta, result, audit), encoding="utf-8")
