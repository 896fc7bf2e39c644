"""The labelling job, ``run_label_job``: checks, model, engine, parts and checkpoint, summary. Imports the other
modules of ``serving.batch`` (records, checkpoint, engines; the Ray engine lazily); none of them imports it."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving import labels as L

from serving.batch.checkpoint import (JobPaths, _commit_chunk, _drop_uncounted_parts, _finalise,
                                      _input_fingerprint, _load_checkpoint, _remove_parts, _save_checkpoint,
                                      CHECKPOINT_VERSION)
from serving.batch.engines import local_chunks
from serving.batch.records import MAX_CHARS, BatchError, InputInfo, _resolve_formats, count_rows, inspect_input

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
BATCHES_PER_PART = 16


@dataclass
class LabelSummary:
    """What a labelling job did; ``render()`` is the closing summary the CLI prints."""

    input: str
    output: str
    errors_file: str | None
    engine: str
    model: dict[str, str]
    backend: str
    rows: int = 0                 # input rows read over the whole job (labelled + errors)
    labelled: int = 0
    errors: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)
    flagged: int = 0
    resumed_from: int = 0         # rows already done when this run started (0 for a fresh job)
    rows_this_run: int = 0
    seconds: float = 0.0          # this run, from the first row read to the output in place
    notes: list[str] = field(default_factory=list)

    @property
    def posts_per_s(self) -> float:
        return self.rows_this_run / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["posts_per_s"] = round(self.posts_per_s, 2)
        return out

    def render(self) -> str:
        lines = [f"labelled {self.labelled:,} of {self.rows:,} rows with {self.model['name']} "
                 f"{self.model['version']} ({self.backend}, {self.engine} engine)"
                 + (f"; resumed at row {self.resumed_from:,}" if self.resumed_from else "")]
        counts = " | ".join(f"{name} {self.label_counts.get(name, 0):,}" for name in L.LABELS)
        lines.append(f"  labels: {counts} | flagged {self.flagged:,}")
        lines.append(f"  this run: {self.rows_this_run:,} rows in {self.seconds:.1f} s ({self.posts_per_s:,.1f} "
                     "posts/s)")
        if self.errors:
            lines.append(f"  errors: {self.errors:,} rows could not be labelled; see {self.errors_file}")
        else:
            lines.append("  errors: none")
        lines.append(f"  output: {self.output}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def run_label_job(input: str | Path, output: str | Path, *, model: str | Path = "models/default",
                  text_field: str = "text", id_field: str = "id", engine: str = "local", fmt: str | None = None,
                  resume: bool = False, backend: str = "auto", batch_size: int = 256,
                  ray_address: str | None = None, progress: bool = True, chunk_rows: int | None = None,
                  predictor=None, ray_actors: int | None = None, profile: str | None = None,
                  max_chars: int = MAX_CHARS, split: str | None = None,
                  context_field: str | None = None) -> LabelSummary:
    """Label ``input`` into ``output`` (see the module docstring); returns the summary.

    ``chunk_rows``: input rows per part/checkpoint (default ``batch_size * 16``). ``predictor``: an already
    loaded predictor to use instead of loading ``model`` (local engine). ``ray_actors``: the most model actors the
    Ray engine starts (default: one per CPU of the cluster). ``max_chars``: a longer text is a row error.
    ``split``: the split of a ``datasets`` folder holding several. ``context_field``: the column holding each row's
    parent post, for a model that reads context (local engine).
    """
    input_path, output = Path(input), Path(output)
    if engine not in ENGINES:
        raise BatchError(f"unknown engine {engine!r}; choose local or ray")
    if batch_size < 1:
        raise BatchError("--batch-size must be at least 1")
    if max_chars < 1:
        raise BatchError("--max-chars must be at least 1")
    chunk_rows = int(chunk_rows or batch_size * BATCHES_PER_PART)
    if chunk_rows < 1:
        raise BatchError("chunk_rows must be at least 1")
    if not input_path.exists():
        raise BatchError(f"input {input_path} does not exist")
    in_fmt, out_fmt = _resolve_formats(input_path, output, fmt)
    paths = JobPaths.for_output(output)
    if output.resolve() == input_path.resolve() or paths.errors.resolve() == input_path.resolve():
        raise BatchError("the output must be a new file, not the input itself")
    if not output.parent.is_dir():
        raise BatchError(f"the output folder {output.parent} does not exist; create it first")
    if engine == "ray" and predictor is not None:
        raise BatchError("an injected predictor runs only with the local engine")
    if engine == "ray" and context_field:
        raise BatchError("--context-field works with the local engine only; drop --engine ray")

    if split is not None and in_fmt != "datasets":
        raise BatchError(f"--split applies to a `datasets` folder only; {input_path} is {in_fmt}")
    info = inspect_input(input_path, in_fmt, text_field, split=split)
    _check_existing(paths, resume)  # refusals come before the (slow) model load
    if engine == "ray":
        from serving.batch.ray_engine import require_ray

        require_ray()

    # The model: its identity goes into the checkpoint, so --resume refuses to mix two models in one output.
    if predictor is None and engine == "local":
        from serving.predictor import load_predictor

        predictor = load_predictor(model, backend)
    if predictor is not None:
        meta, backend_name = predictor.meta, predictor.backend
    else:
        from serving.artifact import load_meta

        meta = load_meta(Path(model))
        backend_name = effective_backend(meta, backend)
    from serving.profiles import UnknownProfile, default_profile_name, resolve

    try:
        profile_name = resolve(meta, profile).name
    except UnknownProfile as exc:
        raise BatchError(f"{exc}; pass one of them with --profile") from None
    # The folder's default profile is what a plain predict() applies; name a profile only when it is another one.
    profile = None if profile_name == default_profile_name(meta) else profile_name
    if context_field and not meta.context:
        raise BatchError(f"the model {meta.name} {meta.version} does not read parent posts (it was not trained on "
                         "replies with their parents); drop --context-field")
    model_info = {"name": meta.name, "version": meta.version, "sha256": meta.sha256()}
    options = {"profile": profile_name, "input": _input_fingerprint(input_path), "input_format": in_fmt, "output_format": out_fmt,
               "text_field": text_field, "id_field": id_field, "model_sha256": model_info["sha256"],
               "backend": backend_name}
    # Only when not the default, so a checkpoint written before these options existed still resumes.
    if max_chars != MAX_CHARS:
        options["max_chars"] = max_chars
    if split is not None:
        options["split"] = split
    if context_field:
        options["context_field"] = context_field

    state = _prepare_state(paths, options, info, resume)
    summary = LabelSummary(str(input_path), str(output), None, engine, model_info, backend_name,
                           resumed_from=state["rows"])
    total = count_rows(input_path, in_fmt, split) if progress else None
    bar = _progress_bar(total, state["rows"], progress)
    if engine == "ray":
        from serving.batch.ray_engine import ray_chunks

        chunks = ray_chunks(input_path, in_fmt, state["rows"], model=Path(model), backend=backend_name,
                            text_field=text_field, batch_size=batch_size, chunk_rows=chunk_rows,
                            model_version=meta.version, model_sha256=model_info["sha256"], ray_address=ray_address,
                            profile=profile, max_chars=max_chars, split=split,
                            max_actors=ray_actors, tick=bar.update)
    else:
        chunks = local_chunks(input_path, in_fmt, state["rows"], predictor=predictor, text_field=text_field,
                              batch_size=batch_size, chunk_rows=chunk_rows, model_version=meta.version,
                              profile=profile, max_chars=max_chars, split=split, context_field=context_field,
                              tick=bar.update)
    if info.columns and id_field not in info.columns:
        summary.notes.append(f"the input has no {id_field!r} column; error records carry line numbers only")

    started = time.perf_counter()
    try:
        for chunk in chunks:
            _commit_chunk(paths, state, chunk, out_fmt, info, id_field)
            summary.rows_this_run += len(chunk)
        state["done"] = True
        _save_checkpoint(paths.checkpoint, state)
        _finalise(paths, state, out_fmt, info)
    except KeyboardInterrupt:
        raise BatchError(f"interrupted after {state['rows']:,} rows; run the same command with --resume to "
                         "finish the job") from None
    finally:
        bar.close()
        close = getattr(chunks, "close", None)
        if close:
            close()
    summary.seconds = time.perf_counter() - started
    summary.rows, summary.labelled, summary.errors = state["rows"], state["labelled"], state["errors"]
    summary.label_counts, summary.flagged = dict(state["label_counts"]), state["flagged"]
    summary.errors_file = str(paths.errors) if state["errors"] else None
    log.info("labelled %s: %d rows, %d errors, %.1f s", output, state["rows"], state["errors"], summary.seconds)
    return summary


def effective_backend(meta, backend: str) -> str:
    """The backend ``load_predictor(folder, backend)`` picks for a folder with ``meta`` (without loading it)."""
    if meta.kind == "linear":
        return "linear"
    if backend == "auto":
        return "onnx-int8" if meta.onnx.get("int8") else "onnx" if meta.onnx.get("fp32") else "torch"
    return backend


def _progress_bar(total: int | None, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=" posts", desc="labelling", disable=not enabled,
                dynamic_ncols=True, mininterval=0.5, smoothing=0.1, file=sys.stderr)


def _check_existing(paths: JobPaths, resume: bool) -> None:
    """Refuse to overwrite results; without a checkpoint there is nothing to resume."""
    has_checkpoint = paths.checkpoint.is_file()
    if not resume:
        if has_checkpoint:
            raise BatchError(f"{paths.parts} holds an interrupted job for {paths.output}; run the same command with "
                             f"--resume to finish it, or delete {paths.parts} to start over")
        for existing in (paths.output, paths.errors, paths.parts):
            if existing.exists():
                raise BatchError(f"{existing} already exists; delete it or choose another --output (a job never "
                                 "overwrites earlier results)")
    elif not has_checkpoint:
        if paths.output.exists():
            raise BatchError(f"nothing to resume: {paths.output} exists and no interrupted job is recorded for it "
                             f"(no {paths.checkpoint}); the job has finished. Delete it to label again")
        if paths.errors.exists():
            raise BatchError(f"{paths.errors} exists but no job is recorded for it; delete it first")


def _prepare_state(paths: JobPaths, options: dict[str, Any], info: InputInfo, resume: bool) -> dict[str, Any]:
    """The job's state: fresh (parts folder and first checkpoint created) or the checkpoint of the job to resume."""
    _check_existing(paths, resume)
    if resume and paths.checkpoint.is_file():
        state = _load_checkpoint(paths.checkpoint)
        diff = [f"{key} was {state['options'].get(key)!r}, now {value!r}" for key, value in options.items()
                if state["options"].get(key) != value]
        if diff:
            raise BatchError(f"cannot resume: the checkpoint in {paths.parts} was made with other inputs or options "
                             f"({'; '.join(diff)}). Rerun with the original ones, or delete {paths.parts} (and "
                             f"{paths.output} if present) to start over")
        _drop_uncounted_parts(paths, len(state["parts"]))
        return state
    if resume and paths.parts.exists():  # crashed before the first checkpoint: nothing of value in there
        _remove_parts(paths)
    paths.parts.mkdir()
    state = {"version": CHECKPOINT_VERSION, "options": options, "rows": 0, "labelled": 0, "errors": 0,
             "label_counts": {name: 0 for name in L.LABELS}, "flagged": 0, "columns": list(info.columns),
             "parts": [], "done": False}
    _save_checkpoint(paths.checkpoint, state)
    return state
