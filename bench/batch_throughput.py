"""Batch labelling throughput: ``counterpoint label`` (local engine) against a one-text-at-a-time
``transformers.pipeline`` loop on the same model, measured side by side in one run.

    python bench/batch_throughput.py [--model models/default] [--rows 20000] [--loop-sample 400]
        [--backend torch-bf16 --bf16-pad-multiples 1,16]

It writes a JSONL file of ``--rows`` posts (texts from data/labeled/*.jsonl, else the test mini corpus, cycled in
a fixed shuffled order), then runs, each in its own process so that peak memory is that job's alone:

1. the local engine on the whole file (``run_label_job``: read, normalise, label, write parts, checkpoint, join);
2. the naive loop: ``pipeline("text-classification", model=DIR)`` called once per text on the first
   ``--loop-sample`` posts of the same file (after a warm-up), truncating to the model's ``max_length`` (a long
   post costs the loop one window where the engine scores every window, so the comparison favours the loop).

With ``--bf16-pad-multiples`` (``torch-bf16`` only) the engine runs once per value, its model chunks padded to a
multiple of that many tokens (1: to the longest window only), to measure what bounded shapes cost and save.
It prints posts/s (the engine's labelling phase, and end to end including start-up and model load; the loop's
calls), peak RSS of each process, and the ratio. Figures go to bench/out/batch_throughput.json too.
Goal (issue 13): the engine at >= 5x the loop's posts/s, peak RSS <= 1 GB (the engine holds one chunk of rows at a
time).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

ENGINE = """
import json, sys
import serving.predictor
serving.predictor.BF16_PAD_MULTIPLE = int(sys.argv[6])
from serving.batch import run_label_job
s = run_label_job(sys.argv[1], sys.argv[2], model=sys.argv[3], batch_size=int(sys.argv[4]), backend=sys.argv[5],
                  progress=False)
print(json.dumps(s.to_dict()))
"""

LOOP = """
import json, sys, time
from transformers import pipeline
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")][:int(sys.argv[3])]
t0 = time.perf_counter()
pipe = pipeline("text-classification", model=sys.argv[2], device=-1)
load_s = time.perf_counter() - t0
kw = {"truncation": True, "max_length": int(sys.argv[4])}
for t in texts[:5]:
    pipe(t, **kw)  # warm-up
t0 = time.perf_counter()
for t in texts:
    pipe(t, **kw)
