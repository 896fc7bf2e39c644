"""Cost of ``"explain": true``: milliseconds of word-occlusion evidence per typical post, per language, for full
occlusion (each word deleted from the text) and for upper-layer occlusion (deleted above a cut of the graph, see
serving/graph_cut.py), side by side in one run.

    python bench/explain.py --model models/default [--n 60] [--upper-layers 0,4,3] [--split test]
                            [--faithful-n 40] [--backend auto] [--threads N]
                            [--max-words 16 --group 4 --refine 2]   # explain()'s coarse-to-fine settings

``--upper-layers``: 0 is full occlusion; k > 0 deletes words before the last k encoder layers. Posts come from
data/labeled/<split>.jsonl (real and written posts in all three languages), sampled evenly by language. It prints,
per method and language, the median words per post and the median / p90 milliseconds of ``explain`` for one post
(each post twice per method), next to the plain prediction of the same post, then the faithfulness check of the
test suite (deleting the top-3 evidence words from the *text* lowers p(extremist) more than deleting 3 random
words) on ``--faithful-n`` flagged extremist posts of the split, and how often each method's top-3 words equal
full occlusion's. ``--serving-overhead``: load time and predict latency of the service's session with and without
the cut, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving.explain import UPPER_LAYERS, explain, faithfulness, flagged_posts, word_spans  # noqa: E402
from serving.predictor import load_predictor  # noqa: E402


def load(split: str) -> list[dict]:
    return [json.loads(line) for line in open(ROOT / f"data/labeled/{split}.jsonl", encoding="utf-8")]


def sample(rows: list[dict], n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    by_lang: dict[str, list[dict]] = {}
    for row in rows:
        by_lang.setdefault(row["lang"], []).append(row)
    out = []
    for lang in ("en", "ur", "roman_ur"):
        pool = by_lang.get(lang, [])
        out += rng.sample(pool, min(len(pool), n // 3))
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def serving_overhead(args, rows: list[dict]) -> None:
    """What the service pays for building the cut at load: load seconds, and predict latency one post at a time and
    per post in batches of 16, plain session vs cut session, in alternating rounds."""
    import gc

    texts = [r["text"] for r in rows]
    loaded, timings = {}, {"plain": [], "cut": []}
    for name, cut in (("plain", None), ("cut", UPPER_LAYERS)):
        t0 = time.perf_counter()
        loaded[name] = load_predictor(args.model, args.backend, threads=args.threads, batch_size=args.batch,
                                      explain_cut=cut)
        print(f"load {name:5}: {time.perf_counter() - t0:.2f} s")
    for _ in range(3):
        for name, pred in loaded.items():
            t0 = time.perf_counter()
            for text in texts:
                pred.predict([text])
            one = (time.perf_counter() - t0) * 1000 / len(texts)
            t0 = time.perf_counter()
            for i in range(0, len(texts), 16):
                pred.predict(texts[i:i + 16])
            timings[name].append((one, (time.perf_counter() - t0) * 1000 / len(texts)))
    for name, rounds in timings.items():
        print(f"predict {name:5}: one at a time {statistics.median(r[0] for r in rounds):.1f} ms/post, "
              f"batches of 16 {statistics.median(r[1] for r in rounds):.1f} ms/post (median of 3 rounds)")
    del loaded
    gc.collect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--split", default="test", help="data/labeled/<split>.jsonl (choose settings on dev)")
    ap.add_argument("--n", type=int, default=60, help="posts timed per method (a third per language)")
    ap.add_argument("--faithful-n", type=int, default=40, help="flagged extremist posts in the faithfulness check")
    ap.add_argument("--upper-layers", default=f"0,{UPPER_LAYERS}",
                    help="methods, comma-separated: 0 = full occlusion, k = words deleted before the last k layers")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-words", type=int, default=None, help="explain(): posts longer than this go coarse to fine")
    ap.add_argument("--group", type=int, default=None, help="explain(): words per run in the coarse pass")
    ap.add_argument("--refine", type=int, default=None, help="explain(): runs refined word by word")
    ap.add_argument("--batch", type=int, default=4, help="the predictor's batch size (the service's model_batch_size)")
    ap.add_argument("--serving-overhead", action="store_true",
                    help="also time load and predict of the served session with and without the cut, side by side")
    args = ap.parse_args()
    settings = {k: v for k, v in (("max_words", args.max_words), ("group", args.group), ("refine", args.refine))
                if v is not None}
    if not (Path(args.model) / "model_meta.json").is_file():
        sys.exit(f"{args.model} is not a model folder; train one (`make train`) or pass --model DIR")
    predictor = load_predictor(args.model, args.backend, threads=args.threads, batch_size=args.batch)
    all_rows = load(args.split)
    rows = sample(all_rows, args.n)
    methods = [int(k) for k in args.upper_layers.split(",")]
    for k in methods:  # build every cut before timing anything (the first explain with a cut builds it)
        explain(predictor, [rows[0]["text"]], upper_layers=k or None, **settings)
    print(f"model {predictor.meta.name} {predictor.meta.version} ({predictor.meta.base_model}, {predictor.backend}), "
          f"threads={args.threads or os.cpu_count()}, batch {args.batch}, explain settings {settings or 'default'}, "
          f"{args.split} split")
    print(f"{'method':9} {'lang':9} {'posts':>5} {'words':>6} {'predict ms':>11} {'explain ms p50':>15} {'p90':>7}")
    medians = {}
    for lang in ("en", "ur", "roman_ur"):
        group = [r["text"] for r in rows if r["lang"] == lang]
        if not group:
            continue
        words = statistics.median(len(word_spans(t)) for t in group)
        ms: dict[int, list[float]] = {k: [] for k in methods}
        pr_ms = []
        for text in group:
            t0 = time.perf_counter()
            predictor.predict([text])
            pr_ms.append((time.perf_counter() - t0) * 1000)
        # Method by method over the whole group, in two rounds (forward, then reversed order) so that drifting load
        # hits them alike; not post by post: each cut is its own session, and a session's threads spinning after
        # its run slow the next session's run.
        for order in (methods, methods[::-1]):
            for k in order:
                for text in group:
                    t1 = time.perf_counter()
                    explain(predictor, [text], upper_layers=k or None, **settings)
                    ms[k].append((time.perf_counter() - t1) * 1000)
        for k in methods:
            medians.setdefault(k, []).extend(ms[k])
            name = "full" if not k else f"upper {k}"
            print(f"{name:9} {lang:9} {len(group):5d} {words:6.0f} {statistics.median(pr_ms):11.1f} "
                  f"{statistics.median(ms[k]):15.1f} {sorted(ms[k])[int(0.9 * (len(ms[k]) - 1))]:7.1f}")
    if args.serving_overhead:
        serving_overhead(args, rows)
    flagged = flagged_posts(predictor, all_rows, args.faithful_n)
    ref = None
    for k in methods:
        name = "full occlusion" if not k else f"upper {k} layers"
        wins, total, tops = faithfulness(predictor, flagged, min_words=6, upper_layers=k or None, **settings)
        same = "" if ref is None else (f"; top-3 words equal full occlusion's on "
                                       f"{sum(a == b for a, b in zip(tops, ref))}/{len(tops)}")
        ref = tops if not k else ref
        print(f"{name}: explain cost per typical post (median over all) {statistics.median(medians[k]):.1f} ms; "
              f"faithful on {wins}/{total} flagged extremist posts"
              f"{f' = {100 * wins / total:.0f}%' if total else ''}{same}")


if __name__ == "__main__":
    main()
