"""Cost of ``"explain": true``: milliseconds of word-occlusion evidence per typical post, per language.

    python bench/explain.py --model models/default [--n 60] [--backend auto] [--threads N]
                            [--max-words 16 --group 4 --refine 3]   # explain()'s coarse-to-fine settings

Posts come from data/labeled/test.jsonl (real and written posts in all three languages), sampled evenly by
language. It prints, per language, the median words per post and the median / p90 milliseconds of ``explain`` for
one post (1 + words variants in one ``predict_proba`` call), next to the plain prediction of the same post, and
the faithfulness check of the test suite on the flagged posts among them.
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

from serving import labels as L  # noqa: E402
from serving.explain import explain, occlusion_drops, word_spans  # noqa: E402
from serving.predictor import load_predictor  # noqa: E402


def sample(n: int, seed: int = 0) -> list[dict]:
    rows = [json.loads(line) for line in open(ROOT / "data/labeled/test.jsonl", encoding="utf-8")]
    rng = random.Random(seed)
    by_lang: dict[str, list[dict]] = {}
    for row in rows:
        by_lang.setdefault(row["lang"], []).append(row)
    out = []
    for lang in ("en", "ur", "roman_ur"):
        pool = by_lang.get(lang, [])
        out += rng.sample(pool, min(len(pool), n // 3))
    return out


def faithfulness(predictor, texts: list[str], seed: int = 0, **settings) -> tuple[int, int]:
    rng = random.Random(seed)
    wins = total = 0
    for text, spans in zip(texts, explain(predictor, texts, top_k=64, min_weight=-1.0, **settings)):
        words = word_spans(text)
        top = [(s.start, s.end) for s in spans if s.label == L.EXTREMIST][:3]
        if len(words) < 6 or len(top) < 3:
            continue
        random_drop = statistics.mean(occlusion_drops(predictor, text, rng.sample(words, 3)) for _ in range(5))
        wins += occlusion_drops(predictor, text, top) > random_drop
        total += 1
    return wins, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-words", type=int, default=None, help="explain(): posts longer than this go coarse to fine")
    ap.add_argument("--group", type=int, default=None, help="explain(): words per run in the coarse pass")
    ap.add_argument("--refine", type=int, default=None, help="explain(): runs refined word by word")
    ap.add_argument("--batch", type=int, default=4, help="the predictor's batch size (the service's model_batch_size)")
    args = ap.parse_args()
    settings = {k: v for k, v in (("max_words", args.max_words), ("group", args.group), ("refine", args.refine))
                if v is not None}
    if not (Path(args.model) / "model_meta.json").is_file():
        sys.exit(f"{args.model} is not a model folder; train one (`make train`) or pass --model DIR")
    predictor = load_predictor(args.model, args.backend, threads=args.threads, batch_size=args.batch)
    rows = sample(args.n)
    explain(predictor, [rows[0]["text"]])  # warm-up
    print(f"model {predictor.meta.name} {predictor.meta.version} ({predictor.meta.base_model}, {predictor.backend}), "
          f"threads={args.threads or os.cpu_count()}, batch {args.batch}, explain settings {settings or 'default'}")
    print(f"{'lang':9} {'posts':>5} {'words':>6} {'predict ms':>11} {'explain ms p50':>15} {'p90':>7}")
    flagged, all_ms = [], []
    for lang in ("en", "ur", "roman_ur"):
        group = [r["text"] for r in rows if r["lang"] == lang]
        if not group:
            continue
        ex_ms, pr_ms = [], []
        for text in group:
            t0 = time.perf_counter()
            p = predictor.predict([text])[0]
            t1 = time.perf_counter()
            explain(predictor, [text], **settings)
            t2 = time.perf_counter()
            pr_ms.append((t1 - t0) * 1000)
            ex_ms.append((t2 - t1) * 1000)
            if p.flagged:
                flagged.append(text)
        all_ms += ex_ms
        words = statistics.median(len(word_spans(t)) for t in group)
        print(f"{lang:9} {len(group):5d} {words:6.0f} {statistics.median(pr_ms):11.1f} "
              f"{statistics.median(ex_ms):15.1f} {sorted(ex_ms)[int(0.9 * (len(ex_ms) - 1))]:7.1f}")
    print(f"explain cost per typical post (median over all): {statistics.median(all_ms):.1f} ms")
    wins, total = faithfulness(predictor, flagged[:30], **settings)
    if total:
        print(f"faithfulness on {total} flagged posts: top-3 evidence beats 3 random words in {wins}/{total} "
              f"= {100 * wins / total:.0f}%")


if __name__ == "__main__":
    main()
