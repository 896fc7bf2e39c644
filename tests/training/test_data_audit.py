"""counterpoint data audit: cross-validated linear probabilities ranked by self-confidence (mini corpus)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers import MINI_CORPUS, read_jsonl
from training.config import load_config
from training.data import Example
from training.label_audit import audit_examples, flip_labels, rank_issues, recall_at_k

CFG = load_config(overrides=["linear.max_features=4096", "linear.char_ngrams=[3, 3]", "linear.word_ngrams=[1, 1]"]).linear


def test_flips_found_on_a_learnable_corpus():
    """Synthetic rows whose words give the label away: the flipped rows must head the ranking."""
    rng = np.random.default_rng(0)
    vocab = {"extremist": "attack enemy martyr fight kill", "counter_narrative": "peace reject hate dialogue unite",
             "neutral": "weather market cricket recipe train"}
    examples = [Example(id=f"r{i}", text=" ".join(rng.choice(vocab[lab].split(), 4)) + f" filler{i % 7}", label=lab,
                        lang="en") for i, lab in enumerate(list(vocab) * 40)]
    noisy, flipped = flip_labels(examples, 0.1, seed=1)
    assert len(flipped) == 12 and sum(a.label != b.label for a, b in zip(examples, noisy)) == 12
    records, _ = audit_examples(noisy, CFG, folds=3)
    assert len(records) == len(examples)
    assert [r["score"] for r in records] == sorted(r["score"] for r in records)
    assert {"id", "text", "given_label", "suggested_label", "score", "issue"} <= set(records[0])
    assert recall_at_k(records, flipped) >= 0.6  # chance: 0.1


def test_builtin_ranking_without_cleanlab(monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanlab.filter", None)
    labels = np.array([0, 1, 2, 0])
    probs = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]])
    score, issues, method = rank_issues(labels, probs)
    assert "built in" in method
    assert score.tolist() == [0.9, 0.1, 0.8, 0.2] and issues.tolist() == [False, True, False, True]


def test_cli_writes_review_file(tmp_path):
    from training.cli import app

    out = tmp_path / "review.jsonl"
    res = CliRunner().invoke(app, ["data", "audit", str(MINI_CORPUS), "--out", str(out), "--top", "5", "--folds",
                                   "3", "--set", "linear.max_features=4096", "--set", "linear.char_ngrams=[3, 3]"])
    assert res.exit_code == 0, res.output
    rows = read_jsonl(out)
    assert len(rows) == 5 and rows[0]["score"] <= rows[-1]["score"]


@pytest.mark.slow
def test_audit_finds_flips_in_the_corpus():
    """The issue-12 measurement: 5% of data/labeled/train.jsonl flipped, >= 60% of them in the top k (~2 min)."""
    from tests.helpers import ROOT
    from training.data import FieldMap, load_many

    examples = load_many([ROOT / "data/labeled/train.jsonl"], FieldMap(strict=False))
    noisy, flipped = flip_labels(examples, 0.05, seed=0)
    records, _ = audit_examples(noisy, load_config().linear)
    assert recall_at_k(records, flipped) >= 0.6


def test_cli_audits_with_the_transformer_recipe(tmp_path):
    """--model transformer: out-of-fold probabilities from one real fine-tune per fold (tiny MiniLM, few steps)."""
    from training.cli import app

    out = tmp_path / "review.jsonl"
    res = CliRunner().invoke(app, ["data", "audit", str(MINI_CORPUS), "--out", str(out), "--all", "--folds", "2",
                                   "--model", "transformer", "--set", 'model.base="minilm"', "--set",
                                   "train.max_steps=2", "--set", "train.freeze_layers=0", "--set",
                                   'model.vocab_keep=""', "--set", "train.subtype_weight=0"])
    assert res.exit_code == 0, res.output
    assert "fine-tunes of minilm" in res.output
    rows = read_jsonl(out)
    assert len(rows) == 96 and len({r["id"] for r in rows}) == 96
    assert [r["score"] for r in rows] == sorted(r["score"] for r in rows)  # most suspect first
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    res = CliRunner().invoke(app, ["data", "audit", str(MINI_CORPUS), "--model", "bert"])
    assert res.exit_code == 2 and "use linear or transformer" in res.output
