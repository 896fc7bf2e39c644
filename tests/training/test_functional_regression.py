"""Regression guard (issue 14): the linear baseline, trained on data/labeled/train.jsonl, against a fixed slice of
the functional suite. The floors sit a few points under what the baseline scores today (see the figures in each
assertion), so the test fails when the baseline, the normaliser or the corpus gets worse, not when it wobbles.

The full suite, robustness and bias audit of the default model is `make eval` (a command, not a test).
"""

from pathlib import Path

import numpy as np
import pytest

from serving import labels as L

ROOT = Path(__file__).resolve().parents[2]
LABELED = ROOT / "data" / "labeled"


@pytest.fixture(scope="module")
def corpus_linear(tmp_path_factory):
    """The linear baseline on the written corpus (train/dev/test.jsonl): about 15 s on a quiet 2-core machine."""
    from serving.predictor import load_predictor
    from training.config import load_config
    from training.pipeline import train

    out = tmp_path_factory.mktemp("models") / "corpus-linear"
    cfg = load_config(overrides=[
        f'data.train=["{LABELED / "train.jsonl"}"]', f'data.dev=["{LABELED / "dev.jsonl"}"]',
        f'data.test=["{LABELED / "test.jsonl"}"]', 'model.kind="linear"', f'output.dir="{out}"',
        'output.name="functional-regression"', 'output.version="0.0.1"'])
    return load_predictor(train(cfg, progress=False, log=lambda m: None))


@pytest.fixture(scope="module")
def scored(corpus_linear):
    from serving.predictor import decide
    from serving.profiles import resolve
    from training.functional import load_suite, regression_subset

    rows = regression_subset(load_suite(), per_cell=6)
    probs = corpus_linear.predict_proba([ex.text for ex in rows])
    pred = decide(probs, resolve(corpus_linear.meta, None).thresholds)
    return rows, probs, pred


def _rate(rows, pred, keep) -> float:
    idx = [i for i, ex in enumerate(rows) if keep(ex)]
    return float(np.mean([pred[i] == rows[i].label_id for i in idx]))


def test_pass_rates_per_expected_label(scored):
    rows, _, pred = scored
    assert len(rows) >= 700
    floors = {L.EXTREMIST: 0.90, L.COUNTER_NARRATIVE: 0.45, L.NEUTRAL: 0.68}  # today 0.94, 0.56, 0.73
    for label, floor in floors.items():
        assert _rate(rows, pred, lambda ex: ex.label == label) >= floor, label
    assert _rate(rows, pred, lambda ex: True) >= 0.70  # today 0.76
    for lang in ("en", "ur", "roman_ur"):  # today 0.79, 0.75, 0.74
        assert _rate(rows, pred, lambda ex: ex.lang == lang) >= 0.68, lang


def test_hate_functionalities_stay_flagged(scored):
    from training.functional import pass_rates

    rows, _, pred = scored
    per_func = pass_rates(rows, pred)
    for func in ("dehumanisation", "derogation", "incitement", "hate_obfuscated", "hate_question",
                 "recruitment_coded", "glorification"):  # 100% today
        assert per_func[func]["pass_rate"] >= 0.85, func
    for func in ("news_attack", "news_claim_reported", "obfuscation_benign"):  # neutral look-alikes: 100% today
        assert per_func[func]["flag_pass_rate"] >= 0.85, func


def test_bias_aucs_on_the_slice(scored):
    from training.bias import audit_examples

    rows, probs, _ = scored
    audit = audit_examples(rows, probs)
    for group, r in audit["groups"].items():  # today the lowest is 0.85 (BPSN, pashtun) on this small slice
        assert r["bpsn_auc"] is not None and r["bpsn_auc"] >= 0.78, group
        assert r["bnsp_auc"] is not None and r["bnsp_auc"] >= 0.78, group


def test_perturbations_meet_the_goal(corpus_linear, scored):
    from serving.profiles import resolve
    from training.robustness import robustness_report

    rows, _, _ = scored
    report = robustness_report(corpus_linear, rows, thresholds=resolve(corpus_linear.meta, None).thresholds)
    missed = {k: (v["extremist"]["delta_points"], v["neutral"]["delta_points"]) for k, v in report.items()
              if not v["meets_goal"]}
    assert not missed  # every perturbation met the goal on this slice when written
