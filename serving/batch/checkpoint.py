"""Crash safety of a labelling job: part files written atomically, the checkpoint that counts them, resuming, and
joining the parts into the output at the end. Imports ``serving.batch.records`` only."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from serving import labels as L
from serving.tabular import conform_table, csv_cell, json_line, rows_to_table, unify_schemas

from serving.batch.records import (FLAGGED, MODEL_VERSION, PRED_LABEL, PRED_SUBTYPE, REVIEW, BatchError, InputInfo, Outcome,
                                   prediction_columns, score_column)

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


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
            pa.field(FLAGGED, pa.bool_()), pa.field(MODEL_VERSION, pa.string()), pa.field(REVIEW, pa.bool_()),
            pa.field(PRED_SUBTYPE, pa.string())]


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