secs = time.perf_counter() - t0
print(json.dumps({"rows": len(texts), "seconds": secs, "posts_per_s": len(texts) / secs, "load_s": load_s}))
"""


def source_texts() -> tuple[list[str], str]:
    files = sorted((ROOT / "data" / "labeled").glob("*.jsonl"))
    if not files:
        files = [ROOT / "tests" / "fixtures" / "mini_corpus.jsonl"]
    texts = []
    for f in files:
        for line in open(f, encoding="utf-8"):
            if line.strip():
                text = json.loads(line).get("text")
                if isinstance(text, str) and text.strip():
                    texts.append(text)
    return texts, ", ".join(str(f.relative_to(ROOT)) for f in files)


def make_input(path: Path, rows: int, seed: int = 0) -> str:
    texts, origin = source_texts()
    random.Random(seed).shuffle(texts)
    with open(path, "w", encoding="utf-8") as fh:
        for n in range(rows):
            fh.write(json.dumps({"id": f"b{n:07d}", "text": texts[n % len(texts)], "n": n}, ensure_ascii=False)
                     + "\n")
    return origin


def run_measured(args: list[str]) -> tuple[dict, float, float]:
    """Run a child Python; its JSON result, wall seconds and peak RSS in MiB.

    ``RUSAGE_CHILDREN`` reports the largest peak of all waited-for children, so this runs in a fresh helper
    process (see ``isolated``) whose only child is the measured one.
    """
    import resource

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    res = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        sys.exit(f"child failed ({res.returncode}):\n{res.stderr[-3000:]}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return json.loads(res.stdout.strip().splitlines()[-1]), wall, rss


def isolated(kind: str, *args: str) -> dict:
    """Measure one run from a fresh helper process, so the peak RSS reported is that run's alone."""
    helper = [sys.executable, __file__, "--_measure", kind, *args]
    res = subprocess.run(helper, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(res.stderr[-3000:] or res.stdout[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _measure_main(kind: str, args: list[str]) -> None:
    code = ENGINE if kind == "engine" else LOOP
    result, wall, rss = run_measured(["-c", code, *args])
    print(json.dumps({"result": result, "wall_s": wall, "peak_rss_mib": rss}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_measure":
        _measure_main(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default", help="transformer model folder")
    ap.add_argument("--naive-model", type=Path, default=None,
                    help="the folder the naive loop runs (default: --model); e.g. the 12-layer teacher when --model "
                         "is a distilled student, to measure what the smaller network buys")
    ap.add_argument("--rows", type=int, default=20_000, help="posts in the generated file")
    ap.add_argument("--loop-sample", type=int, default=400, help="posts the one-at-a-time loop labels")
    ap.add_argument("--batch-size", type=int, default=256, help="rows per predict call in the engine")
    ap.add_argument("--backend", default="auto", help="engine backend (auto = onnx-int8 for transformers)")
    ap.add_argument("--bf16-pad-multiples", default=None,
                    help="with --backend torch-bf16: comma-separated token multiples to pad model chunks to, one engine "
                         "run each (default: the predictor's own, serving.predictor.BF16_PAD_MULTIPLE)")
    ap.add_argument("--workdir", type=Path, default=OUT / "batch", help="where the generated files go")
    ap.add_argument("--repeats", type=int, default=1,
                    help="engine/loop pairs to run, alternating their order; the table shows medians (shared "
                         "machines drift a lot between minutes)")
    args = ap.parse_args()

    model = args.model.resolve()
    if not (model / "model_meta.json").is_file():
        sys.exit(f"no model folder at {model}; train one (`make train`, or `counterpoint train --output DIR`) and "
                 "pass --model DIR")
    meta = json.loads((model / "model_meta.json").read_text())
    naive = (args.naive_model or args.model).resolve()
    if not (naive / "config.json").is_file():
        sys.exit(f"--naive-model {naive} is not a transformer model folder (no config.json)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    inp, out = args.workdir / "input.jsonl", args.workdir / "labelled.jsonl"
    origin = make_input(inp, args.rows)
    print(f"model {meta['name']} {meta['version']} ({meta['kind']}); naive loop on {naive}; {args.rows:,} posts "
          f"from {origin}; {os.cpu_count()} CPUs", flush=True)

    from serving.predictor import BF16_PAD_MULTIPLE

    pads = [int(x) for x in args.bf16_pad_multiples.split(",")] if args.bf16_pad_multiples else [BF16_PAD_MULTIPLE]
    if args.bf16_pad_multiples and args.backend != "torch-bf16":
        sys.exit("--bf16-pad-multiples applies to --backend torch-bf16 only")

    def run_engine(pad: int) -> dict:
        for stale in (out, Path(f"{out}.errors.jsonl")):
            stale.unlink(missing_ok=True)
        run = isolated("engine", str(inp), str(out), str(model), str(args.batch_size), args.backend, str(pad))
        e = run["result"]
        name = e["backend"] + (f", chunks padded to x{pad} tokens" if e["backend"] == "torch-bf16" else "")
        return {"backend": name, "rows": e["rows"], "seconds": e["seconds"], "posts_per_s": e["posts_per_s"],
                "e2e_posts_per_s": e["rows"] / run["wall_s"], "peak_rss_mib": run["peak_rss_mib"]}

    def run_loop() -> dict:
        # Truncated to the model's window length: less work than the engine's sliding windows over long posts.
        run = isolated("loop", str(inp), str(naive), str(args.loop_sample), str(meta.get("max_length") or 128))
        lr = run["result"]
        return {"rows": lr["rows"], "seconds": lr["seconds"], "posts_per_s": lr["posts_per_s"],
                "e2e_posts_per_s": lr["rows"] / run["wall_s"], "load_s": lr["load_s"],
                "peak_rss_mib": run["peak_rss_mib"]}

    engines: dict[int, list[dict]] = {pad: [] for pad in pads}
    loops: list[dict] = []
    transformer = meta["kind"] == "transformer"
    jobs = [("engine", pad) for pad in pads] + ([("loop", None)] if transformer else [])
    for r in range(max(1, args.repeats)):
        for kind, pad in (jobs if r % 2 == 0 else jobs[::-1]):
            if kind == "loop":
                loops.append(run_loop())
            else:
                engines[pad].append(run_engine(pad))
        if args.repeats > 1:
            pair = ", ".join(f"engine{f' x{p}' if len(pads) > 1 else ''} {engines[p][-1]['posts_per_s']:.1f} posts/s"
                             for p in pads)
            if loops:
                pair += f", loop {loops[-1]['posts_per_s']:.1f} posts/s"
            print(f"  run {r + 1}: {pair}", flush=True)

    def med(runs: list[dict]) -> dict:
        return {k: (statistics.median(x[k] for x in runs) if isinstance(runs[0][k], (int, float)) else runs[0][k])
                for k in runs[0]}

    meds = {p: med(engines[p]) for p in pads}
    main_pad = BF16_PAD_MULTIPLE if BF16_PAD_MULTIPLE in pads else pads[-1]
    engine = meds[main_pad]
    figures = {"model": {k: meta[k] for k in ("name", "version", "kind")}, "rows": args.rows, "cpus": os.cpu_count(),
               "batch_size": args.batch_size, "engine": engine, "engine_runs": engines[main_pad]}
    if len(pads) > 1:
        figures["pad_variants"] = {str(p): meds[p] for p in pads}
    table = [(f"counterpoint label ({meds[p]['backend']})", meds[p]) for p in pads]
    if loops:
        loop = med(loops)
        figures.update(loop=loop, loop_runs=loops, ratio=engine["posts_per_s"] / loop["posts_per_s"])
        table.append(("transformers.pipeline, one text per call", loop))

    width = max(44, *(len(name) for name, _ in table))
    print(f"\n{'':{width}} {'posts':>8} {'seconds':>8} {'posts/s':>9} {'e2e posts/s':>12} {'peak RSS':>10}")
    for name, m in table:
        print(f"{name:{width}} {int(m['rows']):>8,} {m['seconds']:>8.1f} {m['posts_per_s']:>9.1f} "
              f"{m['e2e_posts_per_s']:>12.1f} {m['peak_rss_mib']:>7.0f} MiB")
    print("(posts/s: labelling only, after model load; e2e: the whole process, start-up and model load included"
          + ("; medians of the runs above)" if args.repeats > 1 else ")"))
    if loops:
        for p, e in meds.items():
            ratio = e["posts_per_s"] / loop["posts_per_s"]
            verdict = "meets" if ratio >= 5 and e["peak_rss_mib"] <= 1024 else "misses"
            print(f"ratio{f' (x{p})' if len(pads) > 1 else ''}: {ratio:.1f}x the one-text loop's posts/s, peak RSS "
                  f"{e['peak_rss_mib']:.0f} MiB ({verdict} issue 13's goal: 5x, <= 1 GB)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "batch_throughput.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
