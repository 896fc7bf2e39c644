"""Per-node int8 recipes (issue 13): MatMuls ranked by their measured int8 error, the worst few kept fp32."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
from onnx import numpy_helper

from serving.text import normalize
from training.data import FieldMap, load_many
from training.export import SENSITIVE_RECIPE_NAMES, export_onnx, sensitivity_ranking


def _texts(mini_corpus, n=48):
    return [normalize(ex.text) for ex in load_many([mini_corpus], FieldMap(strict=False))][:n]


def _weight_nodes(path):  # noqa: D103
    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.name for n in model.graph.node if n.op_type in ("MatMul", "Attention") and len(n.input) > 1
            and n.input[1] in weights and weights[n.input[1]].ndim == 2}


def test_ranking_covers_every_weight_matmul_worst_first(transformer_model_dir, mini_corpus):
    ranking = sensitivity_ranking(transformer_model_dir / "model.onnx", transformer_model_dir, _texts(mini_corpus))
    names = [name for name, _ in ranking]
    assert set(names) == _weight_nodes(transformer_model_dir / "model.onnx") and len(names) == len(set(names))
    errors = np.array([e for _, e in ranking])
    assert (np.diff(errors) <= 0).all()
    # int8 always moves an output a little, and never by as much as the output itself
    assert (errors > 0).all() and (errors < 0.5).all()
    assert not list(transformer_model_dir.glob("tmp*")), "the probe graph is cleaned up"


def test_sensitive_recipe_keeps_the_worst_nodes_fp32(transformer_model_dir, mini_corpus, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    texts = _texts(mini_corpus)
    entry = export_onnx(folder, check_texts=texts, min_agreement=0.0)  # off by default: the named recipes only
    assert entry["int8_recipe"]["name"] == "ffn_out" and "int8_sensitivity" not in entry
    entry = export_onnx(folder, check_texts=texts, min_agreement=0.0, per_node=True)  # any passes: the fastest
    assert entry["int8_recipe"]["name"] == SENSITIVE_RECIPE_NAMES[0] == "sensitive_0"
    assert entry["int8_recipe"]["fp32_nodes"] == 0 and entry["int8_recipe"]["fp32_node_names"] == []

    entry = export_onnx(folder, check_texts=texts, min_agreement=0.0, first_recipe="sensitive_3")  # turns them on
    worst = [row["node"] for row in entry["int8_sensitivity"][:3]]
    assert entry["int8_recipe"]["name"] == "sensitive_3" and entry["int8_recipe"]["fp32_node_names"] == worst
    int8 = onnx.load(str(folder / "model.int8.onnx"))
    still_float = {n.name for n in int8.graph.node if n.op_type == "MatMul"}
    assert set(worst) <= still_float  # quantize_dynamic left exactly those as plain fp32 MatMuls
    quantized = {n.op_type for n in int8.graph.node}
    assert "MatMulInteger" in quantized or "DynamicQuantizeMatMul" in quantized


def test_per_node_recipe_without_texts_starts_from_the_named_ones(transformer_model_dir, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(transformer_model_dir, folder)
    entry = export_onnx(folder, first_recipe="sensitive_6")  # nothing to rank on: no per-node recipe
    assert entry["int8_recipe"]["name"] == "ffn_out" and "int8_sensitivity" not in entry

