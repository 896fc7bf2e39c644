"""The linear baseline blended into a transformer's label logits (``model.linear_blend``), on a tiny real model:
what the folder holds, the formula the predictor serves, replies read with a parent, and every scoring path."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from serving import labels as L
from tests.helpers import MINI_CORPUS, ROOT, serve, tiny_config

PAIRS = ROOT / "tests" / "fixtures" / "context_pairs.jsonl"
PARENT = "These people are filth and should be driven out of our country, every last one of them."
TEXTS = ["Exactly, they all deserve it.", "The match was washed out by rain again in Lahore.",
         "Those who spread hate in the name of faith do not speak for us."]
WEIGHT = 0.4
SUB_WEIGHT = 0.5


@pytest.fixture(scope="module")
def blend_dir(tmp_path_factory):
    from training.pipeline import train

    out = tmp_path_factory.mktemp("models") / "blend"
    cfg = tiny_config(out, 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=4", "train.epochs=1",
                      "train.batch_size=8", "train.subtype_weight=0.5", "train.subtype_refit=false",
                      f"model.linear_blend={WEIGHT}", f"model.subtype_blend={SUB_WEIGHT}")
    cfg.data.train = [str(MINI_CORPUS), str(PAIRS)]
    return train(cfg, progress=False, log=lambda m: None)


def _manual(predictor, texts, parents):
    """softmax(((1 - w) z + w d) / T) by hand: z the window logits, d the linear model's decision values."""
    from serving.predictor import softmax
    from serving.text import normalize

    norm = [normalize(t) for t in texts]
    ctx = [None if p is None else normalize(p) for p in parents]
    windows, owner = predictor.windows(norm, ctx)
    assert owner == list(range(len(texts)))  # short texts: one window each
    z = predictor.score_windows(windows)[:, :len(L.LABELS)]
    d = np.asarray(predictor.blend.decision_function(norm))
    mixed = np.where(np.array([p is None for p in parents])[:, None], (1 - WEIGHT) * z + WEIGHT * d, z)
    return softmax(mixed, predictor.meta.temperature), softmax(z, predictor.meta.temperature)


def test_the_folder_holds_the_linear_model_and_its_weight(blend_dir):
    from serving.artifact import load_meta

    meta = load_meta(blend_dir)
    assert (blend_dir / "linear_blend.npz").is_file() and "linear_blend.npz" in meta.files
    assert meta.linear_blend["file"] == "linear_blend.npz" and meta.linear_blend["weight"] == WEIGHT
    # replies read with their parent are not the linear model's to learn (it reads no parent)
    assert 0 < meta.linear_blend["rows"] < meta.data["rows"]["train"]
    assert "linear TF-IDF baseline" in (blend_dir / "README.md").read_text()


def test_served_scores_are_the_blend_and_replies_with_a_parent_keep_the_transformer(blend_dir):
    from serving.predictor import load_predictor

    predictor = load_predictor(blend_dir, "torch")
    parents = [PARENT, None, None]
    blended, alone = _manual(predictor, TEXTS, parents)
    got = predictor.predict_proba(TEXTS, contexts=parents)
    np.testing.assert_allclose(got[1:], blended[1:], atol=1e-6)
    np.testing.assert_allclose(got[0], alone[0], atol=1e-6)  # with a parent: the transformer's own scores
    assert np.abs(blended[1:] - alone[1:]).max() > 1e-3  # the blend moved the scores of texts without a parent
    without = predictor.predict_proba(TEXTS)
    np.testing.assert_allclose(without, _manual(predictor, TEXTS, [None] * 3)[0], atol=1e-6)


