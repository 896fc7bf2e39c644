"""``counterpoint data audit``: rows whose given label is likely wrong, for a person to review.

Out-of-sample probabilities come from the linear baseline (training/baseline.py) fitted k times, each time
without one fold (stratified by label), so every row is scored by a model that never saw it; with ``--model
transformer`` the config's transformer recipe is fine-tuned k times instead (slower: k fine-tunes). Rows are ranked by
confident learning's self-confidence (the out-of-sample probability of the given label; low = suspect) and
cleanlab's ``find_label_issues`` marks the rows it counts as issues. Without cleanlab (the ``audit`` extra) the
same self-confidence ranking is computed here and the issue mark is "another label is more probable".
The review file holds one JSON line per row, most suspect first:
``{"id", "text", "given_label", "suggested_label", "score", "issue", "lang"}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold

from serving import labels as L
from serving.text import normalize
from training.data import Example


def _folds(examples: Sequence[Example], folds: int, seed: int):
    """Normalised texts, label ids, an empty probability matrix and the stratified folds (a clear error when the
    rarest label has fewer rows than folds)."""
    texts = [normalize(ex.text) for ex in examples]
    y = np.asarray([L.LABEL2ID[ex.label] for ex in examples])
    smallest = int(np.bincount(y, minlength=len(L.LABELS)).min())
    if smallest < folds:
        raise ValueError(f"every label needs at least {folds} rows for {folds}-fold cross-validation; the rarest "
                         f"has {smallest} (pass fewer --folds or more rows)")
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, y)
    return texts, y, np.zeros((len(y), len(L.LABELS))), splits


def cross_val_probs(examples: Sequence[Example], linear_cfg, *, folds: int = 5, seed: int = 13) -> np.ndarray:
    """Out-of-fold class probabilities (columns in schema order) of the linear baseline."""
    from training.baseline import fit

    texts, y, probs, splits = _folds(examples, folds, seed)
    for train_idx, held_idx in splits:
        model = fit(linear_cfg, [texts[i] for i in train_idx], y[train_idx].tolist(), seed=seed)
        probs[held_idx] = model.predict_proba([texts[i] for i in held_idx])
    return probs


def cross_val_probs_transformer(examples: Sequence[Example], cfg, *, folds: int = 5, seed: int = 13) -> np.ndarray:
    """Out-of-fold class probabilities of the transformer recipe in ``cfg`` (``model.base``, ``[train]``): one
    fine-tune per fold on the other folds, scoring the held-out one (no dev split: the fold's last epoch is kept).
    ``folds`` fine-tunes cost ``folds`` times a training run on 4/5 of the rows: set ``train.epochs`` /
    ``train.max_steps`` to bound it."""
    import torch

    from training.finetune import finetune, predict_logits

    texts, y, probs, splits = _folds(examples, folds, seed)
    for train_idx, held_idx in splits:
        res = finetune(cfg, [texts[i] for i in train_idx], y[train_idx].tolist(), [], [], progress=False)
        logits = predict_logits(res.model, res.tokenizer, [texts[i] for i in held_idx], cfg.model.max_length)
        probs[held_idx] = torch.softmax(torch.as_tensor(logits[:, :len(L.LABELS)]), dim=1).numpy()
    return probs


def rank_issues(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(self-confidence score per row, issue mask, method). cleanlab when installed, else our own ranking."""
    score = probs[np.arange(len(labels)), labels]
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        return score, probs.argmax(1) != labels, "self_confidence (built in; cleanlab not installed)"
    score = get_label_quality_scores(labels, probs, method="self_confidence")
    issues = find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1)
    return np.asarray(score), np.asarray(issues, dtype=bool), "cleanlab self_confidence + prune_by_noise_rate"


def audit_examples(examples: Sequence[Example], linear_cfg, *, folds: int = 5, seed: int = 13,
                   transformer_cfg=None) -> tuple[list[dict], str]:
    """Every row as a review record, most suspect first, and the method used. ``transformer_cfg``: cross-validate
    the transformer recipe of that config instead of the linear baseline."""
    if transformer_cfg is not None:
        probs = cross_val_probs_transformer(examples, transformer_cfg, folds=folds, seed=seed)
    else:
        probs = cross_val_probs(examples, linear_cfg, folds=folds, seed=seed)
    labels = np.asarray([L.LABEL2ID[ex.label] for ex in examples])
    score, issues, method = rank_issues(labels, probs)
    order = np.argsort(score, kind="stable")
    return [{"id": examples[i].id, "text": examples[i].text, "given_label": examples[i].label,
             "suggested_label": L.ID2LABEL[int(probs[i].argmax())], "score": float(score[i]),
             "issue": bool(issues[i]), "lang": examples[i].lang} for i in order], method


def write_review(records: Sequence[dict], path: str | Path, top: int | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records[:top] if top else records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def flip_labels(examples: Sequence[Example], share: float, seed: int = 0) -> tuple[list[Example], set[str]]:
    """A copy with ``share`` of the rows given a different (random) label; the ids flipped. For measuring."""
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    n = int(round(share * len(examples)))
    chosen = set(rng.choice(len(examples), size=n, replace=False).tolist())
    out = []
    for i, ex in enumerate(examples):
        if i in chosen:
            others = [lab for lab in L.LABELS if lab != ex.label]
            ex = replace(ex, label=others[int(rng.integers(len(others)))])
        out.append(ex)
    return out, {examples[i].id for i in chosen}


def recall_at_k(records: Sequence[dict], flipped: set[str]) -> float:
    """Share of the flipped ids among the top k records, k = number of flips."""
    k = len(flipped)
    return sum(1 for r in records[:k] if r["id"] in flipped) / k if k else 0.0
