"""Hot swap (issue 12): a running service picks up a newly promoted model without a restart and without failing a
request. A real uvicorn server (in a thread, on a free port of 127.0.0.1) serves the `models/default`-style symlink
of a registry; client threads send requests the whole time while the symlink is retargeted and the service
reloaded (by the admin route, or by the watcher)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from serving.api.app import create_app
from serving.artifact import update_meta
from serving.settings import load_settings
from tests.helpers import assert_error, free_port, serve

KEY = "hot-swap-key-0123456789abcdef"
ADMIN_KEY = "hot-swap-admin-0123456789abcdef"
TEXTS = ["Join the caravan. The brothers need you at the front.",
         "jihad ka matlab nafs se larna hai, bandooq uthana nahi",
         "ہم امن چاہتے ہیں اور تشدد کی مذمت کرتے ہیں"]


def _copy(src: Path, dst: Path, version: str) -> Path:
    shutil.copytree(src, dst)
    update_meta(dst, version=version)  # the fixtures share name and version; the test tells them apart by it
    return dst


@pytest.fixture(scope="module")
def versions(tmp_path_factory, linear_model_dir) -> dict[str, Path]:
    """Model folders to promote: two linear ones, and a linear one whose weights were altered."""
    root = tmp_path_factory.mktemp("hot_swap")
    out = {"lin-a": _copy(linear_model_dir, root / "lin-a", "1.0.0-a"),
           "lin-b": _copy(linear_model_dir, root / "lin-b", "1.0.0-b"),
           "broken": _copy(linear_model_dir, root / "broken", "3.0.0-broken")}
    with open(out["broken"] / "model.skops", "r+b") as fh:  # changed after training: fails verification
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    return out


@pytest.fixture(scope="module")
def transformer_version(tmp_path_factory, transformer_model_dir) -> Path:
    return _copy(transformer_model_dir, tmp_path_factory.mktemp("hot_swap_tf") / "tf", "2.0.0-tf")


def point(link: Path, target: Path) -> None:
    """Retarget a relative symlink atomically, as `counterpoint promote`/`rollback` do (training/registry.py)."""
    tmp = link.parent / f".{link.name}.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)


@pytest.fixture
def link(tmp_path, versions) -> Path:
    path = tmp_path / "default"
    point(path, versions["lin-a"])
    return path


@contextmanager
def running(settings):
    """A real uvicorn server for ``create_app(settings)`` (its lifespan loads the model folder)."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning",
                                           workers=1, timeout_keep_alive=15))
    thread = threading.Thread(target=server.run, name="uvicorn-hot-swap", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(60)


class Load:
    """Client threads sending classify requests back to back; every outcome is recorded per thread, in order."""

    def __init__(self, base: str, threads: int = 3, pause_s: float = 0.005):
        self.base, self.pause_s = base, pause_s
        self.stop = threading.Event()
        self.outcomes: list[list[tuple]] = [[] for _ in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, i: int) -> None:
        record = self.outcomes[i]
        with httpx.Client(base_url=self.base, timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                texts = TEXTS[: 1 + n % len(TEXTS)]
                n += 1
                try:
                    r = client.post("/v1/classify", json={"texts": texts})
                except httpx.HTTPError as exc:
                    record.append(("error", type(exc).__name__, None))
                    continue
                status, body_version = r.status_code, None
                if status == 200:
                    body = r.json()
                    body_version = body["model"]["version"]
                    if len(body["results"]) != len(texts):
                        status = "wrong number of results"
                record.append((status, r.headers.get("x-model-version"), body_version))
                time.sleep(self.pause_s)

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def all(self) -> list[tuple]:
        return [o for per_thread in self.outcomes for o in list(per_thread)]

    def wait_for(self, version: str, count: int = 5, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(o[2] == version for o in self.all()) < count:
            assert time.monotonic() < deadline, f"fewer than {count} responses from {version}"
            time.sleep(0.05)


def test_swap_under_load_fails_no_request(link, versions, transformer_version):
    settings = load_settings(model_dir=str(link), max_wait_ms=2)
    a, b = "1.0.0-a", "2.0.0-tf"
    with running(settings) as (base, app), httpx.Client(base_url=base, timeout=60) as admin:
        assert admin.get("/health/ready").json()["model"]["version"] == a
        with Load(base) as load:
            load.wait_for(a)
            first = app.state.service
            point(link, transformer_version)  # `counterpoint promote` of the transformer
            r = admin.post("/v1/admin/reload")
            assert r.status_code == 200, r.text
            swap = r.json()
            assert swap["old"]["version"] == a and swap["new"]["version"] == b
            assert swap["folder"] == os.path.realpath(transformer_version)
            assert set(swap["old"]) == {"name", "version", "sha256"}
            assert swap["old"]["sha256"] != swap["new"]["sha256"]
            # The old model finished what it held and was stopped before the reload answered.
            assert not first.batcher.running and first.users == 0
            load.wait_for(b)

            # A folder that fails verification: 422, and the transformer keeps serving.
            point(link, versions["broken"])
            r = admin.post("/v1/admin/reload")
            assert_error(r, 422, "reload_failed", "failed verification", b)
            assert r.headers["x-model-version"] == b
            served = sum(o[2] == b for o in load.all())
            load.wait_for(b, served + 5)

        outcomes = load.all()
        failed = [o for o in outcomes if o[0] != 200]
        assert not failed, failed[:5]
        for per_thread in load.outcomes:
            seen = [o[2] for o in per_thread]
            assert set(seen) == {a, b} or set(seen) == {b}
            # Old then new, never back; and the header names the model that scored the request.
            assert seen == sorted(seen, key=lambda v: v == b), seen
            assert all(o[1] == o[2] for o in per_thread)
        assert sum(o[2] == a for o in outcomes) >= 5 and sum(o[2] == b for o in outcomes) >= 10

        info = admin.get("/v1/info").json()
        assert info["model"]["version"] == b and info["model"]["kind"] == "transformer"
        assert admin.get("/health/ready").json()["model"] == swap["new"]
        assert admin.get("/health/live").headers["x-model-version"] == b
        metrics = admin.get("/metrics").text
        assert f'version="{b}"' in metrics and 'kind="transformer"' in metrics and f'version="{a}"' not in metrics

        # `counterpoint rollback`: the link goes back, and so does the service.
        point(link, versions["lin-a"])
        r = admin.post("/v1/admin/reload")
        assert r.status_code == 200 and r.json()["new"]["version"] == a, r.text
        assert admin.post("/v1/classify", json={"texts": TEXTS}).json()["model"]["version"] == a


def test_watcher_follows_the_symlink(link, versions):
    settings = load_settings(model_dir=str(link), watch_model=True, watch_interval_s=0.05)

    def ready_version(client) -> str:
        return client.get("/health/ready").json()["model"]["version"]

    def until(client, version: str) -> None:
        deadline = time.monotonic() + 30
        while ready_version(client) != version:
            assert time.monotonic() < deadline, f"the watcher never switched to {version}"
            time.sleep(0.05)

    with running(settings) as (base, app), httpx.Client(base_url=base, timeout=30) as client:
        assert ready_version(client) == "1.0.0-a"
        with Load(base, threads=2) as load:
            load.wait_for("1.0.0-a")
            point(link, versions["lin-b"])
            until(client, "1.0.0-b")
            load.wait_for("1.0.0-b")
            point(link, versions["broken"])  # logged and skipped; the service keeps serving
            deadline = time.monotonic() + 30
            while app.state.reloader.failed != os.path.realpath(versions["broken"]):
                assert time.monotonic() < deadline, "the watcher never tried the broken folder"
                time.sleep(0.05)
            assert ready_version(client) == "1.0.0-b"
            point(link, versions["lin-a"])
            until(client, "1.0.0-a")
            load.wait_for("1.0.0-a", sum(o[2] == "1.0.0-a" for o in load.all()) + 3)
        assert not [o for o in load.all() if o[0] != 200]


def test_reload_needs_an_admin_key(link, linear_predictor):
    with serve(linear_predictor, model_dir=str(link), api_keys=KEY, admin_keys=ADMIN_KEY) as client:
        assert_error(client.post("/v1/admin/reload"), 401, "unauthorized")
        assert_error(client.post("/v1/admin/reload", headers={"Authorization": "Bearer not-a-key-0123456789"}),
                     401, "unauthorized")
        assert_error(client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"}), 403, "forbidden",
                     "COUNTERPOINT_ADMIN_KEYS")
        r = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 200, r.text
        assert r.json()["new"]["version"] == "1.0.0-a" and r.headers["x-model-version"] == "1.0.0-a"
        # The admin key classifies too; the API key still does.
        for key in (KEY, ADMIN_KEY):
            r = client.post("/v1/classify", json={"texts": TEXTS}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200 and r.json()["model"]["version"] == "1.0.0-a"
    with serve(linear_predictor, model_dir=str(link), api_keys=KEY) as client:  # no admin keys: nobody reloads
        assert_error(client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"}), 403, "forbidden")


def test_one_reload_at_a_time(link, linear_predictor, versions):
    with serve(linear_predictor, model_dir=str(link)) as client:
        reloader = client.app.state.reloader
        loading, release = threading.Event(), threading.Event()
        real_load = reloader._load

        def slow_load(folder):
            loading.set()
            assert release.wait(30)
            return real_load(folder)

        reloader._load = slow_load
        point(link, versions["lin-b"])
        results = {}
        first = threading.Thread(target=lambda: results.setdefault("first", client.post("/v1/admin/reload")))
        first.start()
        try:
            assert loading.wait(30)
            assert_error(client.post("/v1/admin/reload"), 409, "reload_in_progress")
            # Classify still answers on the old model while the new one loads.
            r = client.post("/v1/classify", json={"texts": TEXTS})
            assert r.status_code == 200 and r.headers["x-model-version"] == linear_predictor.meta.version
        finally:
            release.set()
            first.join(60)
        assert results["first"].status_code == 200, results["first"].text
        assert results["first"].json()["new"]["version"] == "1.0.0-b"
        reloader._load = real_load
        r = client.post("/v1/admin/reload")  # free again
        assert r.status_code == 200 and client.get("/v1/info").json()["model"]["version"] == "1.0.0-b"


class Gated:
    """The real predictor, holding each model call until ``gate`` opens (a request in flight during a swap)."""

    def __init__(self, predictor, gate: threading.Event):
        self.inner, self.gate, self.entered = predictor, gate, threading.Event()
        self.meta, self.backend, self.folder = predictor.meta, predictor.backend, predictor.folder

    def predict(self, texts, *args, **kwargs):
        self.entered.set()
        assert self.gate.wait(30)
        return self.inner.predict(texts, *args, **kwargs)


def test_requests_in_flight_finish_on_the_old_model(link, linear_predictor):
    gate = threading.Event()
    old_version = linear_predictor.meta.version
    with serve(Gated(linear_predictor, gate), model_dir=str(link)) as client:
        results = {}

        def call(name, method, path, **kw):
            results[name] = client.request(method, path, **kw)

        busy = threading.Thread(target=call, args=("busy", "POST", "/v1/classify"), kwargs={"json": {"texts": TEXTS}})
        busy.start()
        swap = threading.Thread(target=call, args=("swap", "POST", "/v1/admin/reload"))
        try:
            assert client.app.state.service.predictor.entered.wait(30)  # the old model is computing it
            swap.start()
            deadline = time.monotonic() + 30
            while client.app.state.service.model.version != "1.0.0-a":
                assert time.monotonic() < deadline, "the new model was never swapped in"
                time.sleep(0.02)
            # New requests go to the new model at once, while the old one still holds its request.
            r = client.post("/v1/classify", json={"texts": TEXTS})
            assert r.status_code == 200 and r.json()["model"]["version"] == "1.0.0-a"
            assert r.headers["x-model-version"] == "1.0.0-a"
            assert swap.is_alive() and busy.is_alive()  # the reload answers once the old model has drained
        finally:
            gate.set()
            busy.join(60)
            swap.join(60)
        assert results["busy"].status_code == 200, results["busy"].text
        assert results["busy"].json()["model"]["version"] == old_version
        assert results["busy"].headers["x-model-version"] == old_version  # named after the model that scored it
        assert results["swap"].status_code == 200, results["swap"].text
        body = results["swap"].json()
        assert body["old"]["version"] == old_version and body["new"]["version"] == "1.0.0-a"
        assert body["drain_s"] > 0


def test_the_heap_is_frozen_while_serving_and_a_swapped_out_model_is_freed(link, versions):
    """``gc.freeze`` keeps full collections from scanning the model and the app (a latency spike); a swapped-out
    model must still be collectable, and shutting down unfreezes."""
    import gc
    import weakref

    settings = load_settings(model_dir=str(link), gc_freeze=True)
    with running(settings) as (base, app):
        assert gc.get_freeze_count() > 0
        predictor = app.state.service.predictor
        predictor.self_cycle = predictor  # only the cyclic collector can free it, once it is unfrozen
        old = weakref.ref(predictor)
        del predictor
        point(link, versions["lin-b"])
        r = httpx.post(base + "/v1/admin/reload", timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["new"]["version"] == "1.0.0-b"
        assert old() is None, "the swapped-out predictor is still alive"
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with running(load_settings(model_dir=str(link), gc_freeze=False)):  # COUNTERPOINT_GC_FREEZE=false
        assert gc.get_freeze_count() == 0
