"""Evidence: word spans and offsets, and faithfulness (the evidence is what drives the score, not decoration).

Faithfulness: on flagged posts from the corpus, deleting the top-3 extremist evidence words lowers p(extremist)
more than deleting 3 random words (mean of 5 draws) in at least 80% of cases. Fast on the linear model; slow on
the tiny transformer's int8 ONNX graph, the served backend.
"""

from __future__ import annotations

import json

import pytest

from serving import explain as explain_module
from serving import labels as L
from serving.explain import explain, word_spans
from serving.predictor import load_predictor
from tests.conftest import ROOT


def test_word_spans_index_the_original_string():
    text = "\u200fشہید، ہونے  والوں! kill🔥 (them) … x"
    spans = word_spans(text)
    assert [text[s:e] for s, e in spans] == ["شہید", "ہونے", "والوں", "kill🔥", "them", "x"]


def flagged_posts(predictor, n: int, seed: int = 0) -> list[str]:
    rows = [json.loads(line) for line in open(ROOT / "data/labeled/test.jsonl", encoding="utf-8")]
    return explain_module.flagged_posts(predictor, rows, n, seed)


def faithfulness(predictor, texts: list[str], seed: int = 0) -> tuple[int, int]:
    wins, total, _ = explain_module.faithfulness(predictor, texts, seed)
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


def test_deleted_rows_finds_the_word_between_shared_ends():
    from serving.explain import _deleted_rows

    assert _deleted_rows([0, 5, 6, 7, 8, 2], [0, 5, 8, 2]) == (2, 2)  # 6, 7 deleted
    assert _deleted_rows([0, 5, 6, 2], [0, 6, 2]) == (1, 2)
    assert _deleted_rows([0, 5, 5, 2], [0, 5, 2]) == (2, 1)  # a repeated piece: one of the two goes
    assert _deleted_rows([0, 5, 2], [0, 5, 2]) == (3, 0)  # nothing deleted: every row kept


def test_graph_cut_answers_as_the_served_graph(transformer_model_dir):
    """The cut session answers as the served graph (the same logits); its copy of the upper layers, fed the hidden
    states at the cut, gives those logits again (exactly on the fp32 graph with the copy not re-quantised; within
    int8 noise otherwise: activation scales are per batch); and once cut, the predictor predicts exactly as before."""
    import numpy as np

    from serving.graph_cut import cut_graph

    predictor = load_predictor(transformer_model_dir, "onnx-int8")
    texts = ["they are vermin and must be driven out", "yeh sab jhoot hai, mazhab amn sikhata hai",
             "آج موسم بہت اچھا ہے"]
    before = predictor.predict_proba(texts)
    windows, _ = predictor.windows(texts)
    width = max(len(w) for w in windows)
    ids = np.zeros((len(windows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, w in enumerate(windows):
        ids[r, :len(w)], mask[r, :len(w)] = w, 1
    served = predictor._run(ids, mask)
    fp32 = load_predictor(transformer_model_dir, "onnx")  # no dynamic activation scales: the copy is exact
    exact = cut_graph(fp32.graph_path, 2, quantize_upper=False)
    logits, hidden = exact.run_lower(ids, mask)
    np.testing.assert_array_equal(logits, fp32._run(ids, mask))
    np.testing.assert_allclose(exact.run_upper(hidden, mask.sum(axis=1)), logits, atol=1e-5)
    cut = predictor.graph_cut(2)
    assert cut is not None and cut.layers == 6 and cut.layer == 4
    assert predictor.session is cut.session  # the cut session now answers predict
    np.testing.assert_array_equal(predictor._run(ids, mask), served)
    np.testing.assert_allclose(cut.run_upper(cut.run_lower(ids, mask)[1], mask.sum(axis=1)), served, atol=0.1)
    np.testing.assert_array_equal(predictor.predict_proba(texts), before)
    assert predictor.graph_cut(2) is cut and predictor.graph_cut(6) is None  # cached; a cut needs a layer below


def test_service_loads_the_cut_once(transformer_model_dir):
    """``explain_cut`` at load (the service): one session, the cut one, from the start."""
    predictor = load_predictor(transformer_model_dir, "onnx-int8", explain_cut=4)
    assert predictor.session is predictor.graph_cut(4).session
    assert explain(predictor, ["they are vermin and must be driven out of our land"], min_weight=-1e9)[0]


def test_upper_layer_occlusion_falls_back_for_long_posts(transformer_model_dir):
    """A post longer than one window is occluded in the text, in the same call as short posts cut in the graph."""
    from serving.explain import _drops, _drops_full

    predictor = load_predictor(transformer_model_dir, "onnx-int8")
    long_post = " ".join(["the weather report said rain tomorrow and the match is off"] * 30)
    short = "they are vermin and must be driven out of our land"
    jobs = [(short, word_spans(short)), (long_post, word_spans(long_post)[:5])]
    mixed = _drops(predictor, jobs, None, upper_layers=2)
    full = _drops_full(predictor, jobs[1:])
    assert mixed[0][1].shape == (len(word_spans(short)), 2)
    import numpy as np

    np.testing.assert_allclose(mixed[1][1], full[0][1], atol=2e-2)  # int8 batch noise only
    np.testing.assert_allclose(mixed[0][0], _drops_full(predictor, jobs[:1])[0][0], atol=2e-2)


def test_a_graph_that_cannot_be_cut_still_loads_and_explains(transformer_model_dir, monkeypatch, caplog):
    """A failure while cutting (here: the cutter raises) is logged; the predictor loads with the plain session and
    evidence comes from full occlusion."""
    import serving.graph_cut

    def broken(*args, **kwargs):
        raise ValueError("unexpected graph")

    monkeypatch.setattr(serving.graph_cut, "cut_graph", broken)
    predictor = load_predictor(transformer_model_dir, "onnx-int8", explain_cut=4)
    assert predictor.graph_cut(4) is None and "full occlusion" in caplog.text
    spans = explain(predictor, ["they are vermin and must be driven out of our land"], min_weight=-1e9)[0]
    assert spans and all(s.label in (L.EXTREMIST, L.COUNTER_NARRATIVE) for s in spans)
