"""The blended linear baseline (``model.linear_blend``) as plain arrays, scored without scikit-learn.

The training pipeline fits ``training.baseline``'s TF-IDF logistic regression (hashed word and ``char_wb`` n-grams,
sublinear tf, idf, l2 per branch) and saves its numbers here as one ``.npz`` (idf per branch, coefficients,
intercept, and the analyser settings). The service then scores it with numpy and ``mmh3`` (the same MurmurHash3 as
scikit-learn's ``HashingVectorizer``), each text as its few hundred hashed feature indices and values: importing
scikit-learn and skops to serve it cost ~390 MB of resident memory and ~3 s of start-up (scikit-learn pulls in
pandas; skops pulls in torch). ``decision_function`` equals the scikit-learn pipeline's to float precision
(``tests/training/test_linear_blend.py``).

Optionally the file also holds **sub-type rows** (``sub_coef``, ``sub_intercept``; ``model.subtype_blend``): per label,
a logistic regression over that label's sub-types on the same features, stacked in ``labels.subtype_names`` order
and stored in float16 (21 rows of 2^19 features: 22 MB instead of 88), so ``decisions`` gives the label and sub-type
decision values from one feature pass.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

_WHITE = re.compile(r"\s\s+")  # scikit-learn's char_wb preprocessing


class LinearArrays:
    def __init__(self, word_idf: np.ndarray, char_idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 word_ngrams: tuple[int, int], char_ngrams: tuple[int, int], token_pattern: str,
                 sub_coef: np.ndarray | None = None, sub_intercept: np.ndarray | None = None):
        self.word_idf, self.char_idf = word_idf, char_idf
        self.coef, self.intercept = coef, intercept
        self.sub_intercept = sub_intercept
        # Held once, as float32 features x sub-types (what a sparse row block is multiplied by): 44 MB in memory;
        # ``sub_coef`` gives the stored float16 rows back.
        self._sub_t = (np.ascontiguousarray(np.asarray(sub_coef, dtype=np.float32).T) if sub_coef is not None
                       else None)
        self.word_ngrams, self.char_ngrams = tuple(int(v) for v in word_ngrams), tuple(int(v) for v in char_ngrams)
        self.token_pattern = token_pattern
        self._token = re.compile(token_pattern)

    # -- from and to the training side ------------------------------------------------------------------------------
    @classmethod
    def from_pipeline(cls, pipe) -> "LinearArrays":
        """The numbers of a fitted ``training.baseline`` pipeline (word branch, then char branch)."""
        branches = dict(pipe.named_steps["features"].transformer_list)
        word, char = branches["word"], branches["char"]
        hw, hc = word.named_steps["hash"], char.named_steps["hash"]
        for h in (hw, hc):
            if h.alternate_sign or h.norm is not None or not h.lowercase or h.n_features != hw.n_features:
                raise ValueError("the linear blend expects unsigned, unnormalised, lowercased hashing branches of one "
                                 "size (training/baseline.py)")
        for t in (word.named_steps["tfidf"], char.named_steps["tfidf"]):
            if not (t.sublinear_tf and t.use_idf and t.norm == "l2"):
                raise ValueError("the linear blend expects sublinear tf, idf and l2 norm (training/baseline.py)")
        clf = pipe.named_steps["clf"]
        return cls(word.named_steps["tfidf"].idf_.astype(np.float64), char.named_steps["tfidf"].idf_.astype(np.float64),
                   np.asarray(clf.coef_, dtype=np.float64), np.asarray(clf.intercept_, dtype=np.float64),
                   hw.ngram_range, hc.ngram_range, hw.token_pattern)

    @property
    def sub_coef(self) -> np.ndarray | None:
        """The sub-type rows as stored (float16, one row per sub-type), or None."""
        return None if self._sub_t is None else self._sub_t.T.astype(np.float16)

    def with_subtypes(self, sub_coef: np.ndarray, sub_intercept: np.ndarray) -> "LinearArrays":
        """A copy that also holds sub-type rows (``training.baseline.fit_subtypes``), weights in float16."""
        return LinearArrays(self.word_idf, self.char_idf, self.coef, self.intercept, self.word_ngrams,
                            self.char_ngrams, self.token_pattern, np.asarray(sub_coef, dtype=np.float16),
                            np.asarray(sub_intercept, dtype=np.float64))

    def save(self, path: Path) -> None:
        subs = ({"sub_coef": self.sub_coef, "sub_intercept": self.sub_intercept} if self._sub_t is not None else {})
        with open(path, "wb") as fh:  # a file object: np.savez would otherwise append ".npz" to the name
            np.savez(fh, word_idf=self.word_idf, char_idf=self.char_idf, coef=self.coef, intercept=self.intercept,
                     word_ngrams=np.asarray(self.word_ngrams), char_ngrams=np.asarray(self.char_ngrams),
                     token_pattern=np.asarray(self.token_pattern), **subs)

    @classmethod
    def load(cls, path: Path) -> "LinearArrays":
        from serving.artifact import ModelFolderError

        try:
            with np.load(path, allow_pickle=False) as z:
                subs = (z["sub_coef"], z["sub_intercept"]) if "sub_coef" in z.files else (None, None)
                return cls(z["word_idf"], z["char_idf"], z["coef"], z["intercept"], tuple(z["word_ngrams"]),
                           tuple(z["char_ngrams"]), str(z["token_pattern"]), *subs)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelFolderError(f"{path} is not the arrays of a blended linear model ({exc}); retrain the "
                                   "folder with this version of Counterpoint.") from exc

    # -- scoring ----------------------------------------------------------------------------------------------------
    def _word_grams(self, text: str) -> list[str]:
        tokens = self._token.findall(text)
        lo, hi = self.word_ngrams
        out = list(tokens) if lo == 1 else []
        for n in range(max(lo, 2), min(hi, len(tokens)) + 1):
            out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return out

    def _char_grams(self, text: str) -> list[str]:
        lo, hi = self.char_ngrams
        out = []
        for word in _WHITE.sub(" ", text).split():
            w = f" {word} "
            size = len(w)
            for n in range(lo, hi + 1):
                offset = 0
                out.append(w[offset:offset + n])
                while offset + n < size:
                    offset += 1
                    out.append(w[offset:offset + n])
                if offset == 0:  # the word is shorter than n: one n-gram (the whole word) is enough
                    break
        return out

    def _branch_row(self, grams: list[str], idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One text's TF-IDF row in one branch: sorted feature indices and their l2-normalised values."""
        import mmh3

        size = len(idf)
        if not grams:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        hashed = np.fromiter((mmh3.hash(g, 0) for g in grams), dtype=np.int64, count=len(grams))
        idx, counts = np.unique(np.abs(hashed) % size, return_counts=True)
        values = (np.log(counts) + 1.0) * idf[idx]
        norm = np.sqrt(values @ values)
        return idx, values / norm if norm else values

    def rows(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text, its TF-IDF row as (sorted indices, values): word branch, then char branch (offset by the word
        branch's size), as ``features`` lays them out."""
        size = len(self.word_idf)
        out = []
        for text in texts:
            low = text.lower()
            wi, wv = self._branch_row(self._word_grams(low), self.word_idf)
            ci, cv = self._branch_row(self._char_grams(low), self.char_idf)
            out.append((np.concatenate([wi, ci + size]), np.concatenate([wv, cv])))
        return out

    def features(self, texts: Sequence[str]):
        """The TF-IDF rows (scipy CSR) of ``texts``: word branch, then char branch."""
        from scipy import sparse

        rows = self.rows(texts)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(i) for i, _ in rows])
        cat = (lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype=dtype))
        return sparse.csr_matrix((cat([v for _, v in rows], np.float64), cat([i for i, _ in rows], np.int64), indptr),
                                 shape=(len(rows), len(self.word_idf) + len(self.char_idf)))

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Per text, the logistic regression's decision value for each label (``LABELS`` order)."""
        return self.decisions(texts, subtypes=False)[0]

    def decisions(self, texts: Sequence[str], *, subtypes: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Label decision values and, where the file holds sub-type rows (and ``subtypes``), sub-type decision values
        (the columns of ``labels.subtype_names``), from one pass over the features.

        Row by row, each a gather of the weights of the text's few hundred features: building scipy matrices cost
        ~1 ms a call, and a sparse product with the float32 sub-type rows made scipy convert all 2^19 x 21 of them to
        float64 on every call (16 ms, whatever the batch). Sums in float64 as before."""
        subs = subtypes and self._sub_t is not None
        labels = np.zeros((len(texts), len(self.intercept)))
        sub = np.zeros((len(texts), len(self.sub_intercept))) if subs else None
        for r, (idx, values) in enumerate(self.rows(texts)):
            labels[r] = self.coef[:, idx] @ values
            if subs:
                sub[r] = values @ self._sub_t[idx]
        return labels + self.intercept, (sub + self.sub_intercept if subs else None)