def test_the_service_and_batch_paths_score_as_predict_does(blend_dir, tmp_path):
    from serving.batch import run_label_job
    from serving.predictor import load_predictor

    predictor = load_predictor(blend_dir)
    parents = [PARENT, None, None]
    expected = predictor.predict(TEXTS, contexts=parents)
    with serve(predictor) as client:
        info = client.get("/v1/info").json()["model"]
        assert info["linear_blend"] == WEIGHT and info["subtype_blend"] == SUB_WEIGHT
        r = client.post("/v1/classify", json={"texts": TEXTS, "contexts": parents})
        assert r.status_code == 200, r.text
    for res, exp in zip(r.json()["results"], expected):
        for name in L.LABELS:  # int8 activations are scaled per batch: the service batches differently
            assert abs(res["scores"][name] - exp.scores[name]) < 0.01
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": t, "context": p}) + "\n"
                           for i, (t, p) in enumerate(zip(TEXTS, parents))))
    run_label_job(src, tmp_path / "out.jsonl", model=blend_dir, progress=False, context_field="context")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["pred_label"] for row in rows] == [p.label for p in expected]


def test_the_batcher_combines_texts_finished_together_in_one_call_as_it_would_one_by_one(blend_dir):
    """The service finishes several texts per model call and blends them in one call (the linear model scores a
    batch for a tenth of the per-text cost): each result is what that text alone gets, parent or not."""
    from serving.api.batcher import WindowWork
    from serving.predictor import Reply, load_predictor

    predictor = load_predictor(blend_dir, "torch")
    work = WindowWork(predictor)
    items = [Reply(TEXTS[0], PARENT), TEXTS[1], TEXTS[2], Reply(TEXTS[1], PARENT)]
    plan = work.split(items)
    keys = [key for key, _ in plan]
    outputs = [list(work.score([w for w, _ in units])) for _, units in plan]
    together = work.combine_many(keys, outputs)
    alone = [work.combine(key, out) for key, out in zip(keys, outputs)]
    assert [k[1] for k in keys] == [True, False, False, True]
    for a, b in zip(together, alone):
        assert a.label == b.label
        for name in L.LABELS:
            assert a.scores[name] == pytest.approx(b.scores[name], abs=1e-9)
    assert together[1].scores != together[3].scores  # the same text, blended alone and kept as read with a parent
    assert work.combine_many([], []) == []


