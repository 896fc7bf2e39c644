"""Quantisation-aware fine-tuning (issue 13): train the last steps through the int8 arithmetic the service runs.

The served graph is ONNX Runtime's dynamic int8 (``training/export.py``): every weight MatMul reads its input
quantised per tensor to uint8 over the tensor's own range (``DynamicQuantizeLinear``: scale ``(max - min) / 255``
with ``min <= 0 <= max``, padding included) and its weight per output channel to symmetric int8. Quantising every
MatMul that way is twice as fast as fp32 but moved 1.6-1.8% of labels (docs/EVALUATION.md, session 16). With
``train.qat`` > 0 the last share of the optimiser steps run every ``nn.Linear`` of the network through that rounding
(straight-through estimator: the forward pass sees the int8 values, the gradient passes as if it did not), so the
weights settle where the rounding no longer moves the decision. ``remove`` puts the plain forward back before the
model is saved, refitted or exported: the saved weights are ordinary fp32 (fp16) weights.
"""

from __future__ import annotations

import types


def fake_quant_activation(x):
    """``x`` as ``DynamicQuantizeLinear`` then dequantisation give it back (uint8, the whole tensor's range)."""
    import torch

    with torch.no_grad():
        lo = torch.clamp(x.min(), max=0.0)
        hi = torch.clamp(x.max(), min=0.0)
        scale = torch.clamp((hi - lo) / 255.0, min=1e-12)
        zero = torch.round(-lo / scale)
        xq = (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale
    return x + (xq - x).detach()


def fake_quant_weight(w):
    """A ``nn.Linear`` weight (out x in) rounded per output channel to symmetric int8 (``per_channel=True``)."""
    import torch

    with torch.no_grad():
        scale = torch.clamp(w.abs().amax(dim=1, keepdim=True), min=1e-12) / 127.0
        wq = torch.clamp(torch.round(w / scale), -127, 127) * scale
    return w + (wq - w).detach()


def _forward(self, x):
    import torch.nn.functional as F

    return F.linear(fake_quant_activation(x), fake_quant_weight(self.weight), self.bias)


def enable(model) -> int:
    """Route every ``nn.Linear`` of ``model`` through the int8 rounding; returns how many."""
    import torch

    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and "forward" not in module.__dict__:
            module.forward = types.MethodType(_forward, module)
            n += 1
    return n


def remove(model) -> int:
    """Undo ``enable``: the plain fp32 forward again; returns how many layers it touched."""
    n = 0
    for module in model.modules():
        if getattr(module.__dict__.get("forward"), "__func__", None) is _forward:
            del module.forward
            n += 1
    return n


def start_step(total_steps: int, share: float) -> int | None:
    """The first optimiser step trained quantisation-aware (``train.qat`` of ``total_steps``); None = never."""
    if share <= 0 or total_steps <= 0:
        return None
    return max(0, total_steps - max(1, round(share * total_steps)))
