"""Asyncio micro-batcher: concurrent requests share model calls, and cost is counted in tokens.

Each request arrives with the cost of each of its texts (tokens over all its windows; 1 per text when the caller
gives none). Requests wait in a queue bounded twice: ``queue_size`` texts and ``queue_tokens`` tokens; a request
that would overflow either is refused at once (``QueueFull`` -> 429). With a split, a request may instead be admitted
on an upper bound of its tokens (``reserve``) before its texts are tokenised, so a refusal costs no tokenising and
each admitted request is tokenised once (``submit``).

What is scheduled: whole texts (``predict`` gets texts and returns one result per text), or, with a ``split`` (the
service's transformers: ``WindowWork``), *windows*: each text is split into its model windows, each costing its
tokens, the windows are scheduled like separate items, and a text's result is made (``split.combine``, on the model
thread) from its windows' outputs once all of them are scored. A long text is then spread over many model calls,
and a model call is never longer than one small batch of windows.

One collector task forms batches of at most ``max_batch_size`` items (texts or windows) and ``max_batch_tokens``
tokens (a single item over the token budget runs alone) and runs ``predict`` on each in ONE worker thread (the model
is never called concurrently; the event loop stays free to accept and parse requests). A batch closes when full or
``max_wait_ms`` after its oldest waiting request arrived. Items are taken *fairly*, not first come first served: the
next item always comes from the waiting request that will have had the fewest tokens computed once that item is done
(ties: the older request). With ``similar_length``, a batch led by a short item takes no item more than that many
times as long (a short post is not made to wait for long windows padded into its model call). A large request is
therefore spread over many small batches, and a one-post request that arrives while sixteen worst-case requests are
being worked through leads the very next batch: it waits for the batch being computed (at most
``max_batch_tokens`` tokens; with windows, one model chunk) and its own short one, not for everything queued before
it, nor for the rest of a long text.

A request whose caller gave up (timeout, disconnect: its future is cancelled) is dropped between batches; and when
every request of the batch being computed has gone, the predictor stops between its model chunks
(``serving.predictor.stop_when``), so a long text nobody waits for costs at most one more chunk. Sorting a batch by
length (to cut padding) and splitting it into model chunks is the predictor's job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from serving.predictor import Abandoned, Reply, stop_when

log = logging.getLogger("counterpoint.batcher")


class QueueFull(Exception):
    """The queue has no room for this request."""


class BatcherStopped(Exception):
    """The batcher is not running (starting up or shutting down)."""


class Split(Protocol):
    """How texts are cut into separately scheduled units, and put back together."""

    def split(self, items: list) -> list[tuple[Any, list[tuple[Any, int]]]]:
        """Per item: what ``combine`` needs of it, and its units with their token costs (at least one unit)."""

    def combine(self, key: Any, outputs: list) -> Any:
        """An item's result from its units' outputs (in unit order); runs on the model thread."""

    def combine_many(self, keys: list, outputs: list[list]) -> list:
        """Optional: ``combine`` of several items at once (the items whose last unit was in one model call), in order;
        a split without it is combined item by item."""


class WindowWork:
    """Window-level scheduling for a transformer predictor (``text_windows``, ``score_windows``,
    ``predict_windows``): each text (or ``Reply``) is cut into its model windows, each costing its tokens; ``score``
    is the batcher's model call; a text's prediction is ``predict_windows`` on its windows' logits: what
    ``predictor.predict(texts, profile, contexts)`` gives, up to int8 batch noise (about 1e-3)."""

    #: A batch led by a short window (a short post) takes no window more than twice as long.
    SIMILAR_LENGTH = 2.0

    def __init__(self, predictor, profile=None):
        self.predictor = predictor
        self.profile = profile

    @staticmethod
    def supports(predictor) -> bool:
        return all(callable(getattr(predictor, name, None))
                   for name in ("text_windows", "score_windows", "predict_windows"))

    def chunk_tokens(self, model_batch_size: int) -> int:
        """Tokens of one full model chunk: ``model_batch_size`` windows of ``max_length`` tokens."""
        return max(1, int(model_batch_size)) * int(getattr(self.predictor, "max_length", 128))

    def split(self, items: list) -> list[tuple[tuple[str, bool], list[tuple[list[int], int]]]]:
        texts = [i.text if isinstance(i, Reply) else i for i in items]
        contexts = ([i.context if isinstance(i, Reply) else None for i in items]
                    if any(isinstance(i, Reply) for i in items) else None)
        norm, windows = self.predictor.text_windows(texts, contexts)
        # The key says whether the text was read with a parent (a blended model leaves those to the transformer).
        with_parent = [bool(contexts and contexts[k] and str(contexts[k]).strip()) for k in range(len(norm))]
        return [((text, parent), [(w, len(w)) for w in ws]) for text, parent, ws in zip(norm, with_parent, windows)]

    def score(self, windows: list[list[int]]) -> np.ndarray:
        return self.predictor.score_windows(windows)

    def combine(self, key: tuple[str, bool], outputs: list):
        return self.combine_many([key], [outputs])[0]

    def combine_many(self, keys: list[tuple[str, bool]], outputs: list[list]):
        # One call for every text finished by a model call: the linear blend (serving/linear_arrays.py) scores a
        # batch of texts for about a tenth of the cost per text of one-text calls (0.15 vs 1.6 ms per real post).
        if not keys:
            return []
        return self.predictor.predict_windows([text for text, _ in keys], [np.stack(o) for o in outputs],
                                              self.profile, [parent for _, parent in keys])


#: Requests of at most this many characters are split on the event loop (tokenising them takes microseconds).
INLINE_SPLIT_CHARS = 2000


def _chars(item) -> int:
    if isinstance(item, Reply):
        return len(item.text) + len(item.context or "")
    return len(item) if isinstance(item, str) else INLINE_SPLIT_CHARS + 1


@dataclass(eq=False)
class _Job:
    keys: list                 # per text: what combine needs (the text itself without a split)
    units: list                # every unit of every text, text by text
    costs: list[int]           # per unit
    text_of: list[int]         # per unit: its text
    first: list[int]           # per text: its first unit
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)
    results: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    next: int = 0              # index of the next unit to schedule
    scheduled_texts: int = 0   # texts whose every unit is scheduled
    finished: int = 0          # texts with a result
    served: int = 0            # tokens scheduled so far (the fairness key)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.keys)
        self.outputs = [None] * len(self.units)

    @property
    def waiting(self) -> bool:
        return self.next < len(self.units)

    def pending_cost(self) -> int:
        return sum(self.costs[self.next:])

    def is_last(self, k: int) -> bool:
        """Unit ``k`` is its text's last."""
        return k + 1 == len(self.units) or self.text_of[k + 1] != self.text_of[k]


