"""Asyncio micro-batcher: concurrent requests share one model call.

Requests wait in a bounded queue (counted in texts). One collector task takes the oldest request and gathers more
until the batch holds ``max_batch_size`` texts or ``max_wait_ms`` have passed since that oldest request arrived,
then runs ``predict`` on the whole batch in ONE worker thread (the model is not called concurrently, and the event
loop stays free to accept and parse requests meanwhile). While a batch runs, new requests pile up and form the next
batch at once, so under load batches fill without waiting and throughput approaches offline batch throughput; when
idle, a lone request waits at most ``max_wait_ms``. A request larger than ``max_batch_size`` runs as its own batch.
Sorting texts by length (to cut padding) is the predictor's job.

A request that would overflow the queue is refused at once (``QueueFull`` -> 429); a request whose caller gave up
(timeout, disconnect) is dropped from the queue before it reaches the model.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

log = logging.getLogger("counterpoint.batcher")


class QueueFull(Exception):
    """The queue has no room for this request."""


class BatcherStopped(Exception):
    """The batcher is not running (starting up or shutting down)."""


@dataclass
class _Job:
    texts: Sequence[str]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the batcher reports to metrics after each batch."""

    texts: int
    requests: int
    seconds: float


class MicroBatcher:
    def __init__(self, predict: Callable[[list[str]], list], *, max_batch_size: int = 32, max_wait_ms: float = 1.0,
                 queue_size: int = 1024, on_batch: Callable[[BatchStats, list], None] | None = None,
                 on_queue_depth: Callable[[int], None] | None = None):
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self._on_batch = on_batch
        self._on_queue_depth = on_queue_depth
        self._jobs: collections.deque[_Job] = collections.deque()
        self._pending_texts = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0

    # -- life cycle -------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def depth(self) -> int:
        """Texts waiting for the model (not counting the batch being run)."""
        return self._pending_texts

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
        while self._jobs:
            job = self._jobs.popleft()
            if not job.future.done():
                job.future.set_exception(BatcherStopped("the service is shutting down"))
        self._pending_texts = 0
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- requests ---------------------------------------------------------------------------------------------
    async def submit(self, texts: Sequence[str]) -> list:
        """Predictions for ``texts`` (in order), computed in a shared batch."""
        if not self.running:
            raise BatcherStopped("the model is not ready yet")
        if not texts:
            return []
        if self._pending_texts + len(texts) > self.queue_size:
            raise QueueFull(f"the queue is full ({self._pending_texts} of {self.queue_size} texts waiting)")
        job = _Job(list(texts), asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._pending_texts += len(texts)
        self._report_depth()
        self._wakeup.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            job.future.cancel()  # the collector skips it (and frees its place in the queue)
            raise

    # -- internals --------------------------------------------------------------------------------------------
    def _report_depth(self) -> None:
        if self._on_queue_depth is not None:
            self._on_queue_depth(self._pending_texts)

    def _pop(self) -> _Job:
        job = self._jobs.popleft()
        self._pending_texts -= len(job.texts)
        return job

    def _drop_cancelled(self) -> None:
        while self._jobs and self._jobs[0].future.done():
            self._pop()

    async def _next_batch(self) -> list[_Job]:
        while True:
            self._drop_cancelled()
            if self._jobs:
                break
            self._wakeup.clear()
            await self._wakeup.wait()
        first = self._pop()
        batch, size = [first], len(first.texts)
        deadline = first.enqueued + self.max_wait
        while size < self.max_batch_size:
            self._drop_cancelled()
            if self._jobs:
                if size + len(self._jobs[0].texts) > self.max_batch_size:
                    break  # it opens the next batch
                job = self._pop()
                batch.append(job)
                size += len(job.texts)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                break
        self._report_depth()
        return batch

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            batch = [job for job in batch if not job.future.done()]
            if not batch:
                continue
            texts = [text for job in batch for text in job.texts]
            started = time.perf_counter()
            try:
                predictions = await loop.run_in_executor(self._executor, self._predict, texts)
            except asyncio.CancelledError:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(BatcherStopped("the service is shutting down"))
                raise
            except Exception as exc:  # the model failed on this batch: every request in it gets the error
                log.error("model call failed on a batch of %d texts: %s", len(texts), type(exc).__name__,
                          exc_info=exc)
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            seconds = time.perf_counter() - started
            self.batches += 1
            offset = 0
            for job in batch:
                part = predictions[offset:offset + len(job.texts)]
                offset += len(job.texts)
                if not job.future.done():
                    job.future.set_result(part)
            if self._on_batch is not None:
                try:
                    self._on_batch(BatchStats(texts=len(texts), requests=len(batch), seconds=seconds), predictions)
                except Exception as exc:  # metrics must never stop the batcher
                    log.warning("batch callback failed: %s", exc)
