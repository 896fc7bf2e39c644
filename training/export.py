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
#: The recipes of ``int8_recipes``, fastest first (``export.int8_first_recipe`` names one of them).
INT8_RECIPE_NAMES = ("ffn_out", "ffn_out+middle_ffn", "all_ffn", "all_ffn+top_layers", "all_ffn+attn_out",
                     "all_matmul+top_half_attention")


def export_onnx(folder: Path, *, fuse: bool = True, quantize: bool = True, check_texts: list[str] | None = None,
                min_agreement: float = 0.995, keep_fp32_onnx: bool = True, first_recipe: str | None = None) -> dict:
    """Write ``model.onnx`` (and ``model.int8.onnx``) into ``folder``; returns the ``onnx`` meta entry.

    With ``check_texts`` (normalised dev texts), the int8 recipe is chosen on them: the first recipe of
    ``int8_recipes`` whose argmax agrees with the fp32 graph on at least ``min_agreement`` of the texts. Then, with
    ``keep_fp32_onnx=False``, the fp32 graph is removed (``"fp32": None``); it stays when no int8 graph passed a check.
    ``first_recipe``: start the search at this recipe (an unknown name is an error that lists the names).
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
        if first_recipe:
            if first_recipe not in INT8_RECIPE_NAMES:
                raise ValueError(f"unknown int8 recipe {first_recipe!r}; the recipes are "
                                 f"{', '.join(INT8_RECIPE_NAMES)}")
            recipes = recipes[INT8_RECIPE_NAMES.index(first_recipe):]
        reference = _argmax(fp32, folder, check_texts) if check_texts else None
        tried = []
        for name, keep_fp32 in recipes:
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=keep_fp32,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            agreement = float((_argmax(int8, folder, check_texts) == reference).mean()) if check_texts else None
            tried.append({"name": name, "fp32_nodes": len(keep_fp32), "dev_argmax_agreement": agreement})
            if agreement is None or agreement >= min_agreement:
                break
        else:
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
        entry["quantization"] = (f"dynamic int8, per-channel weights; recipe {name!r}: {len(keep_fp32)} MatMuls "
                                 "kept fp32")
        entry["int8_recipe"] = {"name": name, "fp32_nodes": len(keep_fp32), "dev_argmax_agreement": agreement,
                                "required": min_agreement if check_texts else None}
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
    assert tuple(name for name, _ in recipes) == INT8_RECIPE_NAMES
    return recipes


def _argmax(graph: Path, folder: Path, texts: list[str]):
    """Argmax labels of an ONNX graph on normalised texts, through the serving code path."""
    from serving.artifact import ModelMeta
    from serving.predictor import OnnxPredictor

    meta = ModelMeta(name="export-check", version="0", kind="transformer", created_at="", labels=[],
                     label_schema_version=0, normaliser_version=0, onnx={"int8": graph.name})
    return OnnxPredictor(folder, meta, quantized=True).predict_proba(texts, normalized=True).argmax(1)
