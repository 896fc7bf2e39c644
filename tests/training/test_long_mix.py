"""Window-like training rows (``train.long_mix``, issue 10): what they are made of and what they are labelled."""

from __future__ import annotations

import json

import pytest

from serving import labels as L
from serving.text import normalize
from tests.helpers import MINI_CORPUS
from training.long_mix import KINDS, NEEDLE_MAX_CHARS, PREFIX_MAX_CHARS, WINDOW_CHARS, long_mixes


@pytest.fixture(scope="module")
def corpus():
    rows = [json.loads(line) for line in MINI_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return ([normalize(r["text"]) for r in rows], [L.LABEL2ID[r["label"]] for r in rows],
            [r.get("lang") for r in rows])


def test_each_kind_is_made_of_training_rows_of_one_language_and_labelled_by_what_is_buried(corpus):
    texts, labels, langs = corpus
    mixed = long_mixes(texts, labels, langs, 0.5, seed=3)
    assert len(mixed.texts) == round(0.5 * len(texts)) == sum(mixed.kinds.values())
    assert all(mixed.kinds[k] > 0 for k in KINDS)
    by_label = {y: [t for t, ty in zip(texts, labels) if ty == y] for y in set(labels)}
    for text, y in zip(mixed.texts, mixed.labels):
        assert len(text) <= WINDOW_CHARS[1] + NEEDLE_MAX_CHARS + PREFIX_MAX_CHARS
        if y == L.LABEL2ID[L.NEUTRAL]:
            # no flagged text inside a neutral window
            assert not any(t in text for other in (L.EXTREMIST, L.COUNTER_NARRATIVE)
                           for t in by_label[L.LABEL2ID[other]] if len(t) > 20)
        else:
            needles = [t for t in by_label[y] if t in text]
            assert needles, "a buried row contains a whole text of its label"
            # within the first characters, so that max_length truncation never cuts it off
            assert min(text.find(t) for t in needles) <= PREFIX_MAX_CHARS + 1
            assert all(len(t) <= NEEDLE_MAX_CHARS for t in needles if text.find(t) <= PREFIX_MAX_CHARS + 1)


def test_seeded_and_replies_with_a_parent_are_left_out(corpus):
    texts, labels, langs = corpus
    a = long_mixes(texts, labels, langs, 0.3, seed=5)
    assert a.texts == long_mixes(texts, labels, langs, 0.3, seed=5).texts
    assert a.texts != long_mixes(texts, labels, langs, 0.3, seed=6).texts
    # every flagged row has a parent: nothing can be buried, only neutral windows are made
    parents = [None if y == L.LABEL2ID[L.NEUTRAL] else "a parent post" for y in labels]
    only_neutral = long_mixes(texts, labels, langs, 0.3, seed=5, contexts=parents)
    assert only_neutral.kinds["buried_extremist"] == only_neutral.kinds["buried_counter"] == 0
    assert set(only_neutral.labels) == {L.LABEL2ID[L.NEUTRAL]}
    assert long_mixes(texts, labels, langs, 0.0, seed=5).texts == []


def test_sub_types_follow_the_buried_text(corpus):
    texts, labels, langs = corpus
    subs = list(range(len(texts)))  # a distinct id per row: the buried row must carry its needle's
    mixed = long_mixes(texts, labels, langs, 0.5, seed=7, subtypes=subs)
    for text, y, sub in zip(mixed.texts, mixed.labels, mixed.subtypes):
        if y == L.LABEL2ID[L.NEUTRAL]:
            assert sub == -100
        else:
            assert texts[sub] in text and labels[sub] == y


def test_training_adds_the_rows_to_the_fine_tune_only(tmp_path, monkeypatch):
    """A tiny real fine-tune with ``train.long_mix``: the mixes are logged and trained on; dev is untouched."""
    import re

    from tests.helpers import tiny_config
    from training import finetune as F
    from training.pipeline import train

    seen = {}
    original = F.finetune

    def spy(cfg, train_texts, train_y, dev_texts, dev_y, **kw):
        seen.update(train=len(train_texts), dev=len(dev_texts), labels=len(train_y))
        return original(cfg, train_texts, train_y, dev_texts, dev_y, **kw)

    lines: list[str] = []
    monkeypatch.setattr(F, "finetune", spy)
    train(tiny_config(tmp_path / "m", 'model.base="minilm"', "train.max_steps=2", "train.epochs=1",
                      "train.batch_size=8", "train.subtype_weight=0", "train.long_mix=0.5", "export.onnx=false"),
          progress=False, log=lines.append)
    n_train = int(re.search(r"data: (\d+) train, (\d+) dev", "\n".join(lines)).group(1))
    n_dev = int(re.search(r"data: (\d+) train, (\d+) dev", "\n".join(lines)).group(2))
    mixes = int(re.search(r"long-text mixes: (\d+) window-like", "\n".join(lines)).group(1))
    assert mixes == round(0.5 * n_train) > 0
    assert seen == {"train": n_train + mixes, "labels": n_train + mixes, "dev": n_dev}


def test_fillers_come_from_the_origin_of_what_they_surround():
    """Written needles among written neutral text, real ones among real posts: the mix must not be a style cue."""
    texts, labels, langs, origins = [], [], [], []
    for k in range(40):
        for origin in ("written", "real"):
            texts.append(f"{origin}filler number {k} about an ordinary day in town")
            labels.append(L.LABEL2ID[L.NEUTRAL])
            langs.append("en")
            origins.append(None if origin == "written" else "real")  # a written row may carry no origin
    for k in range(10):
        for origin in ("written", "real"):
            for label in (L.EXTREMIST, L.COUNTER_NARRATIVE):
                texts.append(f"{origin}needle {label} {k}")
                labels.append(L.LABEL2ID[label])
                langs.append("en")
                origins.append(origin)
    mixed = long_mixes(texts, labels, langs, 1.0, seed=11, origins=origins)
    both = {"written": 0, "real": 0}
    for text, y in zip(mixed.texts, mixed.labels):
        if y == L.LABEL2ID[L.NEUTRAL]:
            kinds = {o for o in ("written", "real") if f"{o}filler" in text}
            assert len(kinds) == 1, text  # one origin per neutral window
            both[kinds.pop()] += 1
        else:
            needle_origin = "written" if "writtenneedle" in text else "real"
            other = "real" if needle_origin == "written" else "written"
            assert f"{other}filler" not in text and f"{needle_origin}filler" in text
    assert min(both.values()) > 0.3 * sum(both.values())  # neutral windows of each origin alike


def test_neutral_share_sets_the_mix(corpus):
    texts, labels, langs = corpus[:3]
    for share, expect in ((0.8, 0.8), (0.0, 0.0), (1 / 3, 1 / 3)):
        mixed = long_mixes(texts, labels, langs, 0.5, seed=3, neutral_share=share)
        n = len(mixed.texts)
        assert abs(mixed.kinds["long_neutral"] / n - expect) < 0.02
        if share < 1:  # the buried rest is split evenly between the two flags
            assert abs(mixed.kinds["buried_extremist"] - mixed.kinds["buried_counter"]) <= 1
        neutral_id = L.LABEL2ID[L.NEUTRAL]
        assert sum(y == neutral_id for y in mixed.labels) == mixed.kinds["long_neutral"]
