"""Store fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL: ``COUNTERPOINT_TEST_POSTGRES_URL`` (default: the server of this machine, 127.0.0.1:5432, user postgres,
database test). Each test gets its own schema, dropped afterwards. Where no server answers, the PostgreSQL variants
are skipped with a message saying so (never passed silently).
"""

from __future__ import annotations

import os
import uuid

import pytest

PG_URL = os.environ.get("COUNTERPOINT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_pg_state: dict[str, str | None] = {}


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can (checked once)."""
    if "problem" not in _pg_state:
        try:
            import psycopg  # noqa: F401
            from sqlalchemy import create_engine, text

            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_state["problem"] = None
        except ImportError:
            _pg_state["problem"] = "psycopg is not installed (pip install -e '.[dev]')"
        except Exception as exc:  # noqa: BLE001 - any failure to connect means: no server here
            _pg_state["problem"] = f"no PostgreSQL server at {PG_URL} ({type(exc).__name__})"
    return _pg_state["problem"]


def _pg_schema_url() -> tuple[str, callable]:
    from sqlalchemy import create_engine, text

    schema = "cp_test_" + uuid.uuid4().hex[:10]
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", drop


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'review.sqlite3'}"
        return
    yield from _postgres_schema("PostgreSQL store test")


@pytest.fixture
def postgres_url():
    yield from _postgres_schema("PostgreSQL test")


def _postgres_schema(what: str):
    """A fresh schema on the test PostgreSQL server for one test, dropped after it; skip (saying why) without one."""
    problem = postgres_problem()
    if problem:
        pytest.skip(f"{what} skipped: {problem}. Start one (or set COUNTERPOINT_TEST_POSTGRES_URL).")
    url, drop = _pg_schema_url()
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def start_service(tmp_path):
    """``start_service(model_dir, **env) -> (base_url, process)``: a real `counterpoint serve` (uvicorn) process on a
    free port of 127.0.0.1, ready; stopped (or found killed) at the end."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from tests.helpers import free_port

    root = Path(__file__).resolve().parents[2]
    procs = []

    def start(model_dir, **env_overrides):
        port = free_port()
        log_path = tmp_path / f"serve-{port}.log"
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        for key in [k for k in env if k.startswith("COUNTERPOINT_")]:
            env.pop(key)
        env.update({f"COUNTERPOINT_{k.upper()}": str(v) for k, v in env_overrides.items()})
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "training.cli", "serve", "--model", str(model_dir),
                                     "--host", "127.0.0.1", "--port", str(port)], cwd=root, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=base, timeout=5) as client:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
                try:
                    if client.get("/health/ready").status_code == 200:
                        return base, proc
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        pytest.fail(f"server never became ready:\n{log_path.read_text()}")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
