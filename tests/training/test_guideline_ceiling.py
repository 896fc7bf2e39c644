"""The guideline audit of the public sets (``data/audit/guideline_ceiling.py``): its arithmetic, and that the sample
kept in the repository holds no public text and only our three labels."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("guideline_ceiling", ROOT / "data" / "audit" / "guideline_ceiling.py")
gc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gc)


def test_kappa_matches_scikit_learn():
    a = ["extremist", "neutral", "neutral", "counter_narrative", "neutral", "extremist", "neutral"]
    b = ["extremist", "neutral", "extremist", "counter_narrative", "neutral", "neutral", "neutral"]
    assert gc.kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert gc.kappa(["neutral"] * 3, ["neutral"] * 3) == 1.0


def test_the_weighted_ceiling_equals_scoring_the_whole_file_when_the_sample_is_the_file():
    # Strata sampled in full: the weighted confusion is the file's own, so its macro-F1 is scikit-learn's on it.
    rows = ([{"orig_label": "hate", "mapped": "extremist", "label": lab} for lab in
             ["extremist", "neutral", "neutral", "extremist", "counter_narrative"]]
            + [{"orig_label": "normal", "mapped": "neutral", "label": lab} for lab in
               ["neutral", "neutral", "extremist", "neutral"]])
    conf = gc.weighted_confusion(rows, {"hate": 5, "normal": 4})
    gold, pred = [r["mapped"] for r in rows], [r["label"] for r in rows]
    assert gc.macro_f1(conf) == pytest.approx(f1_score(gold, pred, labels=["extremist", "neutral"], average="macro"))
    r = gc.rates(conf)
    assert r["ordinary_flagged"] == pytest.approx(1 / 4) and r["extremist_recall"] == pytest.approx(2 / 5)


def test_each_sampled_row_stands_for_its_stratum():
    # 2 of 100 "hate" rows sampled (one called extremist by us), 2 of 900 "normal" rows (neither flagged).
    rows = [{"orig_label": "hate", "mapped": "extremist", "label": "extremist"},
            {"orig_label": "hate", "mapped": "extremist", "label": "neutral"},
            {"orig_label": "normal", "mapped": "neutral", "label": "neutral"},
            {"orig_label": "normal", "mapped": "neutral", "label": "neutral"}]
    conf = gc.weighted_confusion(rows, {"hate": 100, "normal": 900})
    assert conf == {("extremist", "extremist"): 50, ("extremist", "neutral"): 50, ("neutral", "neutral"): 900}
    # extremist F1 = 100 / (100 + 50) = 2/3; neutral F1 = 1800 / (1800 + 50) ; macro their mean
    assert gc.macro_f1(conf) == pytest.approx((2 / 3 + 1800 / 1850) / 2)


def test_wilson_interval_brackets_the_share():
    lo, hi = gc.wilson(30, 100)
    assert lo < 0.30 < hi and 0.21 < lo < 0.22 and 0.39 < hi < 0.40


def test_the_kept_sample_holds_no_public_text_and_only_our_labels():
    rows = gc.read_jsonl(gc.SAMPLE)
    assert len(rows) == 500
    assert len({r["id"] for r in rows}) == 500
    for r in rows:
        assert "text" not in r
        assert set(r) == {"id", "file", "line", "orig_label", "mapped", "label_a", "label_b", "label", "settled"}
        assert {r["label_a"], r["label_b"], r["label"]} <= set(gc.LABELS)
        assert r["settled"] == (r["label_a"] != r["label_b"])
        if not r["settled"]:
            assert r["label"] == r["label_a"]


def test_main_refuses_a_folder_without_the_public_sets(tmp_path, capsys):
    assert gc.main(["--external", str(tmp_path)]) == 2
    assert "lacks ruhsold.jsonl" in capsys.readouterr().err


def test_main_refuses_other_versions_of_the_public_sets(tmp_path, capsys):
    with open(tmp_path / "ruhsold.jsonl", "w") as f:
        for i in range(400):
            label, orig = [("extremist", "2:Religious Hate"), ("extremist", "3:Sexism"), ("neutral", "1:Normal")][i % 3]
            f.write(json.dumps({"text": f"tweet {i}", "label": label, "orig_label": orig, "lang": "roman_ur"}) + "\n")
    with open(tmp_path / "hickey2025_reddit_hatesubs.jsonl", "w") as f:
        for i in range(400):
            label = {0: "extremist", 1: "counter_narrative"}.get(i % 10, "neutral")
            f.write(json.dumps({"text": f"post {i}", "label": label, "orig_label": label, "lang": "en"}) + "\n")
    assert gc.main(["--external", str(tmp_path)]) == 2
    assert "does not match" in capsys.readouterr().err


def test_the_bootstrap_interval_holds_the_point_estimate_and_narrows_to_it_without_spread():
    rows = ([{"orig_label": "hate", "mapped": "extremist", "label": lab} for lab in ["extremist", "neutral"] * 10]
            + [{"orig_label": "normal", "mapped": "neutral", "label": "neutral"} for _ in range(20)])
    sizes = {"hate": 200, "normal": 2000}
    point = gc.macro_f1(gc.weighted_confusion(rows, sizes))
    ci = gc.bootstrap_ceiling(rows, sizes, n=300)
    assert ci["macro_f1"][0] < point < ci["macro_f1"][1]
    assert ci["extremist_recall"][0] < 0.5 < ci["extremist_recall"][1]
    same = [{"orig_label": "hate", "mapped": "extremist", "label": "extremist"} for _ in range(5)]
    only_hate = gc.bootstrap_ceiling(same, {"hate": 50}, n=50)
    assert only_hate["extremist_recall"] == [1.0, 1.0] and only_hate["ordinary_flagged"] is None


def test_weighted_user_figures_take_our_label_as_gold_when_asked():
    rows = [{"orig_label": "hate", "mapped": "extremist", "label": "neutral", "model": "extremist"},
            {"orig_label": "hate", "mapped": "extremist", "label": "extremist", "model": "extremist"},
            {"orig_label": "normal", "mapped": "neutral", "label": "neutral", "model": "neutral"},
            {"orig_label": "normal", "mapped": "neutral", "label": "neutral", "model": "extremist"}]
    ours = gc._weighted_user(gc.weighted_confusion(rows, {"hate": 10, "normal": 90}, "model", "label"))
    # our extremist: 5 (hate, flagged); flagged: 10 hate + 45 normal; our neutral: 5 hate + 90 normal, 50 flagged
    assert ours == {"extremist_precision": round(5 / 55, 3), "extremist_recall": 1.0,
                    "neutral_flagged": round(50 / 95, 3)}
