"""Evidence: word spans and offsets, and faithfulness (the evidence is what drives the score, not decoration).

Faithfulness: on flagged posts from the corpus, deleting the top-3 extremist evidence words lowers p(extremist)
more than deleting 3 random words (mean of 5 draws) in at least 80% of cases. Fast on the linear model; slow on
the tiny transformer's int8 ONNX graph, the served backend.
"""

from __future__ import annotations

import json
import random
import statistics

import pytest

from serving import labels as L
from serving.explain import explain, occlusion_drops, word_spans
from serving.predictor import load_predictor
from tests.conftest import ROOT


def test_word_spans_index_the_original_string():
    text = "\u200fشہید، ہونے  والوں! kill🔥 (them) … x"
    spans = word_spans(text)
    assert [text[s:e] for s, e in spans] == ["شہید", "ہونے", "والوں", "kill🔥", "them", "x"]


def flagged_posts(predictor, n: int, seed: int = 0) -> list[str]:
    rows = [json.loads(line) for line in open(ROOT / "data/labeled/test.jsonl", encoding="utf-8")]
    rng = random.Random(seed)
    rng.shuffle(rows)
    texts = [r["text"] for r in rows if r["label"] == L.EXTREMIST and 8 <= len(word_spans(r["text"])) <= 60][:4 * n]
    preds = predictor.predict(texts)
    return [t for t, p in zip(texts, preds) if p.flagged][:n]


def faithfulness(predictor, texts: list[str], seed: int = 0) -> tuple[int, int]:
    rng = random.Random(seed)
    wins = total = 0
    for text, spans in zip(texts, explain(predictor, texts, top_k=64, min_weight=-1e9)):
        top = [(s.start, s.end) for s in spans if s.label == L.EXTREMIST][:3]
        if len(top) < 3:
            continue
        words = word_spans(text)
        random_drop = statistics.mean(occlusion_drops(predictor, text, rng.sample(words, 3)) for _ in range(5))
        wins += occlusion_drops(predictor, text, top) > random_drop
        total += 1
    return wins, total


def test_evidence_is_faithful_on_the_linear_model(linear_model_dir):
    predictor = load_predictor(linear_model_dir)
    posts = flagged_posts(predictor, 40)
    wins, total = faithfulness(predictor, posts)
    print(f"linear: top-3 evidence beats 3 random words on {wins}/{total} flagged posts")
    assert total >= 20 and wins / total >= 0.8, (wins, total)


@pytest.mark.slow
def test_evidence_is_faithful_on_the_int8_transformer(transformer_model_dir):
    predictor = load_predictor(transformer_model_dir, "onnx-int8")
    posts = flagged_posts(predictor, 30)
    wins, total = faithfulness(predictor, posts)
    print(f"int8 transformer: top-3 evidence beats 3 random words on {wins}/{total} flagged posts")
    assert total >= 15 and wins / total >= 0.8, (wins, total)
