"""The multilingual base goes through the same pipeline as MiniLM: fine-tune, export, int8, load, predict."""

import pytest

from serving import labels as L
from serving.artifact import load_meta
from serving.predictor import load_predictor


@pytest.mark.slow
def test_e5_small_trains_and_exports_like_minilm(tmp_path):
    from tests.helpers import tiny_config
    from training.pipeline import train

    folder = train(tiny_config(tmp_path / "e5", 'model.base="e5-small"', "train.max_steps=2", "train.epochs=1",
                               "train.batch_size=8"), progress=False, log=lambda m: None)
    meta = load_meta(folder)
    assert meta.base_model == "e5-small" and meta.onnx["int8"] == "model.int8.onnx"
    assert meta.onnx["int8_recipe"]["dev_argmax_agreement"] is not None
    preds = load_predictor(folder).predict(["ye log kab sudhrenge", "آج موسم اچھا ہے", "Police said three died."])
    assert [p.language for p in preds] == ["roman_ur", "ur", "en"] and all(p.label in L.LABELS for p in preds)
