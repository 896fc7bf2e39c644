"""Streaming readers for the row files Counterpoint reads: JSONL, CSV, Parquet and Hugging Face ``datasets`` folders.

Every reader yields ``RowResult(line, row, error)``: a bad row (invalid JSON, undecodable bytes, not an object)
comes back with ``error`` set and the reader goes on, so one bad line in a million neither stops a job nor is
lost. ``line`` is the 1-based line number for JSONL, the 1-based data row number for CSV (the first row after
the header is 1) and the 1-based row number otherwise.

The second half holds what writers of these formats share: a JSON encoder for values that come out of Parquet
(dates, decimals, bytes), CSV cells, and Arrow tables built from rows whose keys and types vary.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import decimal
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

FORMATS = ("jsonl", "json", "csv", "parquet", "datasets")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet",
               ".pq": "parquet"}
#: Characters one CSV field may hold. A stray quote makes the csv module read on to the next quote, possibly to
#: the end of the file, as one field: past this size that field is reported as a bad row and reading goes on.
CSV_FIELD_LIMIT = 1 << 20
#: Files that mark a Hugging Face ``datasets`` folder (``save_to_disk`` output).
_DATASETS_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")


@dataclass(frozen=True)
class RowResult:
    line: int
    row: dict[str, Any] | None
    error: str | None = None


def detect_format(path: str | Path, fmt: str | None = None) -> str:
    """The file format from ``fmt`` or the extension; a clear error when neither says."""
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    path = Path(path)
    if path.is_dir():
        if any((path / marker).exists() for marker in _DATASETS_MARKERS):
            return "datasets"
        raise ValueError(f"{path} is a folder but not a Hugging Face `datasets` folder (written by "
                         "`save_to_disk`: no dataset_dict.json, dataset_info.json or state.json)")
    suffixes = path.suffixes
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1].lower() in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1].lower()]
    raise ValueError(f"cannot tell the format of {path} from its extension; use .jsonl, .csv or .parquet "
                     "(or pass --format)")


def iter_rows(path: str | Path, fmt: str | None = None, *, start: int = 0,
              undecodable: str = "stop", split: str | None = None) -> Iterator[RowResult]:
    """Stream the rows of a file; ``start`` skips that many rows (lines for JSONL) first (for resuming).

    ``undecodable`` (CSV only): ``"stop"`` ends the file at the first bytes that are not UTF-8, with one error row;
    ``"row"`` reports each row holding such bytes as an error row and reads on (what batch labelling wants).
    ``split``: the split of a ``datasets`` folder that holds several (a ``DatasetDict``).
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if undecodable not in ("stop", "row"):
        raise ValueError(f"undecodable must be 'stop' or 'row', not {undecodable!r}")
    if fmt == "csv":
        yield from _iter_csv(path, start, undecodable)
        return
    if fmt == "datasets":
        yield from _iter_datasets(path, start, split)
        return
    reader = {"jsonl": _iter_jsonl, "json": _iter_json, "parquet": _iter_parquet}[fmt]
    yield from reader(path, start)


