"""The linear baseline: TF-IDF over word and character n-grams, multinomial logistic regression.

Character n-grams (``char_wb``) carry Urdu script and Roman Urdu spelling variants that a word vocabulary misses.
It trains in seconds, runs at well over 1,000 posts/s on a laptop CPU, and is the bar the transformer must beat.
Saved with skops (no pickle) as ``model.skops``.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from serving import labels as L


def build(cfg) -> Pipeline:
    """A fresh pipeline from the ``[linear]`` config section.

    Hashed features (no vocabulary) keep the saved model small and quick to write and load: a skops file with a
    fitted ``TfidfVectorizer`` vocabulary of ~100k terms took 95 s to write and was ~100 MB; hashed, it holds
    only the idf weights and coefficients as arrays.
    """
    half = max(cfg.max_features // 2, 1 << 10)
    n_features = 1 << (half - 1).bit_length()  # a power of two, as the hashing trick likes

    def branch(**kwargs) -> Pipeline:
        return Pipeline([("hash", HashingVectorizer(n_features=n_features, alternate_sign=False, norm=None,
                                                    lowercase=True, **kwargs)),
                         ("tfidf", TfidfTransformer(sublinear_tf=True))])

    features = FeatureUnion([
        ("word", branch(analyzer="word", ngram_range=tuple(cfg.word_ngrams), token_pattern=r"(?u)\b\w+\b")),
        ("char", branch(analyzer="char_wb", ngram_range=tuple(cfg.char_ngrams))),
    ])
    return Pipeline([("features", features), ("clf", LogisticRegression(C=cfg.C, max_iter=2000))])


def _prepared(cfg, label_ids: list[int], class_weighting: bool, seed: int) -> Pipeline:
    pipe = build(cfg)
    missing = sorted(set(range(len(L.LABELS))) - set(np.asarray(label_ids).tolist()))
    if missing:
        raise ValueError(f"training data has no rows labelled {', '.join(L.ID2LABEL[i] for i in missing)}; "
                         "every label needs examples")
    return pipe.set_params(clf__class_weight="balanced" if class_weighting else None, clf__random_state=seed)


def _weights(sample_weight: list[float] | None) -> dict:
    return {} if sample_weight is None else {"sample_weight": np.asarray(sample_weight, dtype=np.float64)}


def fit(cfg, texts: list[str], label_ids: list[int], *, class_weighting: bool = True, seed: int = 13,
        sample_weight: list[float] | None = None) -> Pipeline:
    """Fit on normalised texts; classes are the label ids 0..n-1 so decision columns follow ``LABELS``.
    ``sample_weight``: per-row weights on top of the class weights (``train.real_weight``)."""
    pipe = _prepared(cfg, label_ids, class_weighting, seed)
    pipe.fit(texts, np.asarray(label_ids), **{f"clf__{k}": v for k, v in _weights(sample_weight).items()})
    return pipe


def _subtype_problems(label_ids: list[int], subtypes: list[str | None]) -> list[tuple[list[int], list[str]]]:
    """Per label with at least two sub-types among its rows: (rows, their sub-types)."""
    out = []
    for lid, label in enumerate(L.LABELS):
        rows = [i for i, (y, s) in enumerate(zip(label_ids, subtypes)) if y == lid and s in L.SUBTYPES[label]]
        if len({subtypes[i] for i in rows}) >= 2:
            out.append((rows, [subtypes[i] for i in rows]))
    return out


def _subtype_rows(fitted: list[LogisticRegression], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    names = L.subtype_names()
    coef = np.zeros((len(names), n_features))
    intercept = np.full(len(names), -30.0)
    for clf in fitted:
        w, b = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # scikit-learn gives one row for two classes: as softmax logits, [0, w]
            w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
        for k, name in enumerate(clf.classes_):
            coef[names.index(name)], intercept[names.index(name)] = w[k], b[k]
    return coef, intercept


def _fitted(clf: LogisticRegression, x, y, weights: dict) -> LogisticRegression:
    return clf.fit(x, y, **weights)


def fit_side_by_side(tasks: list[tuple], n_jobs: int) -> list[LogisticRegression]:
    """``(classifier, x, y, weights)`` fitted in up to ``n_jobs`` worker processes (largest first; results in the
    order given). Each regression is single-threaded (lbfgs), so on 2 cores two run at once."""
    if n_jobs <= 1 or len(tasks) <= 1:
        return [_fitted(*t) for t in tasks]
    from joblib import Parallel, delayed, parallel_config
    from threadpoolctl import threadpool_info

    # Each worker gets as many BLAS threads as this process has (joblib would give it cores / workers): lbfgs's
    # vector sums then add up in the same order, and the regressions come out exactly as one after the other.
    blas = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i][1].shape[0] * len(set(tasks[i][2])))
    with parallel_config(backend="loky", inner_max_num_threads=blas):
        done = Parallel(n_jobs=min(n_jobs, len(tasks)))(delayed(_fitted)(*tasks[i]) for i in order)
    out = [None] * len(tasks)
    for i, clf in zip(order, done):
        out[i] = clf
    return out


def fit_subtypes(cfg, x, label_ids: list[int], subtypes: list[str | None], *, seed: int = 13, n_jobs: int = 1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Sub-type rows on the linear model's features ``x`` (the fitted pipeline's ``features`` step, or
    ``LinearArrays.features``; ``model.subtype_blend``): per label, a multinomial logistic regression over that
    label's sub-types on the rows of that label whose ``subtypes[i]`` is one of them. Returns coefficients (one row
    per ``labels.subtype_names()`` entry) and intercepts; a sub-type without training rows gets zero weights and an
    intercept of -30, so it is never chosen. ``n_jobs``: regressions fitted side by side in worker processes."""
    tasks = [(LogisticRegression(C=cfg.C, max_iter=2000, random_state=seed), x[rows], ys, {})
             for rows, ys in _subtype_problems(label_ids, subtypes)]
    return _subtype_rows(fit_side_by_side(tasks, n_jobs), x.shape[1])


def fit_with_subtypes(cfg, texts: list[str], label_ids: list[int], subtypes: list[str | None], *,
                      class_weighting: bool = True, seed: int = 13, sample_weight: list[float] | None = None,
                      n_jobs: int = 1) -> tuple[Pipeline, np.ndarray, np.ndarray]:
    """``fit`` and ``fit_subtypes`` on the same features, computed once, with the label regression and the
    sub-type regressions fitted side by side in ``n_jobs`` worker processes (the same fits as one after the other:
    most of the linear blend's training time, issue 13). Returns the fitted pipeline, sub-type coefficients and
    intercepts."""
    from serving.linear_arrays import LinearArrays

    pipe = _prepared(cfg, label_ids, class_weighting, seed)
    y = np.asarray(label_ids)
    x = pipe.named_steps["features"].fit_transform(texts, y)
    # The sub-type regressions read the rows as served (``LinearArrays.features``, equal to ``x`` within 1e-15), as
    # ``fit_subtypes`` does for ``training.pipeline.add_subtype_blend``: both give the same rows.
    xs = LinearArrays.from_pipeline(pipe, classifier=False).features(texts)
    tasks = [(pipe.named_steps["clf"], x, y, _weights(sample_weight))]
    tasks += [(LogisticRegression(C=cfg.C, max_iter=2000, random_state=seed), xs[rows], ys, {})
              for rows, ys in _subtype_problems(label_ids, subtypes)]
    fitted = fit_side_by_side(tasks, n_jobs)
    pipe.steps[-1] = ("clf", fitted[0])
    coef, intercept = _subtype_rows(fitted[1:], x.shape[1])
    return pipe, coef, intercept
