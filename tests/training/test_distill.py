"""A smaller student (issue 13): fewer encoder layers, distilled from a fine-tuned teacher on labelled and
unlabelled rows."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.helpers import MINI_CORPUS, tiny_config, write_jsonl
from training.config import ConfigError, load_config
from training.data import DataError
from training.distill import distill_loss, keep_layers, load_unlabeled, spread_layers


def test_spread_layers_keeps_the_bottom_and_the_top():
    assert spread_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    assert spread_layers(12, 12) == list(range(12))
    assert spread_layers(6, 3) == [0, 2, 5]
    assert spread_layers(6, 1) == [5]
    assert spread_layers(6, 2) == [0, 5]
    for n in range(1, 13):
        for k in range(1, n + 1):
            kept = spread_layers(n, k)
            assert len(kept) == k and kept[-1] == n - 1 and kept == sorted(set(kept))
    with pytest.raises(ValueError):
        spread_layers(6, 7)


def test_a_cut_model_runs_and_reloads_with_its_kept_layers(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.finetune import BaseModelError, resolve_base

    base = resolve_base("minilm")
    tok = AutoTokenizer.from_pretrained(base)
    full = AutoModelForSequenceClassification.from_pretrained(base, num_labels=3).eval()
    cut = AutoModelForSequenceClassification.from_pretrained(base, num_labels=3).eval()
    assert keep_layers(cut, 3) == spread_layers(6, 3)
    assert cut.config.num_hidden_layers == 3 and len(cut.base_model.encoder.layer) == 3
    for new, old in enumerate(spread_layers(6, 3)):  # the kept layers are the base's own weights
        assert torch.equal(cut.base_model.encoder.layer[new].output.dense.weight,
                           full.base_model.encoder.layer[old].output.dense.weight)
    batch = tok(["a short post", "another one, a little longer than the first"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = cut(**batch).logits
    assert not torch.allclose(before, full(**batch).logits)  # fewer layers: a different network
    cut.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert again.config.num_hidden_layers == 3
    with torch.no_grad():
        assert torch.allclose(again(**batch).logits, before, atol=1e-5)
    assert keep_layers(again, 0) == [0, 1, 2]  # 0 = keep them all
    with pytest.raises(BaseModelError, match="only 3 layers"):
        keep_layers(again, 4)


def test_distill_loss_is_zero_at_the_teacher_and_pulls_towards_it():
    import torch

    teacher = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 0.1, 1.7]])
    assert float(distill_loss(teacher.clone(), teacher, 2.0)) == pytest.approx(0.0, abs=1e-6)
    student = torch.zeros_like(teacher, requires_grad=True)
    loss = distill_loss(student, teacher, 2.0)
    assert float(loss.detach()) > 0
    loss.backward()
    stepped = (student - 1.0 * student.grad).detach()
    assert float(distill_loss(stepped, teacher, 2.0)) < float(loss)
    # scaled by T^2: the gradient keeps its size as the temperature grows (the Hinton et al. correction)
    g = []
    for t in (1.0, 4.0):
        s = torch.zeros_like(teacher, requires_grad=True)
        distill_loss(s, teacher * t, t).backward()
        g.append(float(s.grad.abs().sum()))
    assert g[1] == pytest.approx(g[0] * 4.0, rel=1e-4)


def test_unlabeled_files_drop_other_splits_repeats_and_bad_rows(tmp_path):
    path = write_jsonl(tmp_path / "u.jsonl", [{"text": "An ordinary post"}, {"text": "a dev post"},
                                              {"text": "an ordinary   post"}, {"body": "no text field"},
                                              {"text": "  "}], raw_lines=["{not json", "", '{"text": "last one"}'])
    texts, counts = load_unlabeled([str(path)], "text", {"a dev post"}, lambda t: " ".join(t.lower().split()))
    assert texts == ["an ordinary post", "last one"]
    assert counts["in_other_splits"] == 1 and counts["repeats"] == 1 and counts["bad_rows"] == 3
    assert any(":4: no text" in p for p in counts["problems"]) and any(":6: not JSON" in p for p in counts["problems"])
    with pytest.raises(DataError, match="not found"):
        load_unlabeled([str(tmp_path / "missing.jsonl")], "text", set(), str.lower)
    with pytest.raises(DataError, match="no text in field 'text'"):
        load_unlabeled([str(write_jsonl(tmp_path / "bad.jsonl", [{"body": "x"}]))], "text", set(), str.lower)


def test_unlabeled_rows_need_a_teacher():
    with pytest.raises(ConfigError, match="distill.unlabeled needs distill.teacher"):
        load_config(overrides=['distill.unlabeled=["data/unlabeled/background.jsonl"]'])
    with pytest.raises(ConfigError, match="distill.init"):
        load_config(overrides=['distill.init="elsewhere"'])


def test_a_distilled_student_trains_exports_and_serves(transformer_model_dir, tmp_path, monkeypatch):
    """A 3-layer student of the 6-layer tiny teacher, on the mini corpus plus unlabelled rows (one of them a dev
    text, which must be dropped): the rows reach the fine-tune unlabelled, the teacher scores every row, and the
    folder serves a 3-layer ONNX graph and says what it was made from."""
    import onnx

    from serving.artifact import read_meta
    from serving.predictor import load_predictor
    from serving.text import normalize
    from training import distill as D
    from training import finetune as F
    from training.pipeline import load_splits, train

    cfg = tiny_config(tmp_path / "s", 'model.base="minilm"')
    dev_text = load_splits(cfg)["dev"][0].text
    unlabeled = write_jsonl(tmp_path / "u.jsonl", [{"text": f"an unlabelled post number {k}"} for k in range(10)]
                            + [{"text": dev_text}, {"id": "no text"}])
    seen = {}
    original_finetune, original_teacher = F.finetune, D.teacher_logits

    def spy(cfg, train_texts, train_y, dev_texts, dev_y, **kw):
        seen.update(texts=list(train_texts), y=list(train_y))
        return original_finetune(cfg, train_texts, train_y, dev_texts, dev_y, **kw)

    def teacher_spy(folder, texts, contexts, max_length, n_labels, log=print):
        out = original_teacher(folder, texts, contexts, max_length, n_labels, log=log)
        seen.update(teacher_rows=len(texts), teacher_shape=out.shape, finite=bool(np.isfinite(out).all()))
        return out

    monkeypatch.setattr(F, "finetune", spy)
    monkeypatch.setattr(F, "teacher_logits", teacher_spy)
    lines: list[str] = []
    folder = train(tiny_config(tmp_path / "s", 'model.base="minilm"', "model.layers=3",
                               f'distill.teacher="{transformer_model_dir}"', f'distill.unlabeled=["{unlabeled}"]',
                               "train.freeze_layers=0", "train.max_steps=2", "train.epochs=1", "train.batch_size=8",
                               "train.subtype_weight=0", "export.quantize=false"),
                   progress=False, log=lines.append)
    log = "\n".join(lines)
    n_train = int(re.search(r"data: (\d+) train", log).group(1))
    assert re.search(r"distillation: 10 unlabelled rows from 1 file\(s\) \(1 in train/dev/test", log)
    assert "1 bad rows skipped" in log and "student: 3 encoder layers (" in log
    assert len(seen["texts"]) == n_train + 10 and seen["y"][n_train:] == [-100] * 10
    assert normalize(dev_text) not in seen["texts"][n_train:]
    assert seen["teacher_rows"] == n_train + 10 and seen["teacher_shape"] == (n_train + 10, 3) and seen["finite"]

    meta = read_meta(folder)
    assert meta.training_config["model"]["layers"] == 3
    assert meta.metrics["distill"]["unlabeled_rows"] == 10
    assert meta.metrics["distill"]["teacher_version"] == read_meta(transformer_model_dir).version
    assert meta.base_model.startswith("minilm (3 layers, distilled from ")
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 3
    graphs = list(folder.glob("*.onnx"))
    assert graphs
    for graph in graphs:
        ops = [n.op_type for n in onnx.load(str(graph), load_external_data=False).graph.node]
        assert ops.count("Attention") == 3  # the fused graph has one attention node a layer
    predictor = load_predictor(folder)
    preds = predictor.predict(["a post to score", "and another one"])
    assert len(preds) == 2 and all(p.label in ("extremist", "counter_narrative", "neutral") for p in preds)
    assert MINI_CORPUS.is_file()


def test_a_teacher_without_torch_weights_is_refused_with_what_to_give(tmp_path, linear_model_dir):
    from training.distill import teacher_logits
    from training.finetune import BaseModelError

    for folder in (tmp_path / "missing", linear_model_dir):
        with pytest.raises(BaseModelError, match="give the folder `counterpoint train` wrote"):
            teacher_logits(folder, ["a post"], None, 64, 3)


def test_a_teacher_with_weight_0_only_starts_the_student_and_is_never_asked_for_scores(transformer_model_dir,
                                                                                       tmp_path, monkeypatch):
    """``distill.weight = 0`` without unlabelled rows: the student starts from the teacher's weights (one more
    plain fine-tune), and the teacher's scores, which the loss would multiply by 0, are not computed."""
    from serving import labels as L
    from tests.helpers import MINI_CORPUS, read_jsonl
    from training import finetune as F

    def refuse(*args, **kw):
        raise AssertionError("the teacher's scores were computed for a loss weight of 0")

    monkeypatch.setattr(F, "teacher_logits", refuse)
    rows = read_jsonl(MINI_CORPUS)[:16]
    cfg = tiny_config(tmp_path / "s", 'model.base="minilm"', f'distill.teacher="{transformer_model_dir}"',
                      "distill.weight=0", "train.freeze_layers=0", "train.max_steps=1", "train.epochs=1",
                      "train.batch_size=8", "train.subtype_weight=0")
    res = F.finetune(cfg, [r["text"] for r in rows], [L.LABEL2ID[r["label"]] for r in rows], [], [], progress=False)
    teacher_layers = json.loads((transformer_model_dir / "config.json").read_text())["num_hidden_layers"]
    assert res.model.config.num_hidden_layers == teacher_layers and res.history
