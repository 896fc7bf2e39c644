"""Activation smoothing before dynamic int8 (issue 13): the same function in fp32, a smaller int8 error."""

from __future__ import annotations

import numpy as np
import onnx

from serving.artifact import ModelMeta
from serving.predictor import OnnxPredictor
from serving.text import normalize
from training.data import FieldMap, load_many
from training.export import SMOOTH_ALPHAS, smooth_activations


def _texts(mini_corpus, n=48):
    return [normalize(ex.text) for ex in load_many([mini_corpus], FieldMap(strict=False))][:n]


def _logits(folder, name, texts):
    meta = ModelMeta(name="t", version="0", kind="transformer", created_at="", labels=[], label_schema_version=0,
                     normaliser_version=0, onnx={"fp32": name})
    predictor = OnnxPredictor(folder, meta, quantized=False)
    out = []
    run = predictor._run

    def recording(ids, mask):
        out.append(run(ids, mask))
        return out[-1]

    predictor._run = recording
    predictor.predict_proba(texts, normalized=True)
    return np.concatenate(out)


def test_smoothed_graph_is_the_same_function_with_less_int8_error(transformer_model_dir, mini_corpus, tmp_path):
    texts = _texts(mini_corpus)
    out = transformer_model_dir / "smooth_test.onnx"
    try:
        info = smooth_activations(transformer_model_dir / "model.onnx", transformer_model_dir, texts, out, limit=32)
        graph = onnx.load(str(out)).graph
        muls = [n for n in graph.node if n.op_type == "Mul" and n.name.endswith("_smooth")]
        assert info["nodes"] == len(muls) > 0 and info["of"] >= info["nodes"]
        assert sum(info["alphas"].values()) == info["nodes"]
        assert set(info["alphas"]) <= {str(a) for a in SMOOTH_ALPHAS if a is not None}
        # each node's alpha is chosen by its simulated int8 error, "no smoothing" included: never worse
        assert 0 < info["error_after"] <= info["error_before"]
        # every inserted Mul feeds the weight node it was made for, and comes before it (topological order)
        position = {n.name: i for i, n in enumerate(graph.node)}
        consumers = {i: n for n in graph.node for i in n.input}
        for mul in muls:
            consumer = consumers[mul.output[0]]
            assert mul.name == f"{consumer.name}_smooth" and position[mul.name] < position[consumer.name]
        # X W == (X / s)(s W): the logits agree with the original fp32 graph
        before = _logits(transformer_model_dir, "model.onnx", texts)
        after = _logits(transformer_model_dir, out.name, texts)
        assert np.allclose(before, after, atol=1e-4 * max(1.0, float(np.abs(before).max())))
    finally:
        out.unlink(missing_ok=True)
    assert not list(transformer_model_dir.glob("tmp*")), "the probe graphs are cleaned up"


def test_export_quantises_the_smoothed_graph_and_ships_the_plain_fp32(transformer_model_dir, mini_corpus, tmp_path):
    import shutil

    from training.export import export_onnx

    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    entry = export_onnx(folder, check_texts=_texts(mini_corpus), min_agreement=0.0, smooth=True)
    smoothing = entry["int8_smoothing"]
    assert smoothing["nodes"] > 0 and "moved into their weights" in entry["quantization"]
    int8 = {n.name for n in onnx.load(str(folder / "model.int8.onnx")).graph.node}
    fp32 = {n.name for n in onnx.load(str(folder / "model.onnx")).graph.node}
    assert sum(name.endswith("_smooth") for name in int8) == smoothing["nodes"]
    assert not any(name.endswith("_smooth") for name in fp32)  # the shipped fp32 graph is the exported one
    assert not list(folder.glob("tmp*")), "the smoothed scratch graph is removed"
    entry = export_onnx(folder, check_texts=_texts(mini_corpus), min_agreement=0.0)  # off unless asked
    assert "int8_smoothing" not in entry
    assert not any(n.name.endswith("_smooth") for n in onnx.load(str(folder / "model.int8.onnx")).graph.node)


def test_export_cli_follows_the_folder_config_unless_told(transformer_model_dir, mini_corpus, tmp_path):
    import json
    import shutil

    from typer.testing import CliRunner

    from training.cli import app

    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    trained_with = json.loads((folder / "model_meta.json").read_text())["training_config"]["export"]
    assert trained_with["int8_smooth"] is True  # the default config smooths
    for flags, smoothed in (([], True), (["--no-smooth"], False)):
        result = CliRunner().invoke(app, ["export", "--model", str(folder), "--check-data", str(mini_corpus), *flags])
        assert result.exit_code == 0, result.output
        onnx_meta = json.loads((folder / "model_meta.json").read_text())["onnx"]
        assert ("int8_smoothing" in onnx_meta) is smoothed, flags