def _open_binary(path: Path):
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def _iter_jsonl(path: Path, start: int) -> Iterator[RowResult]:
    with _open_binary(path) as fh:
        for n, raw in enumerate(fh, 1):
            if n <= start:
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RowResult(n, None, f"line is not valid UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            if not line.strip():
                yield RowResult(n, None, "blank line")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RowResult(n, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(obj, dict):
                yield RowResult(n, None, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield RowResult(n, obj)


def _iter_json(path: Path, start: int) -> Iterator[RowResult]:
    """A ``.json`` file: a JSON array of objects (row n = element n), or JSON lines under a .json name."""
    with _open_binary(path) as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if not head.startswith(b"["):
        yield from _iter_jsonl(path, start)
        return
    try:
        with _open_binary(path) as fh:
            rows = json.loads(fh.read().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a valid JSON array ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                         "fix the file or write it as JSON lines (.jsonl)") from None
    except RecursionError:
        raise ValueError(f"{path} nests JSON too deeply to read") from None
    for n, obj in enumerate(rows, 1):
        if n <= start:
            continue
        if not isinstance(obj, dict):
            yield RowResult(n, None, f"expected a JSON object, got {type(obj).__name__}")
            continue
        yield RowResult(n, obj)


_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(value: str) -> bool:
    """True if ``value`` holds lone surrogates: undecodable bytes kept by ``surrogateescape``, or JSON escapes
    such as ``"\\ud800"`` that are not valid Unicode (tokenisers and UTF-8 writers reject both)."""
    return _SURROGATE.search(value) is not None


def csv_duplicates(header: list[str]) -> list[str]:
    """Column names that a CSV header repeats (a dict per row would silently keep only the last of them)."""
    seen: set[str] = set()
    return sorted({name for name in header if name in seen or seen.add(name)})


def _iter_csv(path: Path, start: int, undecodable: str = "stop") -> Iterator[RowResult]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    per_row = undecodable == "row"
    with _open_binary(path) as raw:
        # Per row: bad bytes become lone surrogates (surrogateescape) and the row that holds them is reported.
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape" if per_row else "strict",
                                newline="")
        reader = csv.DictReader(text)
        try:
            dupes = csv_duplicates(reader.fieldnames or [])
        except (UnicodeDecodeError, csv.Error):
            dupes = []
        if dupes:
            raise ValueError(f"{path}: the CSV header names column(s) {', '.join(map(repr, dupes))} more than "
                             "once; rename them so that no column's values are lost")
        n = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                n += 1
                yield RowResult(n, None, f"undecodable bytes ({exc.reason}); the rest of the file cannot be read "
                                         "reliably as UTF-8 CSV")
                return
            except csv.Error as exc:
                n += 1
                if n > start:
                    detail = (f"a field is longer than {CSV_FIELD_LIMIT:,} characters, most likely an unbalanced "
                              "quote that runs on over the following lines (they are part of this error)"
                              if "field limit" in str(exc) else str(exc))
                    yield RowResult(n, None, f"malformed CSV: {detail}")
                continue
            n += 1
            if n <= start:
                continue
            if None in row:  # more cells than header columns
                extra = row.pop(None)
                yield RowResult(n, None, f"row has {len(extra)} more cell(s) than the header")
                continue
            if per_row and any(isinstance(v, str) and has_surrogates(v) for v in (*row.keys(), *row.values())):
                yield RowResult(n, None, "row holds bytes that are not valid UTF-8")
                continue
            yield RowResult(n, dict(row))


def _iter_parquet(path: Path, start: int) -> Iterator[RowResult]:
    import pyarrow.parquet as pq

    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            n += 1
            if n > start:
                yield RowResult(n, row)


def _iter_datasets(path: Path, start: int, split: str | None = None) -> Iterator[RowResult]:
    """A folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``, loaded with the ``datasets``
    library itself (globbing ``*.arrow`` would mix in cache files and ignore an indices mapping)."""
    ds = load_datasets_folder(path, split)
    for offset in range(start, len(ds), 1024):
        batch = ds[offset:min(offset + 1024, len(ds))]
        names = list(batch)
        for k in range(len(batch[names[0]]) if names else 0):
            yield RowResult(offset + k + 1, {name: batch[name][k] for name in names})


def load_datasets_folder(path: Path, split: str | None = None):
    """The ``Dataset`` of a ``save_to_disk`` folder; of a ``DatasetDict``, the ``split`` named (needed when there
    are several)."""
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise ValueError(f"{path} is a Hugging Face `datasets` folder; reading it needs the `datasets` library: "
                         "pip install 'counterpoint[hf-datasets]'") from None
    try:
        ds = load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"{path} cannot be read as a `datasets` folder ({exc}); write it with `save_to_disk`") \
            from None
    if isinstance(ds, DatasetDict):
        splits = list(ds)
        if split is None:
            if len(splits) != 1:
                raise ValueError(f"{path} holds the splits {', '.join(splits)}; choose one with --split (e.g. "
                                 f"--split {splits[0]})")
            split = splits[0]
        if split not in ds:
            raise ValueError(f"{path} has no split {split!r}; its splits are {', '.join(splits)}")
        return ds[split]
    if split is not None:
        raise ValueError(f"{path} holds one dataset without splits; drop --split {split}")
    return ds


# --- writing -----------------------------------------------------------------------------------------------------


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for values that Parquet and Arrow hand back but JSON lacks."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot write a {type(value).__name__} value as JSON")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (JSON has no NaN; bare ``NaN`` breaks strict
    parsers), nested lists and dicts included."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_line(obj: dict[str, Any]) -> str:
    """One JSONL line (with the newline). Non-ASCII stays readable; strings that are not valid Unicode (lone
    surrogates from ``\\ud800``-style escapes) are written back as the escapes they came in as; NaN and infinities
    are written as ``null``, never as bare ``NaN``."""
    try:
        line = json.dumps(obj, ensure_ascii=False, default=json_default, allow_nan=False)
    except ValueError:  # a non-finite float somewhere
        obj = _finite(obj)
        line = json.dumps(obj, ensure_ascii=False, default=json_default, allow_nan=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True, default=json_default, allow_nan=False)
    return line + "\n"


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A value as one CSV cell: strings as they are, null (and NaN) as empty, booleans as true/false, nested values
    as JSON. A string a spreadsheet would run as a formula (it starts with = + - @, tab or carriage return and is
    not a plain number) gets a leading apostrophe, the usual neutralisation of CSV formula injection."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
            return "'" + value
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    return json.dumps(_finite(value), ensure_ascii=False, default=json_default, allow_nan=False)


