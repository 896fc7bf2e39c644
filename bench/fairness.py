"""Fairness under hostile load: a short-post client's latency while 16 clients send worst-case legal requests.

Starts ``counterpoint``'s app in-process on a real uvicorn server (127.0.0.1, a free port) with the model folder, then
runs, for ``--seconds``:

- ``--heavy`` (16) closed-loop clients, each sending the most expensive request the service accepts: as many texts
  as allowed, each as long as allowed in characters and (where the service counts them) in windows, within the
  request's token budget. Requests refused with 413/429 count as refused; 503 timeouts as timed out.
- one client sending a single short post, one request at a time with ``--short-interval-ms`` pauses; its latency
  p50/p95/p99 over its answered (200) requests is the figure of merit (goal, issue 10: p99 <= 1 s); its statuses are
  printed too (a 429 is fast, and no answer).

After the load stops, the bench waits for the model thread to go idle and reports how long it kept computing
(``drain_s``): work done for requests whose clients had given up. With ``--old-tree DIR`` the same bench runs
against another checkout of the code (e.g. ``git archive HEAD | tar -x -C DIR``) for a before/after figure.

``--scheduling``: ``windows`` (the service's default for transformers: texts are split into model windows that are
scheduled one by one), ``texts`` (whole texts, as before window scheduling) or ``both`` (texts, then windows, one
after the other in this run, with a side-by-side summary). Each run records the 1-minute load average before and
after it: the figures mean little without it on a shared machine.

    python bench/fairness.py --model models/default --seconds 30
    python bench/fairness.py --model models/default --seconds 30 --old-tree /tmp/old
    python bench/fairness.py --model models/default --seconds 30 --polite   # clients honour Retry-After
    nice -n 19 python bench/fairness.py --model models/default --seconds 30 --scheduling both

Prints figures only; nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHORT = "yaar kal match dekhne chalein? traffic bohat hai"
WORDS = ("the ministry announced new rules for registration today and the committee met in Islamabad to discuss "
         "schools roads water cricket weather markets prices farmers trains").split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def heavy_request(predictor, limits: dict) -> list[str]:
    """The most expensive request the limits allow: long texts, as many as fit."""
    rng = random.Random(7)
    max_chars = limits["max_chars_per_text"]
    text = ""
    while len(text) < max_chars:
        text += rng.choice(WORDS) + " "
    text = text[:max_chars].strip()
    max_windows = limits.get("max_windows_per_text")
    costs = getattr(predictor, "window_costs", None)
    if max_windows and costs:
        while costs([text])[0][0] > max_windows:  # shorten until the text has an allowed number of windows
            text = text[: int(len(text) * 0.9)]
    n = limits["max_texts_per_request"]
    budget = limits.get("max_tokens_per_request")
    if budget and costs:
        n = max(1, min(n, budget // costs([text])[0][1]))
    return [text] * n


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summary(latencies: list[float]) -> dict:
    return {"n": len(latencies), "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95),
            "p99_s": percentile(latencies, 0.99), "max_s": max(latencies, default=float("nan"))}


def short_client(url: str, begin: float, stop: float, interval: float) -> tuple[list, list, dict]:
    """The short-post client, in a process of its own (a real client does not share an event loop with sixteen
    others sending 260 kB bodies): latencies, send times (s into the run) and statuses."""
    import httpx

    async def main():
        latencies, times, status = [], [], {}
        async with httpx.AsyncClient() as client:
            while time.monotonic() < begin + 0.5:  # let the heavy clients fill the queue first
                await asyncio.sleep(0.02)
            while time.monotonic() < stop:
                started, sent = time.perf_counter(), time.monotonic() - begin
                r = await client.post(url, json={"texts": [SHORT]}, timeout=120)
                if r.status_code == 200:  # latency of answers only: a fast 429 is no answer
                    latencies.append(time.perf_counter() - started)
                    times.append(sent)
                status[r.status_code] = status.get(r.status_code, 0) + 1
                await asyncio.sleep(interval)
        return latencies, times, status

    return asyncio.run(main())


async def run_load(url: str, heavy_body: dict, seconds: float, heavy: int, interval: float,
                   polite: bool = False, warmup: float = 5.0) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import httpx

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(int).result()  # the client process is up before the clock starts
    begin = time.monotonic()
    stop = begin + seconds
    heavy_status: dict[int, int] = {}
    heavy_timeouts: list[float] = []

    async def heavy_client(client):
        while time.monotonic() < stop:
            try:
                r = await client.post(url, json=heavy_body, timeout=120)
                heavy_status[r.status_code] = heavy_status.get(r.status_code, 0) + 1
                if r.status_code == 503:
                    heavy_timeouts.append(round(time.monotonic() - begin, 1))
                if polite and r.status_code == 429:
                    await asyncio.sleep(float(r.headers.get("retry-after", 1)))
            except httpx.HTTPError:
                heavy_status[-1] = heavy_status.get(-1, 0) + 1

    limits = httpx.Limits(max_connections=heavy + 4)
    short = asyncio.get_running_loop().run_in_executor(pool, short_client, url, begin, stop, interval)
    async with httpx.AsyncClient(limits=limits) as client:
        await asyncio.gather(*(heavy_client(client) for _ in range(heavy)))
    short_latencies, short_times, short_status = await short
    pool.shutdown()
    return {"short": {**summary(short_latencies), "status": short_status},
            # Past the first ``warmup`` seconds (the sixteen heavy clients' first requests all arrive at once and
            # are tokenised together before the queue can refuse them).
            "short_after_warmup": {**summary([x for x, t in zip(short_latencies, short_times) if t >= warmup]),
                                   "warmup_s": warmup},
            # Every answer over 1 s: [sent at (s into the run), latency (s)].
            "short_slow": [[round(t, 1), round(x, 2)] for x, t in zip(short_latencies, short_times) if x > 1.0],
            "heavy": {"status": heavy_status, "texts_per_request": len(heavy_body["texts"]),
                      "chars_per_text": len(heavy_body["texts"][0]), "timeouts_at_s": heavy_timeouts}}


def serve(args) -> None:
    """The server process: the app on uvicorn, nothing else in the process (no client competing for the GIL)."""
    import uvicorn

    from serving.api.app import create_app
    from serving.predictor import load_predictor
    from serving.settings import load_settings

    settings = load_settings(model_dir=Path(args.model), threads=args.threads)
    predictor = load_predictor(args.model, threads=args.threads, batch_size=settings.model_batch_size)
    if args.scheduling in ("texts", "windows"):
        from serving.api import app as app_module

        if hasattr(app_module, "WINDOW_SCHEDULING"):
            app_module.WINDOW_SCHEDULING = args.scheduling == "windows"
        elif args.scheduling == "windows":
            print("note: this code has no window scheduling; it schedules whole texts", file=sys.stderr)
    uvicorn.run(create_app(settings, predictor), host="127.0.0.1", port=args.serve, log_level="warning")


def batches_done(url: str) -> tuple[float, float]:
    """(batches run, seconds spent in the model) from the service's Prometheus metrics."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=30).text
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith("counterpoint_batch_duration_seconds_count"):
            count = float(line.split()[-1])
        elif line.startswith("counterpoint_batch_duration_seconds_sum"):
            total = float(line.split()[-1])
    return count, total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--heavy", type=int, default=16)
    parser.add_argument("--short-interval-ms", type=float, default=100)
    parser.add_argument("--old-tree", help="run against the code in this folder instead of this checkout")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--polite", action="store_true", help="heavy clients wait Retry-After after a 429 (the "
                                                                  "default hammers at once: the worst case)")
    parser.add_argument("--scheduling", choices=("windows", "texts", "both"), default="windows",
                        help="windows: window-level scheduling (default); texts: whole texts (before); both: texts "
                             "then windows in this run, side by side")
    parser.add_argument("--warmup", type=float, default=5.0, help="also report the short client's figures from this "
                                                                    "many seconds into the run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: be the server on this port
    args = parser.parse_args()
    tree = Path(args.old_tree).resolve() if args.old_tree else ROOT
    sys.path.insert(0, str(tree))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.serve:
        serve(args)
        return

    from serving.predictor import load_predictor
    from serving.settings import load_settings

    settings = load_settings(model_dir=Path(args.model))
    limits = settings.limits()
    body = {"texts": heavy_request(load_predictor(args.model), limits)}
    modes = ("texts", "windows") if args.scheduling == "both" else (args.scheduling,)
    results = {}
    for mode in modes:
        results[mode] = bench_once(args, tree, body, mode)
        results[mode]["limits"] = limits
        print(json.dumps(results[mode], indent=2, default=str), flush=True)
    print("\nshort-post client (s)   " + "  ".join(f"{m:>24}" for m in modes))
    for part in ("short", "short_after_warmup"):
        for key in ("n", "p50_s", "p95_s", "p99_s", "max_s"):
            cells = [results[m][part][key] for m in modes]
            label = key if part == "short" else f"{key} (after {args.warmup:g} s)"
            print(f"  {label:<22}" + "  ".join(f"{c:>24.3f}" if isinstance(c, float) else f"{c:>24}" for c in cells))
    for key in ("load_before", "load_after", "drain_s", "batches", "model_busy_s"):
        print(f"  {key:<22}" + "  ".join(f"{str(results[m][key]):>24}" for m in modes))
    print("  short statuses        " + "  ".join(f"{str(results[m]['short']['status']):>24}" for m in modes))
    print("  heavy statuses        " + "  ".join(f"{str(results[m]['heavy']['status']):>24}" for m in modes))
    for m in modes:
        print(f"  {m}: short answers over 1 s [sent at s, latency s]: {results[m]['short_slow']}; heavy 503s at s: "
              f"{results[m]['heavy']['timeouts_at_s']}")


def bench_once(args, tree: Path, body: dict, mode: str) -> dict:
    """One run: a fresh server (``mode`` scheduling), the load for ``--seconds``, then the drain."""
    import subprocess

    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, __file__, "--serve", str(port), "--model", str(args.model), "--scheduling", mode]
    cmd += ["--old-tree", str(tree)] if args.old_tree else []
    cmd += ["--threads", str(args.threads)] if args.threads else []
    server = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(tree)})
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        load_before = round(os.getloadavg()[0], 2)
        result = asyncio.run(run_load(url + "/v1/classify", body, args.seconds, args.heavy,
                                      args.short_interval_ms / 1000, args.polite, args.warmup))
        result["load_before"], result["load_after"] = load_before, round(os.getloadavg()[0], 2)
        result["heavy"]["polite"] = args.polite
        # How long does the server keep computing once every client has gone? Watch its CPU time settle (work for
        # requests whose clients gave up: nobody reads those answers).
        ended = time.perf_counter()
        busy_until, last_cpu = ended, cpu_seconds(server.pid)
        while time.perf_counter() - busy_until < 2.0 and time.perf_counter() - ended < 300:
            time.sleep(0.25)
            cpu = cpu_seconds(server.pid)
            if cpu - last_cpu > 0.05:  # more than 20% of a core over the last 0.25 s
                busy_until = time.perf_counter()
            last_cpu = cpu
        result["drain_s"] = round(busy_until - ended, 2)
        count, model_s = batches_done(url)
        # Seconds the model computed during the run and drain: with heavy requests queued it should be busy (the
        # short post's speed must not come from the heavy work being starved).
        result["batches"], result["model_busy_s"] = int(count), round(model_s, 1)
    finally:
        server.kill()  # a busy model thread would hold up a graceful shutdown
        server.wait(30)
    result["scheduling"] = mode
    result["code"] = "old tree " + str(tree) if args.old_tree else "this checkout"
    result["model"] = str(args.model)
    return result

if __name__ == "__main__":
    main()
