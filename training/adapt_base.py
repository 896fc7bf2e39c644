"""Adapt a pretrained base to real posts before fine-tuning: masked-word training on unlabelled text (issue 9).

The default is fine-tuned on a corpus that is mostly written text, and real posts differ from it in register
(slang, abuse, spelling, code-mixing) more than in topic. Continued masked-language-model training on unlabelled
posts of the domain ("task-adaptive pretraining", Gururangan et al. 2020) moves the encoder towards that text
before it ever sees a label. ``counterpoint adapt-base`` writes a new base folder (same format as
``counterpoint convert-base``: config, weights, tokenizer) that ``counterpoint train --set model.base=FOLDER``
fine-tunes from.

What is trained is what fine-tuning trains: the embeddings and the bottom ``freeze_layers`` encoder layers stay
fixed (so the word vectors, and the pruned vocabulary built from them, stay as they are), the layers above learn to
fill in masked pieces. The prediction layer (a dense layer, GELU and LayerNorm, then the fixed word embeddings as
output weights, as BERT's own) is new and is not saved: the folder holds the encoder only. Masking is BERT's: 15%
of the pieces (specials and padding never), 80% of those replaced by the mask token, 10% by a random piece, 10%
left; the loss is read at the masked places only. A held-out share of the texts measures the masked-piece loss
before and after (``adapt.json``), so a run that learnt nothing shows it.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Callable, Sequence


class AdaptError(ValueError):
    pass


def _mask_batch(ids, mask, special, mask_id: int, vocab: int, probability: float, gen):
    """BERT masking of one padded batch: (inputs, targets with -100 where the loss is not read).

    transformers' ``DataCollatorForLanguageModeling`` masks the same way but draws from the global RNG; here the
    generator is passed in, so the held-out batches get the same masks before and after adaptation."""
    import torch

    can = mask.bool() & ~special
    pick = (torch.rand(ids.shape, generator=gen) < probability) & can
    if not bool(pick.any()):  # at least one place per batch, so every step has a loss
        first = can.nonzero()[0]
        pick[first[0], first[1]] = True
    targets = torch.where(pick, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    roll = torch.rand(ids.shape, generator=gen)
    inputs[pick & (roll < 0.8)] = mask_id
    rand_places = pick & (roll >= 0.8) & (roll < 0.9)
    inputs[rand_places] = torch.randint(0, vocab, (int(rand_places.sum()),), generator=gen)
    return inputs, targets


def _mlm_head(hidden: int, vocab: int, eps: float):
    """BERT's prediction layer over the encoder's fixed word embeddings (torch is imported late, as everywhere)."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = torch.nn.Linear(hidden, hidden)
            self.norm = torch.nn.LayerNorm(hidden, eps=eps)
            self.bias = torch.nn.Parameter(torch.zeros(vocab))

        def forward(self, states, embeddings):
            h = self.norm(torch.nn.functional.gelu(self.dense(states)))
            return h @ embeddings.t() + self.bias

    return Head()


def _loss(encoder, head, ids, mask, targets):
    import torch

    states = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    where = targets != -100
    logits = head(states[where], encoder.get_input_embeddings().weight)
    return torch.nn.functional.cross_entropy(logits, targets[where])


