from pathlib import Path

import pytest

from training.finetune import (BaseModelError, _batches, _family_batches, family_contrast_loss, family_pairs, freeze,
                               resolve_base)


def test_resolve_base_aliases_folders_and_errors(tmp_path):
    assert (Path(resolve_base("minilm")) / "config.json").is_file()
    (tmp_path / "config.json").write_text("{}")
    assert resolve_base(str(tmp_path)) == str(tmp_path)
    assert resolve_base("org/some-model") == "org/some-model"  # a hub id: resolved from the cache by transformers
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseModelError, match="no config.json"):
        resolve_base(str(tmp_path / "empty"))
    with pytest.raises(BaseModelError, match="neither"):
        resolve_base("not-a-model")


def test_freeze_embeddings_and_bottom_layers():
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(resolve_base("minilm"), num_labels=3)
    freeze(model, embeddings=True, layers=2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("bert.embeddings") for n in trainable)
    assert not any(".layer.0." in n or ".layer.1." in n for n in trainable)
    assert any(".layer.2." in n for n in trainable) and "classifier.weight" in trainable
    with pytest.raises(BaseModelError, match="only 6 layers"):
        freeze(model, embeddings=False, layers=7)


def test_batches_are_length_sorted_within_buckets_and_cover_every_row():
    import random

    lengths = [random.Random(i).randint(3, 128) for i in range(500)]
    batches = _batches(lengths, 16, random.Random(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(500))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10  # similar lengths share a batch: little padding


def test_family_batches_keep_families_together_and_cover_every_row():
    import random

    rng = random.Random(1)
    families, lengths = [], []
    for f in range(120):  # families of 1-5 rows, one of 40 (more than a batch), and rows without a family
        size = 40 if f == 7 else rng.randint(1, 5)
        families += [f"f{f}"] * size
    families += [""] * 60
    lengths = [rng.randint(3, 128) for _ in families]
    batches = _family_batches(lengths, families, 16, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(len(families)))
    assert all(1 <= len(b) <= 16 for b in batches)
    where = {}
    for k, b in enumerate(batches):
        for i in b:
            where.setdefault(families[i], set()).add(k) if families[i] else None
    assert all(len(v) == 1 for f, v in where.items() if f != "f7")  # a family of <= 16 rows is never divided
    assert len(where["f7"]) == 3  # 40 rows: pieces of 16, 16 and 8
    assert batches == _family_batches(lengths, families, 16, random.Random(0))  # same seed, same batches
    assert batches != _family_batches(lengths, families, 16, random.Random(1))


def test_family_contrast_pairs_and_loss():
    import torch

    fams = ["a", "a", "a", "b", "", "b"]
    gold = [0, 1, 2, 0, 1, 0]  # b's two rows share a label: no pair; the row without a family pairs with none
    a, b = family_pairs(fams, gold)
    assert sorted(zip(a, b)) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert family_pairs(["a", "a"], [0, -100]) == ([], [])  # an unlabelled row is not contrasted
    y = torch.tensor(gold)
    separated = torch.zeros(6, 3)
    separated[[0, 1, 2], [0, 1, 2]] = 8.0  # each member sure of its own label
    assert family_contrast_loss(separated, y, (a, b), 1.0).item() == 0.0
    confused = torch.zeros(6, 3, requires_grad=True)  # all members alike: the topic, not the stance, decides
    loss = family_contrast_loss(confused, y, (a, b), 1.0)
    assert abs(loss.item() - 1.0) < 1e-6
    loss.backward()
    step = confused.detach() - 1.0 * confused.grad  # one step against the gradient separates the members
    assert family_contrast_loss(step, y, (a, b), 1.0).item() < 1.0
    assert step[0, 0] > step[1, 0] and step[1, 1] > step[0, 1]
    assert family_contrast_loss(confused, y, ([], []), 1.0).item() == 0.0


def test_family_contrast_trains_and_the_pipeline_passes_families(tmp_path, monkeypatch):
    import torch

    from tests.helpers import MINI_CORPUS, read_jsonl, tiny_config
    from training import finetune as ft
    from serving import labels as L
    from training.pipeline import train

    rows = read_jsonl(MINI_CORPUS)[:24]
    texts, ys, fams = [r["text"] for r in rows], [L.LABEL2ID[r["label"]] for r in rows], [r["family"] for r in rows]
    weights = {}
    for weight in (0.0, 1.0):
        cfg = tiny_config(tmp_path / "m", 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=3",
                          "train.epochs=1", "train.batch_size=8", f"train.family_contrast={weight}")
        res = ft.finetune(cfg, texts, ys, [], [], progress=False, train_families=fams)
        weights[weight] = res.model.classifier.weight.detach().clone()
    assert not torch.equal(weights[0.0], weights[1.0])  # the contrast changed batches and gradients
    with pytest.raises(ValueError, match="train_families has 3 entries"):
        ft.finetune(cfg, texts, ys, [], [], progress=False, train_families=fams[:3])

    seen = {}

    def spy(cfg, texts, labels, *args, train_families=None, **kw):
        seen["families"] = train_families
        raise RuntimeError("stop after the call")

    monkeypatch.setattr(ft, "finetune", spy)
    with pytest.raises(RuntimeError, match="stop after the call"):
        train(tiny_config(tmp_path / "p", 'model.base="minilm"', "train.family_contrast=1.0"), progress=False,
              log=lambda m: None)
    assert len(seen["families"]) > 0 and all(f.startswith(("en-", "ru-", "ur-")) for f in seen["families"])


def test_row_weights_in_the_label_loss_and_the_pipeline_weighs_real_posts(tmp_path, monkeypatch):
    """``train_weights`` of 1 train exactly like none (the class-weighted mean is the same sum); other weights
    change the gradients; the pipeline gives ``train.real_weight`` to rows with ``origin: real`` and 1 to others."""
    import torch

    from serving import labels as L
    from tests.helpers import MINI_CORPUS, read_jsonl, tiny_config, write_jsonl
    from training import finetune as ft
    from training.pipeline import train

    rows = read_jsonl(MINI_CORPUS)[:24]
    texts, ys = [r["text"] for r in rows], [L.LABEL2ID[r["label"]] for r in rows]
    cfg = tiny_config(tmp_path / "m", 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=3",
                      "train.epochs=1", "train.batch_size=8")
    got = {}
    for name, w in (("none", None), ("ones", [1.0] * 24), ("skewed", [3.0] * 12 + [1.0] * 12)):
        res = ft.finetune(cfg, texts, ys, [], [], progress=False, train_weights=w)
        got[name] = res.model.classifier.weight.detach().clone()
    torch.testing.assert_close(got["ones"], got["none"], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got["skewed"], got["none"], atol=1e-4)
    with pytest.raises(ValueError, match="train_weights has 3 entries"):
        ft.finetune(cfg, texts, ys, [], [], progress=False, train_weights=[1.0] * 3)
    with pytest.raises(ValueError, match=">= 0 and not all 0"):
        ft.finetune(cfg, texts, ys, [], [], progress=False, train_weights=[0.0] * 24)

    seen = {}

    def spy(cfg, texts, labels, *args, train_weights=None, **kw):
        seen["weights"], seen["n"] = train_weights, len(texts)
        raise RuntimeError("stop after the call")

    corpus = read_jsonl(MINI_CORPUS)
    write_jsonl(tmp_path / "real.jsonl", [{**r, "origin": "real"} for r in corpus])
    monkeypatch.setattr(ft, "finetune", spy)
    for weight, data, expected in ((1.0, "real.jsonl", None), (2.5, "real.jsonl", 2.5), (2.5, None, 1.0)):
        cfg = tiny_config(tmp_path / "p", 'model.base="minilm"', f"train.real_weight={weight}")
        if data:
            cfg.data.train = [str(tmp_path / data)]
        with pytest.raises(RuntimeError, match="stop after the call"):
            train(cfg, progress=False, log=lambda m: None)
        if expected is None:
            assert seen["weights"] is None  # no reweighting at 1: the loss is computed exactly as before
        else:
            assert len(seen["weights"]) == seen["n"] > 0 and set(seen["weights"]) == {expected}


def test_label_smoothing_reaches_both_label_losses_and_is_validated(tmp_path):
    """``train.label_smoothing`` changes what the plain and the row-weighted label losses teach (so both read it),
    and a share of 1 or more is refused before training."""
    import torch

    from serving import labels as L
    from tests.helpers import MINI_CORPUS, read_jsonl, tiny_config
    from training import finetune as ft

    rows = read_jsonl(MINI_CORPUS)[:24]
    texts, ys = [r["text"] for r in rows], [L.LABEL2ID[r["label"]] for r in rows]
    got = {}
    for smoothing in (0.0, 0.3):
        cfg = tiny_config(tmp_path / "m", 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=3",
                          "train.epochs=1", "train.batch_size=8", f"train.label_smoothing={smoothing}")
        for name, w in (("plain", None), ("rows", [3.0] * 12 + [1.0] * 12)):
            res = ft.finetune(cfg, texts, ys, [], [], progress=False, train_weights=w)
            got[smoothing, name] = res.model.classifier.weight.detach().clone()
    for name in ("plain", "rows"):
        assert not torch.allclose(got[0.3, name], got[0.0, name], atol=1e-4), name
    with pytest.raises(Exception, match="label_smoothing"):
        tiny_config(tmp_path / "m", "train.label_smoothing=1.0")


def test_bf16_precision_runs_matrix_products_in_bfloat16_and_keeps_float32_weights(tmp_path, monkeypatch):
    """``train.precision=bf16``: the layers compute in bfloat16 during the fine-tune (seen at the output layer),
    the weights that come out are float32 and close to, not equal to, a float32 run's; the folder records which
    arithmetic ran. ``auto`` follows oneDNN's check; bf16 with quantisation-aware steps is refused."""
    import numpy as np
    import torch

    from serving import labels as L
    from tests.helpers import MINI_CORPUS, read_jsonl, tiny_config
    from training import finetune as ft

    rows = read_jsonl(MINI_CORPUS)[:24]
    texts, ys = [r["text"] for r in rows], [L.LABEL2ID[r["label"]] for r in rows]
    got, dtypes = {}, {}
    for precision in ("fp32", "bf16"):
        cfg = tiny_config(tmp_path / "m", 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=3",
                          "train.epochs=1", "train.batch_size=8", f"train.precision=\"{precision}\"")
        seen = []  # the output dtype of every linear layer run in training mode (the fine-tune's steps)
        handle = torch.nn.modules.module.register_module_forward_hook(
            lambda mod, args, out: seen.append(out.dtype) if isinstance(mod, torch.nn.Linear) and mod.training
            else None)
        try:
            res = ft.finetune(cfg, texts, ys, [], [], progress=False)
        finally:
            handle.remove()
        assert res.precision == precision
        dtypes[precision] = set(seen)
        got[precision] = res.model.classifier.weight.detach().clone()
        assert all(p.dtype == torch.float32 for p in res.model.parameters())
    assert dtypes["fp32"] == {torch.float32} and dtypes["bf16"] == {torch.bfloat16}
    assert not torch.equal(got["bf16"], got["fp32"]) and torch.allclose(got["bf16"], got["fp32"], atol=5e-3)
    # the fine-tune's own scoring (dev each epoch, the sub-type refit's features) follows the setting
    for fn in (ft.predict_logits, ft.head_inputs):
        plain, half = (fn(res.model, res.tokenizer, texts, 32, precision=p) for p in ("fp32", "bf16"))
        assert not np.array_equal(plain, half) and np.allclose(plain, half, atol=0.1), fn.__name__

    from serving.artifact import ModelMeta
    from training.modelcard import render_model_card

    for precision in ("fp32", "bf16"):  # the card says so when the fine-tune ran in bfloat16
        meta = ModelMeta(name="m", version="v", kind="transformer", created_at="2026-12-06", labels=list(L.LABELS),
                         label_schema_version=1, normaliser_version=1, base_model="e5-small",
                         metrics={"train_precision": precision})
        assert ("in bfloat16 arithmetic" in render_model_card(meta, {"datasets": {}})) == (precision == "bf16")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert ft.train_precision("auto") == "fp32" and ft.train_precision("bf16") == "bf16"
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert ft.train_precision("auto") == "bf16"
    with pytest.raises(Exception, match="train.qat needs train.precision"):
        tiny_config(tmp_path / "m", 'train.precision="bf16"', "train.qat=0.5")
    cfg = tiny_config(tmp_path / "m", 'model.base="minilm"', "train.max_steps=2", "train.epochs=1",
                      "train.batch_size=8", 'train.precision="auto"', "train.qat=0.5")
    assert ft.finetune(cfg, texts, ys, [], [], progress=False).precision == "fp32"  # qat rounds in float32
    with pytest.raises(Exception, match="precision"):
        tiny_config(tmp_path / "m", 'train.precision="fp16"')


def test_layer_decay_gives_lower_layers_smaller_learning_rates(tmp_path, monkeypatch):
    """``train.layer_decay``: the optimiser gets the top encoder layer at the full rate, each layer below at one more
    factor of the decay, the embeddings below them and the output layer at ``head_lr_multiplier``; at 1 every
    non-head parameter learns at ``learning_rate`` as before. Out-of-range values are refused."""
    import torch

    from serving import labels as L
    from tests.helpers import MINI_CORPUS, read_jsonl, tiny_config
    from training import finetune as ft

    rows = read_jsonl(MINI_CORPUS)[:16]
    texts, ys = [r["text"] for r in rows], [L.LABEL2ID[r["label"]] for r in rows]
    seen = {}

    class Recording(torch.optim.AdamW):
        def __init__(self, groups, **kw):
            super().__init__(groups, **kw)
            seen["lr"] = {id(p): g["lr"] for g in self.param_groups for p in g["params"]}

    monkeypatch.setattr(torch.optim, "AdamW", Recording)
    lr = {}
    for decay in (1.0, 0.5):
        cfg = tiny_config(tmp_path / "m", 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=1",
                          "train.epochs=1", "train.batch_size=8", "train.learning_rate=1e-4",
                          "train.head_lr_multiplier=3", f"train.layer_decay={decay}")
        res = ft.finetune(cfg, texts, ys, [], [], progress=False)
        lr[decay] = {n: seen["lr"][id(p)] for n, p in res.model.named_parameters() if id(p) in seen["lr"]}
    top, bottom = "bert.encoder.layer.5.output.dense.weight", "bert.encoder.layer.0.attention.self.query.weight"
    emb, head = "bert.embeddings.word_embeddings.weight", "classifier.weight"
    assert lr[1.0][top] == lr[1.0][bottom] == lr[1.0][emb] == pytest.approx(1e-4)
    assert lr[1.0][head] == pytest.approx(3e-4)
    assert lr[0.5][top] == pytest.approx(1e-4) and lr[0.5][head] == pytest.approx(3e-4)
    assert lr[0.5]["bert.encoder.layer.4.output.dense.weight"] == pytest.approx(0.5e-4)
    assert lr[0.5][bottom] == pytest.approx(1e-4 * 0.5 ** 5)
    assert lr[0.5][emb] == pytest.approx(1e-4 * 0.5 ** 6)
    for bad in ("0", "1.5"):
        with pytest.raises(Exception, match="layer_decay"):
            tiny_config(tmp_path / "m", f"train.layer_decay={bad}")
