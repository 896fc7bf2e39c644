"""`counterpoint retrain` (issue 12): a challenger from the champion's recipe plus feedback, warm-started from the
champion's weights, compared with it on the same suites. Real tiny transformer (the session fixture) as champion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers import MINI_CORPUS, write_jsonl
from training.export import INT8_RECIPE_NAMES

FEEDBACK = [
    {"id": "fb-0001", "text": "Moderator decision: this reply rejects the slogan, it is counter-speech.",
     "label": "counter_narrative", "lang": "en", "source": "feedback"},
    {"id": "fb-0002", "text": "Ordinary chatter about the weather in Lahore, wrongly flagged before.",
     "label": "neutral", "lang": "en", "source": "feedback"},
    {"id": "fb-0003", "text": "Yeh log insaan nahi keeray hain, inko mulk se nikalo.",
     "label": "extremist", "lang": "roman_ur", "source": "feedback"},
]


def _weights(folder):
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def test_retrain_warm_starts_from_the_champion_and_writes_the_comparison(transformer_model_dir, tmp_path):
    from training.retrain import retrain

    feedback = write_jsonl(tmp_path / "feedback.jsonl", FEEDBACK)
    out = tmp_path / "challenger"
    # A vanishing learning rate: the challenger's weights must be the champion's (a cold start would not be).
    result = retrain(transformer_model_dir, [feedback], out, suites=[MINI_CORPUS], resamples=50, progress=False,
                     overrides=["train.max_steps=1", "train.learning_rate=1e-12"], log=lambda m: None)
    recipe = json.loads((out / "model_meta.json").read_text())["training_config"]
    assert recipe["model"]["base"] == str(transformer_model_dir.resolve())
    assert recipe["train"]["epochs"] == 1 and str(feedback) in recipe["data"]["train"]
    # the int8 search starts at the champion's recipe (each recipe tried costs a dev scoring)
    champion_recipe = json.loads((transformer_model_dir / "model_meta.json").read_text())["onnx"]["int8_recipe"]
    assert recipe["export"]["int8_first_recipe"] == champion_recipe["name"]
    assert json.loads((out / "model_meta.json").read_text())["onnx"]["int8_recipe"]["name"] in INT8_RECIPE_NAMES[
        INT8_RECIPE_NAMES.index(champion_recipe["name"]):]
    champ, chall = _weights(transformer_model_dir), _weights(out)
    assert champ.keys() == chall.keys()
    assert max(float(np.abs(champ[k] - chall[k]).max()) for k in champ) < 1e-6
    saved = json.loads((out / "eval" / "compare.json").read_text())
    # the comparison does not break the folder: it still verifies, loads and scores
    from serving.predictor import load_predictor

    assert load_predictor(out).predict(["a short post"])[0].label in ("extremist", "counter_narrative", "neutral")
    assert saved["suites"]["mini_corpus"]["all"]["n"] == 96 and result["retrain"]["warm_start"] is True
    assert result["champion"]["folder"] == str(transformer_model_dir) and result["seconds"]["total"] > 0


def test_retrain_cli_says_what_is_wrong(transformer_model_dir, tmp_path):
    from training.cli import app

    res = CliRunner().invoke(app, ["retrain", "--champion", str(transformer_model_dir), "--feedback",
                                   str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "out")])
    assert res.exit_code == 2 and "does not exist" in res.output and "feedback export" in res.output
    res = CliRunner().invoke(app, ["retrain", "--champion", str(tmp_path), "--feedback", str(MINI_CORPUS),
                                   "--output", str(tmp_path / "out")])
    assert res.exit_code == 2 and "not a model folder" in res.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["linear"])
def test_a_warm_start_needs_a_transformer(linear_model_dir, tmp_path, kind):
    from training.config import ConfigError
    from training.retrain import retrain_config

    with pytest.raises(ConfigError, match="--cold"):
        retrain_config(linear_model_dir, [MINI_CORPUS], tmp_path / "out")
    cfg = retrain_config(linear_model_dir, [MINI_CORPUS], tmp_path / "out", warm=False)
    assert cfg.model.kind == kind and str(MINI_CORPUS) in cfg.data.train


def test_augmentation_rewrites_a_share_of_training_rows_and_keeps_their_labels(tmp_path):
    """`train.augment`: seeded surface rewrites of training rows (dev and test untouched), reported in the log."""
    from tests.helpers import tiny_config
    from training.augment import augment
    from training.pipeline import train

    texts = ["kafir log sab ghaddar hain yaar", "The weather is lovely today in Lahore", "یہ لوگ ہمارے بھائی ہیں"] * 20
    langs = ["roman_ur", "en", "ur"] * 20
    out, changed = augment(texts, langs, 0.5, 13)
    assert out == augment(texts, langs, 0.5, 13)[0] and augment(texts, langs, 0.0, 13)[0] == texts
    assert 15 <= sum(a != b for a, b in zip(out, texts)) == sum(changed.values()) <= 45
    assert changed["leetspeak"] and changed["emoji"] and all(
        a == b for a, b, lang in zip(out, texts, langs) if lang == "ur" and "@" in a)
    # Roman Urdu spelling variants apply to Roman Urdu rows only, and write a known variant of the word
    from training.robustness import _ROMAN_VARIANTS

    en_out, en_changed = augment(["The kafir word is in this English row, nahi?"] * 40, ["en"] * 40, 1.0, 13)
    assert en_changed["roman_spelling"] == 0 and en_changed["script_switch"] == 0
    ru_texts = ["ye kafir log nahi samjhenge kya hai"] * 60
    ru_out, ru_changed = augment(ru_texts, ["roman_ur"] * 60, 1.0, 13)
    assert ru_changed["roman_spelling"] > 0
    allowed = {w: {w, *_ROMAN_VARIANTS.get(w, ())} for w in ru_texts[0].split()}
    spelled = [t for t in ru_out if t != ru_texts[0] and len(t.split()) == len(ru_texts[0].split())
               and all(a in allowed[b] for a, b in zip(t.split(), ru_texts[0].split()))]
    assert len(spelled) == ru_changed["roman_spelling"]
    logs = []
    train(tiny_config(tmp_path / "m", 'model.kind="linear"', "linear.max_features=4096", "train.augment=0.3"),
          progress=False, log=logs.append)
    assert any(m.startswith("augmentation: ") and "rows rewritten" in m for m in logs)
