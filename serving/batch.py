"""Batch labelling of files: ``counterpoint label INPUT -o OUTPUT``.

Each output row is the input row unchanged plus ``pred_label``, ``score_<label>`` for every schema label,
``flagged`` and ``model_version``. Labels come from the same predictor as the service (``load_predictor`` +
``Predictor.predict``), so a text gets the same scores either way. Formats: JSONL, CSV and Parquet in and out (from
the extension; ``--format`` names the format of a path whose extension does not say); Hugging Face ``datasets``
folders in.

Nothing is lost. A row that cannot be labelled (invalid JSON, bytes that are not UTF-8, a missing, null, empty or
non-string text, a row that already carries prediction columns) goes to ``OUTPUT.errors.jsonl`` as
``{"line", "id", "error"}`` (never the text) and the job goes on. Rows read = rows labelled + rows in errors.

Crash safety. The job streams the input in chunks (``chunk_rows``; by default 16 inference batches). Each chunk is
written as a part file in ``OUTPUT.parts/`` (temporary name, fsync, atomic rename), then ``checkpoint.json`` there
is replaced atomically with the new row count. A crash or ``kill -9`` at any point leaves at most one part that no
checkpoint counts; ``--resume`` deletes it, checks that the input (path, size, mtime), model (SHA-256) and options
are the ones the checkpoint recorded, and reads on from the recorded row, so every input row ends up in the output
or the errors file exactly once. At the end the parts are joined into OUTPUT and ``OUTPUT.errors.jsonl`` (temporary
file + rename) and the parts folder is removed. Memory stays flat: one chunk of rows is held at a time.

Engines: ``local`` (this process) and ``ray`` (``serving.batch_ray``: a Ray Data pipeline whose actor pool holds
the model; the same reader, validation, parts and checkpoint on the driver).

Int8 note: the default ONNX int8 backend picks activation scales per inference batch, so scores can differ by
about 1e-3 from a one-text service call; fp32, torch and linear backends give identical scores.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from serving import labels as L
from serving.tabular import (RowResult, conform_table, csv_cell, detect_format, has_surrogates, iter_rows,
                             json_line, rows_to_table, unify_schemas)

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
OUTPUT_FORMATS = ("jsonl", "csv", "parquet")
PRED_LABEL = "pred_label"
FLAGGED = "flagged"
MODEL_VERSION = "model_version"
#: Added after the contract's columns: the score sits in the profile's review band, so a human should decide.
REVIEW = "review"
CHECKPOINT_VERSION = 1
BATCHES_PER_PART = 16
#: Rows of a JSONL / datasets input inspected before the job starts (their columns are not known up front).
PREFLIGHT_ROWS = 1000


class BatchError(RuntimeError):
    """A labelling job that cannot start or go on, with a message that says what to do about it."""


def score_column(label: str) -> str:
    return f"score_{label}"


def prediction_columns() -> list[str]:
    """The columns a labelling job adds, in output order."""
    return [PRED_LABEL, *(score_column(name) for name in L.LABELS), FLAGGED, MODEL_VERSION, REVIEW]


def prediction_record(label: str, scores: dict[str, float], flagged: bool, model_version: str,
                      review: bool = False) -> dict[str, Any]:
    return {PRED_LABEL: label, **{score_column(name): float(scores[name]) for name in L.LABELS},
            FLAGGED: bool(flagged), MODEL_VERSION: model_version, REVIEW: bool(review)}


def validate_row(result: RowResult, text_field: str) -> tuple[str | None, str | None]:
    """``(text, None)`` for a row that can be labelled, else ``(None, reason)``. The reason never quotes the text.

    Shared by both engines (the Ray read tasks call it too), so they agree on which rows are labelled.
    """
    if result.error is not None:
        return None, result.error
    row = result.row
    clash = [name for name in prediction_columns() if name in row]
    if clash:
        return None, (f"row already has prediction column(s) {', '.join(clash)}; refusing to overwrite them "
                      "(rename them or label the original input)")
    if text_field not in row:
        return None, f"no {text_field!r} field"
    text = row[text_field]
    if text is None:
        return None, f"{text_field!r} has no value (null, or a CSV row with fewer cells than the header)"
    if not isinstance(text, str):
        return None, f"{text_field!r} is not a string (got {type(text).__name__})"
    if not text.strip():
        return None, f"{text_field!r} is empty"
    if has_surrogates(text):
        return None, f"{text_field!r} is not valid Unicode (unpaired surrogate escapes or undecodable bytes)"
    return text, None


@dataclass
class Outcome:
    """One input row after labelling: ``pred`` (the prediction columns) or ``error`` is set."""

    line: int
    row: dict[str, Any] | None
    pred: dict[str, Any] | None = None
    error: str | None = None


# --- the local engine ---------------------------------------------------------------------------------------------


def read_checked(input_path: Path, fmt: str, start: int, text_field: str) -> Iterator[tuple[RowResult, str | None,
                                                                                                 str | None]]:
    """The input's rows from ``start`` with ``validate_row``'s verdict: ``(result, text, error)``."""
    for result in iter_rows(input_path, fmt, start=start, undecodable="row"):
        text, error = validate_row(result, text_field)
        yield result, text, error


def chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def predict_records(predictor, texts: Sequence[str], model_version: str,
                    profile: str | None = None) -> list[dict[str, Any] | str]:
    """Prediction columns for each text, or an error reason for a text the model failed on.

    ``profile``: the threshold profile of the model folder (``None``: its default). A failure of the whole batch
    (which should not happen) is retried one text at a time so one bad row cannot take its batch mates, or the
    job, down with it.
    """
    def run(batch: list[str]):
        return predictor.predict(batch, profile) if profile else predictor.predict(batch)

    try:
        preds = run(list(texts))
    except Exception:  # noqa: BLE001 - isolate the row, keep the job going
        out: list[dict[str, Any] | str] = []
        for text in texts:
            try:
                p = run([text])[0]
                out.append(prediction_record(p.label, p.scores, p.flagged, model_version, getattr(p, "review", False)))
            except Exception as exc:  # noqa: BLE001
                log.warning("model failed on one row: %s", type(exc).__name__)
                out.append(f"the model failed on this row ({type(exc).__name__})")
        return out
    return [prediction_record(p.label, p.scores, p.flagged, model_version, getattr(p, "review", False))
            for p in preds]


def local_chunks(input_path: Path, fmt: str, start: int, *, predictor, text_field: str, batch_size: int,
                 chunk_rows: int, model_version: str, profile: str | None = None,
                 tick: Callable[[int], None] = lambda n: None) -> Iterator[list[Outcome]]:
    """Labelled chunks of ``chunk_rows`` input rows, labelled ``batch_size`` texts per ``predict`` call;
    ``tick(n)`` reports rows as they are done (for the progress bar)."""
    for chunk in chunked(read_checked(input_path, fmt, start, text_field), chunk_rows):
        outcomes = [Outcome(result.line, result.row, error=error) for result, _, error in chunk]
        todo = [(k, text) for k, (_, text, error) in enumerate(chunk) if error is None]
        tick(len(chunk) - len(todo))
        for batch in chunked(todo, batch_size):
            records = predict_records(predictor, [text for _, text in batch], model_version, profile)
            for (k, _), record in zip(batch, records):
                if isinstance(record, str):
                    outcomes[k].error = record
                else:
                    outcomes[k].pred = record
            tick(len(batch))
        yield outcomes


# --- files: formats, parts, checkpoint ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPaths:
    output: Path
    errors: Path
    parts: Path
    checkpoint: Path

    @classmethod
    def for_output(cls, output: Path) -> "JobPaths":
        parts = output.with_name(output.name + ".parts")
        return cls(output, output.with_name(output.name + ".errors.jsonl"), parts, parts / "checkpoint.json")

    def part(self, index: int, out_fmt: str) -> Path:
        ext = "parquet" if out_fmt == "parquet" else "jsonl"
        return self.parts / f"part-{index:06d}.{ext}"

    def error_part(self, index: int) -> Path:
        return self.parts / f"part-{index:06d}.errors.jsonl"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write ``path`` via ``write(binary_file)`` under a temporary name, fsync, then rename: all or nothing."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _write_jsonl(rows: Iterable[dict[str, Any]]) -> Callable[[Any], None]:
    def write(fh) -> None:
        buf = io.TextIOWrapper(fh, encoding="utf-8", newline="\n", write_through=True)
        for row in rows:
            buf.write(json_line(row))
        buf.flush()
        buf.detach()
    return write


def _input_fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    if path.is_dir():  # a `datasets` folder: the arrow files
        files = sorted(path.glob("*.arrow"))
        return {"path": str(path.resolve()), "size": sum(f.stat().st_size for f in files),
                "mtime_ns": max((f.stat().st_mtime_ns for f in files), default=st.st_mtime_ns)}
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _open_binary(path: Path):
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def _open_text(path: Path):
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="surrogateescape", newline="")


def csv_header(path: Path) -> list[str]:
    with _open_text(path) as fh:
        try:
            header = next(csv.reader(fh))
        except StopIteration:
            return []
        except csv.Error as exc:
            raise BatchError(f"{path}: cannot read the CSV header ({exc})") from exc
    if any(has_surrogates(name) for name in header):
        raise BatchError(f"{path}: the CSV header is not valid UTF-8; re-save the file as UTF-8")
    return header


def count_rows(path: Path, fmt: str) -> int | None:
    """How many rows the reader will yield (for the progress bar's ETA); None when that is costly to know."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if fmt == "jsonl":
            n, last = 0, b"\n"
            with _open_binary(path) as fh:
                while block := fh.read(1 << 20):
                    n += block.count(b"\n")
                    last = block[-1:]
            return n + (last != b"\n")
        if fmt == "csv":
            csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
            with _open_text(path) as fh:
                return max(sum(1 for cells in csv.reader(fh) if cells) - 1, 0)
    except (OSError, csv.Error, ValueError):
        return None
    return None


@dataclass
class InputInfo:
    """What the job learns about the input before it starts."""

    columns: list[str]        # known input columns, in order (all of them for CSV / Parquet; those seen for JSONL)
    schema: Any = None        # the Parquet schema, to write Parquet output with the input's exact types
    complete: bool = False    # columns are the whole header / schema


def inspect_input(path: Path, fmt: str, text_field: str) -> InputInfo:
    """Refuse inputs that cannot be labelled as asked: prediction columns already there, no text column."""
    preds = prediction_columns()
    if fmt in ("csv", "parquet"):
        if fmt == "csv":
            columns, schema = csv_header(path), None
            if not columns:
                raise BatchError(f"{path} is empty: a CSV input needs a header row naming its columns")
        else:
            import pyarrow.parquet as pq

            try:
                schema = pq.read_schema(path)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
                raise BatchError(f"{path} is not a readable Parquet file ({exc})") from exc
            columns = list(schema.names)
        clash = [c for c in preds if c in columns]
        if clash:
            raise BatchError(_clash_message(path, clash))
        if text_field not in columns:
            raise BatchError(f"{path} has no {text_field!r} column (columns: {', '.join(columns)}); "
                             "pass --text-field with the column that holds the text")
        if schema is not None:
            import pyarrow as pa

            kind = schema.field(text_field).type
            if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
                raise BatchError(f"{path}: column {text_field!r} holds {kind}, not text; pass --text-field with the "
                                 "column that holds the text")
        return InputInfo(columns, schema, complete=True)

    seen: dict[str, None] = {}
    valid = with_text = 0
    for result in iter_rows(path, fmt):
        if result.line > PREFLIGHT_ROWS:
            break
        if result.row is None:
            continue
        valid += 1
        clash = [c for c in preds if c in result.row]
        if clash:
            raise BatchError(_clash_message(path, clash, line=result.line))
        with_text += text_field in result.row
        seen.update(dict.fromkeys(result.row))
    if valid and not with_text:
        raise BatchError(f"none of the first {valid} rows of {path} has a {text_field!r} field (fields: "
                         f"{', '.join(seen) or 'none'}); pass --text-field with the field that holds the text")
    return InputInfo(list(seen))


def _clash_message(path: Path, clash: list[str], line: int | None = None) -> str:
    where = f" (row {line})" if line else ""
    return (f"{path} already has prediction column(s) {', '.join(clash)}{where}; it looks like labelled output. "
            "Label the original input, or rename or drop those columns first.")


def _resolve_formats(input_path: Path, output: Path, fmt: str | None) -> tuple[str, str]:
    """Formats from the extensions; ``fmt`` for a path whose extension does not say."""
    def one(path: Path, allowed: tuple[str, ...]) -> str:
        try:
            found = detect_format(path)
        except ValueError:
            if fmt is None:
                raise BatchError(f"cannot tell the format of {path} from its extension; use .jsonl, .csv or "
                                 ".parquet, or pass --format") from None
            found = fmt
        if found not in allowed:
            raise BatchError(f"{path}: format {found!r} is not supported here; use one of {', '.join(allowed)}")
        return found

    if fmt is not None and fmt not in ("jsonl", "csv", "parquet", "datasets"):
        raise BatchError(f"unknown --format {fmt!r}; choose jsonl, csv or parquet")
    in_fmt = one(input_path, ("jsonl", "csv", "parquet", "datasets"))
    out_fmt = one(output, OUTPUT_FORMATS)
    if output.suffix == ".gz":
        raise BatchError(f"{output}: compressed output is not supported; write {output.with_suffix('')} and "
                         "compress it afterwards")
    return in_fmt, out_fmt


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BatchError(f"{path} is unreadable ({exc}); delete {path.parent} to start the job over") from exc
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise BatchError(f"{path} was written by another version of Counterpoint; delete {path.parent} to start "
                         "over")
    return data


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    write_atomic(path, lambda fh: fh.write(json.dumps(state, indent=1).encode("utf-8")))


def _remove_parts(paths: JobPaths) -> None:
    """Delete the parts folder, touching only the files a job writes there."""
    if not paths.parts.is_dir():
        return
    for f in paths.parts.iterdir():
        if f.name == "checkpoint.json" or f.name.startswith(("part-", ".part-", ".checkpoint.json.tmp")):
            f.unlink()
    try:
        paths.parts.rmdir()
    except OSError:
        log.warning("left %s in place: it holds files this job did not write", paths.parts)


def _drop_uncounted_parts(paths: JobPaths, n_parts: int) -> None:
    """After a crash: remove parts written after the last checkpoint and temporary files (they are redone)."""
    for f in paths.parts.iterdir():
        if f.name.startswith("."):
            f.unlink()
        elif f.name.startswith("part-"):
            try:
                index = int(f.name[5:11])
            except ValueError:
                continue
            if index > n_parts:
                f.unlink()


# --- the job --------------------------------------------------------------------------------------------------------


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
                  predictor=None, ray_actors: int | None = None, profile: str | None = None) -> LabelSummary:
    """Label ``input`` into ``output`` (see the module docstring); returns the summary.

    ``chunk_rows``: input rows per part/checkpoint (default ``batch_size * 16``). ``predictor``: an already
    loaded predictor to use instead of loading ``model`` (local engine). ``ray_actors``: the most model actors the
    Ray engine starts (default: one per CPU of the cluster).
    """
    input_path, output = Path(input), Path(output)
    if engine not in ENGINES:
        raise BatchError(f"unknown engine {engine!r}; choose local or ray")
    if batch_size < 1:
        raise BatchError("--batch-size must be at least 1")
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

    info = inspect_input(input_path, in_fmt, text_field)
    _check_existing(paths, resume)  # refusals come before the (slow) model load
    if engine == "ray":
        from serving.batch_ray import require_ray

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
    model_info = {"name": meta.name, "version": meta.version, "sha256": meta.sha256()}
    options = {"profile": profile_name, "input": _input_fingerprint(input_path), "input_format": in_fmt, "output_format": out_fmt,
               "text_field": text_field, "id_field": id_field, "model_sha256": model_info["sha256"],
               "backend": backend_name}

    state = _prepare_state(paths, options, info, resume)
    summary = LabelSummary(str(input_path), str(output), None, engine, model_info, backend_name,
                           resumed_from=state["rows"])
    total = count_rows(input_path, in_fmt) if progress else None
    bar = _progress_bar(total, state["rows"], progress)
    if engine == "ray":
        from serving.batch_ray import ray_chunks

        chunks = ray_chunks(input_path, in_fmt, state["rows"], model=Path(model), backend=backend_name,
                            text_field=text_field, batch_size=batch_size, chunk_rows=chunk_rows,
                            model_version=meta.version, model_sha256=model_info["sha256"], ray_address=ray_address,
                            profile=profile,
                            max_actors=ray_actors, tick=bar.update)
    else:
        chunks = local_chunks(input_path, in_fmt, state["rows"], predictor=predictor, text_field=text_field,
                              batch_size=batch_size, chunk_rows=chunk_rows, model_version=meta.version,
                              profile=profile, tick=bar.update)
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


