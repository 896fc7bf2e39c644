"""Schema-driven and property-based fuzzing of the API (in process, bounded): no 5xx, errors always in our shape."""

from __future__ import annotations

import json

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from serving.api.app import create_app
from serving.predictor import load_predictor
from serving.settings import load_settings

LIMITS = dict(max_texts_per_request=16, max_chars_per_text=2000, max_body_bytes=65_536, queue_size=256)


@pytest.fixture(scope="module")
def fuzz_app(linear_model_dir, tmp_path_factory):
    database = tmp_path_factory.mktemp("fuzz") / "review.sqlite3"  # the review routes' store (serving/review)
    return create_app(load_settings(**LIMITS, database_url=f"sqlite:///{database}"), load_predictor(linear_model_dir))


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    # Schemathesis starts the app's lifespan itself (model + batcher) on its own event-loop thread.
    yield schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()


OPERATIONS = [("POST", "/v1/classify"), ("GET", "/v1/info"), ("GET", "/health/live"), ("GET", "/health/ready"),
              ("GET", "/metrics"),
              # the moderator console's API (serving/review)
              ("POST", "/v1/review/items"), ("GET", "/v1/review/next"), ("GET", "/v1/review/items/{item_id}"),
              ("POST", "/v1/review/items/{item_id}/decisions"), ("POST", "/v1/review/items/{item_id}/skip"),
              ("POST", "/v1/review/items/{item_id}/appeals"), ("GET", "/v1/review/stats"),
              ("GET", "/v1/admin/review/events"), ("GET", "/v1/feedback/export"), ("POST", "/v1/admin/reload")]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_operation_is_fuzzed(api_schema):
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


# (schemathesis' lazy `from_fixture` loader does not run under pytest 9, so strategies are drawn directly.)
@pytest.mark.parametrize("method, path, mode", [
    *[(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS], ("POST", "/v1/classify", GenerationMode.NEGATIVE)])
def test_openapi_fuzz_no_server_errors(api_schema, method, path, mode):
    operation = api_schema[path][method]
    examples = 60 if method == "POST" and path != "/v1/admin/reload" else 5  # a reload loads a model folder

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call()
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}

    check()


@pytest.fixture(scope="module")
def client(linear_model_dir):
    with TestClient(create_app(load_settings(**LIMITS), load_predictor(linear_model_dir))) as c:
        yield c


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.text(max_size=300), max_size=20).map(lambda t: json.dumps({"texts": t}).encode()),
    st.lists(st.text(max_size=300), max_size=20).map(lambda t: json.dumps({"texts": t}, ensure_ascii=False)
                                                     .encode("utf-8", "surrogatepass")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(body=bodies, content_type=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                  "text/plain", None]))
def test_arbitrary_bodies_never_crash(client, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/classify", content=body, headers=headers)
    assert response.status_code in (200, 400, 413, 422), response.text
    payload = response.json()
    if response.status_code == 200:
        texts = json.loads(body.decode("utf-8", "surrogatepass"))["texts"]
        assert len(payload["results"]) == len(texts)
    else:
        assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message"}
