"""The Ray engine of batch labelling (``counterpoint label --engine ray``): the same job as a Ray Data pipeline.

    read (one streaming read task: the input's rows, checked by ``serving.batch.records.validate_row``)
      -> map_batches(actor pool; each actor loads the model once and calls ``Predictor.predict``)
      -> the driver, which writes parts, checkpoint and output exactly as the local engine does.

Only line numbers and texts travel to the actors and only line numbers and prediction columns come back; the driver
reads the input itself, in step with the predictions (Ray Data keeps their order), so every input column is carried
through with its exact type and the output is the single file the contract asks for. Resume, errors and the summary
are the local engine's.

Ray is optional (``pip install 'counterpoint[ray]'``) and imported only here, only when this engine runs. Without
``--ray-address`` a local Ray is started (and stopped afterwards); with one, the job joins that cluster. On a cluster,
the input file and the model folder must be readable at the same paths on the workers (a shared filesystem), and
Counterpoint must be installed there; each actor checks that the model it loaded has the driver's SHA-256.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from serving import labels as L
from serving.batch.engines import FailureStreak, predict_records, read_checked
from serving.batch.records import (FLAGGED, PRED_LABEL, PRED_SUBTYPE, REVIEW, BatchError, Outcome, chunked, prediction_record,
                                   score_column)

INSTALL_HINT = "the ray engine needs Ray Data, which is not installed: pip install 'counterpoint[ray]'"
#: Rows per block the read task hands to the actor pool.
READ_BLOCK_ROWS = 1024


def require_ray() -> None:
    """Fail early, before a job creates anything, when Ray Data is missing."""
    _import_ray()


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the `data` extra
    except ImportError as exc:
        raise BatchError(INSTALL_HINT) from exc
    return ray


_classes: dict[str, Any] = {}


def _pipeline_classes():
    """The datasource and actor classes, built on first use so that importing this module needs no Ray."""
    if _classes:
        return _classes["source"], _classes["labeller"]
    import pyarrow as pa
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class InputTextsDatasource(Datasource):
        """One read task that streams the input from row ``start``: ``line`` and ``text`` of the rows to label."""

        def __init__(self, path: str, fmt: str, start: int, text_field: str, block_rows: int,
                     max_chars: int | None = None, split: str | None = None):
            super().__init__()
            self.path, self.fmt, self.start, self.text_field, self.block_rows = path, fmt, start, text_field, block_rows
            self.max_chars, self.split = max_chars, split

        def estimate_inmemory_data_size(self):
            return None

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            path, fmt, start, text_field, block_rows = (self.path, self.fmt, self.start, self.text_field,
                                                        self.block_rows)
            max_chars, split = self.max_chars, self.split

            def read():
                from serving.batch.engines import read_checked as checked

                for chunk in chunked((r for r in checked(Path(path), fmt, start, text_field, max_chars, split)
                                      if r[2] is None),
                                     block_rows):
                    yield pa.table({"line": pa.array([r.line for r, _, _ in chunk], pa.int64()),
                                    "text": pa.array([t for _, t, _ in chunk], pa.string())})

            meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=[path])
            return [ReadTask(read, meta)]

    class Labeller:
        """An actor of the pool: loads the model once, labels batches of texts."""

        def __init__(self, model: str, backend: str, threads: int, model_sha256: str, model_version: str,
                     profile: str | None = None):
            from serving.predictor import load_predictor

            self.predictor = load_predictor(model, backend, threads=threads)
            if self.predictor.meta.sha256() != model_sha256:
                raise RuntimeError(f"the model at {model} on this worker is not the driver's (SHA-256 "
                                   f"{self.predictor.meta.sha256()[:12]} != {model_sha256[:12]})")
            self.model_version, self.profile = model_version, profile
            self.streak = FailureStreak()

        def __call__(self, batch):
            records = predict_records(self.predictor, batch.column("text").to_pylist(), self.model_version,
                                      self.profile, streak=self.streak)
            ok = [r if isinstance(r, dict) else None for r in records]
            columns = {"line": batch.column("line"),
                       PRED_LABEL: pa.array([r and r[PRED_LABEL] for r in ok], pa.string()),
                       **{score_column(n): pa.array([r and r[score_column(n)] for r in ok], pa.float64())
                          for n in L.LABELS},
                       FLAGGED: pa.array([r and r[FLAGGED] for r in ok], pa.bool_()),
                       REVIEW: pa.array([r and r[REVIEW] for r in ok], pa.bool_()),
                       PRED_SUBTYPE: pa.array([r and r[PRED_SUBTYPE] for r in ok], pa.string()),
                       "error": pa.array([r if isinstance(r, str) else None for r in records], pa.string())}
            return pa.table(columns)

    _classes["source"], _classes["labeller"] = InputTextsDatasource, Labeller
    return InputTextsDatasource, Labeller


def ray_chunks(input_path: Path, fmt: str, start: int, *, model: Path, backend: str, text_field: str,
               batch_size: int, chunk_rows: int, model_version: str, model_sha256: str,
               ray_address: str | None = None, max_actors: int | None = None, cpus_per_actor: int = 1,
               tick: Callable[[int], None] = lambda n: None, profile: str | None = None,
               max_chars: int | None = None, split: str | None = None) -> Iterator[list[Outcome]]:
    """Labelled chunks of ``chunk_rows`` input rows, like ``serving.batch.engines.local_chunks``, labelled by Ray."""
    ray = _import_ray()
    source_cls, labeller_cls = _pipeline_classes()
    started_here = not ray.is_initialized()
    if started_here:
        env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM") if k in os.environ}
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": env} if env else None)
    try:
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.ERROR)  # not a word per operator; errors still raise
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # predictions come back in input order
        ctx.enable_progress_bars = False  # the job has its own bar
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = max(1, min(max_actors or cpus, cpus // cpus_per_actor or 1))
        ds = ray.data.read_datasource(
            source_cls(str(Path(input_path).resolve()), fmt, start, text_field, READ_BLOCK_ROWS, max_chars, split),
            num_cpus=0.25)  # reading is light: leave the CPUs to the model actors
        ds = ds.map_batches(labeller_cls, batch_size=batch_size, batch_format="pyarrow",
                            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors), num_cpus=cpus_per_actor,
                            fn_constructor_kwargs={"model": str(Path(model).resolve()), "backend": backend,
                                                   "threads": cpus_per_actor, "model_sha256": model_sha256,
                                                   "model_version": model_version, "profile": profile})
        predictions = _predictions(ds, model_version)
        for chunk in chunked(read_checked(Path(input_path), fmt, start, text_field, max_chars, split), chunk_rows):
            outcomes = []
            for result, _, error in chunk:
                outcome = Outcome(result.line, result.row, error=error)
                if error is None:
                    line, record = next(predictions, (None, None))
                    if line != result.line:
                        raise BatchError(f"the Ray pipeline returned row {line} where row {result.line} was "
                                         "expected; no output was written for this chunk. Rerun with --resume")
                    if isinstance(record, str):
                        outcome.error = record
                    else:
                        outcome.pred = record
                outcomes.append(outcome)
                if len(outcomes) % 64 == 0:
                    tick(64)
            tick(len(outcomes) % 64)
            yield outcomes
        extra = next(predictions, None)
        if extra is not None:
            raise BatchError(f"the Ray pipeline returned a prediction for row {extra[0]}, which the driver did not "
                             "read; the input may have changed during the job")
    except BatchError:
        raise
    except Exception as exc:  # Ray wraps worker errors in its own types; say what failed in one message
        raise BatchError(f"the Ray pipeline failed: {_first_line(exc)}") from exc
    finally:
        if started_here:
            ray.shutdown()


def _predictions(ds, model_version: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        cols = {name: batch.column(name).to_pylist() for name in batch.column_names}
        for k, line in enumerate(cols["line"]):
            if cols["error"][k] is not None:
                yield line, cols["error"][k]
                continue
            scores = {n: cols[score_column(n)][k] for n in L.LABELS}
            yield line, prediction_record(cols[PRED_LABEL][k], scores, cols[FLAGGED][k], model_version,
                                          cols[REVIEW][k], cols[PRED_SUBTYPE][k])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    cause = exc
    while cause.__cause__ is not None:  # the innermost error says what went wrong
        cause = cause.__cause__
        text = str(cause).strip() or text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else type(exc).__name__
