"""ONNX export, attention fusion and int8 quantisation of a fine-tuned folder (see shared PERF_NOTES traps 3-5).

- ``torch.onnx.export(..., dynamo=False)`` of the model loaded with ``attn_implementation="eager"`` (only then can
  ONNX Runtime's BERT optimiser fuse attention), with the wrapper in ``eval()`` mode.
- ``onnxruntime.transformers.optimizer`` fuses attention/LayerNorm/GELU -> ``model.onnx`` (fp32).
- ``quantize_dynamic`` per-channel int8 weights -> ``model.int8.onnx``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

OPSET = 17


def export_onnx(folder: Path, *, fuse: bool = True, quantize: bool = True) -> dict:
    """Write ``model.onnx`` (and ``model.int8.onnx``) into ``folder``; returns the ``onnx`` meta entry."""
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
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        entry["int8"] = int8.name
        entry["quantization"] = "dynamic int8, per-channel weights"
    return entry
