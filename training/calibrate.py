"""Calibration: temperature scaling (Guo et al. 2017), expected calibration error, and per-label thresholds.

All fitted on the dev split, never on test. Thresholds feed ``serving.predictor.decide``: an extremist threshold
(which decides ``flagged``) and a counter-narrative threshold on p(counter) / (p(counter) + p(neutral)).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import f1_score

from serving import labels as L
from serving.predictor import decide, softmax


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T > 0 that minimises dev negative log-likelihood of softmax(logits / T)."""
    logits, y = np.asarray(logits, dtype=np.float64), np.asarray(y)
    if len(y) == 0:
        return 1.0
    res = minimize_scalar(lambda log_t: nll(logits, y, float(np.exp(log_t))), bounds=(np.log(0.05), np.log(20.0)),
                          method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-label confidence over equal-width bins."""
    probs, y = np.asarray(probs), np.asarray(y)
    if len(y) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def reliability_bins(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    conf = np.asarray(probs).max(axis=1)
    correct = (np.asarray(probs).argmax(axis=1) == np.asarray(y)).astype(float)
    out = []
    edges = np.linspace(0, 1, bins + 1)
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            out.append({"lo": float(lo), "hi": float(hi), "n": int(mask.sum()), "confidence": float(conf[mask].mean()),
                        "accuracy": float(correct[mask].mean())})
    return out


def choose_thresholds(probs: np.ndarray, y: np.ndarray, grid: np.ndarray | None = None) -> dict[str, float]:
    """Grid-search the two thresholds of ``decide`` for the best dev macro-F1 (ties: nearest to 0.5)."""
    grid = np.round(np.arange(0.1, 0.91, 0.025), 3) if grid is None else grid
    best, best_key = {L.EXTREMIST: 0.5, L.COUNTER_NARRATIVE: 0.5}, (-1.0, 0.0)
    labels = list(range(len(L.LABELS)))
    for te in grid:
        for tc in grid:
            th = {L.EXTREMIST: float(te), L.COUNTER_NARRATIVE: float(tc)}
            f1 = f1_score(y, decide(probs, th), labels=labels, average="macro", zero_division=0)
            key = (round(float(f1), 6), -abs(te - 0.5) - abs(tc - 0.5))
            if key > best_key:
                best, best_key = th, key
    return best


def calibrate(dev_logits: np.ndarray, dev_y: np.ndarray, *, temperature: bool = True, thresholds: bool = True) -> dict:
    """Fit temperature and thresholds on dev; returns what the model folder stores."""
    t = fit_temperature(dev_logits, dev_y) if temperature else 1.0
    before = softmax(dev_logits, 1.0)
    after = softmax(dev_logits, t)
    th = choose_thresholds(after, dev_y) if thresholds else {}
    return {
        "temperature": t,
        "thresholds": th,
        "calibration": {
            "fitted_on": "dev",
            "n": int(len(dev_y)),
            "ece_before": expected_calibration_error(before, dev_y),
            "ece_after": expected_calibration_error(after, dev_y),
            "nll_before": nll(dev_logits, dev_y, 1.0),
            "nll_after": nll(dev_logits, dev_y, t),
        },
    }