def _job(plan: list[tuple[Any, list[tuple[Any, int]]]], future: asyncio.Future) -> _Job:
    keys, units, costs, text_of, first = [], [], [], [], []
    for t, (key, parts) in enumerate(plan):
        if not parts:
            raise ValueError(f"text {t} was split into no units")
        keys.append(key)
        first.append(len(units))
        for unit, cost in parts:
            units.append(unit)
            costs.append(max(1, int(cost)))
            text_of.append(t)
    return _Job(keys, units, costs, text_of, first, future)


@dataclass
class BatchStats:
    """What the batcher reports to metrics after each batch."""

    texts: int
    requests: int
    seconds: float
    tokens: int = 0
    #: Units in the batch: windows under window scheduling, else the texts.
    units: int = 0


class MicroBatcher:
    def __init__(self, predict: Callable[[list], Sequence], *, max_batch_size: int = 32, max_wait_ms: float = 1.0,
                 queue_size: int = 1024, max_batch_tokens: int | None = None, queue_tokens: int | None = None,
                 on_batch: Callable[[BatchStats, list], None] | None = None,
                 on_queue_depth: Callable[[int], None] | None = None, split: Split | None = None,
                 similar_length: float | None = None):
        self._predict = predict
        self._split = split
        self.similar_length = similar_length
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.queue_tokens = queue_tokens
        self._on_batch = on_batch
        self._on_queue_depth = on_queue_depth
        self._jobs: list[_Job] = []       # requests with units not yet scheduled, oldest first
        self._pending_texts = 0
        self._pending_tokens = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0
        #: Model calls stopped between chunks because every request in them had gone.
        self.abandoned_batches = 0
        #: Texts with units dropped because their request was given up before those units reached the model.
        self.dropped_texts = 0
        #: Units (windows; texts without a split) dropped so.
        self.dropped_units = 0

    # -- life cycle -------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def scheduling(self) -> str:
        """``windows`` (texts split into separately scheduled units) or ``texts``."""
        return "texts" if self._split is None else "windows"

    @property
    def depth(self) -> int:
        """Texts waiting for the model (not counting the batch being run)."""
        return self._pending_texts

    @property
    def depth_tokens(self) -> int:
        """Tokens waiting for the model (not counting the batch being run)."""
        return self._pending_tokens

    async def start(self) -> None:
        if self.running:
            return
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="counterpoint-model")
        self._task = asyncio.create_task(self._collect(), name="counterpoint-batcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Waited for, not awaited: a CancelledError raised here would tie this frame, the task and the
            # collector's frames (and so the model) into a reference cycle that outlives a hot swap.
            await asyncio.wait([task])
        for job in self._jobs:
            if not job.future.done():
                job.future.set_exception(BatcherStopped("the service is shutting down"))
        self._jobs.clear()
        self._pending_texts = self._pending_tokens = 0
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- requests ---------------------------------------------------------------------------------------------
    def _admit(self, texts: int, tokens: int) -> None:
        if self._pending_texts + texts > self.queue_size:
            raise QueueFull(f"the queue is full ({self._pending_texts} of {self.queue_size} texts waiting)")
        if self.queue_tokens is not None and self._pending_tokens + tokens > self.queue_tokens:
            raise QueueFull(f"the queue is full ({self._pending_tokens:,} of {self.queue_tokens:,} tokens waiting; "
                            f"this request needs {tokens:,})")

    async def submit(self, texts: Sequence, costs: Sequence[int] | None = None, *, reserve: int | None = None,
                     check: Callable[[list], None] | None = None) -> list:
        """Results for ``texts`` (in order); ``costs``: tokens per text (default 1 each; with a split, the units'
        own costs count once the texts are split, and ``costs`` only serve to refuse early).

        With a split, ``reserve`` (an upper bound on the request's tokens, known before tokenising) admits the
        request *before* it is split: the bound is held in the queue while the texts are tokenised, so concurrent
        requests see it, and is then replaced by the exact cost (no larger, so no second refusal): a request
        refused for room costs no tokenising, and the queue never holds more than ``queue_tokens``. Without it the
        texts are split first and admitted on their exact cost. ``check(plan)`` sees the split plan before anything
        is queued (e.g. per-text window limits) and may raise to refuse the request."""
        if not self.running:
            raise BatcherStopped("the model is not ready yet")
        if not texts:
            return []
        costs = [max(1, int(c)) for c in costs] if costs is not None else [1] * len(texts)
        if len(costs) != len(texts):
            raise ValueError("one cost per text")
        early = self._split is not None and reserve is not None
        reserved = max(int(reserve), sum(costs)) if early else sum(costs)
        self._admit(len(texts), reserved)
        if self._split is None:
            plan = [(text, [(text, cost)]) for text, cost in zip(texts, costs)]
        else:
            if early:  # hold the room while tokenising (released below, replaced by the exact cost)
                self._pending_texts += len(texts)
                self._pending_tokens += reserved
            try:
                if sum(map(_chars, texts)) <= INLINE_SPLIT_CHARS:  # a short post: microseconds, no thread hop
                    plan = self._split.split(list(texts))
                else:
                    # Tokenising long texts takes milliseconds: off the event loop (and off the model thread).
                    plan = await asyncio.to_thread(self._split.split, list(texts))
                if check is not None:
                    check(plan)
            finally:
                if early:
                    self._pending_texts -= len(texts)
                    self._pending_tokens -= reserved
            if not self.running:
                raise BatcherStopped("the service is shutting down")
        job = _job(plan, asyncio.get_running_loop().create_future())
        total = sum(job.costs)
        if self._split is not None and (not early or total > reserved):
            self._admit(len(texts), total)  # again: others may have queued while this request was split
        self._jobs.append(job)
        self._pending_texts += len(texts)
        self._pending_tokens += total
        self._report_depth()
        self._wakeup.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            job.future.cancel()  # the collector drops what it has not scheduled yet
            self._drop_given_up()
            raise

    # -- internals --------------------------------------------------------------------------------------------
    def _report_depth(self) -> None:
        if self._on_queue_depth is not None:
            self._on_queue_depth(self._pending_texts)

    def _forget(self, job: _Job) -> None:
        """Take a job's unscheduled units out of the queue counts."""
        self._pending_texts -= len(job.keys) - job.scheduled_texts
        self._pending_tokens -= job.pending_cost()

    def _drop_given_up(self) -> None:
        keep = []
        for job in self._jobs:
            if job.future.done():
                self.dropped_texts += len(job.keys) - job.scheduled_texts
                self.dropped_units += len(job.units) - job.next
                self._forget(job)
                job.next, job.scheduled_texts = len(job.units), len(job.keys)
            elif job.waiting:
                keep.append(job)
        self._jobs = keep
        self._report_depth()

    def _take(self, limit_units: int, limit_tokens: int | None, lead: int | None) -> list[tuple[_Job, int]]:
        """Pick units fairly: each next unit from the waiting job that will have had the fewest tokens computed once
        this unit is done (so a new short request goes before a new long one; ties: the older job). ``lead``: the
        cost of the batch's first unit (None: the batch is empty, so one unit over ``limit_tokens`` may still go,
        alone); with ``similar_length``, a unit longer than that many leads opens the next batch."""
        picked: list[tuple[_Job, int]] = []
        tokens = 0
        first = lead is None
        while len(picked) < limit_units:
            candidates = [j for j in self._jobs if j.waiting and not j.future.done()]
            if not candidates:
                break
            job = min(candidates, key=lambda j: (j.served + j.costs[j.next], j.enqueued))
            k = job.next
            cost = job.costs[k]
            if (picked or not first) and limit_tokens is not None and tokens + cost > limit_tokens:
                break  # it opens the next batch
            if lead is None:
                lead = cost
            elif self.similar_length is not None and cost > lead * self.similar_length:
                break  # much longer than the batch's first unit: it opens the next batch
            picked.append((job, k))
            job.next += 1
            job.served += cost
            tokens += cost
            self._pending_tokens -= cost
            if job.is_last(k):
                job.scheduled_texts += 1
                self._pending_texts -= 1
        self._jobs = [j for j in self._jobs if j.waiting]
        return picked

    async def _next_batch(self) -> list[tuple[_Job, int]]:
        while True:
            self._drop_given_up()
            if self._jobs:
                break
            self._wakeup.clear()
            await self._wakeup.wait()
        deadline = min(j.enqueued for j in self._jobs) + self.max_wait
        batch: list[tuple[_Job, int]] = []
        tokens = 0
        while True:
            budget = None if self.max_batch_tokens is None else max(self.max_batch_tokens - tokens, 0)
            lead = batch[0][0].costs[batch[0][1]] if batch else None
            more = self._take(self.max_batch_size - len(batch), budget, lead)
            batch += more
            tokens += sum(job.costs[k] for job, k in more)
            full = len(batch) >= self.max_batch_size or (
                self.max_batch_tokens is not None and tokens >= self.max_batch_tokens)
            if full or any(j.waiting for j in self._jobs):  # full, or the next unit would not fit
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                break
            self._drop_given_up()
        self._report_depth()
        return batch

    def _run(self, batch: list[tuple[_Job, int]]) -> list[tuple[_Job, int, Any]]:
        """The model call (on the model thread), stoppable between chunks once every request in it has gone; then
        the result of each text whose last unit this was: ``(job, text, result)``."""
        with stop_when(lambda: all(job.future.done() for job, _ in batch)):
            outputs = self._predict([job.units[k] for job, k in batch])
        if len(outputs) != len(batch):
            raise RuntimeError(f"the model returned {len(outputs)} outputs for {len(batch)} inputs")
        finished = []
        for (job, k), output in zip(batch, outputs):
            job.outputs[k] = output
            if not job.is_last(k) or job.future.done():
                continue
            t = job.text_of[k]
            parts = job.outputs[job.first[t]:k + 1]
            job.outputs[job.first[t]:k + 1] = [None] * len(parts)
            finished.append((job, t, parts))
        if self._split is None:
            return [(job, t, parts[0]) for job, t, parts in finished]
        combine_many = getattr(self._split, "combine_many", None)
        if combine_many is None:
            return [(job, t, self._split.combine(job.keys[t], parts)) for job, t, parts in finished]
        results = combine_many([job.keys[t] for job, t, _ in finished], [parts for _, _, parts in finished])
        return [(job, t, result) for (job, t, _), result in zip(finished, results)]

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            batch = [(job, k) for job, k in batch if not job.future.done()]
            if not batch:
                continue
            texts = len({(id(job), job.text_of[k]) for job, k in batch})
            started = time.perf_counter()
            try:
                done = await loop.run_in_executor(self._executor, self._run, batch)
            except Abandoned:
                self.abandoned_batches += 1
                log.info("stopped a model call of %d units: every request in it had gone", len(batch))
                self._drop_given_up()
                continue
            except asyncio.CancelledError:
                for job, _ in batch:
                    if not job.future.done():
                        job.future.set_exception(BatcherStopped("the service is shutting down"))
                raise
            except Exception as exc:  # the model failed on this batch: every request in it gets the error
                log.error("model call failed on a batch of %d units: %s", len(batch), type(exc).__name__,
                          exc_info=exc)
                for job, _ in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                self._drop_given_up()
                continue
            seconds = time.perf_counter() - started
            self.batches += 1
            requests = {id(job) for job, _ in batch}
            for job, t, result in done:
                job.results[t] = result
                job.finished += 1
                if job.finished == len(job.keys) and not job.future.done():
                    job.future.set_result(job.results)
            if self._on_batch is not None:
                try:
                    self._on_batch(BatchStats(texts=texts, requests=len(requests), seconds=seconds,
                                              tokens=sum(job.costs[k] for job, k in batch), units=len(batch)),
                                   [result for _, _, result in done])
                except Exception as exc:  # metrics must never stop the batcher
                    log.warning("batch callback failed: %s", exc)
