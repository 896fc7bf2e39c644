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


def fit(cfg, texts: list[str], label_ids: list[int], *, class_weighting: bool = True, seed: int = 13,
        sample_weight: list[float] | None = None) -> Pipeline:
    """Fit on normalised texts; classes are the label ids 0..n-1 so decision columns follow ``LABELS``.
    ``sample_weight``: per-row weights on top of the class weights (``train.real_weight``)."""
    pipe = build(cfg)
    y = np.asarray(label_ids)
    missing = sorted(set(range(len(L.LABELS))) - set(y.tolist()))
    if missing:
        raise ValueError(f"training data has no rows labelled {', '.join(L.ID2LABEL[i] for i in missing)}; "
                         "every label needs examples")
    pipe.set_params(clf__class_weight="balanced" if class_weighting else None, clf__random_state=seed)
    pipe.fit(texts, y, **({"clf__sample_weight": np.asarray(sample_weight, dtype=np.float64)}
                          if sample_weight is not None else {}))
    return pipe


def fit_subtypes(cfg, x, label_ids: list[int], subtypes: list[str | None], *, seed: int = 13
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Sub-type rows on the linear model's features ``x`` (the fitted pipeline's ``features`` step, or
    ``LinearArrays.features``; ``model.subtype_blend``): per label, a multinomial logistic regression over that
    label's sub-types on the rows of that label whose ``subtypes[i]`` is one of them. Returns coefficients (one row
    per ``labels.subtype_names()`` entry) and intercepts; a sub-type without training rows gets zero weights and an
    intercept of -30, so it is never chosen.

    The regression of each label is fitted on the feature columns its rows use (a third to a half of the 2^19
    hashed columns): a column that is zero in every fitted row has a zero gradient at every step, so its weight
    stays exactly 0 and the solution is the one over all columns (the same iterations; weights equal to ~1e-8), in
    a third of the time (122 s -> 44 s on the default corpus; ``tests/training/test_linear_blend.py``)."""
    names = L.subtype_names()
    coef = np.zeros((len(names), x.shape[1]))
    intercept = np.full(len(names), -30.0)
    for lid, label in enumerate(L.LABELS):
        rows = [i for i, (y, s) in enumerate(zip(label_ids, subtypes)) if y == lid and s in L.SUBTYPES[label]]
        classes = sorted({subtypes[i] for i in rows})
        if len(classes) < 2:
            continue
        xr, cols = active_columns(x[rows])
        clf = LogisticRegression(C=cfg.C, max_iter=2000, random_state=seed).fit(xr, [subtypes[i] for i in rows])
        w, b = clf.coef_, clf.intercept_
        if len(classes) == 2:  # scikit-learn gives one row for two classes: as softmax logits, [0, w]
            w, b = np.vstack([np.zeros_like(w), w]), np.concatenate([[0.0], b])
        for k, name in enumerate(clf.classes_):
            coef[names.index(name), cols], intercept[names.index(name)] = w[k], b[k]
    return coef, intercept


def active_columns(x):
    """``(x restricted to its columns with a stored entry, their indices)`` for a sparse matrix; a dense one, or a
    sparse one with no entry at all, is returned whole (``slice(None)``)."""
    from scipy import sparse

    if not sparse.issparse(x):
        return x, slice(None)
    x = sparse.csr_matrix(x)
    cols = np.unique(x.indices)
    return (x[:, cols], cols) if len(cols) else (x, slice(None))