def _arrow_column(values: list[Any]):
    """An Arrow array for one column; a column whose values do not share a type becomes text (JSON for non-strings)
    rather than failing the write."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, UnicodeEncodeError, OverflowError):
        return pa.array([None if v is None else _safe_text(v if isinstance(v, str) else
                                                           json.dumps(v, default=json_default)) for v in values],
                        pa.string())


def _safe_text(value: str) -> str:
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if has_surrogates(value) else value


def rows_to_table(rows: list[dict[str, Any]], columns: list[str], schema=None):
    """An Arrow table of ``rows`` with ``columns`` in that order (missing keys are null).

    With ``schema`` (e.g. the input Parquet file's schema plus added columns) the values keep those exact types;
    without, each column's type is inferred from all its values, not just the first row's.
    """
    import pyarrow as pa

    if schema is not None:
        return pa.Table.from_pylist(rows, schema=schema)
    return pa.table({name: _arrow_column([row.get(name) for row in rows]) for name in columns})


def unify_schemas(schemas: list, order: list[str] | None = None):
    """One schema for tables written separately (e.g. one per chunk): null columns take the type seen elsewhere,
    integers widen to floats, and a column whose types cannot be reconciled becomes text. ``order`` (optional)
    lists column names that come first, in that order."""
    import pyarrow as pa

    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        names: list[str] = []
        types: dict[str, list] = {}
        for schema in schemas:
            for field in schema:
                if field.name not in types:
                    names.append(field.name)
                    types[field.name] = []
                types[field.name].append(pa.schema([pa.field(field.name, field.type)]))
        fields = []
        for name in names:
            try:
                fields.append(pa.unify_schemas(types[name], promote_options="permissive").field(0))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                fields.append(pa.field(name, pa.string()))
        unified = pa.schema(fields)
    if order:
        first = [unified.field(n) for n in order if n in unified.names]
        rest = [f for f in unified if f.name not in set(order)]
        unified = pa.schema(first + rest, metadata=unified.metadata)
    return unified


def conform_table(table, schema):
    """``table`` with exactly ``schema``'s columns and types: missing columns as nulls, text fallback where a cast
    is impossible (see ``unify_schemas``)."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type == field.type:
            columns.append(column)
            continue
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            columns.append(_arrow_column([None if v is None else v if isinstance(v, str) else
                                          json.dumps(v, default=json_default) for v in column.to_pylist()]))
    return pa.Table.from_arrays(columns, schema=schema)
