"""HTTP API routes through ``TestClient`` with the tiny linear model folder (real model, no mocks)."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving import labels as L
from serving.api.app import create_app
from serving.settings import SettingsError, load_settings
from tests.helpers import assert_error, serve

KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"
TEXTS = [
    "Join the caravan, brothers; the checkpoint soldiers will taste fear.",
    "My brother was killed at that checkpoint. Tell my mother the killers are lions.",
    "BREAKING: two personnel injured as militants attack a checkpoint, says ISPR.",
    "yaar kal match dekhne chalein?",
]


@pytest.fixture(scope="module")
def client(linear_predictor):
    with serve(linear_predictor, max_texts_per_request=8, max_chars_per_text=500, max_body_bytes=16_384,
               queue_size=64) as c:
        yield c


# -- classify ---------------------------------------------------------------------------------------------------
def test_classify_returns_results_in_order_with_model(client, linear_predictor):
    response = client.post("/v1/classify", json={"texts": TEXTS})
    assert response.status_code == 200, response.text
    body = response.json()
    meta = linear_predictor.meta
    assert body["model"] == {"name": meta.name, "version": meta.version, "sha256": meta.sha256()}
    assert response.headers["x-model-version"] == meta.version
    expected = [p.to_dict() for p in linear_predictor.predict(TEXTS)]
    assert body["results"] == expected
    for result in body["results"]:
        assert result["label"] in L.LABELS
        assert set(result["scores"]) == set(L.LABELS)
        assert abs(sum(result["scores"].values()) - 1) < 1e-4
        assert result["flagged"] == (result["label"] == L.FLAG_LABEL)
        assert result["language"] in L.LANGUAGES


def test_batch_and_single_requests_agree(client):
    batch = client.post("/v1/classify", json={"texts": TEXTS}).json()["results"]
    singles = [client.post("/v1/classify", json={"texts": [t]}).json()["results"][0] for t in TEXTS]
    assert singles == batch


def test_duplicate_and_unicode_texts(client):
    texts = ["ہم امن چاہتے ہیں", "ہم امن چاہتے ہیں", "emoji 🔥🤲 and ZWJ\u200d text"]
    results = client.post("/v1/classify", json={"texts": texts}).json()["results"]
    assert len(results) == 3 and results[0] == results[1]
    assert results[0]["language"] == "ur"


def test_every_response_names_the_model_version(client, linear_predictor):
    version = linear_predictor.meta.version
    for method, path in [("GET", "/v1/info"), ("GET", "/health/live"), ("GET", "/health/ready"), ("GET", "/metrics"),
                         ("GET", "/nowhere"), ("POST", "/v1/classify")]:
        response = client.request(method, path, json={"texts": []} if method == "POST" else None)
        assert response.headers.get("x-model-version") == version, (method, path)


# -- info, health, docs -----------------------------------------------------------------------------------------
def test_info(client, linear_predictor):
    body = client.get("/v1/info").json()
    meta = linear_predictor.meta
    assert body["model"]["version"] == meta.version and body["model"]["sha256"] == meta.sha256()
    assert body["model"]["kind"] == "linear" and body["model"]["backend"] == "linear"
    assert body["labels"] == L.schema()
    assert body["thresholds"] == meta.thresholds and body["temperature"] == meta.temperature
    assert body["limits"]["max_texts_per_request"] == 8 and body["limits"]["max_chars_per_text"] == 500
    assert body["auth"] is False


def test_health_and_docs(client, linear_predictor):
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["model"]["version"] == linear_predictor.meta.version
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/classify", "/v1/info", "/health/live", "/health/ready", "/metrics"} <= set(paths)
    assert "413" in paths["/v1/classify"]["post"]["responses"]


def test_not_ready_until_lifespan_started(linear_predictor):
    app = create_app(load_settings(), linear_predictor)
    client = TestClient(app)  # no `with`: the lifespan (model + batcher) has not run
    assert client.get("/health/live").status_code == 200
    assert_error(client.get("/health/ready"), 503, "not_ready")
    assert_error(client.post("/v1/classify", json={"texts": ["hi"]}), 503, "not_ready")
    assert "Retry-After" in client.get("/health/ready").headers


def test_lifespan_loads_model_from_settings(linear_model_dir):
    app = create_app(load_settings(model_dir=linear_model_dir))
    with TestClient(app) as client:
        assert client.get("/health/ready").status_code == 200
        assert client.post("/v1/classify", json={"texts": ["hello"]}).status_code == 200
    assert_error(client.get("/health/ready"), 503, "not_ready")  # after shutdown


# -- errors -----------------------------------------------------------------------------------------------------
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("body, headers, status, code, fragment", [
    (b'{"texts": ["a",', JSON, 400, "invalid_json", "not valid JSON"),
    (b"", JSON, 422, "invalid_request", "required"),
    (b'{"texts": ["\xff\xfe caf\xe9"]}', JSON, 400, "invalid_unicode", "UTF-8"),
    (b'{"texts": ["a"]}', {}, 400, "invalid_content_type", "application/json"),
    (b'{"texts": ["a"]}', {"content-type": "text/plain"}, 400, "invalid_content_type", "application/json"),
    (b'["a", "b"]', JSON, 422, "invalid_request", "JSON object"),
    (b'"a"', JSON, 422, "invalid_request", "JSON object"),
    (b"null", JSON, 422, "invalid_request", ""),
    (b'{"texts": "a"}', JSON, 422, "invalid_request", "texts"),
    (b'{"texts": [1, 2]}', JSON, 422, "invalid_request", "texts.0"),
    (b'{"texts": [null]}', JSON, 422, "invalid_request", "texts.0"),
    (b'{"texts": [["a"]]}', JSON, 422, "invalid_request", "texts.0"),
    (b'{"text": ["a"]}', JSON, 422, "invalid_request", "did you mean 'texts'"),
    (b'{"texts": ["a"], "extra": 1}', JSON, 422, "invalid_request", "unknown field 'extra'"),
    (b'{"texts": []}', JSON, 422, "invalid_request", "at least 1"),
    (b'{"texts": [""]}', JSON, 422, "empty_text", "texts[0]"),
    (b'{"texts": ["ok", "  \\n\\t "]}', JSON, 422, "empty_text", "texts[1]"),
    (b'{"texts": ["a\\u0000b"]}', JSON, 422, "invalid_text", "NUL"),
    (b'{"texts": ["a\\ud800b"]}', JSON, 422, "invalid_unicode", "surrogate"),
    (json.dumps({"texts": ["x"] * 9}).encode(), JSON, 413, "too_many_texts", "limit is 8"),
    (json.dumps({"texts": ["ok", "x" * 501]}).encode(), JSON, 413, "text_too_long", "limit is 500"),
    (json.dumps({"texts": ["x" * 400] * 50}).encode(), JSON, 413, "payload_too_large", "16384 bytes"),
])
def test_bad_requests_get_clear_json_errors(client, body, headers, status, code, fragment):
    response = client.post("/v1/classify", content=body, headers=headers)
    assert_error(response, status, code, fragment)


def test_long_text_within_the_limit_is_fine(client):
    assert client.post("/v1/classify", json={"texts": ["word " * 100]}).status_code == 200


def test_chunked_body_over_the_limit(client):
    def chunks():
        for _ in range(10):
            yield b'{"texts": ["' + b"x" * 4000
    response = client.post("/v1/classify", content=chunks(), headers=JSON)
    assert_error(response, 413, "payload_too_large", "16384 bytes")


def test_unknown_route_and_method(client):
    assert_error(client.get("/v2/classify"), 404, "not_found", "/docs")
    assert_error(client.get("/v1/classify"), 405, "method_not_allowed", "GET")


class GatedPredictor:
    """The real linear predictor behind a gate the test opens: holds a batch in the model thread."""

    def __init__(self, inner):
        self.inner, self.meta, self.folder, self.backend = inner, inner.meta, inner.folder, inner.backend
        self.gate, self.entered = threading.Event(), threading.Event()

    def predict(self, texts):
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.predict(texts)

    def predict_proba(self, texts, **kw):
        return self.inner.predict_proba(texts, **kw)


def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError(f"gave up waiting for {what}")


def test_queue_full_gets_429_and_recovers(linear_predictor):
    gated = GatedPredictor(linear_predictor)
    with serve(gated, max_texts_per_request=2, queue_size=2, max_wait_ms=0) as client:
        batcher = client.app.state.service.batcher
        answers = {}

        def post(name, texts):
            answers[name] = client.post("/v1/classify", json={"texts": texts})

        first = threading.Thread(target=post, args=("first", ["a"]))
        first.start()
        assert gated.entered.wait(20)  # the first batch is now inside the model
        second = threading.Thread(target=post, args=("second", ["b", "c"]))
        second.start()
        wait_for(lambda: batcher.depth == 2, "the second request to fill the queue")
        response = client.post("/v1/classify", json={"texts": ["d"]})
        assert_error(response, 429, "overloaded", "queue is full")
        assert response.headers["retry-after"] == "1"
        gated.gate.set()
        first.join(30)
        second.join(30)
        assert answers["first"].status_code == 200 and answers["second"].status_code == 200
        assert len(answers["second"].json()["results"]) == 2
        assert client.post("/v1/classify", json={"texts": ["d"]}).status_code == 200
        metrics = client.get("/metrics").text
        assert 'counterpoint_http_requests_total{method="POST",route="/v1/classify",status="429"} 1.0' in metrics


def test_request_timeout_gets_503(linear_predictor):
    gated = GatedPredictor(linear_predictor)
    with serve(gated, request_timeout_s=0.2) as client:
        assert_error(client.post("/v1/classify", json={"texts": ["a"]}), 503, "timeout", "0.2 s")
        gated.gate.set()
        assert client.post("/v1/classify", json={"texts": ["a"]}).status_code == 200


# -- auth -------------------------------------------------------------------------------------------------------
def test_api_keys_protect_v1_only(linear_predictor):
    with serve(linear_predictor, api_keys=f"{KEY},{OTHER_KEY}") as client:
        body = {"texts": ["hello"]}
        response = client.post("/v1/classify", json=body)
        assert_error(response, 401, "unauthorized", "Authorization: Bearer")
        assert response.headers["www-authenticate"] == "Bearer"
        assert_error(client.post("/v1/classify", json=body, headers={"Authorization": "Bearer wrong-key-000000000"}),
                     401, "unauthorized", "not valid")
        assert_error(client.post("/v1/classify", json=body, headers={"Authorization": f"Basic {KEY}"}),
                     401, "unauthorized")
        assert_error(client.post("/v1/classify", json=body, headers={"Authorization": f"Bearer {KEY}x"}),
                     401, "unauthorized")
        assert_error(client.get("/v1/info"), 401, "unauthorized")
        for key in (KEY, OTHER_KEY):
            ok = client.post("/v1/classify", json=body, headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
        info = client.get("/v1/info", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert info["auth"] is True and KEY not in json.dumps(info)
        for path in ("/health/live", "/health/ready", "/metrics", "/docs"):
            assert client.get(path).status_code == 200, path


def test_no_keys_means_open(client):
    assert client.post("/v1/classify", json={"texts": ["hi"]}, headers={"Authorization": "Bearer anything"}
                       ).status_code == 200


# -- metrics and logs -------------------------------------------------------------------------------------------
def test_metrics(linear_predictor):
    with serve(linear_predictor) as client:
        client.post("/v1/classify", json={"texts": TEXTS})
        client.post("/v1/classify", json={"texts": []})
        labels = [p.label for p in linear_predictor.predict(TEXTS)]
        text = client.get("/metrics").text
    meta = linear_predictor.meta
    assert 'counterpoint_http_requests_total{method="POST",route="/v1/classify",status="200"} 1.0' in text
    assert 'counterpoint_http_requests_total{method="POST",route="/v1/classify",status="422"} 1.0' in text
    assert 'counterpoint_http_request_duration_seconds_count{route="/v1/classify"} 2.0' in text
    assert "counterpoint_batch_size_texts_count 1.0" in text and "counterpoint_batch_size_texts_sum 4.0" in text
    assert "counterpoint_queue_depth_texts 0.0" in text
    for label in set(labels):
        assert f'counterpoint_predictions_total{{label="{label}"}} {float(labels.count(label))}' in text
    assert f'version="{meta.version}"' in text and f'sha256="{meta.sha256()}"' in text
    assert "counterpoint_ready 1.0" in text


def test_post_text_is_not_logged_by_default(linear_predictor, caplog):
    secret = "a very distinctive post about zebra-striped caravans"
    with caplog.at_level(logging.DEBUG):
        with serve(linear_predictor) as client:
            client.post("/v1/classify", json={"texts": [secret]})
            client.post("/v1/classify", json={"texts": [secret, ""]})
    assert secret not in caplog.text
    assert "classify texts=1" in caplog.text  # sizes and timings are logged at debug level
    caplog.clear()
    with caplog.at_level(logging.INFO):
        with serve(linear_predictor, log_texts=True) as client:
            client.post("/v1/classify", json={"texts": [secret]})
    assert secret in caplog.text


# -- settings and start-up --------------------------------------------------------------------------------------
def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("COUNTERPOINT_MAX_TEXTS_PER_REQUEST", "5")
    monkeypatch.setenv("COUNTERPOINT_API_KEYS", f" {KEY} , {OTHER_KEY},")
    monkeypatch.setenv("COUNTERPOINT_BACKEND", "onnx")
    settings = load_settings(port=9000, host=None)
    assert settings.max_texts_per_request == 5 and settings.port == 9000 and settings.host == "127.0.0.1"
    assert [k.get_secret_value() for k in settings.api_keys] == [KEY, OTHER_KEY]
    assert settings.backend == "onnx" and settings.model_dir == Path("models/default")
    assert KEY not in repr(settings)


@pytest.mark.parametrize("env, fragment", [
    ({"COUNTERPOINT_PORT": "http"}, "COUNTERPOINT_PORT (or --port)"),
    ({"COUNTERPOINT_BACKEND": "gpu"}, "choose one of auto"),
    ({"COUNTERPOINT_API_KEYS": "short"}, "at least 16 characters"),
    ({"COUNTERPOINT_MAX_BATCH_SIZE": "0"}, "COUNTERPOINT_MAX_BATCH_SIZE"),
    ({"COUNTERPOINT_QUEUE_SIZE": "4", "COUNTERPOINT_MAX_TEXTS_PER_REQUEST": "8"}, "queue_size (4)"),
    ({"COUNTERPOINT_LOG_TEXTS": "maybe"}, "COUNTERPOINT_LOG_TEXTS"),
])
def test_bad_settings_fail_fast(monkeypatch, env, fragment):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match="invalid settings") as excinfo:
        load_settings()
    assert fragment in str(excinfo.value)


def _serve_cli(folder: Path):
    from typer.testing import CliRunner

    from training.cli import app

    return CliRunner().invoke(app, ["serve", "--model", str(folder), "--port", "1"])


def test_serve_refuses_missing_tampered_or_incompatible_folders(linear_model_dir, tmp_path):
    # --port 1 could never be bound: each case must fail before uvicorn starts.
    result = _serve_cli(tmp_path / "absent")
    assert result.exit_code == 2 and "does not exist" in result.output and "counterpoint train" in result.output

    tampered = tmp_path / "tampered"
    shutil.copytree(linear_model_dir, tampered)
    (tampered / "model.skops").write_bytes((tampered / "model.skops").read_bytes() + b"\0")
    result = _serve_cli(tampered)
    assert result.exit_code == 2 and "failed verification" in result.output and "model.skops" in result.output

    incompatible = tmp_path / "incompatible"
    shutil.copytree(linear_model_dir, incompatible)
    meta = json.loads((incompatible / "model_meta.json").read_text())
    meta["label_schema_version"] = L.SCHEMA_VERSION + 1
    (incompatible / "model_meta.json").write_text(json.dumps(meta))
    result = _serve_cli(incompatible)
    assert result.exit_code == 2 and "Retrain" in result.output
    assert "Traceback" not in result.output


def test_the_model_routes_run_no_dependency_in_the_thread_pool():
    """FastAPI runs a plain ``def`` dependency in its thread pool: a thread hop per dependency per request, which took a
    tenth of the event loop's time at saturation (bench/load.py). The model routes' dependencies are all ``async``."""
    import inspect

    from fastapi.routing import APIRoute

    from serving.api import app as api

    def calls(dependant):
        for dep in dependant.dependencies:
            yield dep.call
            yield from calls(dep)

    checked = set()
    for router in (api.v1, api.health, api.admin):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            for call in calls(route.dependant):
                target = call if inspect.isfunction(call) else type(call).__call__
                assert inspect.iscoroutinefunction(target), f"{route.path}: dependency {call!r} is not async"
            checked.add(route.path)
    assert {"/v1/classify", "/v1/info", "/health/ready", "/metrics"} <= checked
