"""Fine-tuning speed, side by side in one run (issue 13): seconds per optimiser step of the default recipe with
``train.threads`` 1 and 2, on the full and on the pruned vocabulary (``model.vocab_keep``), and in float32 and
bfloat16 (``train.precision``; the pruned vocabulary). With ``--batch-sizes 16,32``: instead, rows a second at each
``train.batch_size`` (2 threads, the pruned vocabulary, ``--precision``), so the cost of a batch size is read per row.

Each setting runs in its own process (torch's thread count is per process), one after another, on the same seeded
batches of the default corpus, after a warm-up. Figures only; nothing is asserted. Run it on a quiet machine: any
other busy process changes the threads=2 figure most (thread oversubscription).

    .venv/bin/python bench/train_speed.py [--steps 40] [--warmup 5]
    .venv/bin/python bench/train_speed.py --batch-sizes 16,32 [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(threads: int, vocab_keep: str, steps: int, warmup: int, precision: str = "fp32", batch_size: int = 0) -> dict:
    import torch

    from training.config import load_config
    from training.finetune import _batches, _collate, autocast, encode_inputs, freeze, training_base
    from training.pipeline import load_splits, training_inputs
    from serving.text import normalize

    overrides = [f"train.threads={threads}"] + ([f'model.vocab_keep="{vocab_keep}"'] if vocab_keep else [])
    overrides += [f"train.batch_size={batch_size}"] if batch_size else []
    cfg = load_config(overrides=overrides)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import random

    splits = load_splits(cfg)
    texts = [normalize(ex.text) for ex in splits["train"]]
    ctx, y, _ = training_inputs(splits["train"], texts, cfg, reads_context=True, subtypes=False)
    base = training_base(cfg)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=3 + 21)
    freeze(model, embeddings=True, layers=cfg.train.freeze_layers)
    encoded = encode_inputs(tok, texts, cfg.model.max_length, ctx)
    batches = _batches([len(e) for e in encoded], cfg.train.batch_size, random.Random(0))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    loss_fn = torch.nn.CrossEntropyLoss()
    labels = torch.tensor(y)
    model.train()
    times, rows_seen = [], 0
    for k, batch in enumerate(batches[:warmup + steps]):
        started = time.perf_counter()
        ids, mask = _collate(encoded, batch, tok.pad_token_id or 0)
        with autocast(precision):  # as training.finetune's steps
            logits = model(input_ids=ids, attention_mask=mask).logits
        loss = loss_fn(logits.float()[:, :3], labels[batch])
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        if k >= warmup:
            times.append(time.perf_counter() - started)
            rows_seen += len(batch)
    return {"threads": threads, "vocab": "pruned" if vocab_keep else "full", "precision": precision,
            "batch_size": cfg.train.batch_size, "rows_per_s": rows_seen / sum(times),
            "steps": len(times), "s_per_step": sum(times) / len(times), "rows": len(texts),
            "epoch_minutes": sum(times) / len(times) * len(batches) / 60}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--keep", default="data/vocab/keep_pieces.txt")
    ap.add_argument("--batch-sizes", help="comma-separated train.batch_size values to compare per row instead")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"], help="with --batch-sizes")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        threads, keep, precision, batch_size = json.loads(args.child)
        print(json.dumps(one(threads, keep, args.steps, args.warmup, precision, batch_size)))
        return
    rows = []
    settings = [(t, k, "fp32", 0) for t in (1, 2) for k in ("", args.keep)] + [(t, args.keep, "bf16", 0)
                                                                             for t in (1, 2)]
    if args.batch_sizes:
        settings = [(2, args.keep, args.precision, int(b)) for b in args.batch_sizes.split(",")]
    for threads, keep, precision, batch_size in settings:
        child = json.dumps([threads, keep, precision, batch_size])
        out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--warmup", str(args.warmup),
                              "--child", child], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        if out.returncode:
            sys.exit(out.stderr[-2000:])
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()[0]
    if args.batch_sizes:
        print(f"fine-tuning speed per batch size, default recipe, {rows[0]['rows']} training rows, 2 threads, "
              f"{args.precision}, {args.steps} steps each after {args.warmup} warm-up (load average {load:.1f})")
        print("| batch size | s/step | rows/s | one epoch (min) |\n|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['batch_size']} | {r['s_per_step']:.3f} | {r['rows_per_s']:.1f} | {r['epoch_minutes']:.1f} |")
        return
    print(f"fine-tuning speed, default recipe, {rows[0]['rows']} training rows, {args.steps} steps each after "
          f"{args.warmup} warm-up (load average {load:.1f} at the end)")
    print("| threads | vocabulary | precision | s/step | one epoch (min) |\n|---:|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['threads']} | {r['vocab']} | {r['precision']} | {r['s_per_step']:.3f} | "
              f"{r['epoch_minutes']:.1f} |")
    one_full = next(r for r in rows if r["threads"] == 1 and r["vocab"] == "full")["s_per_step"]
    two_full = next(r for r in rows if r["threads"] == 2 and r["vocab"] == "full")["s_per_step"]
    print(f"threads=2 vs threads=1 (full vocabulary): {one_full / two_full:.2f}x the speed")
    for threads in (1, 2):
        fp32, bf16 = (next(r for r in rows if r["threads"] == threads and r["vocab"] == "pruned"
                           and r["precision"] == p)["s_per_step"] for p in ("fp32", "bf16"))
        print(f"bf16 vs fp32 at threads={threads} (pruned vocabulary): {fp32 / bf16:.2f}x the speed")


if __name__ == "__main__":
    main()
