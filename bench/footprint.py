"""Model folder footprint, side by side (issue 13): folder size, service start-up time and resident memory.

For each folder: its size on disk (and the largest files), then in a fresh process each time, the seconds from
`create_app` to a ready service answering its first /v1/classify (FastAPI TestClient, the real app, model and
batcher; median of --repeats starts), and that process's RSS after 200 classified posts: now (VmRSS, what it holds
while serving) and its peak (ru_maxrss, start-up included). Figures only.

    .venv/bin/python bench/footprint.py models/default [/tmp/other_folder ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(folder: str) -> dict:
    import resource
    import time

    started = time.perf_counter()
    from fastapi.testclient import TestClient

    from serving.api.app import create_app
    from serving.settings import load_settings

    app = create_app(load_settings(model_dir=folder))
    with TestClient(app) as client:
        r = client.post("/v1/classify", json={"texts": ["first post after start-up"]})
        r.raise_for_status()
        ready = time.perf_counter() - started
        posts = [f"post number {i}: ye log kab sudhrenge yaar, the brothers stood firm" for i in range(200)]
        for s in range(0, len(posts), 20):
            client.post("/v1/classify", json={"texts": posts[s:s + 20]}).raise_for_status()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        backend = client.get("/v1/info").json()["model"]["backend"]
        now_mb = _current_rss_mb()
    return {"ready_s": ready, "peak_rss_mb": rss_mb, "rss_mb": now_mb, "backend": backend}


def _current_rss_mb() -> float:
    """The process's resident memory now (VmRSS): what the service holds while it serves, after start-up's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def size_mb(folder: Path) -> tuple[float, list[tuple[str, float]]]:
    files = [(p.name, p.stat().st_size / 2**20) for p in folder.iterdir() if p.is_file()]
    return sum(s for _, s in files) + sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()
                                          and p.parent != folder) / 2**20, sorted(files, key=lambda t: -t[1])[:4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if not args.folders:
        ap.error("give at least one model folder")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    print("| folder | size (MB) | largest files (MB) | backend | ready after start (s, median) | RSS serving (MB) "
          "| peak RSS (MB) |")
    print("|---|---:|---|---|---:|---:|---:|")
    for folder in args.folders:
        total, largest = size_mb(Path(folder))
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, __file__, "--child", folder], cwd=ROOT, env=env,
                                 capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr[-2000:])
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        files = ", ".join(f"{n} {s:.0f}" for n, s in largest)
        print(f"| {folder} | {total:.0f} | {files} | {runs[0]['backend']} | "
              f"{statistics.median(r['ready_s'] for r in runs):.2f} | "
              f"{statistics.median(r['rss_mb'] for r in runs):.0f} | "
              f"{statistics.median(r['peak_rss_mb'] for r in runs):.0f} |")
    print(f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
