"""Quantisation-aware fine-tuning (issue 13): the rounding is the served int8's, it trains, and it goes away."""

from __future__ import annotations

import numpy as np
import pytest


def test_fake_quant_rounds_as_the_served_int8_graph_does_and_passes_gradients():
    import torch

    from training.export import _quant_sim, _weight_sim
    from training.qat import fake_quant_activation, fake_quant_weight

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, 16, generator=g) * 3 + 0.5
    x[0, 0, 0] = 40.0  # an outlier sets the range, as in the feed-forward inputs
    w = torch.randn(8, 16, generator=g)  # nn.Linear: out x in
    y = torch.nn.functional.linear(fake_quant_activation(x), fake_quant_weight(w))
    # the export's own simulation of DynamicQuantizeLinear + per-channel int8 (weights there are in x out)
    expected = _quant_sim(x.numpy().reshape(-1, 16), _weight_sim(w.numpy().T)).reshape(4, 7, 8)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-4, atol=1e-4)
    # it does round: the outlier's range costs the small values precision
    assert not torch.allclose(fake_quant_activation(x), x, atol=1e-3)
    # straight-through: the gradient is the identity's
    xs = x.clone().requires_grad_(True)
    ws = w.clone().requires_grad_(True)
    fake_quant_activation(xs).sum().backward()
    fake_quant_weight(ws).sum().backward()
    assert torch.equal(xs.grad, torch.ones_like(x)) and torch.equal(ws.grad, torch.ones_like(w))
    # an all-zero tensor (padding only) stays zero rather than dividing by zero
    assert torch.equal(fake_quant_activation(torch.zeros(3, 4)), torch.zeros(3, 4))


def test_enable_and_remove_touch_every_linear_layer_and_restore_the_fp32_forward():
    import torch

    from training import qat

    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.GELU(), torch.nn.Linear(5, 3))
    x = torch.randn(10, 6) * 4
    plain = net(x).detach()
    assert qat.enable(net) == 2
    assert qat.enable(net) == 0  # already on: not wrapped twice
    rounded = net(x).detach()
    assert not torch.allclose(rounded, plain, atol=1e-5) and torch.allclose(rounded, plain, atol=0.2)
    assert qat.remove(net) == 2 and qat.remove(net) == 0
    assert torch.equal(net(x).detach(), plain)
    assert "forward" not in net[0].__dict__


@pytest.mark.parametrize("share, total, expected", [(0.0, 100, None), (0.25, 100, 75), (1.0, 100, 0),
                                                     (0.001, 100, 99), (0.5, 0, None)])
def test_start_step(share, total, expected):
    from training.qat import start_step

    assert start_step(total, share) == expected


def test_finetune_trains_the_last_steps_quantisation_aware_and_returns_plain_layers(tmp_path, monkeypatch):
    import torch

    from serving import labels as L
    from tests.helpers import MINI_CORPUS, read_jsonl, tiny_config
    from training import finetune as ft
    from training import qat

    rows = read_jsonl(MINI_CORPUS)[:24]
    texts, ys = [r["text"] for r in rows], [L.LABEL2ID[r["label"]] for r in rows]
    calls = []
    real = qat.fake_quant_weight

    def counting(w):
        calls.append(1)
        return real(w)

    monkeypatch.setattr(qat, "fake_quant_weight", counting)
    got = {}
    for share in (0.0, 0.5):
        calls.clear()
        cfg = tiny_config(tmp_path / "m", 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=4",
                          "train.epochs=1", "train.batch_size=8", f"train.qat={share}")
        res = ft.finetune(cfg, texts, ys, [], [], progress=False)
        got[share] = (len(calls), res.model)
    assert got[0.0][0] == 0
    linears = sum(isinstance(m, torch.nn.Linear) for m in got[0.5][1].modules())
    assert got[0.5][0] == 2 * linears  # steps 3 and 4 of 4, one call per linear layer each
    assert not any("forward" in m.__dict__ for m in got[0.5][1].modules())  # saved and exported as plain layers
    assert not torch.equal(got[0.0][1].classifier.weight, got[0.5][1].classifier.weight)