def _commit_chunk(paths: JobPaths, state: dict[str, Any], chunk: list[Outcome], out_fmt: str, info: InputInfo,
                  id_field: str) -> None:
    """Write one chunk as a part (atomically), then record it in the checkpoint (atomically)."""
    index = len(state["parts"]) + 1
    good = [o for o in chunk if o.pred is not None]
    bad = [o for o in chunk if o.pred is None]
    if bad:
        errors = [{"line": o.line, "id": _error_id(o.row, id_field), "error": o.error} for o in bad]
        write_atomic(paths.error_part(index), _write_jsonl(errors))
    if good:
        columns = state["columns"]
        if not info.complete:  # JSONL: the union of the keys seen so far, in order of first appearance
            known = set(columns)
            for o in good:
                for key in o.row:
                    if key not in known:
                        known.add(key)
                        columns.append(key)
        rows = ({**o.row, **o.pred} for o in good)
        if out_fmt == "parquet":
            table = _part_table(list(rows), good, info)
            import pyarrow.parquet as pq

            write_atomic(paths.part(index, out_fmt), lambda fh: pq.write_table(table, fh))
        else:
            write_atomic(paths.part(index, out_fmt), _write_jsonl(rows))
    state["parts"].append([len(chunk), len(good), len(bad)])
    state["rows"] += len(chunk)
    state["labelled"] += len(good)
    state["errors"] += len(bad)
    for o in good:
        state["label_counts"][o.pred[PRED_LABEL]] += 1
        state["flagged"] += bool(o.pred[FLAGGED])
    _save_checkpoint(paths.checkpoint, state)


