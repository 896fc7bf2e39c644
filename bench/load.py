"""Load benchmark: our service vs a naive one, each a real uvicorn process on 127.0.0.1, in the same run.

- ours: ``counterpoint serve`` (ONNX Runtime, micro-batcher) on the model folder;
- naive: a FastAPI app that calls ``transformers.pipeline("text-classification", model=DIR)`` once per request
  (torch fp32) on the same folder. By default (``--naive-mode serial``) the call runs in an ``async`` route, so calls
  never overlap: the service runs at the pipeline's own one-text-per-call speed. ``--naive-mode threadpool`` uses a
  plain ``def`` route instead (FastAPI runs it in its thread pool); on 2 cores the concurrent torch calls fight over
  the cores (each worker thread gets its own torch thread team) and single requests took 0.5-0.9 s, so that
  baseline flatters us and is not the default.

For each service and each concurrency level, N closed-loop clients (asyncio, one keep-alive connection each) send
single-post requests (``--texts-per-request`` to change) until ``--requests`` have completed; we print throughput
and p50/p95/p99 latency. Then an open-loop run fires requests at half the service's saturated throughput (the best of the levels)
on a fixed schedule and reports the latency a client sees at that load. Both services stay up; each load level runs
on one service at a time, alternating between them so that drifting machine load hits both alike. The client runs
on the same machine (it takes CPU from the servers: figures are a lower bound).

Goals (issue 13): saturated throughput >= 4x the naive service; p99 <= 50 ms for single-post requests
at half of saturation.

    python bench/load.py --model models/default --requests 400 --concurrency 1,4,16,64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
CORPORA = [ROOT / "data" / "labeled" / "test.jsonl", ROOT / "tests" / "fixtures" / "mini_corpus.jsonl"]
HOST = "127.0.0.1"


# -- the naive service -----------------------------------------------------------------------------------------
class NaiveBody(BaseModel):
    texts: list[str]


def naive_app(model_dir: str, mode: str = "serial"):
    """One ``pipeline`` call per request, no batching across requests: the baseline to beat."""
    from fastapi import FastAPI
    from transformers import pipeline

    classifier = pipeline("text-classification", model=model_dir, top_k=None)
    app = FastAPI(title="naive baseline")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    def classify(body: NaiveBody) -> dict:
        outputs = classifier(body.texts, truncation=True)
        results = [{"label": max(out, key=lambda o: o["score"])["label"],
                    "scores": {o["label"]: o["score"] for o in out}} for out in outputs]
        return {"results": results}

    async def classify_serial(body: NaiveBody) -> dict:
        return classify(body)  # blocks the event loop: one pipeline call at a time

    app.post("/v1/classify")(classify if mode == "threadpool" else classify_serial)
    return app


def run_naive_server(model_dir: str, port: int, mode: str) -> None:
    import uvicorn

    uvicorn.run(naive_app(model_dir, mode), host=HOST, port=port, log_level="warning", access_log=False)


# -- measuring -------------------------------------------------------------------------------------------------
@dataclass
class Level:
    service: str
    mode: str  # "closed" (N concurrent clients) or "open" (fixed arrival rate)
    concurrency: int | None
    rate: float | None
    requests: int
    errors: int
    seconds: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarise(service: str, mode: str, latencies: list[float], errors: int, seconds: float,
              concurrency: int | None = None, rate: float | None = None) -> Level:
    ok = sorted(latencies)
    return Level(service, mode, concurrency, rate, len(latencies) + errors, errors, seconds,
                 len(latencies) / seconds if seconds else 0.0,
                 *(percentile(ok, q) * 1000 for q in (0.50, 0.95, 0.99)))


def payloads(texts: list[str], n: int, per_request: int) -> list[bytes]:
    out = []
    for i in range(n):
        chunk = [texts[(i * per_request + j) % len(texts)] for j in range(per_request)]
        out.append(json.dumps({"texts": chunk}).encode())
    return out


FIRST_ERROR: list[str] = []


class Connection:
    """A minimal HTTP/1.1 keep-alive client connection. httpx spent up to 5 ms of CPU per request at 64 concurrent
    connections, on the same 2 cores as the servers, and starved them; this costs a few tens of microseconds."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        reused = self.writer is not None
        try:
            return await self._post(path, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
            # The server closed an idle keep-alive connection (uvicorn does after a few seconds): reconnect once.
            await self.close()
            return await self._post(path, body)

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(), self.port,
                                                                len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = None, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise RuntimeError("response without Content-Length")
        payload = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = self.reader = None


async def _post(conn: Connection, body: bytes) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        status, payload = await conn.post("/v1/classify", body)
        ok = status == 200
        problem = f"HTTP {status}: {payload[:300]!r}"
    except Exception as exc:
        await conn.close()
        ok, problem = False, f"{type(exc).__name__}: {exc}"
    if not ok and not FIRST_ERROR:
        FIRST_ERROR.append(problem)
        print(f"first error: {problem}", file=sys.stderr)
    return time.perf_counter() - started, ok


async def closed_loop(port: int, bodies: list[bytes], concurrency: int,
                      max_seconds: float = 120.0) -> tuple[list[float], int, float]:
    """``concurrency`` clients, each with its own connection, send the next request as soon as one returns
    (until every body was sent, or ``max_seconds`` have passed)."""
    latencies: list[float] = []
    errors = 0
    cursor = iter(range(len(bodies)))
    stop_at = time.perf_counter() + max_seconds

    async def worker():
        nonlocal errors
        conn = Connection(HOST, port)
        try:
            for i in cursor:
                if time.perf_counter() > stop_at:
                    break
                seconds, ok = await _post(conn, bodies[i])
                if ok:
                    latencies.append(seconds)
                else:
                    errors += 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


async def open_loop(port: int, bodies: list[bytes], rate: float) -> tuple[list[float], int, float]:
    """Requests start on a fixed schedule (``rate`` per second) whether or not earlier ones have returned."""
    latencies: list[float] = []
    errors = 0
    idle: list[Connection] = []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(i: int):
        nonlocal errors
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = idle.pop() if idle else Connection(HOST, port)
        seconds, ok = await _post(conn, bodies[i])
        idle.append(conn)
        if ok:
            latencies.append(seconds)
        else:
            errors += 1

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(one(i)) for i in range(len(bodies))]
    # Bounded: whatever has not returned a minute after the last scheduled start counts as an error.
    await asyncio.wait(tasks, timeout=len(bodies) / rate + 60)
    for task in tasks:
        if not task.done():
            task.cancel()
            errors += 1
    await asyncio.gather(*tasks, return_exceptions=True)
    seconds = time.perf_counter() - started
    for conn in idle:
        await conn.close()
    return latencies, errors, seconds


