"""Hardening of the service (issue 10): cost counted in tokens and windows, auth before the body, model failures
and odd bodies answered with documented codes, given-up requests withdrawn. Real linear model; where a cost must
be large, a thin wrapper reports the windows a transformer would see."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager

import pytest

from serving.api.errors import ApiError
from tests.helpers import assert_error, serve

KEY = "test-key-0123456789abcdef"
JSON = {"content-type": "application/json"}


class Costly:
    """The real linear predictor, but each text costs one 100-token window per 100 characters (as a transformer's
    windows would), and the model can be made to fail or to wait at a gate."""

    def __init__(self, inner, fail: bool = False, gated: bool = False):
        self.inner, self.meta, self.folder, self.backend = inner, inner.meta, inner.folder, inner.backend
        self.fail, self.calls = fail, []
        self.gate, self.entered = threading.Event(), threading.Event()
        if not gated:
            self.gate.set()

    def window_costs(self, texts):
        return [(len(t) // 100 + 1, 100 * (len(t) // 100 + 1)) for t in texts]

    def predict(self, texts, *args):
        self.calls.append(list(texts))
        self.entered.set()
        assert self.gate.wait(30)
        if self.fail:
            raise MemoryError("simulated: the model ran out of memory")
        return self.inner.predict(texts, *args)

    def predict_proba(self, texts, **kw):
        return self.inner.predict_proba(texts, **kw)


def test_a_text_with_too_many_windows_gets_413_before_any_model_time(linear_predictor):
    costly = Costly(linear_predictor)
    with serve(costly, max_windows_per_text=5) as client:
        response = client.post("/v1/classify", json={"texts": ["ok", "x " * 300]})
        assert_error(response, 413, "too_many_windows", "texts[1]", "limit is 5 windows")
        assert client.get("/v1/info").json()["limits"]["max_windows_per_text"] == 5
    assert costly.calls == []


def test_a_request_over_its_token_budget_gets_413(linear_predictor):
    costly = Costly(linear_predictor)
    with serve(costly, max_tokens_per_request=1000, queue_tokens=1000) as client:
        response = client.post("/v1/classify", json={"texts": ["x " * 200] * 6})  # 6 x 500 tokens
        assert_error(response, 413, "request_too_costly", "3,000", "1,000 tokens per request")
        assert client.post("/v1/classify", json={"texts": ["x " * 200]}).status_code == 200
    assert len(costly.calls) == 1


@contextmanager
def queue_held_at_800_of_1000_tokens(linear_predictor):
    """``(client, release)``: a service whose queue holds 800 of its 1,000 tokens (9 texts of 100 tokens, the model
    held at a gate after the first); ``release()`` (also on exit) opens the gate and checks the first request was
    answered."""
    costly = Costly(linear_predictor, gated=True)
    with serve(costly, max_tokens_per_request=1000, queue_tokens=1000, max_wait_ms=0,
               max_batch_tokens=100) as client:
        answers = {}
        first = threading.Thread(target=lambda: answers.setdefault("first", client.post(
            "/v1/classify", json={"texts": ["a " * 40] * 9})))  # 9 texts of 100 tokens: one per batch
        first.start()
        assert costly.entered.wait(20)
        batcher = client.app.state.service.batcher
        for _ in range(200):
            if batcher.depth_tokens == 800:
                break
            threading.Event().wait(0.01)
        assert batcher.depth_tokens == 800 and batcher.depth == 8  # few texts, many tokens

        def release():
            costly.gate.set()
            first.join(30)
            assert answers["first"].status_code == 200

        yield client, release
        release()


def test_queue_capacity_is_counted_in_tokens(linear_predictor):
    with queue_held_at_800_of_1000_tokens(linear_predictor) as (client, _):
        assert_error(client.post("/v1/classify", json={"texts": ["b " * 100]}), 429, "overloaded", "tokens")


def test_auth_is_checked_before_the_body_is_read(linear_predictor):
    with serve(linear_predictor, api_keys=KEY) as client:
        for body in (b'{"texts": ["a",', b"\xff\xfe", b"[" * 100_000):
            assert_error(client.post("/v1/classify", content=body, headers=JSON), 401, "unauthorized")
        huge = {**JSON, "content-length": str(10**9)}
        assert_error(client.post("/v1/classify", content=b"{}", headers=huge), 401, "unauthorized")
        ok = {**JSON, "Authorization": f"Bearer {KEY}"}
        assert_error(client.post("/v1/classify", content=b'{"texts": ["a",', headers=ok), 400, "invalid_json")
        assert client.post("/v1/classify", json={"texts": ["a"]}, headers=ok).status_code == 200
        assert client.get("/health/ready").status_code == 200


def test_deeply_nested_json_is_a_json_error(linear_predictor):
    with serve(linear_predictor, max_body_bytes=1_000_000) as client:
        body = b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert_error(client.post("/v1/classify", content=body, headers=JSON), 400, "invalid_json", "too deeply")


def test_a_model_failure_is_a_documented_503(linear_predictor):
    with serve(Costly(linear_predictor, fail=True)) as client:
        response = client.post("/v1/classify", json={"texts": ["hello"]})
        assert_error(response, 503, "model_error", "MemoryError")
        assert response.headers["retry-after"] == "1"
        assert client.get("/health/live").status_code == 200
        doc = client.get("/openapi.json").json()["paths"]["/v1/classify"]["post"]["responses"]["503"]
        assert "model_error" in doc["description"]


def test_a_timed_out_request_stops_costing_model_time(linear_predictor):
    costly = Costly(linear_predictor, gated=True)
    with serve(costly, max_batch_size=1, max_wait_ms=0, request_timeout_s=0.3) as client:
        response = client.post("/v1/classify", json={"texts": [f"text {i}" for i in range(8)]})
        assert_error(response, 503, "timeout")
        costly.gate.set()
        batcher = client.app.state.service.batcher
        assert client.post("/v1/classify", json={"texts": ["after"]}).status_code == 200
        assert batcher.dropped_texts == 7 and batcher.depth == 0
    assert costly.calls == [["text 0"], ["after"]]


def test_a_disconnected_client_is_withdrawn_between_batches(linear_predictor):
    """Service.classify polls the request: once it reports a disconnect, the rest of the request is dropped."""
    costly = Costly(linear_predictor, gated=True)

    class GoneRequest:
        async def is_disconnected(self):
            return True

    with serve(costly, max_batch_size=1, max_wait_ms=0) as client:
        service = client.app.state.service

        async def call():
            return await service.classify([f"t{i}" for i in range(5)], None, GoneRequest())

        with pytest.raises(ApiError) as excinfo:
            client.portal.call(call)
        assert excinfo.value.code == "client_disconnected"
        costly.gate.set()
        assert client.post("/v1/classify", json={"texts": ["after"]}).status_code == 200
    assert costly.calls == [["t0"], ["after"]]


def test_info_states_window_aggregation_and_int8(linear_predictor):
    with serve(linear_predictor) as client:
        model = client.get("/v1/info").json()["model"]
    assert model["window_aggregation"] == "max" and model["int8"] is None and "int8_note" in model
    assert json.dumps(model)


def test_a_full_queue_refuses_a_large_body_before_reading_it(linear_predictor):
    """While the queue is full, a request whose Content-Length alone shows it cannot fit gets 429 without its body
    being read or parsed (a broken body proves it), and a short post still gets in once there is room."""
    from serving.api.app import BODY_BYTES_PER_TOKEN

    with queue_held_at_800_of_1000_tokens(linear_predictor) as (client, release):
        broken = b'{"texts": ["' + b"x" * (BODY_BYTES_PER_TOKEN * 300)  # >= 300 tokens; no room for it
        assert_error(client.post("/v1/classify", content=broken, headers=JSON), 429, "overloaded",
                     "800 of 1,000 tokens waiting", "at least 3")
        small = b'{"texts": ["' + b"x" * (BODY_BYTES_PER_TOKEN * 100)  # could fit: read, parsed, refused as JSON
        assert_error(client.post("/v1/classify", content=small, headers=JSON), 400, "invalid_json")
        release()
        assert client.post("/v1/classify", json={"texts": ["a short post"]}).status_code == 200
