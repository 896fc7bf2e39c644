"""The micro-batcher on its own, driving the real linear predictor (recorded, not replaced)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from serving.api.batcher import BatcherStopped, MicroBatcher, QueueFull

TEXTS = [f"post number {i}: the caravan, the checkpoint and the news" + " again" * (i % 5) for i in range(20)]


@pytest.fixture(scope="module")
def predictor(linear_predictor):
    return linear_predictor


class Recording:
    """Calls the real predictor and records each batch it was given; can hold a batch until released."""

    def __init__(self, predictor, gated: bool = False):
        self.predictor = predictor
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        if not gated:
            self.gate.set()

    def __call__(self, texts):
        self.batches.append(list(texts))
        self.entered.set()
        assert self.gate.wait(30)
        return self.predictor.predict(texts)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_concurrent_requests_share_batches_and_get_their_own_results(predictor):
    recording = Recording(predictor)

    async def main():
        batcher = MicroBatcher(recording, max_batch_size=8, max_wait_ms=20, queue_size=100)
        await batcher.start()
        try:
            # All 20 submissions enter the queue before the collector wakes: batches are exactly 8, 8, 4.
            return await asyncio.gather(*(batcher.submit([t]) for t in TEXTS))
        finally:
            await batcher.stop()

    results = run(main())
    assert [len(b) for b in recording.batches] == [8, 8, 4]
    assert [b for batch in recording.batches for b in batch] == TEXTS  # first come, first served
    expected = predictor.predict(TEXTS)
    assert [r[0] for r in results] == expected
    assert all(len(r) == 1 for r in results)


def test_multi_text_requests_are_shared_fairly_and_reassembled_in_order(predictor):
    recording = Recording(predictor)

    async def main():
        batcher = MicroBatcher(recording, max_batch_size=8, max_wait_ms=5, queue_size=100)
        await batcher.start()
        try:
            return await asyncio.gather(batcher.submit(TEXTS[:3]), batcher.submit(TEXTS[3:13]),
                                        batcher.submit(TEXTS[13:16]))
        finally:
            await batcher.stop()

    small, big, last = run(main())
    # 16 texts in batches of at most 8, taken fairly (round robin by cost served), each request whole and in order.
    assert [len(b) for b in recording.batches] == [8, 8]
    assert recording.batches[0][:3] == [TEXTS[0], TEXTS[3], TEXTS[13]]
    assert small == predictor.predict(TEXTS[:3]) and big == predictor.predict(TEXTS[3:13])
    assert last == predictor.predict(TEXTS[13:16])


def test_batches_are_bounded_in_tokens_and_a_short_request_overtakes_queued_heavy_ones(predictor):
    recording = Recording(predictor, gated=True)

    async def main():
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(recording, max_batch_size=32, max_wait_ms=0, queue_size=1000,
                               max_batch_tokens=1000, queue_tokens=11_000)
        await batcher.start()
        try:
            heavy = [asyncio.create_task(batcher.submit(TEXTS[:6], [600] * 6)) for _ in range(3)]
            assert await loop.run_in_executor(None, recording.entered.wait, 30)  # first heavy text in the model
            await asyncio.sleep(0)
            short = asyncio.create_task(batcher.submit([TEXTS[7]], [10]))
            await asyncio.sleep(0)
            assert batcher.depth_tokens == 17 * 600 + 10
            with pytest.raises(QueueFull, match="tokens"):  # 10,210 tokens waiting: no room for 900 more
                await batcher.submit([TEXTS[8]], [900])
            recording.gate.set()
            assert await short == predictor.predict([TEXTS[7]])
            return await asyncio.gather(*heavy)
        finally:
            recording.gate.set()
            await batcher.stop()

    results = run(main())
    assert all(r == predictor.predict(TEXTS[:6]) for r in results)
    # 600-token texts: one per batch under a 1000-token budget; the short one rides in the second batch at once.
    assert all(len(b) <= 2 for b in recording.batches)
    assert TEXTS[7] in recording.batches[1]
    assert sum(len(b) for b in recording.batches) == 19


def test_a_request_given_up_midway_gets_no_more_model_time(predictor):
    recording = Recording(predictor, gated=True)

    async def main():
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(recording, max_batch_size=2, max_wait_ms=0, queue_size=100)
        await batcher.start()
        try:
            doomed = asyncio.create_task(batcher.submit(TEXTS[:10]))
            assert await loop.run_in_executor(None, recording.entered.wait, 30)  # its first 2 texts in the model
            doomed.cancel()  # e.g. the request timed out or its client disconnected
            await asyncio.sleep(0)
            recording.gate.set()
            assert await batcher.submit(["after"]) == predictor.predict(["after"])
            assert batcher.depth == 0 and batcher.dropped_texts == 8
        finally:
            recording.gate.set()
            await batcher.stop()

    run(main())
    assert recording.batches == [TEXTS[:2], ["after"]]


def test_queue_bound_cancellation_and_stop(predictor):
    recording = Recording(predictor, gated=True)

    async def main():
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(recording, max_batch_size=4, max_wait_ms=0, queue_size=4)
        await batcher.start()
        first = asyncio.create_task(batcher.submit(["a"]))
        assert await loop.run_in_executor(None, recording.entered.wait, 30)  # "a" is inside the model
        waiting = asyncio.create_task(batcher.submit(["b", "c"]))
        doomed = asyncio.create_task(batcher.submit(["d", "e"]))
        await asyncio.sleep(0)
        assert batcher.depth == 4
        with pytest.raises(QueueFull):
            await batcher.submit(["f"])
        doomed.cancel()  # its caller gave up: it must never reach the model
        await asyncio.sleep(0)
        recording.gate.set()
        assert await first == predictor.predict(["a"])
        assert await waiting == predictor.predict(["b", "c"])
        assert await batcher.submit(["g"]) == predictor.predict(["g"])
        assert batcher.depth == 0
        recording.gate.clear()
        held = asyncio.create_task(batcher.submit(["h"]))
        queued = asyncio.create_task(batcher.submit(["i"]))
        await asyncio.sleep(0.01)
        recording.gate.set()  # let the model thread finish so stop() can join it
        await batcher.stop()
        for task in (held, queued):
            try:
                await task
            except BatcherStopped:
                pass
        with pytest.raises(BatcherStopped):
            await batcher.submit(["j"])

    run(main())
    seen = [t for batch in recording.batches for t in batch]
    assert "d" not in seen and "e" not in seen and "f" not in seen and "j" not in seen


def test_a_failing_batch_fails_its_requests_only(predictor):
    def predict(texts):
        if "boom" in texts:
            raise RuntimeError("model failure")
        return predictor.predict(texts)

    async def main():
        batcher = MicroBatcher(predict, max_batch_size=2, max_wait_ms=5, queue_size=10)
        await batcher.start()
        try:
            outcome = await asyncio.gather(batcher.submit(["boom"]), batcher.submit(["x"]),
                                           batcher.submit(["y"]), return_exceptions=True)
            assert isinstance(outcome[0], RuntimeError) and isinstance(outcome[1], RuntimeError)
            assert outcome[2] == predictor.predict(["y"])
            assert batcher.running
        finally:
            await batcher.stop()

    run(main())


def test_a_model_call_nobody_waits_for_stops_between_chunks(predictor):
    from serving.predictor import Abandoned, _should_stop

    chunks_run = []
    started = threading.Event()

    def predict(texts):  # a long text: 50 model chunks, checking between them as the transformer backends do
        for k in range(50):
            if _should_stop():
                raise Abandoned("nobody waits")
            chunks_run.append(k)
            started.set()
            threading.Event().wait(0.02)
        return predictor.predict(texts)

    async def main():
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(predict, max_batch_size=4, max_wait_ms=0, queue_size=10)
        await batcher.start()
        try:
            doomed = asyncio.create_task(batcher.submit(["a very long text"]))
            assert await loop.run_in_executor(None, started.wait, 30)
            doomed.cancel()  # the caller timed out
            assert await batcher.submit(["next"]) == predictor.predict(["next"])
            assert batcher.abandoned_batches == 1
        finally:
            await batcher.stop()

    run(main())
    assert len(chunks_run) < 50 + 10  # the abandoned call stopped early; the next one ran in full
    assert chunks_run.count(49) == 1
