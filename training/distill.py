"""A smaller, faster network: keep some of the encoder's layers, and learn a fine-tuned teacher's scores.

``model.layers`` keeps that many encoder layers, spread evenly from the bottom to the top one. With
``distill.teacher`` the student also learns the teacher's label scores (``distill_loss``) on the training rows and on
unlabelled posts (``distill.unlabeled``), starting from the teacher's own fine-tuned layers (``distill.init``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.data import DataError, Problem


def spread_layers(n: int, k: int) -> list[int]:
    """``k`` of ``n`` layer indices, evenly spread, always keeping the bottom and the top layer (6 of 12:
    0, 2, 4, 7, 9, 11). The top layer stays because the pooler and the head were trained on its output."""
    if not 1 <= k <= n:
        raise ValueError(f"cannot keep {k} of {n} layers")
    if k == 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def keep_layers(model, k: int) -> list[int]:
    """Cut a BERT-style model's encoder down to ``k`` layers in place (``spread_layers``); returns the kept
    indices. ``k`` = 0 or the model's own depth: unchanged."""
    import torch

    from training.finetune import BaseModelError

    stack = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    if stack is None:
        raise BaseModelError("model.layers needs a BERT-style encoder (model.base_model.encoder.layer)")
    n = len(stack)
    if k == 0 or k == n:
        return list(range(n))
    if k > n:
        raise BaseModelError(f"model.layers={k} but the base has only {n} layers; set model.layers to {n} or fewer")
    keep = spread_layers(n, k)
    model.base_model.encoder.layer = torch.nn.ModuleList([stack[i] for i in keep])
    model.config.num_hidden_layers = k
    for new, layer in enumerate(model.base_model.encoder.layer):  # layer-indexed caches (newer transformers)
        attn = getattr(getattr(layer, "attention", None), "self", None)
        if attn is not None and hasattr(attn, "layer_idx"):
            attn.layer_idx = new
    return keep


def distill_loss(student_logits, teacher_logits, temperature: float):
    """KL(teacher || student) of the temperature-softened score distributions, times T^2 (Hinton et al. 2015), so
    its gradients keep their size next to the cross-entropy's whatever the temperature."""
    import torch.nn.functional as F

    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.softmax(teacher_logits / t, dim=-1),
                    reduction="batchmean") * (t * t)


def teacher_logits(folder: str | Path, texts: list[str], contexts: list[str | None] | None, max_length: int,
                   n_labels: int, log=print) -> np.ndarray:
    """The teacher's label logits (before its calibration temperature) for normalised texts, read exactly as the
    student reads them (first window, parent post first where given), with its torch weights."""
    import gc
    import time

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.finetune import BaseModelError, predict_logits

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")) and not any(
            folder.glob("pytorch_model*.bin")):
        raise BaseModelError(f"distill.teacher {str(folder)!r} is not a transformer model folder with its torch "
                             "weights (config.json and model.safetensors); give the folder `counterpoint train` wrote")
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    logits = predict_logits(model, tokenizer, texts, max_length, contexts=contexts)[:, :n_labels]
    del model
    gc.collect()
    log(f"distillation: teacher {folder} scored {len(texts)} training rows in {time.time() - started:.0f}s")
    return np.asarray(logits, dtype=np.float32)


def load_unlabeled(paths: list[str], text_field: str, exclude: set[str], normalize) -> tuple[list[str], dict]:
    """Normalised texts of JSONL files of unlabelled posts, without empties, repeats and any text in ``exclude``
    (the normalised dev, test and training texts). Returns the texts and counts of what was dropped and why. A
    line that is not a JSON object with a text is reported and skipped; a file that holds none is an error."""
    texts, seen = [], set()
    counts = {"read": 0, "kept": 0, "bad_rows": 0, "repeats": 0, "in_other_splits": 0}
    bad: list[Problem] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise DataError([Problem(str(p), 0, "distill.unlabeled file not found")])
        kept_here = 0
        with open(p, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                counts["read"] += 1
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    row, why = None, f"not JSON ({exc.msg})"
                else:
                    why = f"no text in field {text_field!r}"
                text = row.get(text_field) if isinstance(row, dict) else None
                if not isinstance(text, str) or not text.strip():
                    counts["bad_rows"] += 1
                    if len(bad) < 20:
                        bad.append(Problem(str(p), line_no, why))
                    continue
                norm = normalize(text)
                if norm in exclude:
                    counts["in_other_splits"] += 1
                elif norm in seen:
                    counts["repeats"] += 1
                else:
                    seen.add(norm)
                    texts.append(norm)
                    kept_here += 1
        if not kept_here:
            raise DataError(bad or [Problem(str(p), 0, f"no usable unlabelled rows (a {text_field!r} field "
                                                       "holding text on each JSON line)")])
    counts["kept"] = len(texts)
    counts["problems"] = [f"{b.file}:{b.line}: {b.message}" for b in bad]
    return texts, counts
