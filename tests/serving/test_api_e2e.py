"""End to end with the tiny fine-tuned transformer: a real `counterpoint serve` process (uvicorn) on a free port of
127.0.0.1, classified over HTTP; and batch-vs-single agreement through the API (fp32 exact labels, int8 bounded)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serving import labels as L
from serving.api.app import create_app
from serving.predictor import load_predictor
from serving.settings import load_settings
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "The lions went forward without once looking back. May Allah accept our brothers.",
    "Come and sit with my mother for one hour, then tell me what smells of musk.",
    "BREAKING: two personnel injured as militants attack a security checkpoint.",
    "jihad ka matlab nafs se larna hai, bandooq uthana nahi",
    "ہم امن چاہتے ہیں اور تشدد کی مذمت کرتے ہیں",
    "lol that match was fire 🔥🔥",
    "They are vermin and must be wiped out.",
    "Those who glorify the bombers never attend the funerals.",
    "Join the caravan. The brothers need you at the front. DM for details.",
    "The ministry announced new rules for madrassa registration today.",
    "k-a-f-i-r-s deserve what is coming to them",
    "Counter-terrorism experts met in Islamabad to discuss deradicalisation programmes.",
]
# Dynamic int8 picks activation scales per batch, so scores move slightly with batch mates (serving/predictor.py).
INT8_TOLERANCE = 0.02


def margins(result: dict, thresholds: dict[str, float]) -> float:
    """How far a result is from flipping its label (its decision's distance to the nearest threshold)."""
    s = result["scores"]
    share = s[L.COUNTER_NARRATIVE] / max(s[L.COUNTER_NARRATIVE] + s[L.NEUTRAL], 1e-12)
    return min(abs(s[L.EXTREMIST] - thresholds.get(L.EXTREMIST, 0.5)),
               abs(share - thresholds.get(L.COUNTER_NARRATIVE, 0.5)))


def assert_agree(batch: list[dict], singles: list[dict], tolerance: float, thresholds: dict[str, float]) -> None:
    assert len(batch) == len(singles)
    for b, s in zip(batch, singles):
        assert max(abs(b["scores"][k] - s["scores"][k]) for k in L.LABELS) <= tolerance, (b, s)
        assert b["language"] == s["language"]
        if margins(b, thresholds) > 2 * tolerance:
            assert b["label"] == s["label"] and b["flagged"] == s["flagged"], (b, s)


@pytest.fixture(scope="module")
def server(transformer_model_dir, tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COUNTERPOINT_MAX_WAIT_MS": "5"}
    env.pop("COUNTERPOINT_API_KEYS", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "training.cli", "serve", "--model", str(transformer_model_dir),
                                 "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = threading.Event()
        with httpx.Client(base_url=base, timeout=5) as client:
            for _ in range(600):  # up to about a minute for imports and the model load
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
                try:
                    if client.get("/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                ready.wait(0.1)
            else:
                pytest.fail(f"server never became ready:\n{log_path.read_text()}")
        yield base, proc, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_serve_classify_over_http(server, transformer_model_dir):
    base, proc, log_path = server
    meta = load_predictor(transformer_model_dir, "onnx-int8").meta
    with httpx.Client(base_url=base, timeout=30) as client:
        response = client.post("/v1/classify", json={"texts": TEXTS})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == {"name": meta.name, "version": meta.version, "sha256": meta.sha256()}
        assert response.headers["x-model-version"] == meta.version
        assert len(body["results"]) == len(TEXTS)
        assert all(r["label"] in L.LABELS for r in body["results"])
        info = client.get("/v1/info").json()
        assert info["model"]["backend"] == "onnx-int8" and info["model"]["kind"] == "transformer"
        assert info["limits"]["max_wait_ms"] == 5

        # Concurrent single-text requests go through the micro-batcher and each gets its own answer.
        def single(text):
            with httpx.Client(base_url=base, timeout=30) as c:
                r = c.post("/v1/classify", json={"texts": [text]})
                assert r.status_code == 200, r.text
                return r.json()["results"][0]

        with ThreadPoolExecutor(8) as pool:
            singles = list(pool.map(single, TEXTS))
        assert_agree(body["results"], singles, INT8_TOLERANCE, meta.thresholds)

        bad = client.post("/v1/classify", json={"texts": [""]})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "empty_text"
        metrics = client.get("/metrics").text
        assert f"counterpoint_batch_size_texts_sum {float(2 * len(TEXTS))}" in metrics
        predicted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                        if line.startswith("counterpoint_predictions_total{"))
        assert predicted == 2 * len(TEXTS)

    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) in (0, 130, -signal.SIGINT)  # uvicorn re-raises the signal after a graceful shutdown
    log = log_path.read_text()
    assert "Application shutdown complete" in log and "Traceback" not in log
    assert f"loaded model {meta.name} version {meta.version} sha256 {meta.sha256()}" in log
    assert not any(text in log for text in TEXTS)  # post text is never logged by default


def test_batch_and_single_agree_fp32_and_int8(transformer_model_dir):
    long_text = " ".join(TEXTS) * 4  # several 128-token windows: scored by its most extreme window
    texts = [*TEXTS, long_text]
    for backend, tolerance in (("onnx", 1e-4), ("onnx-int8", INT8_TOLERANCE)):
        predictor = load_predictor(transformer_model_dir, backend)
        assert predictor.count_tokens([long_text])[0] > 2 * predictor.max_length
        with TestClient(create_app(load_settings(max_wait_ms=0), predictor)) as client:
            batch = client.post("/v1/classify", json={"texts": texts}).json()["results"]
            singles = [client.post("/v1/classify", json={"texts": [t]}).json()["results"][0] for t in texts]
        assert_agree(batch, singles, tolerance, predictor.meta.thresholds)
        if backend == "onnx":
            assert [r["label"] for r in batch] == [r["label"] for r in singles]
            direct = [p.to_dict() for p in predictor.predict([long_text])]
            assert_agree(singles[-1:], direct, tolerance, predictor.meta.thresholds)
