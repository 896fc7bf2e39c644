"""Issue 15: reply context (a parent post per text) and the rhetoric sub-type head, end to end on a tiny real model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from serving import labels as L
from tests.helpers import MINI_CORPUS, ROOT, assert_error, read_jsonl, serve, tiny_config, write_jsonl

PAIRS = ROOT / "tests" / "fixtures" / "context_pairs.jsonl"
PARENT = "These people are filth and should be driven out of our country, every last one of them."
REPLY = "Exactly, they all deserve it."


@pytest.fixture(scope="module")
def context_model_dir(tmp_path_factory):
    from training.pipeline import train

    out = tmp_path_factory.mktemp("models") / "context"
    cfg = tiny_config(out, 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=4", "train.epochs=1",
                      "train.batch_size=8", "train.subtype_weight=0.5", "train.subtype_refit=true")
    cfg.data.train = [str(MINI_CORPUS), str(PAIRS)]
    return train(cfg, progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def context_predictor(context_model_dir):
    from serving.predictor import load_predictor

    return load_predictor(context_model_dir)


# -- encoding ---------------------------------------------------------------------------------------------------
def test_first_window_without_a_parent_is_the_plain_truncated_encoding():
    from transformers import AutoTokenizer

    from training.finetune import encode_inputs, resolve_base

    tok = AutoTokenizer.from_pretrained(resolve_base("minilm"))
    texts = ["short post", "word " * 300]
    assert encode_inputs(tok, texts, 32) == tok(texts, truncation=True, max_length=32)["input_ids"]


def test_the_parent_is_truncated_first():
    from serving.predictor import CONTEXT_MIN_TOKENS, encode_first_window

    parent, short, long = list(range(100, 300)), [7, 8, 9], list(range(1000, 1500))
    ids = encode_first_window(short, parent, 128, 1, 2)
    assert len(ids) == 128 and ids[-4:] == [2, 7, 8, 9, 2][-4:] and ids[1:3] == [100, 101]  # reply whole
    ids = encode_first_window(long, parent, 128, 1, 2)
    assert ids[1:1 + CONTEXT_MIN_TOKENS] == parent[:CONTEXT_MIN_TOKENS]  # the parent keeps its minimum
    assert ids[1 + CONTEXT_MIN_TOKENS] == 2 and len(ids) == 128
    assert encode_first_window(short, None, 128, 1, 2) == [1, 7, 8, 9, 2]


def test_training_inputs_drop_parents_with_the_alone_label():
    from training.data import Example
    from training.pipeline import training_inputs

    cfg = tiny_config(ROOT / "unused", "train.context_dropout=1.0")
    rows = [Example("a", REPLY, "extremist", kind="incitement", extra={"context": PARENT, "alone_label": "neutral"}),
            Example("b", "plain post", "extremist", kind="incitement")]
    ctx, ys, subs = training_inputs(rows, [r.text for r in rows], cfg, reads_context=True, subtypes=True)
    assert ctx is None  # every parent dropped
    assert ys == [L.LABEL2ID["neutral"], L.LABEL2ID["extremist"]]
    assert subs == [-100, L.subtype_names().index("incitement")]  # a changed label teaches no sub-type
    cfg = tiny_config(ROOT / "unused", "train.context_dropout=0.0")
    ctx, ys, _ = training_inputs(rows, [r.text for r in rows], cfg, reads_context=True, subtypes=False)
    assert ctx[0] and ctx[1] is None and ys[0] == L.LABEL2ID["extremist"]


def test_the_same_reply_under_different_parents_is_not_leakage():
    from training.data import Example
    from training.pipeline import check_leakage

    a = Example("a", REPLY, "extremist", extra={"context": PARENT})
    b = Example("b", REPLY, "neutral", extra={"context": "Our cricket team lost again."})
    check_leakage({"train": [a], "dev": [b], "test": []})
    with pytest.raises(ValueError, match="also in train"):
        check_leakage({"train": [a], "dev": [Example("c", REPLY, "extremist", extra={"context": PARENT})],
                       "test": []})


# -- the trained folder ---------------------------------------------------------------------------------------
def test_folder_says_it_reads_context_and_has_subtypes(context_predictor, transformer_model_dir, linear_model_dir):
    from serving.artifact import load_meta

    meta = context_predictor.meta
    assert meta.context is True and meta.subtypes == {k: list(v) for k, v in L.SUBTYPES.items()}
    assert load_meta(transformer_model_dir).context is False  # no parent posts in its data
    linear = load_meta(linear_model_dir)
    assert linear.context is False and linear.subtypes is None  # no head on the linear baseline


def test_subtype_refit_is_recorded(context_predictor):
    refit = context_predictor.meta.metrics["subtype_refit"]
    assert refit["rows"] > 0 and refit["C"] > 0 and isinstance(refit["kept"], bool)
    assert 0 <= refit["dev_accuracy_before"] <= 1 and 0 <= refit["dev_accuracy_after"] <= 1
    assert refit["kept"] == (refit["dev_accuracy_after"] > refit["dev_accuracy_before"])


def test_subtype_refit_learns_subtypes_and_leaves_label_scores_alone():
    """The refit changes only the sub-type rows of the output layer: label logits stay bit-identical, and rows whose
    sub-type is written in their words are then told apart (they were not by the untrained head)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.finetune import head_inputs, refit_subtype_rows, resolve_base

    names = L.subtype_names()
    base = resolve_base("minilm")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(L.LABELS) + len(names)).eval()
    tok = AutoTokenizer.from_pretrained(base)
    topics = {"news_report": "police said on Monday that the report was published",
              "everyday": "my cat slept all afternoon on the warm sofa again",
              "personal_abuse": "you idiot clown shut up you stupid fool"}
    texts, subs = [], []
    for k in range(12):
        for name, words in topics.items():
            texts.append(f"{words} {k}")
            subs.append(names.index(name))
    y = [L.LABEL2ID[L.NEUTRAL]] * len(texts)
    x = head_inputs(model, tok, texts, 32)
    head = model.classifier
    before = (head.weight.detach().clone(), head.bias.detach().clone())
    label_logits = head(torch.from_numpy(x))[:, :len(L.LABELS)].detach().clone()
    train, dev = slice(0, 24), slice(24, None)
    refit = refit_subtype_rows(model, x[train], y[train], subs[train], x[dev], y[dev], subs[dev])
    assert refit.kept and refit.dev_accuracy_after == 1.0 > refit.dev_accuracy_before
    assert refit.rows == 24 and refit.dev_rows == 12
    assert torch.equal(head(torch.from_numpy(x))[:, :len(L.LABELS)], label_logits)
    assert torch.equal(head.weight[:len(L.LABELS)], before[0][:len(L.LABELS)])
    own = [names.index(n) for n in L.SUBTYPES[L.NEUTRAL]]
    n = len(L.LABELS)  # the sub-type rows come after the label rows
    got = head(torch.from_numpy(x[dev]))[:, [n + i for i in own]].argmax(1).numpy()
    assert [own[i] for i in got] == subs[dev]
    # A sub-type with no training row of its label is never chosen; other labels' rows keep what they were
    assert all(head.bias[n + i] == -30.0 for i in own if i not in subs)
    other = [n + names.index(name) for name in L.SUBTYPES[L.EXTREMIST]]
    assert torch.equal(head.weight[other], before[0][other])
    # Where the refit is not better on dev (the rows are already right on every dev row), the rows stay as they are
    kept = (head.weight.detach().clone(), head.bias.detach().clone())
    again = refit_subtype_rows(model, x[train], y[train], subs[train], x[dev], y[dev], subs[dev], grid=(0.01,))
    assert not again.kept and again.dev_accuracy_before == 1.0
    assert torch.equal(head.weight, kept[0]) and torch.equal(head.bias, kept[1])


