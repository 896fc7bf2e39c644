"""counterpoint compare: paired bootstrap on tiny linear models."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from tests.helpers import MINI_CORPUS
from training.compare import compare_models, compare_predictions, render_table
from training.data import Example


def _examples(labels, langs):
    return [Example(id=str(i), text=f"t{i}", label=lab, lang=lang) for i, (lab, lang) in enumerate(zip(labels, langs))]


def test_identical_models_have_zero_gap(linear_model_dir):
    result = compare_models(linear_model_dir, linear_model_dir, [MINI_CORPUS], resamples=200, seed=1)
    suite = next(iter(result["suites"].values()))
    assert {"all", "counter_speech"} <= set(suite) and any(k.startswith("lang=") for k in suite)
    for row in suite.values():
        assert row["diff"] == 0.0 and row["ci95"] == [0.0, 0.0]
    assert "F1 champ" in render_table(result)


def test_bootstrap_interval_is_seeded_and_brackets_the_gap():
    labels = ["extremist", "neutral", "counter_narrative"] * 40
    ex = _examples(labels, ["en", "ur"] * 60)
    y = np.array([{"extremist": 0, "counter_narrative": 1, "neutral": 2}[lab] for lab in labels])
    worse = y.copy()
    worse[::4] = 2  # the champion misses a quarter of the rows
    a = compare_predictions(ex, worse, y, resamples=300, seed=5)
    b = compare_predictions(ex, worse, y, resamples=300, seed=5)
    assert a == b
    lo, hi = a["all"]["ci95"]
    assert a["all"]["diff"] > 0 and lo <= a["all"]["diff"] <= hi and lo > 0
    assert a["all"]["challenger"]["macro_f1"] == 1.0


def test_cli_writes_compare_json(linear_model_dir, tmp_path):
    from training.cli import app

    out = tmp_path / "compare.json"
    res = CliRunner().invoke(app, ["compare", "--champion", str(linear_model_dir), "--challenger",
                                   str(linear_model_dir), "--eval", str(MINI_CORPUS), "--out", str(out),
                                   "--resamples", "50", "--only-eval"])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert "mini" in " ".join(doc["suites"]) or doc["suites"]
    assert "diff" in res.output


def test_public_sets_are_sliced_by_their_own_labels():
    """HateCheck-like rows (``orig_label`` = functionality) get one slice a value; a suite whose ``orig_label`` is
    an id per row gets none."""
    from training.compare import MAX_ORIG_SLICES, slice_indices

    labels = ["extremist", "neutral", "neutral"] * 4
    rows = [Example(id=str(i), text=f"t{i}", label=lab, lang="en",
                    extra={"orig_label": ["derog_h", "negate_nh", "counter_quote_nh"][i % 3]})
            for i, lab in enumerate(labels)]
    slices = slice_indices(rows)
    assert slices["orig=negate_nh"].tolist() == [1, 4, 7, 10]
    assert {"orig=derog_h", "orig=counter_quote_nh"} <= set(slices)
    result = compare_predictions(rows, np.array([0, 2, 0] * 4), np.array([0, 2, 2] * 4), resamples=50)
    assert result["orig=counter_quote_nh"]["champion"]["ordinary_flagged"] == 1.0
    assert result["orig=counter_quote_nh"]["challenger"]["ordinary_flagged"] == 0.0
    many = [Example(id=str(i), text=f"t{i}", label="neutral", lang="en", extra={"orig_label": f"row-{i}"})
            for i in range(MAX_ORIG_SLICES + 1)]
    assert not any(k.startswith("orig=") for k in slice_indices(many))
