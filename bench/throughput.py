"""Offline predictor throughput: posts/s of each backend on the same texts, side by side in one run.

    python bench/throughput.py --model models/default [--model models/other ...] [--n 1000] [--batch 32]

Texts come from data/labeled/test.jsonl (all three languages). For every model folder it measures the backends
that folder supports (onnx-int8, onnx, torch, and torch-bf16 where the CPU has native bfloat16; linear for baseline
folders) plus, for transformer folders, a one-text-at-a-time ``transformers.pipeline`` loop on a sample: the naive
way to serve the same model. Figures are posts/s after a warm-up pass, mean tokens per post per language (the
cost driver: an English-only tokenizer splits Urdu script into single characters), and for each faster backend its
argmax agreement with fp32 torch on the same posts and the largest probability change.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving.artifact import load_meta  # noqa: E402
from serving.predictor import load_predictor, native_bf16  # noqa: E402


def load_texts(n: int) -> list[dict]:
    rows = [json.loads(line) for line in open(ROOT / "data/labeled/test.jsonl", encoding="utf-8")]
    reps = -(-n // len(rows))
    return (rows * reps)[:n]


def measure(predictor, texts: list[str], batch: int) -> float:
    predictor.predict(texts[:batch])  # warm-up
    start = time.perf_counter()
    for s in range(0, len(texts), batch):
        predictor.predict(texts[s:s + batch])
    return len(texts) / (time.perf_counter() - start)


def measure_pipeline(folder: Path, texts: list[str]) -> float:
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(folder))
    clf(texts[0])
    start = time.perf_counter()
    for t in texts:
        clf(t, truncation=True)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", type=Path, help="model folder (repeatable)")
    ap.add_argument("--n", type=int, default=1000, help="posts per measurement")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pipeline-n", type=int, default=200, help="posts for the one-at-a-time pipeline loop")
    args = ap.parse_args()
    models = args.model or [ROOT / "models/default"]
    rows = load_texts(args.n)
    texts = [r["text"] for r in rows]
    print(f"{len(texts)} posts from data/labeled/test.jsonl, batch {args.batch}, {os.cpu_count()} CPU(s)")
    print(f"{'model':<28} {'backend':<12} {'posts/s':>9}  tokens/post (en / ur / roman_ur)")
    for folder in models:
        meta = load_meta(folder)
        backends = ["linear"] if meta.kind == "linear" else [
            b for b, ok in (("torch", True), ("onnx-int8", meta.onnx.get("int8")), ("onnx", meta.onnx.get("fp32")),
                          ("torch-bf16", native_bf16())) if ok]
        reference = None  # fp32 torch probabilities: how far each faster backend moves the scores
        for backend in backends:
            p = load_predictor(folder, backend, batch_size=args.batch)
            rate = measure(p, texts, args.batch)
            tokens = ""
            if hasattr(p, "count_tokens"):
                counts = p.count_tokens(texts)
                tokens = " / ".join(f"{statistics.mean(c for c, r in zip(counts, rows) if r['lang'] == lang):.0f}"
                                    for lang in ("en", "ur", "roman_ur"))
            agreement = ""
            if meta.kind == "transformer":
                probs = p.predict_proba(texts)
                if reference is None:
                    reference = probs
                else:
                    agreement = (f"; vs torch: argmax agreement {np.mean(probs.argmax(1) == reference.argmax(1)):.4f}, "
                                 f"largest probability change {np.abs(probs - reference).max():.4f}")
            print(f"{folder.name[:28]:<28} {backend:<12} {rate:>9.1f}  {tokens}{agreement}", flush=True)
            del p
        if meta.kind == "transformer":
            rate = measure_pipeline(folder, texts[:args.pipeline_n])
            print(f"{folder.name[:28]:<28} {'pipeline-1x1':<12} {rate:>9.1f}  (transformers.pipeline, one post "
                  "per call)", flush=True)


if __name__ == "__main__":
    main()