def test_without_parents_the_model_scores_as_before(context_predictor, context_model_dir):
    from serving.predictor import load_predictor

    texts = [REPLY, "A long post " * 80, "Prayer timings changed."]
    plain = context_predictor.predict_proba(texts)
    np.testing.assert_array_equal(plain, context_predictor.predict_proba(texts, contexts=[None, None, None]))
    np.testing.assert_array_equal(plain, context_predictor.predict_proba(texts, contexts=[None, "  ", None]))
    with_parent = context_predictor.predict_proba(texts, contexts=[PARENT, None, None])
    assert not np.allclose(with_parent[0], plain[0])  # the parent is read
    # Dynamic int8 scales activations per batch, so a parent in the batch moves its mates' scores a little (by up to
    # 0.008 with onnxruntime 1.32 on this tiny model); that texts without a parent are encoded and scored exactly
    # as before is checked on the unquantised weights.
    np.testing.assert_allclose(with_parent[1:], plain[1:], atol=2e-2)
    exact = load_predictor(context_model_dir, "torch")
    np.testing.assert_allclose(exact.predict_proba(texts, contexts=[PARENT, None, None])[1:],
                               exact.predict_proba(texts)[1:], atol=1e-5)


def test_a_parent_costs_its_tokens_and_long_replies_keep_windows(context_predictor):
    (w0, t0), = context_predictor.window_costs([REPLY])
    (w1, t1), = context_predictor.window_costs([REPLY], [PARENT])
    assert w0 == w1 == 1 and t1 > t0
    long = "word " * 400
    (w2, _), = context_predictor.window_costs([long], [PARENT * 5])
    assert w2 > context_predictor.window_costs([long])[0][0]  # shorter windows next to the parent