def run(coro):
    try:
        import uvloop  # installed with uvicorn[standard]; a cheaper event loop for the client too

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# -- running the services --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Service:
    def __init__(self, name: str, command: list[str], port: int, ready_path: str, env: dict[str, str], log: Path):
        self.name, self.command, self.port, self.ready_path = name, command, port, ready_path
        self.env, self.log = env, log
        self.base = f"http://{HOST}:{port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Service":
        import httpx

        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} service exited with {self.proc.returncode}; see {self.log}:\n"
                                 + self.log.read_text()[-3000:])
            try:
                if httpx.get(self.base + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise SystemExit(f"{self.name} service not ready after 180 s; see {self.log}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def measure(services: list[Service], texts: list[str], args) -> list[Level]:
    """Each concurrency level on every service in turn (interleaved, so drifting machine load hits both alike),
    ``--repeat`` rounds; then open-loop runs on each at half its own saturated throughput."""
    levels = []
    # Warm up at the highest concurrency (in threadpool mode every worker thread of the naive service sets up its
    # own torch thread team on first use).
    top = max(args.concurrency)
    warm = payloads(texts, max(args.warmup, 2 * top), args.texts_per_request)
    for service in services:
        run(closed_loop(service.port, warm, top))
    for _ in range(args.repeat):
        for concurrency in args.concurrency:
            for service in services:
                bodies = payloads(texts, args.requests, args.texts_per_request)
                latencies, errors, seconds = run(closed_loop(service.port, bodies, concurrency, args.max_seconds))
                level = summarise(service.name, "closed", latencies, errors, seconds, concurrency=concurrency)
                levels.append(level)
                print(row(level), flush=True)
    rates = {}
    for service in services:
        saturated = max(level.throughput for level in levels if level.service == service.name)
        if saturated <= 0:
            raise SystemExit(f"{service.name}: every request failed ({FIRST_ERROR[:1]}); see {service.log}")
        rates[service.name] = saturated / 2
    for _ in range(args.repeat):
        for service in services:
            rate = rates[service.name]
            n = max(20, min(args.open_requests, int(rate * args.open_seconds)))
            latencies, errors, seconds = run(open_loop(service.port, payloads(texts, n, args.texts_per_request),
                                                       rate))
            level = summarise(service.name, "open", latencies, errors, seconds, rate=rate)
            levels.append(level)
            print(row(level), flush=True)
    return levels


HEADER = (f"{'service':<8} {'load':<22} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8}")


def row(level: Level) -> str:
    load = (f"{level.concurrency} concurrent" if level.mode == "closed"
            else f"open {level.rate:.0f}/s (half sat.)")
    return (f"{level.service:<8} {load:<22} {level.requests:>8} {level.errors:>6} {level.throughput:>8.1f} "
            f"{level.p50_ms:>8.1f} {level.p95_ms:>8.1f} {level.p99_ms:>8.1f}")


def load_texts(limit: int = 2000) -> tuple[list[str], Path]:
    for path in CORPORA:
        if path.is_file():
            texts = []
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        text = json.loads(line).get("text")
                        if isinstance(text, str) and text.strip():
                            texts.append(text)
                    if len(texts) >= limit:
                        break
            if texts:
                return texts, path
    raise SystemExit(f"no texts found in {' or '.join(map(str, CORPORA))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default", help="model folder")
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16, 64],
                        help="comma-separated client counts")
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--open-requests", type=int, default=600, help="most requests in the half-saturation run")
    parser.add_argument("--open-seconds", type=float, default=10.0, help="target length of that run")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="stop a closed-loop level after this long even if not every request was sent")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every measurement; the best one is reported")
    parser.add_argument("--backend", default=None, help="backend for our service (default: the folder's best)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--naive-model", type=Path, default=None,
                        help="the folder the naive service runs (default: --model); e.g. the 12-layer teacher when "
                             "--model is a distilled student, to measure what the smaller network buys")
    parser.add_argument("--naive-mode", choices=("serial", "threadpool"), default="serial",
                        help="how the naive service runs its pipeline calls (see the module docstring)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "load.json")
    parser.add_argument("--naive-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.naive_server:
        run_naive_server(str(args.model), args.port, args.naive_mode)
        return 0
    if not (args.model / "model_meta.json").is_file():
        raise SystemExit(f"{args.model} is not a model folder; train one (`make train`) or pass --model DIR")
    if max(args.concurrency) > 1000:
        raise SystemExit("keep --concurrency under 1000")

    texts, corpus = load_texts()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("COUNTERPOINT_API_KEYS", None)
    ours_env = {**env, "COUNTERPOINT_LOG_LEVEL": "warning",
                "COUNTERPOINT_QUEUE_SIZE": str(max(1024, 2 * max(args.concurrency) * args.texts_per_request))}
    logs = args.out.parent
    print(f"model {args.model}; naive service on {args.naive_model or args.model}; {len(texts)} texts from {corpus.relative_to(ROOT)}; "
          f"{args.texts_per_request} text(s) per request; naive mode {args.naive_mode}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    ours_cmd = [sys.executable, "-m", "training.cli", "serve", "--model", str(args.model), "--host", HOST]
    if args.backend:
        ours_cmd += ["--backend", args.backend]
    port = free_port()
    with contextlib.ExitStack() as stack:
        services = [stack.enter_context(Service("ours", ours_cmd + ["--port", str(port)], port, "/health/ready",
                                                ours_env, logs / "ours.log"))]
        if not args.skip_naive:
            port = free_port()
            naive_cmd = [sys.executable, str(Path(__file__).resolve()), "--naive-server", "--model",
                         str(args.naive_model or args.model),
                         "--port", str(port), "--naive-mode", args.naive_mode]
            services.append(stack.enter_context(Service("naive", naive_cmd, port, "/health", env,
                                                        logs / "naive.log")))
        print(HEADER)
        levels = measure(services, texts, args)

    print()
    # Other processes on the machine only ever slow a run down, so the best of the repeats is the least disturbed.
    best: dict[tuple[str, str, int | None], Level] = {}
    for level in levels:
        key = (level.service, level.mode, level.concurrency)
        if level.mode == "closed":
            better = key not in best or level.throughput > best[key].throughput
        else:
            better = key not in best or level.p99_ms < best[key].p99_ms
        if better:
            best[key] = level
    summary: dict = {"repeat": args.repeat}
    sat = {name: max((lv.throughput for (n, m, _), lv in best.items() if n == name and m == "closed"), default=0.0)
           for name in ("ours", "naive")}
    if args.repeat > 1:
        print(f"best of {args.repeat} rounds:")
        print(HEADER)
        for level in sorted(best.values(), key=lambda lv: (lv.mode, lv.concurrency or 0, lv.service != "ours")):
            print(row(level))
        print()
    if not args.skip_naive:
        print(f"{'concurrency':>11} {'ours req/s':>11} {'naive req/s':>12} {'ratio':>6}")
        for c in args.concurrency:
            ours, naive = best[("ours", "closed", c)], best[("naive", "closed", c)]
            ratio = ours.throughput / naive.throughput if naive.throughput else float("inf")
            print(f"{c:>11} {ours.throughput:>11.1f} {naive.throughput:>12.1f} {ratio:>6.2f}")
        summary["saturated_ratio"] = sat["ours"] / sat["naive"] if sat["naive"] else None
        print(f"saturated throughput: ours {sat['ours']:.1f} req/s, naive {sat['naive']:.1f} req/s, "
              f"ratio {summary['saturated_ratio']:.2f} (goal >= 4, issue 13)")
    half = best[("ours", "open", None)]
    summary["ours_saturated_rps"] = sat["ours"]
    summary["ours_p99_ms_at_half_saturation"] = half.p99_ms
    print(f"ours at half saturation ({half.rate:.0f} req/s): p50 {half.p50_ms:.1f} ms, p99 {half.p99_ms:.1f} ms "
          f"(goal p99 <= 50 ms)")
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": str(args.model), "naive_model": str(args.naive_model or args.model),
                                    "corpus": str(corpus), "cpus": os.cpu_count(),
                                    "texts_per_request": args.texts_per_request, "naive_mode": args.naive_mode,
                                    "summary": summary,
                                    "levels": [asdict(level) for level in levels]}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
