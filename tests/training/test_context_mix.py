"""Recombined reply pairs (training/context_mix.py, data/written/recombine.py; issue 15)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from training.context_mix import candidates, reply_rule, rule_label

ROOT = Path(__file__).resolve().parents[2]
LABELED = ROOT / "data" / "labeled"


def pair(i, parent, parent_label, text, label, alone, lang="en"):
    return {"id": f"p{i}", "context": parent, "context_label": parent_label, "text": text, "label": label,
            "alone_label": alone, "ambiguous_alone": label != alone, "lang": lang, "kind": f"k_{label}",
            "family": f"f{text[:3]}", "source": "counterpoint", "register": "reply"}


HATE, HATE2 = "Group X are vermin.", "Group Y should be driven out."
COUNTER, COUNTER2 = "Group X are our neighbours.", "No faith allows killing the innocent."
NEWS, NEWS2 = "The match starts at five.", "Prices rose again."
ROWS = [
    pair(1, HATE, "extremist", "Exactly, well said.", "extremist", "neutral"),
    pair(2, COUNTER, "counter_narrative", "Exactly, well said.", "counter_narrative", "neutral"),
    pair(3, NEWS, "neutral", "Exactly, well said.", "neutral", "neutral"),
    pair(4, HATE2, "extremist", "May God guide you.", "counter_narrative", "neutral"),
    pair(5, NEWS2, "neutral", "May God guide you.", "neutral", "neutral"),
    pair(6, COUNTER2, "counter_narrative", "Group Z are parasites.", "extremist", "extremist"),
    pair(7, NEWS, "neutral", "Group Z are parasites.", "extremist", "extremist"),
    # mixed: agrees with one flagged parent, flips another: no rule
    pair(8, HATE, "extremist", "Sure.", "extremist", "neutral"),
    pair(9, COUNTER, "counter_narrative", "Sure.", "extremist", "neutral"),
    # ambiguous under neutral parents only: no rule
    pair(10, NEWS, "neutral", "They should all leave.", "extremist", "neutral"),
    pair(11, NEWS2, "neutral", "They should all leave.", "neutral", "neutral"),
    pair(12, "Urdu parent", "extremist", "بالکل", "extremist", "neutral", lang="ur"),
]


def rows_of(text, lang="en"):
    return [r for r in ROWS if r["text"] == text and r["lang"] == lang]


def test_reply_rule_reads_the_relation_from_the_written_pairs():
    assert reply_rule(rows_of("Exactly, well said.")) == "agree"
    assert reply_rule(rows_of("May God guide you.")) == "disagree"
    assert reply_rule(rows_of("Group Z are parasites.")) == "keep"
    assert reply_rule(rows_of("Sure.")) is None
    assert reply_rule(rows_of("They should all leave.")) is None


def test_rule_label_takes_flips_or_keeps():
    assert rule_label("agree", "neutral", "counter_narrative") == "counter_narrative"
    assert rule_label("disagree", "neutral", "counter_narrative") == "extremist"
    assert rule_label("disagree", "neutral", "extremist") == "counter_narrative"
    assert rule_label("keep", "extremist", "neutral") == "extremist"
    with pytest.raises(ValueError, match="flagged parents only"):
        rule_label("agree", "neutral", "neutral")


def test_candidates_use_new_parents_of_the_same_language_and_the_rule():
    out, counts = candidates(ROWS, 3, seed=1)
    assert counts == Counter({"agree": 2, "disagree": 3, "keep": 3, "no_rule": 2})
    by_text = {}
    for c in out:
        by_text.setdefault(c["text"], []).append(c)
        own = {r["context"] for r in rows_of(c["text"], c["lang"])}
        assert c["context"] not in own, "a candidate repeats a parent the reply was written for"
        assert "label" not in c and c["rule_label"] == rule_label(c["rule"], c["alone_label"], c["context_label"])
        assert c["pattern"] == f"{c['context_label']}->{c['rule_label']}"
    # agreement and rejection only under flagged parents that are new to the reply
    assert {c["context"] for c in by_text["Exactly, well said."]} == {HATE2, COUNTER2}
    assert {c["context_label"] for c in by_text["May God guide you."]} == {"extremist", "counter_narrative"}
    assert all(c["rule_label"] == "extremist" for c in by_text["Group Z are parasites."])
    # the kind is the reply's own kind for that label, or none
    assert {c["kind"] for c in by_text["Exactly, well said."]} == {"k_extremist", "k_counter_narrative"}
    assert {c["kind"] for c in by_text["May God guide you."] if c["rule_label"] == "extremist"} <= {""}
    assert "بالکل" not in by_text, "the only Urdu parent is the reply's own: nothing to recombine"
    assert len({c["id"] for c in out}) == len(out)
    assert out == candidates(ROWS, 3, seed=1)[0] and out != candidates(ROWS, 3, seed=2)[0]


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_recombined_training_pairs_come_from_training_pairs_only():
    path = LABELED / "train.recombined.jsonl"
    if not path.exists():
        pytest.fail(f"{path} is missing: run python data/written/recombine.py build")
    rows, train = read(path), read(LABELED / "train.context.jsonl")
    held = [r for split in ("dev", "test") for r in read(LABELED / f"{split}.context.jsonl")]
    replies, parents = {(r["lang"], r["text"]) for r in train}, {r["context"] for r in train}
    assert rows and all((r["lang"], r["text"]) in replies and r["context"] in parents for r in rows)
    assert not {r["text"] for r in rows} & {r["text"] for r in held}, "a dev or test reply in the training pairs"
    written = {(r["context"], r["text"]) for r in train}
    assert not {(r["context"], r["text"]) for r in rows} & written, "a recombined pair repeats a written one"
    assert all(r["pattern"] == f"{r['context_label']}->{r['label']}" for r in rows)


def test_second_round_pairs_share_no_text_with_dev_or_test_pairs():
    """data/written/context2.py: round-2 pairs are training only, agreed by two annotators, and none of their replies
    or parents is a dev or test reply or parent (case and spacing folded)."""
    import re

    path = LABELED / "train.context2.jsonl"
    if not path.exists():
        pytest.fail(f"{path} is missing: run python data/written/context2.py build")
    rows = read(path)

    def fold(text):
        return re.sub(r"\s+", " ", text).strip().casefold()

    held = {fold(t) for split in ("dev", "test") for r in read(LABELED / f"{split}.context.jsonl")
            for t in (r["text"], r.get("context") or "")}
    assert rows and not {fold(t) for r in rows for t in (r["text"], r["context"])} & held
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["id"].startswith("ctx2-") and r["pattern"] == f"{r['context_label']}->{r['label']}" for r in rows)
    second = {r["id"]: r["label"] for p in (ROOT / "data" / "written" / "labels").glob("context2_second.*.jsonl")
              for r in read(p)}
    assert all(second.get(r["id"]) == r["label"] for r in rows), "a kept pair the second annotator labelled otherwise"