def test_a_blend_file_outside_the_folder_or_a_changed_one_is_refused(blend_dir, tmp_path):
    from serving.artifact import ModelFolderError, load_meta
    from serving.predictor import load_predictor

    bad = tmp_path / "outside"
    shutil.copytree(blend_dir, bad)
    meta = json.loads((bad / "model_meta.json").read_text())
    meta["linear_blend"]["file"] = "../linear_blend.npz"
    (bad / "model_meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFolderError, match="linear_blend.file"):
        load_meta(bad)
    changed = tmp_path / "changed"
    shutil.copytree(blend_dir, changed)
    with open(changed / "linear_blend.npz", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelFolderError):
        load_predictor(changed)


def test_the_weight_is_part_of_the_model_identity(blend_dir):
    from serving.artifact import read_meta

    meta = read_meta(blend_dir)
    other = meta.model_copy(update={"linear_blend": {**meta.linear_blend, "weight": 0.1}})
    assert meta.sha256() != other.sha256()


def test_the_served_arrays_score_exactly_as_the_scikit_learn_pipeline():
    """The blend is served from its arrays (numpy, scipy.sparse, mmh3), not from scikit-learn: same numbers."""
    from serving.linear_arrays import LinearArrays
    from serving.text import normalize
    from training.baseline import fit
    from training.config import load_config
    from training.data import load_many

    rows = load_many([MINI_CORPUS])
    cfg = load_config().linear
    pipe = fit(cfg, [normalize(r.text) for r in rows], [r.label_id for r in rows], sample_weight=[1.0] * len(rows))
    texts = [normalize(r.text) for r in rows[:60]] + [
        "", "a", "ab  cd\t\te", "😂😂 ok 🔥", "یہ لوگ ہمارے دشمن نہیں ہیں", "kafir   kaafir k4f1r", "x " * 2000]
    arrays = LinearArrays.from_pipeline(pipe)
    np.testing.assert_allclose(arrays.decision_function(texts), pipe.decision_function(texts), atol=1e-10)
    assert arrays.decision_function([]).shape == (0, len(L.LABELS))
    # The feature rows themselves (what the sub-type regressions are fitted on), and sub-type decision values that are
    # exactly those rows times the stored float16 weights, summed in float64.
    x = pipe.named_steps["features"].transform(texts)
    assert abs(arrays.features(texts) - x).max() < 1e-12
    rng = np.random.default_rng(0)
    sub_coef = rng.normal(size=(5, x.shape[1])).astype(np.float16)
    with_subs = arrays.with_subtypes(sub_coef, np.arange(5.0))
    labels, subs = with_subs.decisions(texts)
    np.testing.assert_allclose(labels, pipe.decision_function(texts), atol=1e-10)
    np.testing.assert_allclose(subs, x @ sub_coef.astype(np.float64).T + np.arange(5.0), atol=1e-9)
    assert with_subs.decisions([])[1].shape == (0, 5)


def test_serving_a_blended_folder_imports_neither_scikit_learn_nor_torch(blend_dir):
    """Importing them cost the service ~390 MB of resident memory (scikit-learn pulls in pandas, skops torch)."""
    import subprocess
    import sys

    code = ("import sys; from serving.predictor import load_predictor; "
            f"p = load_predictor({str(blend_dir)!r}, 'onnx-int8'); p.predict(['hello there', 'they are vermin']); "
            "print(sorted(m for m in ('sklearn', 'torch', 'pandas', 'skops') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_arrays_that_are_not_a_blend_are_a_model_folder_error(tmp_path):
    from serving.artifact import ModelFolderError
    from serving.linear_arrays import LinearArrays

    (tmp_path / "text.npz").write_text("not an archive")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    for name in ("text.npz", "other.npz", "missing.npz"):
        with pytest.raises(ModelFolderError, match="retrain"):
            LinearArrays.load(tmp_path / name)


def _sub_columns(predictor, texts, parents):
    """The transformer's own sub-type logits and the linear model's sub-type decision values, one window a text."""
    from serving.text import normalize

    norm = [normalize(t) for t in texts]
    windows, owner = predictor.windows(norm, [None if p is None else normalize(p) for p in parents])
    assert owner == list(range(len(texts)))
    return predictor.score_windows(windows)[:, len(L.LABELS):], predictor.blend.decisions(norm)[1]


def test_the_linear_sub_type_rows_are_blended_into_texts_without_a_parent(blend_dir):
    from serving.artifact import load_meta
    from serving.predictor import load_predictor

    meta = load_meta(blend_dir)
    assert meta.linear_blend["subtype_weight"] == SUB_WEIGHT and meta.linear_blend["subtype_rows"] > 0
    predictor = load_predictor(blend_dir, "torch")
    sub = predictor.blend.sub_coef
    assert sub is not None and sub.dtype == np.float16 and sub.shape[0] == len(L.subtype_names())
    parents = [PARENT, None, None]
    z, d = _sub_columns(predictor, TEXTS, parents)
    got = predictor.scores(TEXTS, contexts=parents)[1]
    np.testing.assert_allclose(got[1:], (1 - SUB_WEIGHT) * z[1:] + SUB_WEIGHT * d[1:], atol=1e-5)
    np.testing.assert_allclose(got[0], z[0], atol=1e-5)  # with a parent: the transformer's own sub-types
    assert np.abs(got[1:] - z[1:]).max() > 1e-3
    # a sub-type the training rows never taught (the tiny corpus lacks some) gets no weights and is never chosen
    untaught = predictor.blend.sub_intercept <= -30
    assert untaught.any() and not untaught.all()
    assert not predictor.blend.sub_coef[untaught].any() and (d[:, untaught] == -30).all()


def test_a_trained_folder_gets_the_same_sub_type_rows_afterwards(blend_dir, tmp_path):
    """``add_subtype_blend`` rebuilds the training rows as ``train`` did (files, rewrites, replies read alone), so
    a folder trained without the sub-type blend gets exactly the rows a training with it writes; labels unchanged."""
    from serving.artifact import load_meta
    from serving.linear_arrays import LinearArrays
    from serving.predictor import load_predictor
    from training.pipeline import add_subtype_blend

    copy = tmp_path / "copy"
    shutil.copytree(blend_dir, copy)
    meta = json.loads((copy / "model_meta.json").read_text())
    before = load_predictor(copy, "torch").predict_proba(TEXTS)
    add_subtype_blend(copy, 0.3, log=lambda m: None)
    assert load_meta(copy).linear_blend["subtype_weight"] == 0.3  # files re-hashed: it loads, verified
    np.testing.assert_array_equal(LinearArrays.load(copy / "linear_blend.npz").sub_coef,
                                  LinearArrays.load(blend_dir / "linear_blend.npz").sub_coef)
    np.testing.assert_allclose(load_predictor(copy, "torch").predict_proba(TEXTS), before, atol=1e-9)
    assert load_meta(copy).sha256() != load_meta(blend_dir).sha256()
    card = (copy / "README.md").read_text()
    assert load_meta(copy).sha256() in card and "0.3 share of their sub-type logits" in card
    with pytest.raises(ValueError, match="between 0 and 1"):
        add_subtype_blend(copy, 1.0, log=lambda m: None)
    meta["linear_blend"]["subtype_weight"] = 2
    (copy / "model_meta.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="subtype_weight"):
        load_meta(copy)


def test_the_sub_type_rows_fitted_on_used_columns_are_the_fit_over_all_columns():
    """``fit_subtypes`` fits each label's regression on the feature columns its rows use (for speed); the weights
    are the plain fit's over all 2^k hashed columns, and a column no fitted row uses keeps weight 0."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from training.baseline import active_columns, build, fit_subtypes
    from training.config import load_config

    rows = [json.loads(line) for line in MINI_CORPUS.read_text().splitlines() if line.strip()]
    texts, labels = [r["text"] for r in rows], [L.LABEL2ID[r["label"]] for r in rows]
    subs = [L.subtype_of(r["label"], r.get("kind")) for r in rows]
    cfg = load_config().linear
    x = build(cfg).named_steps["features"].fit_transform(texts)
    coef, intercept = fit_subtypes(cfg, x, labels, subs, seed=3)
    names, taught = L.subtype_names(), 0
    for lid, label in enumerate(L.LABELS):
        idx = [i for i, s in enumerate(subs) if labels[i] == lid and s in L.SUBTYPES[label]]
        if len({subs[i] for i in idx}) < 3:  # two classes are stored as [0, w]; three or more row by row
            continue
        plain = LogisticRegression(C=cfg.C, max_iter=2000, random_state=3).fit(x[idx], [subs[i] for i in idx])
        for k, name in enumerate(plain.classes_):
            np.testing.assert_allclose(coef[names.index(name)], plain.coef_[k], atol=1e-6)
            np.testing.assert_allclose(intercept[names.index(name)], plain.intercept_[k], atol=1e-6)
            taught += 1
        unused = np.setdiff1d(np.arange(x.shape[1]), active_columns(x[idx])[1])
        assert len(unused) > x.shape[1] // 2 and not coef[[names.index(n) for n in plain.classes_]][:, unused].any()
    assert taught >= 3  # the corpus teaches at least one label's sub-types, so the comparison ran
    dense, cols = active_columns(x[:3].toarray())
    assert cols == slice(None) and dense.shape == (3, x.shape[1])
    empty, cols = active_columns(sparse.csr_matrix((3, x.shape[1])))  # no entry: whole, not a matrix of no columns
    assert cols == slice(None) and empty.shape == (3, x.shape[1])
