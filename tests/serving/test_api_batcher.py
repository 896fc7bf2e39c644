"""The micro-batcher on its own, driving the real linear predictor (recorded, not replaced)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
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


# -- window-level scheduling (a real transformer: texts split into their model windows) --------------------------
LONG = " ".join(["The ministry announced new rules for madrassa registration today, and the committee met."] * 60)
SHORT = "yaar kal match dekhne chalein? traffic bohat hai"


@pytest.fixture(scope="module")
def fp32(transformer_model_dir):
    from serving.predictor import load_predictor

    return load_predictor(transformer_model_dir, "onnx", batch_size=4)


class GatedWork:
    """``WindowWork`` whose model calls are recorded (windows per call, and whose) and can be held at a gate."""

    def __init__(self, predictor, gated: bool = False):
        from serving.api.batcher import WindowWork

        self.work = WindowWork(predictor)
        self.calls: list[list[tuple[int, ...]]] = []
        self.entered, self.gate = threading.Event(), threading.Event()
        if not gated:
            self.gate.set()

    def split(self, items):
        return self.work.split(items)

    def combine(self, key, outputs):
        return self.work.combine(key, outputs)

    def score(self, windows):
        self.calls.append([tuple(w) for w in windows])
        self.entered.set()
        assert self.gate.wait(30)
        return self.work.score(windows)


def window_batcher(work, **kw) -> MicroBatcher:
    """A batcher as the service wires it for a transformer: one model call holds at most 4 full windows."""
    return MicroBatcher(work.score, split=work, max_batch_size=32, max_wait_ms=0, queue_size=100,
                        max_batch_tokens=work.work.chunk_tokens(4), similar_length=work.work.SIMILAR_LENGTH, **kw)


def assert_same(got, expected, atol=1e-5):
    assert [p.label for p in got] == [p.label for p in expected]
    for g, e in zip(got, expected):
        assert g.scores == pytest.approx(e.scores, abs=atol)
        assert (g.language, g.flagged, g.review) == (e.language, e.flagged, e.review)


def test_a_long_texts_windows_interleave_with_a_short_post(fp32):
    work = GatedWork(fp32, gated=True)
    n_windows = len(fp32.text_windows([LONG])[1][0])
    assert n_windows >= 8
    order = []

    async def main():
        loop = asyncio.get_running_loop()
        batcher = window_batcher(work)
        await batcher.start()
        try:
            assert batcher.scheduling == "windows"
            long = asyncio.create_task(batcher.submit([LONG, "a second, short text"]))
            long.add_done_callback(lambda _: order.append("long"))
            assert await loop.run_in_executor(None, work.entered.wait, 30)  # the long text's first chunk
            short = asyncio.create_task(batcher.submit([SHORT]))
            short.add_done_callback(lambda _: order.append("short"))
            await asyncio.sleep(0.05)
            work.gate.set()
            return await short, await long
        finally:
            work.gate.set()
            await batcher.stop()

    short, long = run(main())
    assert order == ["short", "long"]  # the short post did not wait for the rest of the long text
    short_window = tuple(fp32.text_windows([SHORT])[1][0][0])
    assert work.calls[1] == [short_window]  # it went in the very next model call, without long windows
    assert all(sum(map(len, call)) <= 4 * fp32.max_length for call in work.calls)  # calls of one chunk at most
    assert sum(len(call) for call in work.calls) == n_windows + 2
    # Aggregated per text from windows scored in many calls: the whole-text result (fp32: batch mates don't matter).
    assert_same(short, fp32.predict([SHORT]))
    assert_same(long, fp32.predict([LONG, "a second, short text"]))


def test_window_results_equal_whole_text_predictions_under_int8(transformer_model_dir):
    from serving.predictor import load_predictor

    int8 = load_predictor(transformer_model_dir, batch_size=4)
    assert int8.backend == "onnx-int8"
    texts = [LONG, SHORT, LONG[:700], "Another post about the caravan and the checkpoint."]
    work = GatedWork(int8)

    async def main():
        batcher = window_batcher(work)
        await batcher.start()
        try:
            return await asyncio.gather(batcher.submit(texts[:2]), batcher.submit(texts[2:]))
        finally:
            await batcher.stop()

    first, second = run(main())
    assert_same(first + second, int8.predict(texts), atol=2e-3)  # int8: scales are chosen per batch


def test_window_aggregation_keeps_subtypes_and_parent_posts(fp32):
    """A deterministic stand-in for the graph (each window's logits depend on its tokens only), with a sub-type
    head and reply context: scored window by window and put back together, every field equals ``predict``."""
    import copy

    from serving import labels as L
    from serving.predictor import Reply

    taxonomy = {label: list(names) for label, names in L.SUBTYPES.items()}
    model = copy.copy(fp32)
    model.meta = fp32.meta.model_copy(update={"subtypes": taxonomy, "context": True})
    columns = len(L.LABELS) + len(L.subtype_names(taxonomy))
    basis = np.random.default_rng(0).normal(size=(64, columns))

    def graph(ids, mask):
        hashed = np.zeros((len(ids), 64))
        for r, (row, m) in enumerate(zip(ids, mask)):
            for tok in row[m.astype(bool)]:
                hashed[r, int(tok) * 2654435761 % 64] += 1.0
        return ((hashed / mask.sum(axis=1, keepdims=True)) @ basis * 3).astype(np.float32)

    model._run = graph
    texts = [LONG, SHORT, LONG[:1500] + " they all deserve it", "hello"]
    contexts = [None, "These people should be driven out.", "A long parent post " * 30, None]
    items = [t if c is None else Reply(t, c) for t, c in zip(texts, contexts)]
    work = GatedWork(model)

    async def main():
        batcher = window_batcher(work)
        await batcher.start()
        try:
            return await batcher.submit(items)
        finally:
            await batcher.stop()

    got = run(main())
    expected = model.predict(texts, contexts=contexts)
    assert len(work.calls) > 3 and any(len({tuple(w) for w in call}) > 1 for call in work.calls)
    assert got == expected  # label, scores, language, review and sub-type: all equal
    assert [p.subtype_logits for p in got] == [p.subtype_logits for p in expected]
    assert all(p.subtype is not None for p in got)


def test_an_abandoned_long_text_stops_between_chunks(fp32):
    """Given up while the first model chunk of its first call runs: the call stops before its next chunk, and none
    of the text's other windows is scored."""
    import copy

    model = copy.copy(fp32)
    model.batch_size = 1  # each window is a model chunk: the call can stop between them
    chunks, entered, gate = [], threading.Event(), threading.Event()
    inner = model._run

    def graph(ids, mask):
        chunks.append(len(ids))
        entered.set()
        assert gate.wait(30)
        return inner(ids, mask)

    model._run = graph
    work = GatedWork(model)
    n_windows = len(fp32.text_windows([LONG])[1][0])

    async def main():
        loop = asyncio.get_running_loop()
        batcher = window_batcher(work)
        await batcher.start()
        try:
            doomed = asyncio.create_task(batcher.submit([LONG]))
            assert await loop.run_in_executor(None, entered.wait, 30)  # the first of its call's 4 chunks runs
            doomed.cancel()  # the request timed out or its client disconnected
            await asyncio.sleep(0.01)
            gate.set()
            assert_same(await batcher.submit([SHORT]), fp32.predict([SHORT]))
            assert batcher.abandoned_batches == 1
            assert batcher.dropped_units == n_windows - 4 and batcher.dropped_texts == 1
            assert batcher.depth == 0 and batcher.depth_tokens == 0
        finally:
            gate.set()
            await batcher.stop()

    run(main())
    assert len(work.calls) == 2 and len(work.calls[0]) == 4  # the doomed call, then the short post's
    assert chunks == [1, 1]  # one chunk of the doomed call ran, then the short post's


def test_the_service_schedules_a_transformer_by_windows(fp32, monkeypatch):
    from serving.api import app as app_module
    from tests.helpers import serve

    texts = [LONG, SHORT]
    expected = [p.to_dict() for p in fp32.predict(texts)]
    with serve(fp32) as client:
        batcher = client.app.state.service.batcher
        assert batcher.scheduling == "windows" and batcher.max_batch_tokens == 4 * fp32.max_length
        results = client.post("/v1/classify", json={"texts": texts}).json()["results"]
        assert batcher.batches >= 3 and batcher.depth == 0 and batcher.depth_tokens == 0
    for got, want in zip(results, expected):
        assert got["label"] == want["label"] and got["scores"] == pytest.approx(want["scores"], abs=1e-5)
    monkeypatch.setattr(app_module, "WINDOW_SCHEDULING", False)
    with serve(fp32) as client:
        assert client.app.state.service.batcher.scheduling == "texts"
        whole = client.post("/v1/classify", json={"texts": texts}).json()["results"]
    for got, want in zip(whole, results):
        assert got["label"] == want["label"] and got["scores"] == pytest.approx(want["scores"], abs=1e-5)


def test_a_reservation_refuses_before_tokenising_and_the_queue_never_overflows(fp32):
    """Admission on an upper bound (``reserve``): a request that may not fit is refused before its texts are split
    (tokenised); one admitted is queued at its exact cost, and the queue never holds more than ``queue_tokens``."""
    from serving.api.batcher import QueueFull

    work = GatedWork(fp32, gated=True)
    splits = []
    split = work.split
    work.split = lambda items: splits.append(len(items)) or split(items)
    exact = sum(len(w) for w in fp32.text_windows([LONG])[1][0])

    async def main():
        batcher = window_batcher(work, queue_tokens=exact + 2 * fp32.max_length)
        await batcher.start()
        try:
            first = asyncio.create_task(batcher.submit([LONG], reserve=exact + 100))
            while not work.entered.is_set():
                await asyncio.sleep(0.01)
            assert batcher.depth_tokens <= batcher.queue_tokens
            with pytest.raises(QueueFull, match="tokens waiting"):  # the bound does not fit: no tokenising
                await batcher.submit([LONG], reserve=exact + 100)
            assert splits == [1]
            seen = []

            def check(plan):
                seen.append([len(parts) for _, parts in plan])
                raise ValueError("refused by the check")

            with pytest.raises(ValueError, match="refused by the check"):
                await batcher.submit([SHORT], reserve=fp32.max_length, check=check)
            assert seen == [[1]] and splits == [1, 1]  # split once, refused, nothing queued or left reserved
            short = asyncio.create_task(batcher.submit([SHORT], reserve=fp32.max_length))
            await asyncio.sleep(0.05)
            assert batcher.depth_tokens <= batcher.queue_tokens
            work.gate.set()
            assert [p.label for p in await short] == [p.label for p in fp32.predict([SHORT])]
            await first
            assert batcher.depth == 0 and batcher.depth_tokens == 0
        finally:
            await batcher.stop()

    run(main())


def test_the_window_route_tokenises_once_and_checks_limits_on_the_split(fp32, monkeypatch):
    from tests.helpers import assert_error, serve

    calls = {"costs": 0, "windows": 0}
    text_windows, window_costs = fp32.text_windows, fp32.window_costs

    def counted_windows(*a, **kw):
        calls["windows"] += 1
        return text_windows(*a, **kw)

    def counted_costs(*a, **kw):
        calls["costs"] += 1
        return window_costs(*a, **kw)

    monkeypatch.setattr(fp32, "text_windows", counted_windows)
    monkeypatch.setattr(fp32, "window_costs", counted_costs)
    n = len(text_windows([LONG])[1][0])
    with serve(fp32, max_windows_per_text=n - 1) as client:
        assert client.post("/v1/classify", json={"texts": [SHORT, "another short one"]}).status_code == 200
        assert calls == {"costs": 0, "windows": 1}
        assert_error(client.post("/v1/classify", json={"texts": [SHORT, LONG]}), 413, "too_many_windows",
                     "texts[1]", f"limit is {n - 1} windows")
        batcher = client.app.state.service.batcher
        assert batcher.depth_tokens == 0 and batcher.batches == 1  # nothing of the refused request queued
    with serve(fp32, max_tokens_per_request=64, queue_tokens=64) as client:
        assert_error(client.post("/v1/classify", json={"texts": [LONG]}), 413, "request_too_costly",
                     "64 tokens per request")
