"""Our fine-tuning loop (training/finetune.py) against ``transformers.Trainer``, side by side in one run: the same
base (the default's pruned multilingual-e5-small), the same rows, batch size, learning rate, warm-up, frozen layers
and class-weighted loss; seconds per optimiser step, and whether two runs with the same seed end with the same loss.

    pip install -e ".[train,bench]"   # Trainer needs accelerate
    python bench/trainer_vs_loop.py [--steps 40] [--threads 2]

Each variant runs in its own process (so neither inherits the other's thread pools or allocator state), twice, and
the order alternates (loop, Trainer, Trainer, loop) so that drifting machine load hits both alike. Time is measured
over the optimiser steps only (after the model is loaded and the rows are encoded). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def rows(n: int) -> tuple[list[str], list[int]]:
    from serving import labels as L
    from serving.text import normalize

    data = [json.loads(line) for line in open(ROOT / "data/labeled/train.jsonl", encoding="utf-8")][:n]
    return [normalize(r["text"]) for r in data], [L.LABEL2ID[r["label"]] for r in data]


def run_loop(steps: int, threads: int) -> dict:
    """Our loop, timed from its first step (a callback-free loop: the step timer wraps ``optim.step``)."""
    import torch

    from training import finetune as F
    from training.config import load_config

    cfg = load_config(overrides=[f"train.max_steps={steps}", f"train.threads={threads}", "train.epochs=1",
                                 "train.subtype_weight=0", "train.head_lr_multiplier=1"])
    texts, y = rows(steps * cfg.train.batch_size)
    stamps: list[float] = []
    original = torch.optim.AdamW.step

    def timed_step(self, *a, **kw):
        out = original(self, *a, **kw)
        stamps.append(time.perf_counter())
        return out

    torch.optim.AdamW.step = timed_step
    res = F.finetune(cfg, texts, y, [], [], progress=False, log=lambda m: None)
    torch.optim.AdamW.step = original
    per_step = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
    return {"variant": "loop", "steps": len(stamps), "s_per_step": per_step,
            "final_loss": res.history[-1]["train_loss"]}


def run_trainer(steps: int, threads: int) -> dict:
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainerCallback, TrainingArguments, set_seed)

    from serving import labels as L
    from training.config import load_config
    from training.finetune import freeze, training_base

    cfg = load_config(overrides=[f"train.threads={threads}"])
    tc = cfg.train
    torch.set_num_threads(threads)
    base = training_base(cfg)
    tok = AutoTokenizer.from_pretrained(base)
    set_seed(tc.seed)  # before the classifier head is initialised, as our loop does
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(L.LABELS))
    freeze(model, embeddings=True, layers=tc.freeze_layers)
    texts, y = rows(steps * tc.batch_size)
    enc = tok(texts, truncation=True, max_length=cfg.model.max_length)
    data = [{"input_ids": i, "attention_mask": m, "labels": lab}
            for i, m, lab in zip(enc["input_ids"], enc["attention_mask"], y)]
    counts = np.bincount(y, minlength=len(L.LABELS)).astype(float)
    weights = torch.tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float)

    class Weighted(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kw):
            labels = inputs.pop("labels")
            out = model(**inputs)
            loss = torch.nn.functional.cross_entropy(out.logits, labels, weight=weights)
            return (loss, out) if return_outputs else loss

    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            stamps.append(time.perf_counter())

    args = TrainingArguments(output_dir=str(Path(os.environ.get("TMPDIR", "/tmp")) / "trainer-bench"),
                             per_device_train_batch_size=tc.batch_size, max_steps=steps,
                             learning_rate=tc.learning_rate, weight_decay=tc.weight_decay,
                             warmup_steps=int(tc.warmup_ratio * steps), max_grad_norm=1.0,
                             train_sampling_strategy="group_by_length", seed=tc.seed,
                             report_to=[], save_strategy="no", logging_steps=steps, use_cpu=True,
                             dataloader_num_workers=0, disable_tqdm=True)
    trainer = Weighted(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tok),
                       callbacks=[Stamp()])
    result = trainer.train()
    per_step = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
    return {"variant": "trainer", "steps": len(stamps), "s_per_step": per_step, "final_loss": result.training_loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", choices=("loop", "trainer"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fn = run_loop if args.child == "loop" else run_trainer
        print(json.dumps(fn(args.steps, args.threads)))
        return
    results = []
    for variant in ("loop", "trainer", "trainer", "loop"):
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--steps", str(args.steps),
                              "--threads", str(args.threads)], capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            sys.exit(f"{variant} failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{variant:8} {results[-1]['steps']:3d} steps  {results[-1]['s_per_step']:.3f} s/step  "
              f"final loss {results[-1]['final_loss']:.6f}  (load average {os.getloadavg()[0]:.1f})", flush=True)
    for variant in ("loop", "trainer"):
        runs = [r for r in results if r["variant"] == variant]
        same = runs[0]["final_loss"] == runs[1]["final_loss"]
        print(f"{variant}: {sum(r['s_per_step'] for r in runs) / 2:.3f} s/step (mean of 2); same seed, same final "
              f"loss in both runs: {same}")


if __name__ == "__main__":
    main()
