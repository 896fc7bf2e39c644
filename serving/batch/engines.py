"""The local engine of a labelling job: rows read and checked, texts labelled in batches by the predictor.
(The Ray engine, ``serving.batch.ray_engine``, reuses ``read_checked`` and ``predict_records``.) Imports
``serving.batch.records`` only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from serving.tabular import RowResult, iter_rows

from serving.batch.records import BatchError, Outcome, chunked, record_of, validate_row

log = logging.getLogger(__name__)


#: Texts in a row the model may fail on, each alone, before the job concludes that the model itself is broken.
MAX_CONSECUTIVE_FAILURES = 3


def read_checked(input_path: Path, fmt: str, start: int, text_field: str, max_chars: int | None = None,
                 split: str | None = None) -> Iterator[tuple[RowResult, str | None, str | None]]:
    """The input's rows from ``start`` with ``validate_row``'s verdict: ``(result, text, error)``."""
    for result in iter_rows(input_path, fmt, start=start, undecodable="row", split=split):
        text, error = validate_row(result, text_field, max_chars)
        yield result, text, error


class FailureStreak:
    """Texts in a row the model failed on, each alone, across the batches of a job (one per engine worker)."""

    def __init__(self) -> None:
        self.n = 0


class ModelFailure(BatchError):
    """The model failed on several texts in a row, each alone: the model (memory, a broken session) is at fault,
    not the rows. The chunk is not written, so ``--resume`` retries it."""


def predict_records(predictor, texts: Sequence[str], model_version: str,
                    profile: str | None = None, max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES,
                    streak: FailureStreak | None = None, contexts: Sequence[str | None] | None = None
                    ) -> list[dict[str, Any] | str]:
    """Prediction columns for each text, or an error reason for a text the model failed on.

    ``profile``: the threshold profile of the model folder (``None``: its default). A failure of the whole batch
    is retried one text at a time, so one bad row cannot take its batch mates, or the job, down with it. But when
    ``max_consecutive_failures`` texts in a row fail alone too (or the batch itself ran out of memory), the model
    is broken rather than the rows: ``ModelFailure`` is raised, and nothing of the chunk is recorded as a row
    error, so ``--resume`` tries those rows again once the cause is fixed.
    """
    def run(batch: list[str], ctx: list[str | None] | None):
        if ctx is not None and any(ctx):
            return predictor.predict(batch, profile, contexts=ctx)
        return predictor.predict(batch, profile) if profile else predictor.predict(batch)

    streak = streak if streak is not None else FailureStreak()
    contexts = list(contexts) if contexts is not None else None
    try:
        preds = run(list(texts), contexts)
    except Exception as batch_exc:  # noqa: BLE001 - isolate the row, keep the job going
        out: list[dict[str, Any] | str] = []
        for k, text in enumerate(texts):
            try:
                p = run([text], [contexts[k]] if contexts is not None else None)[0]
                out.append(record_of(p, model_version))
                streak.n = 0
            except Exception as exc:  # noqa: BLE001
                streak.n += 1
                if isinstance(exc, MemoryError) or streak.n >= max_consecutive_failures:
                    raise ModelFailure(
                        f"the model failed on {streak.n} text(s) in a row, each on its own ({type(exc).__name__}; the "
                        f"batch of {len(texts)} failed with {type(batch_exc).__name__}): the model, not the rows, "
                        "is failing. Nothing of this chunk was written; fix the cause (memory, the model folder) "
                        "and run the same command with --resume") from exc
                log.warning("model failed on one row: %s", type(exc).__name__)
                out.append(f"the model failed on this row ({type(exc).__name__})")
        return out
    streak.n = 0
    return [record_of(p, model_version) for p in preds]


def local_chunks(input_path: Path, fmt: str, start: int, *, predictor, text_field: str, batch_size: int,
                 chunk_rows: int, model_version: str, profile: str | None = None, max_chars: int | None = None,
                 split: str | None = None, context_field: str | None = None,
                 tick: Callable[[int], None] = lambda n: None) -> Iterator[list[Outcome]]:
    """Labelled chunks of ``chunk_rows`` input rows, labelled ``batch_size`` texts per ``predict`` call, shortest
    texts first within a chunk (rows keep their input order in the output);
    ``tick(n)`` reports rows as they are done (for the progress bar). ``context_field``: the column holding each
    row's parent post (null or missing: none; any other non-string is a row error)."""
    streak = FailureStreak()
    for chunk in chunked(read_checked(input_path, fmt, start, text_field, max_chars, split), chunk_rows):
        outcomes = [Outcome(result.line, result.row, error=error) for result, _, error in chunk]
        parents: dict[int, str | None] = {}
        if context_field:
            for k, (result, _, error) in enumerate(chunk):
                value = (result.row or {}).get(context_field) if error is None else None
                if value is not None and not isinstance(value, str):
                    outcomes[k].error = f"{context_field!r} is not a string (got {type(value).__name__})"
                elif isinstance(value, str) and "\x00" in value:
                    outcomes[k].error = f"{context_field!r} contains a NUL character"
                else:
                    parents[k] = value if value and value.strip() else None
        todo = [(k, text) for k, (_, text, error) in enumerate(chunk) if error is None and outcomes[k].error is None]
        tick(len(chunk) - len(todo))
        # Shortest first: each predict call then holds texts of about one length, and the windows the model pads
        # together are alike (bench/batch_throughput.py: 189 -> 235 posts/s; docs/EVALUATION.md). Results go back by
        # index.
        todo.sort(key=lambda kt: len(kt[1]) + len(parents.get(kt[0]) or ""))
        for batch in chunked(todo, batch_size):
            records = predict_records(predictor, [text for _, text in batch], model_version, profile,
                                      streak=streak,
                                      contexts=[parents.get(k) for k, _ in batch] if context_field else None)
            for (k, _), record in zip(batch, records):
                if isinstance(record, str):
                    outcomes[k].error = record
                else:
                    outcomes[k].pred = record
            tick(len(batch))
        yield outcomes