def test_predictions_carry_a_subtype_of_their_label(context_predictor):
    from serving.profiles import Profile

    preds = context_predictor.predict([REPLY, "The lions went forward, join the caravan."], contexts=[PARENT, None])
    for p in preds:
        assert p.subtype["name"] in L.SUBTYPES[p.label] and 0 < p.subtype["score"] <= 1
        assert p.to_dict()["subtype"] == p.subtype
    flag_all = Profile("all", {L.EXTREMIST: 0.0}, None)
    moved = preds[0].under(flag_all)
    assert moved.label == L.EXTREMIST and moved.subtype["name"] in L.SUBTYPES[L.EXTREMIST]


def test_a_model_without_context_refuses_parents(transformer_model_dir, linear_predictor):
    from serving.predictor import ContextNotSupported, load_predictor

    assert linear_predictor.predict([REPLY], contexts=[None])[0].subtype is None  # no head: no sub-type
    predictor = load_predictor(transformer_model_dir)
    with pytest.raises(ContextNotSupported, match="not trained to read parent posts"):
        predictor.predict([REPLY], contexts=[PARENT])
    with pytest.raises(ValueError, match="one per text"):
        predictor.predict([REPLY], contexts=[PARENT, PARENT])


# -- API ------------------------------------------------------------------------------------------------------
def test_api_contexts_and_subtypes(context_predictor, transformer_model_dir, linear_predictor):
    from serving.predictor import load_predictor

    with serve(context_predictor) as client:
        info = client.get("/v1/info").json()
        assert info["model"]["context"] is True and "incitement" in info["model"]["subtypes"]["extremist"]
        r = client.post("/v1/classify", json={"texts": [REPLY, "hello"], "contexts": [PARENT, None]})
        assert r.status_code == 200, r.text
        with_parent, plain = r.json()["results"]
        assert with_parent["subtype"]["name"] in L.SUBTYPES[with_parent["label"]]
        alone = client.post("/v1/classify", json={"texts": [REPLY, "hello"]}).json()["results"]
        # int8 activations are scaled per batch, so the parent in the batch moves its mate a little (0.0064 seen;
        # up to 0.008 on this tiny model, see above); exactness without a parent is checked on the torch weights
        assert alone[1]["scores"] == pytest.approx(plain["scores"], abs=2e-2)
        assert alone[0]["scores"] != with_parent["scores"]
        assert_error(client.post("/v1/classify", json={"texts": [REPLY], "contexts": [PARENT, PARENT]}), 422,
                     "contexts_mismatch", "one per text")
        assert_error(client.post("/v1/classify", json={"texts": [REPLY], "contexts": ["a\x00b"]}), 422,
                     "invalid_text", "contexts[0]")
        assert_error(client.post("/v1/classify", json={"texts": [REPLY], "contexts": [3]}), 422, "invalid_request")
        r = client.post("/v1/classify", json={"texts": [REPLY], "contexts": [PARENT], "explain": True})
        assert r.status_code == 200 and "evidence" in r.json()["results"][0]
    with serve(load_predictor(transformer_model_dir)) as client:
        assert_error(client.post("/v1/classify", json={"texts": [REPLY], "contexts": [PARENT]}), 422,
                     "context_not_supported", "without `contexts`")
        r = client.post("/v1/classify", json={"texts": [REPLY], "contexts": [None]})
        assert r.status_code == 200
    with serve(linear_predictor) as client:
        r = client.post("/v1/classify", json={"texts": [REPLY]})
        assert r.status_code == 200 and "subtype" not in r.json()["results"][0]