def _error_id(row: dict[str, Any] | None, id_field: str) -> Any:
    value = (row or {}).get(id_field)
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _prediction_fields():
    import pyarrow as pa

    return [pa.field(PRED_LABEL, pa.string()), *(pa.field(score_column(n), pa.float64()) for n in L.LABELS),
            pa.field(FLAGGED, pa.bool_()), pa.field(MODEL_VERSION, pa.string()), pa.field(REVIEW, pa.bool_())]


def _part_table(rows: list[dict[str, Any]], good: list[Outcome], info: InputInfo):
    import pyarrow as pa

    if info.schema is not None:  # Parquet in: keep the input's exact column types
        schema = pa.schema(list(info.schema) + _prediction_fields(), metadata=info.schema.metadata)
        return rows_to_table(rows, [], schema=schema)
    keys: dict[str, None] = {}
    for o in good:
        keys.update(dict.fromkeys(o.row))
    table = rows_to_table(rows, list(keys))
    preds = pa.table({f.name: pa.array([r[f.name] for r in rows], f.type) for f in _prediction_fields()})
    for f in _prediction_fields():
        table = table.append_column(f, preds.column(f.name))
    return table


def _finalise(paths: JobPaths, state: dict[str, Any], out_fmt: str, info: InputInfo) -> None:
    """Join the parts into OUTPUT and OUTPUT.errors.jsonl (each atomically), then remove the parts folder."""
    parts = [(i + 1, labelled, errors) for i, (_, labelled, errors) in enumerate(state["parts"])]
    missing = [str(p) for i, labelled, errors in parts
               for p, n in ((paths.part(i, out_fmt), labelled), (paths.error_part(i), errors)) if n and not p.exists()]
    if missing:
        raise BatchError(f"part files are missing from {paths.parts} ({', '.join(missing[:3])}); the folder was "
                         f"changed by hand. Delete {paths.parts} and run the job again")
    for target in (paths.output, paths.errors):  # temporary files of a finalisation that a crash cut short
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            stale.unlink()
    data_parts = [paths.part(i, out_fmt) for i, labelled, _ in parts if labelled]
    error_parts = [paths.error_part(i) for i, _, errors in parts if errors]

    if out_fmt == "jsonl":
        write_atomic(paths.output, lambda fh: _concat(data_parts, fh))
    elif out_fmt == "csv":
        columns = list(state["columns"]) + prediction_columns()
        write_atomic(paths.output, lambda fh: _write_csv(data_parts, columns, fh))
    else:
        write_atomic(paths.output, lambda fh: _write_parquet(data_parts, fh, info))
    if error_parts:
        write_atomic(paths.errors, lambda fh: _concat(error_parts, fh))
    paths.checkpoint.unlink()
    _fsync_dir(paths.parts)
    _remove_parts(paths)