def _held_out_loss(encoder, head, batches, special_of, mask_id, vocab, probability, seed) -> float:
    """Mean masked-piece loss over fixed held-out batches (the same masks every time it is called)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    encoder.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for ids, mask in batches:
            inputs, targets = _mask_batch(ids, mask, special_of(ids), mask_id, vocab, probability, gen)
            k = int((targets != -100).sum())
            total += float(_loss(encoder, head, inputs, mask, targets)) * k
            n += k
    encoder.train()
    return total / max(n, 1)


def adapt_base(base: str | Path, texts: Sequence[str], out: str | Path, *, epochs: float = 1.0,
               batch_size: int = 32, max_length: int = 64, learning_rate: float = 5e-5,
               head_lr_multiplier: float = 20.0, freeze_layers: int = 2, mlm_probability: float = 0.15,
               held_out: float = 0.02, seed: int = 13, threads: int | None = None, sources: dict | None = None,
               log: Callable[[str], None] | None = None) -> dict:
    """Continue masked-word training of the encoder in ``base`` (a Hugging Face folder) on ``texts`` (already
    normalised) and write the adapted encoder and its tokenizer to ``out``. Returns the record written to
    ``out/adapt.json``."""
    import torch
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    from training.finetune import _batches, _collate, freeze, set_seed

    if log is None:
        def log(message: str) -> None:
            print(message, file=sys.stderr)
    base, out = Path(base), Path(out)
    if not (base / "config.json").is_file():
        raise AdaptError(f"base {base} is not a model folder (no config.json); give a folder such as "
                         "models/bases/multilingual-e5-small (`counterpoint convert-base` writes it)")
    if out.resolve() == base.resolve():
        raise AdaptError(f"--out {out} is the base folder itself; write the adapted base to a new folder")
    if not 0 < epochs <= 20:
        raise AdaptError(f"epochs must be in (0, 20], not {epochs}")
    if not 0 < mlm_probability < 1:
        raise AdaptError(f"mlm_probability must be in (0, 1), not {mlm_probability}")
    if not 8 <= max_length <= 512:
        raise AdaptError(f"max_length must be in 8..512, not {max_length}")
    texts = [t for t in texts if t and t.strip()]
    if len(texts) < 2 * batch_size:
        raise AdaptError(f"{len(texts)} texts to adapt on; at least {2 * batch_size} are needed (two batches)")
    if threads:
        torch.set_num_threads(threads)
    set_seed(seed)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    encoder = AutoModel.from_pretrained(str(base))  # the pooler too: it is saved as it was (fine-tuning reads it)
    if tokenizer.mask_token_id is None:
        raise AdaptError(f"the tokenizer of {base} has no mask token; masked-word training needs one")
    freeze(encoder, embeddings=True, layers=freeze_layers)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    rng = random.Random(seed)
    order = list(range(len(encoded)))
    rng.shuffle(order)
    n_held = max(batch_size, int(round(held_out * len(order))))
    held_idx, train_idx = order[:n_held], order[n_held:]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)

    def special_of(ids):
        return torch.isin(ids, special_ids)

    vocab = encoder.get_input_embeddings().weight.shape[0]
    head = _mlm_head(encoder.config.hidden_size, vocab, getattr(encoder.config, "layer_norm_eps", 1e-12))
    train_enc = [encoded[i] for i in train_idx]
    held_enc = [encoded[i] for i in held_idx]
    held_batches = [_collate(held_enc, b, pad_id) for b in
                    _batches([len(e) for e in held_enc], batch_size, random.Random(seed))]
    steps_per_epoch = math.ceil(len(train_enc) / batch_size)
    total_steps = max(1, int(round(epochs * steps_per_epoch)))
    pooler = getattr(encoder, "pooler", None)  # not read by the masked-word loss: it stays exactly as it was
    skip = {id(p) for p in pooler.parameters()} if pooler is not None else set()
    body = [p for p in encoder.parameters() if p.requires_grad and id(p) not in skip]
    optim = torch.optim.AdamW([{"params": body, "lr": learning_rate},
                               {"params": list(head.parameters()), "lr": learning_rate * head_lr_multiplier}],
                              weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(optim, int(0.06 * total_steps), total_steps)
    # The head starts random: its loss before training says nothing about the encoder. Warm it alone on a few
    # batches first (encoder fixed), so "before" measures the base encoder with a trained reader.
    warm_steps = min(100, max(1, total_steps // 10))
    gen = torch.Generator().manual_seed(seed)
    lengths = [len(e) for e in train_enc]

    def batches_forever():
        while True:
            yield from _batches(lengths, batch_size, rng)

    stream = batches_forever()

    def next_loss():
        ids, mask = _collate(train_enc, next(stream), pad_id)
        inputs, targets = _mask_batch(ids, mask, special_of(ids), tokenizer.mask_token_id, vocab, mlm_probability, gen)
        return _loss(encoder, head, inputs, mask, targets)

    head_optim = torch.optim.AdamW(head.parameters(), lr=learning_rate * head_lr_multiplier)
    for p in body:
        p.requires_grad_(False)
    for _ in range(warm_steps):
        next_loss().backward()
        head_optim.step()
        head_optim.zero_grad(set_to_none=True)
    for p in body:
        p.requires_grad_(True)
    before = _held_out_loss(encoder, head, held_batches, special_of, tokenizer.mask_token_id, vocab,
                            mlm_probability, seed + 1)
    log(f"adapting {base.name} on {len(train_enc)} texts ({len(held_enc)} held out), {total_steps} steps of "
        f"{batch_size}; held-out masked-piece loss with the base encoder {before:.3f}")
    encoder.train()
    running, seen, t0 = 0.0, 0, time.time()
    every = max(1, total_steps // 10)
    for step in range(1, total_steps + 1):
        loss = next_loss()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*body, *head.parameters()], 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        running += loss.item()
        seen += 1
        if step % every == 0 or step == total_steps:
            log(f"step {step}/{total_steps}: loss {running / seen:.3f} ({(time.time() - t0) / step:.2f} s/step)")
            running, seen = 0.0, 0
    after = _held_out_loss(encoder, head, held_batches, special_of, tokenizer.mask_token_id, vocab,
                           mlm_probability, seed + 1)
    log(f"held-out masked-piece loss {before:.3f} -> {after:.3f}")
    from serving.artifact import new_folder

    with new_folder(out) as tmp:
        encoder.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        record = {"base": str(base), "texts": len(texts), "held_out": len(held_enc), "steps": total_steps,
                  "epochs": epochs, "batch_size": batch_size, "max_length": max_length,
                  "learning_rate": learning_rate, "freeze_layers": freeze_layers, "mlm_probability": mlm_probability,
                  "seed": seed, "held_out_loss_before": round(before, 4), "held_out_loss_after": round(after, 4),
                  "seconds": round(time.time() - started, 1), "sources": sources or {},
                  "architecture": config.get("architectures")}
        (tmp / "adapt.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def read_texts(paths: Sequence[str | Path], text_field: str = "text") -> tuple[list[str], dict, list[str]]:
    """Normalised texts of .jsonl files (the ``text_field`` of each row) and .txt files (one text per line).

    Returns (texts, how many were read per file, skipped): a line that is not JSON, not an object, or has no text
    in ``text_field`` is skipped and reported as ``FILE:LINE: why``; a missing file or another format is an error."""
    from serving.text import normalize

    texts, counts, skipped = [], {}, []
    for path in map(Path, paths):
        if not path.is_file():
            raise AdaptError(f"{path}: no such file")
        if path.suffix not in (".jsonl", ".txt"):
            raise AdaptError(f"{path}: give .jsonl (one JSON object per line, text in {text_field!r}) or .txt "
                             "(one text per line)")
        before = len(texts)
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                if path.suffix == ".txt":
                    texts.append(line.rstrip("\n"))
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    skipped.append(f"{path}:{n}: not JSON ({exc.msg})")
                    continue
                value = row.get(text_field) if isinstance(row, dict) else None
                if isinstance(value, str) and value.strip():
                    texts.append(value)
                else:
                    skipped.append(f"{path}:{n}: no text in {text_field!r}")
        counts[str(path)] = len(texts) - before
    return [normalize(t) for t in texts], counts, skipped


def drop_held_back(texts: list[str], exclude: Sequence[str | Path], text_field: str = "text") -> tuple[list[str], int]:
    """``texts`` without any that also occurs (normalised, case and spacing folded) in an ``exclude`` file, and
    without repeats; returns (kept, dropped)."""
    def key(t: str) -> str:
        return " ".join(t.lower().split())

    # a bad line of an --exclude file holds no text to hold back
    held = {key(t) for t in read_texts(exclude, text_field)[0]} if exclude else set()
    seen, kept = set(), []
    for t in texts:
        k = key(t)
        if k and k not in held and k not in seen:
            seen.add(k)
            kept.append(t)
    return kept, len(texts) - len(kept)

