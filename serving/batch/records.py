"""Rows in and out of a labelling job: the prediction columns, row validation, and what the job learns about
its input before it starts (formats, header, columns, refusals). Imports nothing else of ``serving.batch``."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from serving import labels as L
from serving.tabular import (CSV_FIELD_LIMIT, RowResult, csv_duplicates, detect_format, has_surrogates, iter_rows,
                             load_datasets_folder)

log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("jsonl", "csv", "parquet")
PRED_LABEL = "pred_label"
FLAGGED = "flagged"
MODEL_VERSION = "model_version"
#: Added after the contract's columns: the score sits in the profile's review band, so a human should decide.
REVIEW = "review"
#: After review: the rhetoric sub-type of the predicted label (empty/null for a model without a sub-type head).
PRED_SUBTYPE = "pred_subtype"
#: Rows of a JSONL / datasets input inspected before the job starts (their columns are not known up front).
PREFLIGHT_ROWS = 1000


class BatchError(RuntimeError):
    """A labelling job that cannot start or go on, with a message that says what to do about it."""


def score_column(label: str) -> str:
    return f"score_{label}"


def prediction_columns() -> list[str]:
    """The columns a labelling job adds, in output order."""
    return [PRED_LABEL, *(score_column(name) for name in L.LABELS), FLAGGED, MODEL_VERSION, REVIEW, PRED_SUBTYPE]


def prediction_record(label: str, scores: dict[str, float], flagged: bool, model_version: str,
                      review: bool = False, subtype: str | None = None) -> dict[str, Any]:
    return {PRED_LABEL: label, **{score_column(name): float(scores[name]) for name in L.LABELS},
            FLAGGED: bool(flagged), MODEL_VERSION: model_version, REVIEW: bool(review), PRED_SUBTYPE: subtype}


def record_of(p, model_version: str) -> dict[str, Any]:
    """The prediction columns of one ``Prediction``."""
    sub = getattr(p, "subtype", None)
    return prediction_record(p.label, p.scores, p.flagged, model_version, getattr(p, "review", False),
                             sub["name"] if sub else None)


#: Characters per text a batch job labels by default; a longer text is a row error (``--max-chars``).
MAX_CHARS = 100_000


def validate_row(result: RowResult, text_field: str, max_chars: int | None = None) -> tuple[str | None, str | None]:
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
    if max_chars is not None and len(text) > max_chars:
        return None, (f"{text_field!r} has {len(text):,} characters; the limit is {max_chars:,} per text "
                      "(--max-chars)")
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


def chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
    dupes = csv_duplicates(header)
    if dupes:
        raise BatchError(f"{path}: the CSV header names column(s) {', '.join(map(repr, dupes))} more than once; "
                         "rename them so that no column's values are lost")
    return header


def count_rows(path: Path, fmt: str, split: str | None = None) -> int | None:
    """How many rows the reader will yield (for the progress bar's ETA); None when that is costly to know."""
    try:
        if fmt == "datasets":
            return len(load_datasets_folder(path, split))
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
            csv.field_size_limit(CSV_FIELD_LIMIT)
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


def _check_columns(path: Path, columns: list[str], preds: list[str], text_field: str) -> None:
    clash = [c for c in preds if c in columns]
    if clash:
        raise BatchError(_clash_message(path, clash))
    if text_field not in columns:
        raise BatchError(f"{path} has no {text_field!r} column (columns: {', '.join(columns)}); "
                         "pass --text-field with the column that holds the text")


def inspect_input(path: Path, fmt: str, text_field: str, split: str | None = None) -> InputInfo:
    """Refuse inputs that cannot be labelled as asked: prediction columns already there, no text column."""
    preds = prediction_columns()
    if fmt == "datasets":
        try:
            ds = load_datasets_folder(path, split)
        except ValueError as exc:
            raise BatchError(str(exc)) from None
        columns = list(ds.column_names)
        _check_columns(path, columns, preds, text_field)
        return InputInfo(columns)
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
        _check_columns(path, columns, preds, text_field)
        if schema is not None:
            import pyarrow as pa

            kind = schema.field(text_field).type
            if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
                raise BatchError(f"{path}: column {text_field!r} holds {kind}, not text; pass --text-field with the "
                                 "column that holds the text")
        return InputInfo(columns, schema, complete=True)

    seen: dict[str, None] = {}
    valid = with_text = 0
    try:
        rows = iter_rows(path, fmt)
        first = next(rows, None)
    except ValueError as exc:  # e.g. a .json file that is not a valid JSON array
        raise BatchError(str(exc)) from None
    for result in ([first] if first else []) + list(_take(rows, PREFLIGHT_ROWS)):
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


def _take(items: Iterator, n: int) -> Iterator:
    for k, item in enumerate(items):
        if k >= n:
            return
        yield item


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

    if fmt is not None and fmt not in ("jsonl", "json", "csv", "parquet", "datasets"):
        raise BatchError(f"unknown --format {fmt!r}; choose jsonl, csv or parquet")
    in_fmt = one(input_path, ("jsonl", "json", "csv", "parquet", "datasets"))
    out_fmt = one(output, OUTPUT_FORMATS)
    if output.suffix == ".gz":
        raise BatchError(f"{output}: compressed output is not supported; write {output.with_suffix('')} and "
                         "compress it afterwards")
    return in_fmt, out_fmt