def _concat(parts: list[Path], fh) -> None:
    import shutil

    for part in parts:
        with open(part, "rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)


def _write_csv(parts: list[Path], columns: list[str], fh) -> None:
    # Invalid Unicode in a carried-through field is written as backslash escapes rather than failing the job.
    text = io.TextIOWrapper(fh, encoding="utf-8", errors="backslashreplace", newline="", write_through=False)
    writer = csv.writer(text)
    writer.writerow(columns)
    for part in parts:
        with open(part, encoding="utf-8") as src:
            for line in src:
                row = json.loads(line)
                writer.writerow([csv_cell(row.get(name)) for name in columns])
    text.flush()
    text.detach()


def _write_parquet(parts: list[Path], fh, info: InputInfo) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pred_names = prediction_columns()
    if not parts:
        base = list(info.schema) if info.schema is not None else [pa.field(c, pa.string()) for c in info.columns]
        schema = pa.schema(base + _prediction_fields())
        pq.write_table(schema.empty_table(), fh)
        return
    schemas = [pq.read_schema(p) for p in parts]
    input_names: dict[str, None] = {}
    for s in schemas:
        input_names.update((n, None) for n in s.names if n not in pred_names)
    schema = unify_schemas(schemas, order=[*input_names, *pred_names])
    with pq.ParquetWriter(fh, schema) as writer:
        for part in parts:
            pf = pq.ParquetFile(part)
            for g in range(pf.num_row_groups):
                writer.write_table(conform_table(pf.read_row_group(g), schema))
