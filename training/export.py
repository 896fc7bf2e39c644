"""ONNX export, attention fusion and int8 quantisation of a fine-tuned folder (see shared PERF_NOTES traps 3-5).

- ``torch.onnx.export(..., dynamo=False)`` of the model loaded with ``attn_implementation="eager"`` (only then can
  ONNX Runtime's BERT optimiser fuse attention), with the wrapper in ``eval()`` mode.
- ``onnxruntime.transformers.optimizer`` fuses attention/LayerNorm/GELU -> ``model.onnx`` (fp32).
- ``quantize_dynamic`` per-channel int8 weights -> ``model.int8.onnx``, except the feed-forward output
  projections (the MatMul after GELU), which stay fp32. Their inputs carry the activation outliers that a per-tensor
  dynamic int8 scale handles worst: on the e5-small model, quantising them too flipped 2.8% of test labels
  against torch; keeping these 12 MatMuls in fp32 brought it to 1.0% for +21 MB.
- Once the int8 graph has passed its agreement check on dev texts, the fp32 graph is only a fallback: with
  ``keep_fp32_onnx=False`` (config ``export.keep_fp32_onnx = false``) it is deleted and the meta says ``"fp32": null``
  (the folder then stores the weights in ``model.safetensors`` and ``model.int8.onnx`` only; issue 13). Without an
  int8 graph, or without a check, the fp32 graph is always kept.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

OPSET = 17
#: Per-node recipes (``sensitive_<k>``: the ``k`` weight MatMuls whose int8 error is largest on dev texts stay fp32;
#: they need ``check_texts`` and are tried first only with ``per_node``), then the named recipes of
#: ``int8_recipes``, fastest first. ``export.int8_first_recipe`` names one of them.
SENSITIVE_KEEP = (0, 3, 6, 12)
SENSITIVE_RECIPE_NAMES = tuple(f"sensitive_{k}" for k in SENSITIVE_KEEP)
NAMED_RECIPE_NAMES = ("ffn_out", "ffn_out+middle_ffn", "all_ffn", "all_ffn+top_layers", "all_ffn+attn_out",
                      "all_matmul+top_half_attention")
INT8_RECIPE_NAMES = SENSITIVE_RECIPE_NAMES + NAMED_RECIPE_NAMES


def export_onnx(folder: Path, *, fuse: bool = True, quantize: bool = True, check_texts: list[str] | None = None,
                min_agreement: float = 0.995, keep_fp32_onnx: bool = True, first_recipe: str | None = None,
                per_node: bool = False, smooth: bool = False) -> dict:
    """Write ``model.onnx`` (and ``model.int8.onnx``) into ``folder``; returns the ``onnx`` meta entry.

    With ``check_texts`` (normalised dev texts), the int8 recipe is chosen on them: the first recipe of
    ``int8_recipes`` whose argmax agrees with the fp32 graph on at least ``min_agreement`` of the texts. Then, with
    ``keep_fp32_onnx=False``, the fp32 graph is removed (``"fp32": None``); it stays when no int8 graph passed a check.
    ``first_recipe``: start the search at this recipe (an unknown name is an error that lists the names).
    ``per_node`` (with ``check_texts``): try the per-node recipes ``sensitive_<k>`` first (config
    ``export.int8_per_node``). Off by default: on the two e5-small defaults measured none reached the bar (0.971-0.990
    dev agreement for 0-12 fp32 MatMuls), and each try costs a quantisation and a scoring of dev. A ``first_recipe``
    of a per-node recipe turns them on.
    ``smooth`` (with ``check_texts``; config ``export.int8_smooth``): quantise a copy of the fp32 graph whose
    activation outliers were moved into the weights (``smooth_activations``, the same function in fp32; the per-node
    ranking is then measured on it). The shipped fp32 graph is the unsmoothed one; the meta's ``int8_smoothing``
    says what was done.
    """
    import onnx
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder = Path(folder)
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="eager")
    model.eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    wrapper = Wrapper(model).eval()
    dummy_ids = torch.ones((2, 16), dtype=torch.long)
    dummy_mask = torch.ones((2, 16), dtype=torch.long)
    fp32 = folder / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        with torch.inference_mode():
            torch.onnx.export(wrapper, (dummy_ids, dummy_mask), str(raw), dynamo=False, opset_version=OPSET,
                              input_names=["input_ids", "attention_mask"], output_names=["logits"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                            "attention_mask": {0: "batch", 1: "sequence"},
                                            "logits": {0: "batch"}})
        if fuse:
            from onnxruntime.transformers.optimizer import optimize_model

            logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
            opt = optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                 hidden_size=config.hidden_size, opt_level=1)
            opt.save_model_to_file(str(fp32))
            fused_ops = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        else:
            onnx.save(onnx.load(str(raw)), str(fp32))
            fused_ops = {}
    entry = {"fp32": fp32.name, "opset": OPSET, "fused_operators": fused_ops}
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8 = folder / "model.int8.onnx"
        recipes = int8_recipes(fp32, config.num_hidden_layers)
        ranking = []
        per_node = per_node or (first_recipe or "") in SENSITIVE_RECIPE_NAMES
        source, scratch = fp32, None
        if check_texts and smooth:  # node names are kept, so the recipes apply to the smoothed graph unchanged
            scratch = tempfile.TemporaryDirectory(dir=folder)
            source = Path(scratch.name) / "model.smooth.onnx"
            entry["int8_smoothing"] = smooth_activations(fp32, folder, check_texts, source)
        if check_texts and per_node:  # rank the weight MatMuls by their int8 error on dev texts; keep the worst fp32
            ranking = sensitivity_ranking(source, folder, check_texts)
            recipes = [(f"sensitive_{k}", [name for name, _ in ranking[:k]]) for k in SENSITIVE_KEEP] + recipes
        if first_recipe:
            if first_recipe not in INT8_RECIPE_NAMES:
                raise ValueError(f"unknown int8 recipe {first_recipe!r}; the recipes are "
                                 f"{', '.join(INT8_RECIPE_NAMES)}")
            names = [name for name, _ in recipes]
            if first_recipe not in names:  # a per-node recipe without dev texts to rank on: from the named ones
                first_recipe = names[0]
            recipes = recipes[names.index(first_recipe):]
        reference = _argmax(fp32, folder, check_texts) if check_texts else None
        tried = []
        try:
            for name, keep_fp32 in recipes:
                quantize_dynamic(str(source), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                                 nodes_to_exclude=keep_fp32,
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
                agreement = float((_argmax(int8, folder, check_texts) == reference).mean()) if check_texts else None
                tried.append({"name": name, "fp32_nodes": len(keep_fp32), "dev_argmax_agreement": agreement})
                if agreement is None or agreement >= min_agreement:
                    break
            passed = agreement is None or agreement >= min_agreement
        finally:
            if scratch is not None:
                scratch.cleanup()
        if not passed:
            # No recipe agrees well enough with fp32: ship no int8 graph rather than the last one silently. The
            # meta records why; `auto` then serves fp32 and /v1/info says so.
            int8.unlink(missing_ok=True)
            best = max(tried, key=lambda t: t["dev_argmax_agreement"])
            entry["int8"] = None
            entry["int8_note"] = (f"no int8 recipe reached {min_agreement:.3f} argmax agreement with fp32 on "
                                  f"{len(check_texts)} dev texts (best: {best['name']} "
                                  f"{best['dev_argmax_agreement']:.4f}); the fp32 graph is served")
            entry["int8_recipes_tried"] = tried
            logging.getLogger(__name__).warning("int8 export rejected: %s", entry["int8_note"])
            return entry
        entry["int8"] = int8.name
        smoothed = entry.get("int8_smoothing")
        entry["quantization"] = (f"dynamic int8, per-channel weights; recipe {name!r}: {len(keep_fp32)} MatMuls "
                                 "kept fp32" + (f"; activation outliers of {smoothed['nodes']} of {smoothed['of']} "
                                                "weight nodes moved into their weights" if smoothed else ""))
        entry["int8_recipe"] = {"name": name, "fp32_nodes": len(keep_fp32), "dev_argmax_agreement": agreement,
                                "required": min_agreement if check_texts else None}
        if name.startswith("sensitive_"):
            entry["int8_recipe"]["fp32_node_names"] = list(keep_fp32)
        entry["int8_recipes_tried"] = tried
        if ranking:  # the measured ranking, worst first (relative output error of each MatMul alone in int8)
            entry["int8_sensitivity"] = [{"node": n, "relative_error": round(e, 5)} for n, e in ranking[:12]]
        if not keep_fp32_onnx and check_texts:
            fp32.unlink()
            entry["fp32"] = None
            entry["fp32_note"] = ("not shipped (export.keep_fp32_onnx = false): the int8 graph passed its agreement "
                                  "check and is served; `counterpoint export` re-creates the fp32 graph")
    return entry


def int8_recipes(path: Path, num_layers: int) -> list[tuple[str, list[str]]]:
    """Quantisation recipes, fastest first: the names of the MatMuls each keeps in fp32.

    1. ``ffn_out``: the feed-forward output projections (inputs after GELU carry the activation outliers).
    2. ``ffn_out+middle_ffn``: also the feed-forward input projections of the middle third of the layers,
       where (measured on e5-small) the remaining flips came from.
    3. ``all_ffn``: every feed-forward MatMul; only attention is int8.
    4. ``all_ffn+top_layers``: also every MatMul of the top third of the layers (fine-tuning moved those most).
    5. ``all_ffn+attn_out``: also the attention output projections; only the fused Q/K/V projections are int8.
    6. ``all_matmul+top_half_attention``: also the fused attention of the top half of the layers; int8 are the
       bottom half's attention and the embeddings. Measured on the wave-7 default: 0.9969 dev argmax agreement,
       where recipes 1-5 reached at most 0.9945.
    """
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    names = [n.name for n in nodes if n.op_type == "MatMul"]
    # Fused attention nodes in layer order (Attention_0 ... Attention_<n-1>, ONNX Runtime's BERT optimiser).
    attention = [n.name for n in nodes if n.op_type == "Attention"]
    ffn_out = [n for n in names if n.endswith("/output/dense/MatMul") and "/attention/" not in n]
    ffn_in = [n for n in names if n.endswith("/intermediate/dense/MatMul")]
    third = max(num_layers // 3, 1)
    middle = [n for n in ffn_in if any(f"layer.{k}/" in n for k in range(third, num_layers - third))]
    attn_out = [n for n in names if n.endswith("/attention/output/dense/MatMul")]
    top = [n for n in names if any(f"layer.{k}/" in n for k in range(num_layers - third, num_layers))]
    recipes = [("ffn_out", ffn_out), ("ffn_out+middle_ffn", ffn_out + middle), ("all_ffn", ffn_out + ffn_in),
               ("all_ffn+top_layers", sorted(set(ffn_out + ffn_in + top))),
               ("all_ffn+attn_out", sorted(set(ffn_out + ffn_in + attn_out))),
               ("all_matmul+top_half_attention", sorted(set(names + attention[len(attention) // 2:])))]
    assert tuple(name for name, _ in recipes) == NAMED_RECIPE_NAMES
    return recipes


def _weight_nodes(model) -> tuple[list, dict]:
    """The weight MatMuls and fused attention nodes of a graph, and their 2-D weight matrices (fp32)."""
    import numpy as np
    from onnx import numpy_helper

    weights = {init.name: init for init in model.graph.initializer}
    nodes = [n for n in model.graph.node
             if n.op_type in ("MatMul", "Attention") and len(n.input) > 1 and n.input[1] in weights]
    mats = {n.name: numpy_helper.to_array(weights[n.input[1]]).astype(np.float32) for n in nodes}
    mats = {k: w for k, w in mats.items() if w.ndim == 2}
    return [n for n in nodes if n.name in mats], mats


def _capture(model, folder: Path, texts: list[str], limit: int, visit) -> None:
    """Run the fp32 ``model`` (an ``onnx.ModelProto``, changed in place) over ``limit`` of ``texts``, batched as
    served, and call ``visit(node, x, keep)`` with each weight node's input ``x`` (rows = tokens) per batch; ``keep``
    marks the rows of real tokens (None where the rows are not tokens, e.g. the classifier's [CLS] input)."""
    import numpy as np
    import onnx
    from onnx import helper

    from serving.artifact import ModelMeta
    from serving.predictor import OnnxPredictor

    nodes, _ = _weight_nodes(model)
    inputs = sorted({n.input[0] for n in nodes})
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None)
                              for t in inputs if t not in known)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        probe = Path(tmp) / "probe.onnx"
        onnx.save(model, str(probe))
        meta = ModelMeta(name="capture", version="0", kind="transformer", created_at="", labels=[],
                         label_schema_version=0, normaliser_version=0,
                         onnx={"fp32": str(probe.relative_to(folder))})
        predictor = OnnxPredictor(folder, meta, quantized=False)

        def run(input_ids, attention_mask):
            feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
            if "token_type_ids" in predictor.input_names:  # noqa: F821 (the cell is emptied by `del` below)
                feeds["token_type_ids"] = np.zeros_like(input_ids)
            names = ["logits"] + inputs
            out = dict(zip(names, predictor.session.run(names, feeds)))  # noqa: F821
            keep = attention_mask.reshape(-1).astype(bool)
            for n in nodes:
                x = out[n.input[0]]
                x = x.reshape(-1, x.shape[-1])
                visit(n, x, keep if x.shape[0] == keep.shape[0] else None)
            return out["logits"]

        predictor._run = run
        step = max(1, len(texts) // limit)
        predictor.predict_proba(list(texts)[::step][:limit], normalized=True)
        del predictor


def sensitivity_ranking(fp32: Path, folder: Path, texts: list[str], *, limit: int = 256
                        ) -> list[tuple[str, float]]:
    """The weight MatMuls (and fused attention Q/K/V projections) of the fp32 graph, ranked by how far dynamic int8
    moves each one's output, worst first: ``(node name, relative error)``.

    Each node is measured alone, on its own fp32 inputs (captured from the fp32 graph over ``limit`` dev texts,
    batched as served): activations quantised per tensor to uint8 with the tensor's own range (what ONNX Runtime's
    ``DynamicQuantizeLinear`` does), weights per output channel to symmetric int8 (``per_channel=True``); the
    error is ``||Y_int8 - Y|| / ||Y||`` over the batch. One fp32 pass instead of one quantise-and-score per node;
    the recipes built from it still pass the end-to-end agreement check before one ships."""
    import onnx

    model = onnx.load(str(fp32))
    nodes, mats = _weight_nodes(model)
    wq = {name: _weight_sim(w) for name, w in mats.items()}
    err = {n.name: 0.0 for n in nodes}
    norm = {n.name: 0.0 for n in nodes}

    def visit(node, x, keep):
        # the range is taken over the whole batch tensor, padding included, as DynamicQuantizeLinear does
        yq, y = _quant_sim(x, wq[node.name]), x @ mats[node.name]
        if keep is not None:  # padding rows' outputs are masked anyway
            yq, y = yq[keep], y[keep]
        err[node.name] += float(((yq - y) ** 2).sum())
        norm[node.name] += float((y ** 2).sum())

    _capture(model, folder, texts, limit, visit)
    ranking = [(name, (err[name] / norm[name]) ** 0.5 if norm[name] else 0.0) for name in err]
    return sorted(ranking, key=lambda item: -item[1])


def _argmax(graph: Path, folder: Path, texts: list[str]):
    """Argmax labels of an ONNX graph on normalised texts, through the serving code path."""
    from serving.artifact import ModelMeta
    from serving.predictor import OnnxPredictor

    meta = ModelMeta(name="export-check", version="0", kind="transformer", created_at="", labels=[],
                     label_schema_version=0, normaliser_version=0, onnx={"int8": graph.name})
    return OnnxPredictor(folder, meta, quantized=True).predict_proba(texts, normalized=True).argmax(1)


#: Candidate migration strengths of ``smooth_activations``, per node (None: the node is left as it is).
SMOOTH_ALPHAS = (None, 0.3, 0.45, 0.6, 0.75, 0.85, 0.95, 1.0)


def _quant_sim(x, w_int8_sim):
    """``x @ w`` with ``x`` quantised as ``DynamicQuantizeLinear`` does (uint8, the whole tensor's range)."""
    import numpy as np

    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero = np.round(-lo / scale)
    return ((np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale) @ w_int8_sim


def _weight_sim(w):
    """``w`` quantised per output channel to symmetric int8 (``per_channel=True``), as floats."""
    import numpy as np

    scale = np.maximum(np.abs(w).max(axis=0, keepdims=True), 1e-12) / 127.0
    return np.clip(np.round(w / scale), -127, 127) * scale


def _copy(model):
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _smooth_scales(w, amax, alpha: float):
    import numpy as np

    a = np.maximum(amax, 1e-5)
    wmax = np.maximum(np.abs(w).max(axis=1), 1e-5)
    return np.clip(a ** alpha / wmax ** (1 - alpha), 1e-2, 1e2).astype(np.float32)


def smooth_activations(fp32: Path, folder: Path, texts: list[str], out: Path, *, limit: int = 128) -> dict:
    """Write ``out``: the fp32 graph with activation outliers moved into the weights (SmoothQuant, Xiao et al.
    2023), the same function in fp32, for dynamic int8 to quantise.

    Dynamic int8 gives each activation tensor one uint8 range, and a few input channels of the feed-forward and
    attention MatMuls carry values 10-45x the median channel's; they set the range and the other channels lose their
    precision. For a weight node ``Y = X W`` (MatMul, or fused Attention's Q/K/V projection) a per-input-channel
    scale ``s`` gives ``Y = (X / s)(s W)``: a ``Mul`` by ``1 / s`` is inserted before the node and the rows of ``W``
    are multiplied by ``s``, with ``s_j = max|X_j|^a / max|W_j|^(1-a)``. ``a`` is chosen per node among
    ``SMOOTH_ALPHAS`` (including no smoothing) by the node's simulated int8 output error on ``limit`` of ``texts``
    (dev texts, batched as served): two fp32 passes, one for the channel ranges and one for the errors. Returns
    ``{"nodes": smoothed, "of": weight nodes, "alphas": {alpha: count}, "error_before": mean, "error_after": mean}``
    (mean simulated relative error of the nodes' outputs)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32))
    nodes, mats = _weight_nodes(model)
    amax: dict[str, np.ndarray] = {}

    def ranges(node, x, keep):  # padding rows included: they share the tensor's dynamic range
        amax[node.name] = np.maximum(amax.get(node.name, 0.0), np.abs(x).max(axis=0))

    _capture(_copy(model), folder, texts, limit, ranges)  # (_capture adds outputs to the graph it is given)
    options = {}
    for name, w in mats.items():
        if name not in amax:
            continue
        choices = []
        for alpha in SMOOTH_ALPHAS:
            s = np.ones(w.shape[0], np.float32) if alpha is None else _smooth_scales(w, amax[name], alpha)
            choices.append((alpha, s, _weight_sim(w * s[:, None])))
        options[name] = choices
    err = {name: np.zeros(len(SMOOTH_ALPHAS)) for name in options}
    norm = dict.fromkeys(options, 0.0)

    def errors(node, x, keep):
        if node.name not in options:
            return
        y = x @ mats[node.name]
        rows = keep if keep is not None else slice(None)
        for i, (_, s, wq) in enumerate(options[node.name]):
            err[node.name][i] += float(((_quant_sim(x / s, wq) - y)[rows] ** 2).sum())
        norm[node.name] += float((y[rows] ** 2).sum())

    _capture(_copy(model), folder, texts, limit, errors)
    chosen, before, after = {}, [], []
    for name in options:
        e = (err[name] / max(norm[name], 1e-12)) ** 0.5
        best = int(e.argmin())
        before.append(float(e[0]))
        after.append(float(e[best]))
        if SMOOTH_ALPHAS[best] is not None:
            chosen[name] = options[name][best]
    weights = {init.name: init for init in model.graph.initializer}
    users: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    muls = {}
    for k, node in enumerate(model.graph.node):
        if node.name not in chosen:
            continue
        _, s, _ = chosen[node.name]
        w = mats[node.name] * s[:, None]
        if users[node.input[1]] > 1:  # a shared weight gets its own scaled copy
            copy = f"{node.input[1]}_smooth{k}"
            model.graph.initializer.append(numpy_helper.from_array(w.astype(np.float32), copy))
            node.input[1] = copy
        else:
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(w.astype(np.float32), node.input[1]))
        scale = f"{node.name}_smooth_scale"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), scale))
        smoothed = f"{node.input[0]}_smooth{k}"
        muls[node.name] = helper.make_node("Mul", [node.input[0], scale], [smoothed], name=f"{node.name}_smooth")
        node.input[0] = smoothed
    ordered = []
    for node in model.graph.node:  # each Mul just before the node it feeds keeps the graph in topological order
        if node.name in muls:
            ordered.append(muls[node.name])
        ordered.append(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    onnx.save(model, str(out))
    counts: dict[str, int] = {}
    for alpha, _, _ in chosen.values():
        counts[str(alpha)] = counts.get(str(alpha), 0) + 1
    return {"nodes": len(chosen), "of": len(options), "alphas": counts,
            "error_before": round(float(np.mean(before)), 5), "error_after": round(float(np.mean(after)), 5)}
