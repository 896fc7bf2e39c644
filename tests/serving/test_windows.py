"""Long texts and model-folder checks (issue 10): window aggregation, stride validated against max_length, ONNX
file names kept inside the folder, no silent int8, and the model identity covering the decision settings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from serving import labels as L
from serving.artifact import ModelFolderError, load_meta, read_meta, update_meta
from serving.predictor import AGGREGATIONS, aggregate_windows, load_predictor, pad_windows
from tests.helpers import serve

E = L.LABEL2ID[L.EXTREMIST]


def row(p_extremist: float) -> list[float]:
    rest = (1 - p_extremist) / 2
    out = [rest] * len(L.LABELS)
    out[E] = p_extremist
    return out


def test_pad_windows_rounds_the_width_up_to_a_multiple_within_the_limit():
    ids, mask = pad_windows([[5, 6, 7], [8]], pad_id=1)
    assert ids.tolist() == [[5, 6, 7], [8, 1, 1]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_windows([[5, 6, 7], [8]], pad_id=1, multiple=4, limit=128)
    assert ids.tolist() == [[5, 6, 7, 1], [8, 1, 1, 1]] and mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert pad_windows([[2] * 17], 0, multiple=16, limit=128)[0].shape == (1, 32)
    assert pad_windows([[2] * 17], 0, multiple=16, limit=20)[0].shape == (1, 20)  # never past the model's length
    assert pad_windows([[2] * 16], 0, multiple=16, limit=128)[0].shape == (1, 16)  # already a multiple


def test_aggregations_on_known_windows():
    probs = np.asarray([row(0.9), row(0.1), row(0.1), row(0.5), row(0.3)])
    owner = [0, 0, 0, 1, 2]  # text 0 has three windows, texts 1 and 2 one each
    got = {m: aggregate_windows(probs, owner, 3, m) for m in AGGREGATIONS}
    assert got["max"][0, E] == pytest.approx(0.9)
    assert got["noisy_or"][0, E] == pytest.approx(1 - 0.1 * 0.9 * 0.9)
    assert got["topk_mean"][0, E] == pytest.approx(0.5)  # mean of the two most extreme windows
    for m in AGGREGATIONS:
        assert np.allclose(got[m].sum(axis=1), 1.0)
        assert np.allclose(got[m][1:], probs[3:])  # one window: that window, whatever the method
    with pytest.raises(ValueError, match="noisy_or"):
        aggregate_windows(probs, owner, 3, "mean")


def test_window_aggregation_is_read_from_the_meta_and_changes_identity(transformer_model_dir, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    base = load_predictor(folder, "onnx")
    assert base.meta.window_aggregation == "max"
    text = " ".join(["The ministry announced new rules for madrassa registration today."] * 40)
    probs, owner = base.window_probs([text])
    assert len(owner) > 3
    sha = base.meta.sha256()
    for method in ("noisy_or", "topk_mean"):
        meta = update_meta(folder, window_aggregation=method)
        assert meta.sha256() != sha
        got = load_predictor(folder, "onnx").predict_proba([text])
        assert np.allclose(got, aggregate_windows(probs, owner, 1, method), atol=1e-6)
    assert update_meta(folder, window_aggregation="max").sha256() == sha  # the default keeps old identities


def test_window_costs_count_windows_and_tokens(transformer_model_dir):
    predictor = load_predictor(transformer_model_dir, "onnx")
    short, long = predictor.window_costs(["hello there", "word " * 1000])
    assert short[0] == 1 and 3 <= short[1] <= 10
    windows, owner = predictor.windows(["word " * 1000])
    assert long == (len(windows), sum(len(w) for w in windows))


def _edit_meta(folder, **changes):
    path = folder / "model_meta.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_window_stride_longer_than_a_window_is_refused(transformer_model_dir, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    _edit_meta(folder, max_length=64, window_stride=96)
    with pytest.raises(ModelFolderError, match="window_stride"):
        read_meta(folder)
    from training.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="model.window_stride"):
        load_config(overrides=["model.max_length=64"])
    assert load_config(overrides=["model.max_length=64", "model.window_stride=48"]).model.window_stride == 48


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "sub/../../x.onnx"])
def test_onnx_names_outside_the_folder_are_refused(transformer_model_dir, tmp_path, name):
    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    meta = json.loads((folder / "model_meta.json").read_text())
    _edit_meta(folder, onnx={**meta["onnx"], "int8": name})
    with pytest.raises(ModelFolderError, match="onnx.int8"):
        load_meta(folder)


def test_an_onnx_symlink_out_of_the_folder_is_refused(transformer_model_dir, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    outside = tmp_path / "elsewhere.onnx"
    shutil.copy(folder / "model.int8.onnx", outside)
    meta = load_meta(folder)
    (folder / "evil.onnx").symlink_to(outside)
    update_meta(folder, onnx={**meta.onnx, "int8": "evil.onnx"})
    with pytest.raises(ModelFolderError, match="leads outside"):
        load_predictor(folder, "onnx-int8")


def test_a_folder_without_int8_serves_fp32_and_says_why(transformer_model_dir, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    (folder / "model.int8.onnx").unlink()
    note = "no int8 recipe reached 0.995 argmax agreement with fp32; the fp32 graph is served"
    meta = load_meta(folder, verify=False)
    update_meta(folder, onnx={**meta.onnx, "int8": None, "int8_note": note})
    predictor = load_predictor(folder)
    assert predictor.backend == "onnx"
    with pytest.raises(ModelFolderError, match="no int8 ONNX graph"):
        load_predictor(folder, "onnx-int8")
    with serve(predictor) as client:
        model = client.get("/v1/info").json()["model"]
    assert model["backend"] == "onnx" and model["int8"] is None and model["int8_note"] == note


def test_identity_covers_the_decision_settings(linear_model_dir, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(linear_model_dir, folder)
    first = load_meta(folder).sha256()
    assert update_meta(folder).sha256() == first  # rewriting the same meta keeps it
    seen = {first}
    for change in ({"temperature": 1.7}, {"thresholds": {"extremist": 0.77, "counter_narrative": 0.4}},
                   {"default_profile": None, "profiles": {}}):
        sha = update_meta(folder, **change).sha256()
        assert sha not in seen
        seen.add(sha)
    update_meta(folder, metrics={"note": "metrics do not decide anything"})
    assert load_meta(folder).sha256() == sha


def test_a_transformer_stops_between_chunks_when_told(transformer_model_dir):
    from serving.predictor import Abandoned, stop_when

    predictor = load_predictor(transformer_model_dir, "onnx", batch_size=2)
    text = "word " * 2000
    calls = []
    with stop_when(lambda: bool(calls.append(1)) or len(calls) > 3):
        with pytest.raises(Abandoned, match="windows"):
            predictor.predict([text])
    assert len(calls) == 4  # checked before each chunk; stopped at the fourth
    with stop_when(lambda: False):
        assert len(predictor.predict([text])) == 1
    assert len(predictor.predict([text])) == 1  # outside the block nothing is checked
