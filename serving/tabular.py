"""Streaming readers for the row files Counterpoint reads: JSONL, CSV, Parquet and Hugging Face ``datasets`` folders.

Every reader yields ``RowResult(line, row, error)``: a bad row (invalid JSON, undecodable bytes, not an object)
comes back with ``error`` set and the reader goes on, so one bad line in a million neither stops a job nor is
lost. ``line`` is the 1-based line number for text formats and the 1-based row number otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

FORMATS = ("jsonl", "csv", "parquet", "datasets")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet",
               ".pq": "parquet"}


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
        if (path / "dataset_info.json").exists() or list(path.glob("*.arrow")):
            return "datasets"
        raise ValueError(f"{path} is a folder but not a Hugging Face `datasets` folder (no .arrow files)")
    suffixes = path.suffixes
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1].lower() in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1].lower()]
    raise ValueError(f"cannot tell the format of {path} from its extension; use .jsonl, .csv or .parquet "
                     "(or pass --format)")


def iter_rows(path: str | Path, fmt: str | None = None, *, start: int = 0) -> Iterator[RowResult]:
    """Stream the rows of a file; ``start`` skips that many rows (lines for JSONL) first (for resuming)."""
    path = Path(path)
    fmt = detect_format(path, fmt)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    reader = {"jsonl": _iter_jsonl, "csv": _iter_csv, "parquet": _iter_parquet, "datasets": _iter_datasets}[fmt]
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


def _iter_csv(path: Path, start: int) -> Iterator[RowResult]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with _open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
        reader = csv.DictReader(text)
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
                yield RowResult(n, None, f"malformed CSV: {exc}")
                continue
            n += 1
            if n <= start:
                continue
            if None in row:  # more cells than header columns
                extra = row.pop(None)
                yield RowResult(n, None, f"row has {len(extra)} more cell(s) than the header")
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


def _iter_datasets(path: Path, start: int) -> Iterator[RowResult]:
    import pyarrow as pa

    files = sorted(path.glob("*.arrow"))
    if not files:
        raise ValueError(f"{path} has no .arrow files; pass the folder of one split (e.g. {path}/train)")
    n = 0
    for file in files:
        with pa.memory_map(str(file)) as source:
            try:
                reader = pa.ipc.open_stream(source)
            except pa.ArrowInvalid:
                reader = pa.ipc.open_file(source)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            else:
                batches = iter(reader)
            for batch in batches:
                for row in batch.to_pylist():
                    n += 1
                    if n > start:
                        yield RowResult(n, row)
