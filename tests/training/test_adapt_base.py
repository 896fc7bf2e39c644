"""`counterpoint adapt-base`: masked-word training of a real base on unlabelled posts (training/adapt_base.py)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import MINI_CORPUS, read_jsonl, write_jsonl


def _texts(n: int | None = None) -> list[str]:
    rows = read_jsonl(MINI_CORPUS)
    return [r["text"] for r in rows][:n]


def test_masking_skips_specials_and_padding_and_follows_bert_proportions():
    import torch

    from training.adapt_base import _mask_batch

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (64, 40))
    ids[:, 0], ids[:, 39] = 1, 2  # specials at both ends
    mask = torch.ones_like(ids)
    mask[:, 30:] = 0  # padding
    special = (ids == 1) | (ids == 2)
    inputs, targets = _mask_batch(ids, mask, special, mask_id=4, vocab=1000, probability=0.15, gen=gen)
    picked = targets != -100
    assert not picked[:, 0].any() and not picked[:, 30:].any()  # never a special, never padding
    assert torch.equal(targets[picked], ids[picked])  # the loss asks for the original piece
    rate = picked.sum().item() / (64 * 29)
    assert 0.12 < rate < 0.18
    masked = (inputs == 4) & picked
    assert 0.72 < masked.sum().item() / picked.sum().item() < 0.88
    assert torch.equal(inputs[~picked], ids[~picked])  # nothing else is touched


def test_drop_held_back_removes_held_out_texts_and_repeats(tmp_path):
    from training.adapt_base import drop_held_back

    held = write_jsonl(tmp_path / "test.real.jsonl", [{"text": "A held-out   post"}])
    kept, dropped = drop_held_back(["a held-out post", "fresh post", "Fresh  post", "another"], [held])
    assert kept == ["fresh post", "another"] and dropped == 2


def test_adapt_base_trains_the_upper_layers_only_learns_and_writes_a_base_training_can_start_from(tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from training.adapt_base import adapt_base
    from training.finetune import resolve_base

    base = resolve_base("minilm")
    texts = _texts(160)
    record = adapt_base(base, texts, tmp_path / "adapted", epochs=4, batch_size=16, freeze_layers=2,
                        learning_rate=3e-4, threads=1, log=lambda m: None)
    assert record["held_out_loss_after"] < record["held_out_loss_before"] - 0.3  # it learnt to fill in the pieces
    before = load_file(f"{base}/model.safetensors")
    after = load_file(tmp_path / "adapted" / "model.safetensors")

    def same(prefix: str) -> bool:
        keys = [k for k in after if k.removeprefix("bert.").startswith(prefix)]
        assert keys, prefix
        return all(torch.equal(after[k], before.get(k, before.get(f"bert.{k}", before.get(k.removeprefix("bert.")))))
                   for k in keys)

    assert same("embeddings.") and same("encoder.layer.0.") and same("encoder.layer.1.") and same("pooler.")
    assert not same("encoder.layer.5.")
    saved = json.loads((tmp_path / "adapted" / "adapt.json").read_text())
    assert saved["steps"] == record["steps"] and saved["freeze_layers"] == 2
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "adapted", num_labels=3)
    enc = model.bert.encoder.layer[5].output.dense.weight
    key = next(k for k in after if k.endswith("encoder.layer.5.output.dense.weight"))
    assert torch.equal(enc, after[key])  # training reads the adapted encoder, not the base's


def test_adapt_base_refuses_bad_settings_before_training(tmp_path):
    from training.adapt_base import AdaptError, adapt_base
    from training.finetune import resolve_base

    base = resolve_base("minilm")
    with pytest.raises(AdaptError, match="at least 64"):
        adapt_base(base, ["one text"] * 10, tmp_path / "o")
    with pytest.raises(AdaptError, match="new folder"):
        adapt_base(base, _texts(80), base)
    with pytest.raises(AdaptError, match="no config.json"):
        adapt_base(tmp_path, _texts(80), tmp_path / "o")


def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    runner = CliRunner()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{not json\n[1]\n{"body": "x"}\n', encoding="utf-8")
    res = runner.invoke(app, ["adapt-base", "--base", "minilm", "--data", str(bad), "--out", str(tmp_path / "o")])
    # bad lines are reported and skipped; what is left (one text) is too little, which is said too
    assert "3 line(s) skipped" in res.output and "bad.jsonl:2: not JSON" in res.output
    assert "bad.jsonl:4: no text in 'text'" in res.output
    assert res.exit_code == 2 and "1 texts to adapt on" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["adapt-base", "--base", "minilm", "--data", str(tmp_path / "none.jsonl"),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no such file" in res.output
    csv = tmp_path / "posts.csv"
    csv.write_text("text\nhello\n", encoding="utf-8")
    res = runner.invoke(app, ["adapt-base", "--base", "minilm", "--data", str(csv), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and ".jsonl" in res.output and not (tmp_path / "o").exists()


def test_new_folder_replaces_the_folder_whole_or_leaves_it_as_it_was(tmp_path):
    from serving.artifact import new_folder

    out = tmp_path / "base"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with new_folder(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("killed while writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base"]  # no temporary folder left behind
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    with new_folder(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base"]
