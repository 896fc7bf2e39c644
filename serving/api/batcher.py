"""Asyncio micro-batcher: concurrent requests share model calls, and cost is counted in tokens.

Each request arrives with the cost of each of its texts (tokens over all its windows; 1 per text when the caller
gives none). Requests wait in a queue bounded twice: ``queue_size`` texts and ``queue_tokens`` tokens; a request
that would overflow either is refused at once (``QueueFull`` -> 429).

One collector task forms batches of at most ``max_batch_size`` texts and ``max_batch_tokens`` tokens (a single text
over the token budget runs alone) and runs ``predict`` on each in ONE worker thread (the model is never called
concurrently; the event loop stays free to accept and parse requests). A batch closes when full or ``max_wait_ms``
after its oldest waiting request arrived. Texts are taken *fairly*, not first come first served: the next text
always comes from the waiting request that will have had the fewest tokens computed once that text is done (ties:
the older request). A
large request is therefore spread over many small batches, and a one-post request that arrives while sixteen
worst-case requests are being worked through joins the very next batch: it waits for at most one batch of
``max_batch_tokens`` tokens, not for everything queued before it.

A request whose caller gave up (timeout, disconnect: its future is cancelled) is dropped between batches; and when
every request of the batch being computed has gone, the predictor stops between its model chunks
(``serving.predictor.stop_when``), so a long text nobody waits for costs at most one more chunk. Sorting texts by
length (to cut padding) and splitting a batch into model chunks is the predictor's job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

from serving.predictor import Abandoned, stop_when

log = logging.getLogger("counterpoint.batcher")


class QueueFull(Exception):
    """The queue has no room for this request."""


class BatcherStopped(Exception):
    """The batcher is not running (starting up or shutting down)."""


@dataclass(eq=False)
class _Job:
    texts: list[str]
    costs: list[int]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)
    results: list = field(default_factory=list)
    next: int = 0          # index of the next text to schedule
    finished: int = 0      # texts with a result
    served: int = 0        # tokens scheduled so far (the fairness key)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.texts)

    @property
    def waiting(self) -> bool:
        return self.next < len(self.texts)

    def pending_cost(self) -> int:
        return sum(self.costs[self.next:])


@dataclass
class BatchStats:
    """What the batcher reports to metrics after each batch."""

    texts: int
    requests: int
    seconds: float
    tokens: int = 0


class MicroBatcher:
    def __init__(self, predict: Callable[[list[str]], list], *, max_batch_size: int = 32, max_wait_ms: float = 1.0,
                 queue_size: int = 1024, max_batch_tokens: int | None = None, queue_tokens: int | None = None,
                 on_batch: Callable[[BatchStats, list], None] | None = None,
                 on_queue_depth: Callable[[int], None] | None = None):
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.queue_tokens = queue_tokens
        self._on_batch = on_batch
        self._on_queue_depth = on_queue_depth
        self._jobs: list[_Job] = []       # requests with texts not yet scheduled, oldest first
        self._pending_texts = 0
        self._pending_tokens = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0
        #: Model calls stopped between chunks because every request in them had gone.
        self.abandoned_batches = 0
        #: Texts dropped because their request was given up before they reached the model.
        self.dropped_texts = 0

    # -- life cycle -------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

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
            try:
                await task
            except asyncio.CancelledError:
                pass
        for job in self._jobs:
            if not job.future.done():
                job.future.set_exception(BatcherStopped("the service is shutting down"))
        self._jobs.clear()
        self._pending_texts = self._pending_tokens = 0
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- requests ---------------------------------------------------------------------------------------------
    async def submit(self, texts: Sequence[str], costs: Sequence[int] | None = None) -> list:
        """Predictions for ``texts`` (in order); ``costs``: tokens per text (default 1 each)."""
        if not self.running:
            raise BatcherStopped("the model is not ready yet")
        if not texts:
            return []
        costs = [max(1, int(c)) for c in costs] if costs is not None else [1] * len(texts)
        if len(costs) != len(texts):
            raise ValueError("one cost per text")
        total = sum(costs)
        if self._pending_texts + len(texts) > self.queue_size:
            raise QueueFull(f"the queue is full ({self._pending_texts} of {self.queue_size} texts waiting)")
        if self.queue_tokens is not None and self._pending_tokens + total > self.queue_tokens:
            raise QueueFull(f"the queue is full ({self._pending_tokens:,} of {self.queue_tokens:,} tokens waiting; "
                            f"this request needs {total:,})")
        job = _Job(list(texts), costs, asyncio.get_running_loop().create_future())
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
        """Take a job's unscheduled texts out of the queue counts."""
        self._pending_texts -= len(job.texts) - job.next
        self._pending_tokens -= job.pending_cost()

    def _drop_given_up(self) -> None:
        keep = []
        for job in self._jobs:
            if job.future.done():
                self.dropped_texts += len(job.texts) - job.next
                self._forget(job)
                job.next = len(job.texts)
            elif job.waiting:
                keep.append(job)
        self._jobs = keep
        self._report_depth()

    def _take(self, limit_texts: int, limit_tokens: int | None, first: bool) -> list[tuple[_Job, int]]:
        """Pick texts fairly: each next text from the waiting job that will have had the fewest tokens computed once
        this text is done (so a new short request goes before a new long one; ties: the older job). ``first``:
        the batch is empty, so one text over ``limit_tokens`` may still go (alone)."""
        picked: list[tuple[_Job, int]] = []
        tokens = 0
        while len(picked) < limit_texts:
            candidates = [j for j in self._jobs if j.waiting and not j.future.done()]
            if not candidates:
                break
            job = min(candidates, key=lambda j: (j.served + j.costs[j.next], j.enqueued))
            cost = job.costs[job.next]
            if (picked or not first) and limit_tokens is not None and tokens + cost > limit_tokens:
                break  # it opens the next batch
            picked.append((job, job.next))
            job.next += 1
            job.served += cost
            tokens += cost
            self._pending_texts -= 1
            self._pending_tokens -= cost
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
            more = self._take(self.max_batch_size - len(batch), budget, first=not batch)
            batch += more
            tokens += sum(job.costs[i] for job, i in more)
            full = len(batch) >= self.max_batch_size or (
                self.max_batch_tokens is not None and tokens >= self.max_batch_tokens)
            if full or any(j.waiting for j in self._jobs):  # full, or the next text would not fit
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

    def _run(self, texts: list[str], batch: list[tuple[_Job, int]]) -> list:
        """The model call (on the model thread), stoppable between chunks once every request in it has gone."""
        with stop_when(lambda: all(job.future.done() for job, _ in batch)):
            return self._predict(texts)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            batch = [(job, i) for job, i in batch if not job.future.done()]
            if not batch:
                continue
            texts = [job.texts[i] for job, i in batch]
            started = time.perf_counter()
            try:
                predictions = await loop.run_in_executor(self._executor, self._run, texts, batch)
            except Abandoned:
                self.abandoned_batches += 1
                log.info("stopped a model call of %d texts: every request in it had gone", len(texts))
                self._drop_given_up()
                continue
            except asyncio.CancelledError:
                for job, _ in batch:
                    if not job.future.done():
                        job.future.set_exception(BatcherStopped("the service is shutting down"))
                raise
            except Exception as exc:  # the model failed on this batch: every request in it gets the error
                log.error("model call failed on a batch of %d texts: %s", len(texts), type(exc).__name__,
                          exc_info=exc)
                for job, _ in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                self._drop_given_up()
                continue
            seconds = time.perf_counter() - started
            self.batches += 1
            requests = {id(job) for job, _ in batch}
            for (job, i), prediction in zip(batch, predictions):
                job.results[i] = prediction
                job.finished += 1
                if job.finished == len(job.texts) and not job.future.done():
                    job.future.set_result(job.results)
            if self._on_batch is not None:
                try:
                    self._on_batch(BatchStats(texts=len(texts), requests=len(requests), seconds=seconds,
                                              tokens=sum(job.costs[i] for job, i in batch)), predictions)
                except Exception as exc:  # metrics must never stop the batcher
                    log.warning("batch callback failed: %s", exc)