# -- batch and evaluation -------------------------------------------------------------------------------------
def test_batch_context_field_and_subtype_column(context_model_dir, transformer_model_dir, linear_model_dir,
                                                tmp_path):
    from serving.batch import BatchError, run_label_job

    src = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": REPLY, "parent": PARENT},
                                              {"id": 2, "text": REPLY, "parent": None},
                                              {"id": 3, "text": REPLY, "parent": ["not", "text"]}])
    summary = run_label_job(src, tmp_path / "out.jsonl", model=context_model_dir, context_field="parent",
                            progress=False)
    assert (summary.labelled, summary.errors) == (2, 1)
    out = read_jsonl(tmp_path / "out.jsonl")
    assert all(row["pred_subtype"] in L.SUBTYPES[row["pred_label"]] for row in out)
    assert out[0]["score_extremist"] != out[1]["score_extremist"]
    errors = read_jsonl(tmp_path / "out.jsonl.errors.jsonl")
    assert "'parent' is not a string" in errors[0]["error"]
    with pytest.raises(BatchError, match="does not read parent posts"):
        run_label_job(src, tmp_path / "o2.jsonl", model=transformer_model_dir, context_field="parent",
                      progress=False)
    run_label_job(src, tmp_path / "o3.jsonl", model=linear_model_dir, progress=False)
    assert all(row["pred_subtype"] is None for row in read_jsonl(tmp_path / "o3.jsonl"))


def test_evaluate_reports_context_and_subtypes(context_predictor, tmp_path):
    from training.evaluate import evaluate_files

    result = evaluate_files(context_predictor, [PAIRS], tmp_path / "eval", plots=False, context_field="context")
    d = result["datasets"]["context_pairs"]
    ctx = d["context"]
    assert ctx["all"]["n"] == 24 and ctx["ambiguous_alone"]["n"] == 16
    for part in ("all", "ambiguous_alone"):
        v = ctx[part]
        assert v["flips"] == v["flips_right"] + v["flips_wrong"] + v["flips_neither"]
        assert 0 <= v["accuracy_with_context"] <= 1
    assert "extremist->neutral" not in ctx["per_pattern"] and "extremist->counter_narrative" in ctx["per_pattern"]
    assert d["subtypes"]["n"] == 24 and 0 <= d["subtypes"]["accuracy"] <= 1
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "Reply context" in report and "Sub-types" in report
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["datasets"]["context_pairs"]["context"]["field"] == "context"


def test_parents_are_normalised_like_texts(context_predictor):
    """A parent with zero-width characters and a fancy letter form scores as its normalised form (as in training)."""
    from serving.text import normalize

    noisy = "These peo\u200bple are FILTH and should be driven out \u2014 every last one of them!!!"
    assert normalize(noisy) != noisy
    a = context_predictor.predict([REPLY], contexts=[noisy])[0].scores
    b = context_predictor.predict([REPLY], contexts=[normalize(noisy)])[0].scores
    assert a == b
