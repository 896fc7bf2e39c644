"""Helpers shared by test modules (tests import these, never each other)."""

from __future__ import annotations

import json
import socket
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINI_CORPUS = ROOT / "tests" / "fixtures" / "mini_corpus.jsonl"


def tiny_config(output: Path, *extra: str):
    """A training config on the mini corpus (dev and test split off it), written to ``output``."""
    from training.config import load_config

    return load_config(overrides=[
        f'data.train=["{MINI_CORPUS}"]', "data.dev=[]", "data.test=[]", "data.split_fractions=[0.25, 0.25]",
        f'output.dir="{output}"', 'output.name="tiny-test"', 'output.version="0.0.1"',
        # tiny models pass with the fastest int8 recipe; the default's start at its usual one (default.toml)
        'export.int8_first_recipe=""', *extra])


def write_jsonl(path: Path, rows: list, raw_lines: tuple | list = ()) -> Path:
    """Rows as JSON lines (a ``str`` row is written as it is), then ``raw_lines`` verbatim."""
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
        for line in raw_lines:
            fh.write(line + "\n")
    return Path(path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(predictor, **overrides):
    """A TestClient with the lifespan run (model + batcher up) and settings built from ``overrides``."""
    from fastapi.testclient import TestClient

    from serving.api.app import create_app
    from serving.settings import load_settings

    app = create_app(load_settings(**overrides), predictor)
    with TestClient(app) as client:
        yield client


def assert_error(response, status: int, code: str, *fragments: str) -> dict:
    """The response is our JSON error shape with ``status`` and ``code``, and its message holds ``fragments``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    for fragment in fragments:
        assert fragment in body["error"]["message"], body
    return body


class Recording:
    """The real predictor, remembering the texts of each predict call."""

    def __init__(self, predictor):
        self.inner, self.calls = predictor, []
        self.meta, self.backend, self.folder = predictor.meta, predictor.backend, predictor.folder

    def predict(self, texts, *args, **kw):
        self.calls.append(list(texts))
        return self.inner.predict(texts, *args, **kw)


class CrashAfter(Recording):
    """The real predictor, with the process 'dying' after ``n`` predict calls (as a crash would stop it)."""

    def __init__(self, predictor, n: int):
        super().__init__(predictor)
        self.n = n

    def predict(self, texts, *args):
        if self.n == 0:
            raise SystemExit("simulated crash")
        self.n -= 1
        return super().predict(texts, *args)
