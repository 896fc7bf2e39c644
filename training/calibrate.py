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


# -- threshold profiles ------------------------------------------------------------------------------------------
#: Operating points, each stated as targets on dev: extremist precision on the **real** dev posts (realistic
#: prevalence) and extremist recall on **all** dev extremist rows (real and written).
PROFILE_TARGETS: dict[str, dict] = {
    "high_recall": {"recall": 0.95, "precision": 0.0,
                    "description": "catch nearly every extremist post (recall >= 0.95 on dev); more false flags"},
    "balanced": {"recall": 0.85, "precision": 0.80,
                 "description": "precision >= 0.80 on real dev posts while recall on dev extremist rows >= 0.85"},
    "high_precision": {"recall": 0.70, "precision": 0.90,
                       "description": "precision >= 0.90 on real dev posts while recall >= 0.70; fewer, surer flags"},
}
DEFAULT_PROFILE = "balanced"


def _prec_rec(flag: np.ndarray, pos: np.ndarray) -> tuple[float, float]:
    tp = float((flag & pos).sum())
    return (tp / flag.sum() if flag.sum() else 1.0), (tp / pos.sum() if pos.sum() else 1.0)


def operating_point(p_ext: np.ndarray, pos: np.ndarray, real: np.ndarray, *, precision: float, recall: float,
                    grid: np.ndarray) -> tuple[float, bool]:
    """The extremist threshold for a target: the highest-recall (lowest) threshold whose real-post precision and
    all-row recall both meet their targets. Where none does, the recall target is the floor ("while recall stays
    >= r"): the highest threshold that still keeps it, i.e. the best precision the floor allows; where even the
    floor cannot be met, the threshold closest to both targets (max of the smaller ratio to target).
    Returns (threshold, target_met)."""
    best_t, best_score, recall_only_t = float(grid[0]), -1.0, None
    floor_t = None
    for t in grid:
        flag = p_ext >= t
        p_real, _ = _prec_rec(flag[real], pos[real])
        _, r_all = _prec_rec(flag, pos)
        if p_real >= precision and r_all >= recall:
            if precision == 0.0:  # recall-only target: the highest threshold that still meets it
                recall_only_t = float(t)
                continue
            return float(t), True
        if r_all >= recall:
            floor_t = float(t)
        score = min(p_real / precision if precision else 1.0, r_all / recall if recall else 1.0)
        if score > best_score:
            best_t, best_score = float(t), score
    if recall_only_t is not None:
        return recall_only_t, True
    if floor_t is not None:
        return floor_t, False
    return best_t, False


def profile_metrics(probs: np.ndarray, y: np.ndarray, real: np.ndarray, thresholds: dict, band) -> dict:
    """Precision/recall of the flag, flag rate on neutral rows, counter-speech not flagged, review rate; on the real
    dev posts and on the written dev rows."""
    from serving.profiles import Profile

    e, c, n = (L.LABEL2ID[x] for x in (L.EXTREMIST, L.COUNTER_NARRATIVE, L.NEUTRAL))
    pred = decide(probs, thresholds)
    review = Profile("x", thresholds, tuple(band) if band else None).review(probs[:, e])
    out = {}
    for part, mask in (("real_dev", real), ("written_dev", ~real)):
        if not mask.any():
            continue
        flag, yy = pred[mask] == e, y[mask]
        p, r = _prec_rec(flag, yy == e)
        out[part] = {"n": int(mask.sum()), "extremist_precision": round(float(p), 4),
                     "extremist_recall": round(float(r), 4),
                     "neutral_flagged": round(float(flag[yy == n].mean()) if (yy == n).any() else 0.0, 4),
                     "counter_not_flagged": round(float(1 - flag[yy == c].mean()) if (yy == c).any() else 1.0, 4),
                     "macro_f1": round(float(f1_score(yy, pred[mask], labels=sorted(set(yy.tolist())),
                                                      average="macro", zero_division=0)), 4),
                     "review_rate": round(float(review[mask].mean()), 4)}
    return out


def choose_profiles(probs: np.ndarray, y: np.ndarray, real: np.ndarray) -> tuple[dict, str]:
    """Threshold profiles from dev probabilities of the served predictor; returns (profiles, default name).

    ``real`` marks dev rows that are real posts. Each profile's extremist threshold meets its targets
    (``PROFILE_TARGETS``) where dev allows; its counter-narrative threshold is then chosen for dev macro-F1. The
    review band spans the high-recall to the high-precision threshold: scores there are where profiles disagree,
    so a human should look.
    """
    probs, y = np.asarray(probs), np.asarray(y)
    real = np.asarray(real, dtype=bool)
    if not real.any():  # no real posts in dev: the written dev rows stand in, and the profiles say so
        real = np.ones(len(y), dtype=bool)
    grid = np.round(np.arange(0.05, 0.951, 0.01), 3)
    e = L.LABEL2ID[L.EXTREMIST]
    pos = y == e
    chosen = {name: operating_point(probs[:, e], pos, real, precision=t["precision"], recall=t["recall"], grid=grid)
              for name, t in PROFILE_TARGETS.items()}
    lo = min(t for t, _ in chosen.values())
    hi = max(t for t, _ in chosen.values())
    labels = list(range(len(L.LABELS)))
    profiles = {}
    for name, (te, met) in chosen.items():
        best_tc, best_f1 = 0.5, -1.0
        for tc in np.round(np.arange(0.1, 0.91, 0.025), 3):
            f1 = f1_score(y, decide(probs, {L.EXTREMIST: te, L.COUNTER_NARRATIVE: float(tc)}), labels=labels,
                          average="macro", zero_division=0)
            if f1 > best_f1 + 1e-9:
                best_tc, best_f1 = float(tc), float(f1)
        th = {L.EXTREMIST: te, L.COUNTER_NARRATIVE: best_tc}
        band = [lo, hi] if hi > lo else None
        profiles[name] = {"thresholds": th, "review_band": band,
                          "description": PROFILE_TARGETS[name]["description"],
                          "metrics": {"target_met_on_dev": met, **profile_metrics(probs, y, real, th, band)}}
    return profiles, DEFAULT_PROFILE
