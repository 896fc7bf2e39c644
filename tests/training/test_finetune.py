from pathlib import Path

import pytest

from training.finetune import BaseModelError, _batches, freeze, resolve_base


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
