"""Predictors: the one way a model folder turns texts into labels, used by the service, batch jobs and evaluation.

Every backend normalises with ``serving.text.normalize``, produces raw logits, divides them by the folder's
calibrated temperature, and applies the folder's thresholds through ``decide``. Backends:

- ``onnx-int8`` (default for transformer folders): ONNX Runtime, dynamically quantised int8 graph.
- ``onnx``: ONNX Runtime fp32.
- ``torch``: the Hugging Face model in PyTorch (needs torch + transformers installed).
- ``torch-bf16``: the same model with its weights and matrix products in bfloat16 (logits in float32), for CPUs
  with native bfloat16 arithmetic (AVX512-BF16 or AMX, as oneDNN reports); refused elsewhere, where it would be
  slower than float32.
- ``linear``: the TF-IDF + logistic-regression baseline (skops file).

Long texts (transformers): the token sequence is split into overlapping windows of ``max_length`` tokens
(``window_stride`` apart) and the windows' calibrated probabilities are combined by the folder's
``window_aggregation`` (``aggregate_windows``): ``max`` (the default: the scores of the *most extreme window*, the
one with the highest extremist probability, so a call to violence buried in a long post is not averaged away),
``noisy_or`` or ``topk_mean``. ``compare_aggregations`` in ``training/long_text.py`` measures them.

Reply context (issue 15): a folder whose meta says ``context: true`` reads an optional parent post per text. The
window is ``[CLS] parent [SEP] reply [SEP]``: the reply keeps the tokens it needs and the parent gets the rest (at
least ``CONTEXT_MIN_TOKENS`` when the reply is long; the parent's first tokens are kept), so the parent is truncated
first. A text without a parent is encoded exactly as by a model without context.

Sub-types (issue 15): a folder whose meta has ``subtypes`` has a graph with one more output column per sub-type after
the three label columns; a text's sub-type is the best sub-type of its decided label, read from its deciding window.

Int8 note: dynamic quantisation picks activation scales per batch, so a text's scores can move slightly (about
1e-3) with its batch mates; fp32 and torch do not have this property.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol, Sequence

import numpy as np

from serving import labels as L
from serving.artifact import ModelFolderError, ModelMeta, inside_folder, load_meta
from serving.profiles import Profile
from serving.profiles import resolve as resolve_profile
from serving.text import detect_language, normalize

BACKENDS = ("auto", "onnx-int8", "onnx", "torch", "torch-bf16", "linear")


class Abandoned(RuntimeError):
    """Everyone waiting for this model call has gone (timed out, disconnected): the rest of it was skipped."""


_stop = threading.local()


@contextmanager
def stop_when(check):
    """Within this block, on this thread, a transformer predictor checks ``check()`` between model chunks and raises
    ``Abandoned`` once it is true. The service's batcher uses it so that a long text whose caller gave up stops
    costing model time after the current chunk, not after all its windows."""
    previous = getattr(_stop, "check", None)
    _stop.check = check
    try:
        yield
    finally:
        _stop.check = previous


def _should_stop() -> bool:
    check = getattr(_stop, "check", None)
    return bool(check is not None and check())


class Reply(NamedTuple):
    """A text with its parent post, as queued by the service."""

    text: str
    context: str | None


class ContextNotSupported(ValueError):
    """Parent posts were given to a model that was not trained to read them."""


#: Tokens a parent post keeps at least when the reply is long (the reply is then read in shorter windows).
CONTEXT_MIN_TOKENS = 32


def context_tokens(n_context: int, n_text: int, span: int) -> int:
    """How many of a parent's ``n_context`` tokens go in front of a reply of ``n_text`` tokens, in a window of
    ``span`` tokens without the [CLS] and final [SEP] (one more [SEP] separates parent and reply)."""
    if n_context <= 0:
        return 0
    room = span - 1 - n_text
    return max(0, min(n_context, max(room, min(CONTEXT_MIN_TOKENS, span // 2))))


def encode_first_window(ids: Sequence[int], context_ids: Sequence[int] | None, max_length: int, cls_id: int,
                        sep_id: int) -> list[int]:
    """The first window of a text (with its parent's tokens, when it has one): what training reads."""
    span = max_length - 2
    if not context_ids:
        return [cls_id, *ids[:span], sep_id]
    c = context_tokens(len(context_ids), len(ids), span)
    return [cls_id, *context_ids[:c], sep_id, *ids[:span - 1 - c], sep_id]


def pad_windows(windows: Sequence[Sequence[int]], pad_id: int, multiple: int = 1,
                limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``input_ids`` and ``attention_mask`` of token-id windows, right-padded to the longest, rounded up to a
    ``multiple`` of tokens (at most ``limit``, and never below the longest window)."""
    width = max(len(w) for w in windows)
    if multiple > 1:
        width = max(width, min(-(-width // multiple) * multiple, limit or width))
    ids = np.full((len(windows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(windows), width), dtype=np.int64)
    for row, w in enumerate(windows):
        ids[row, :len(w)] = w
        mask[row, :len(w)] = 1
    return ids, mask


def subtype_choice(sub_logits: np.ndarray | None, label: str, taxonomy: dict | None) -> dict | None:
    """``{"name", "score"}``: the best sub-type of ``label`` (softmax over that label's sub-types only)."""
    if sub_logits is None or not taxonomy:
        return None
    names = L.subtype_names(taxonomy)
    own = [i for i, name in enumerate(names) if name in taxonomy.get(label, ())]
    if not own:
        return None
    p = softmax(np.asarray(sub_logits, dtype=np.float64)[own])
    best = int(p.argmax())
    return {"name": names[own[best]], "score": round(float(p[best]), 6)}


AGGREGATIONS = ("max", "noisy_or", "topk_mean")
#: Windows averaged by ``topk_mean``.
TOPK = 2


def aggregate_windows(probs: np.ndarray, owner: Sequence[int], n_texts: int, method: str = "max",
                      k: int = TOPK) -> np.ndarray:
    """One probability row per text from its windows' rows (``owner[w]``: the text of window ``w``).

    - ``max``: the row of the window with the highest extremist probability.
    - ``noisy_or``: p(extremist) = 1 - prod(1 - p_w(extremist)) (any window may be the extremist one); the rest of
      the mass is shared between the other labels as in the mean of the windows.
    - ``topk_mean``: the mean row of the ``k`` windows with the highest extremist probability (one extreme window
      in a long text counts, one noisy window among many counts less).
    A text with one window gets that window's row under every method.
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown window aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}")
    probs = np.asarray(probs, dtype=np.float64)
    owner_arr = np.asarray(owner)
    if len(owner_arr) == n_texts:  # no long texts: windows are in text order
        return probs
    e = L.LABEL2ID[L.EXTREMIST]
    out = np.zeros((n_texts, probs.shape[1]))
    for i in range(n_texts):
        rows = probs[owner_arr == i]
        if len(rows) == 1 or method == "max":
            out[i] = rows[rows[:, e].argmax()]
        elif method == "topk_mean":
            top = np.argsort(-rows[:, e], kind="stable")[:k]
            out[i] = rows[top].mean(axis=0)
        else:
            p_e = 1.0 - np.prod(1.0 - rows[:, e])
            rest = rows.mean(axis=0)
            others = rest.sum() - rest[e]
            out[i] = rest * ((1.0 - p_e) / others if others > 0 else 0.0)
            out[i, e] = p_e
    return out


def deciding_subtypes(subs: np.ndarray | None, probs: np.ndarray, owner: Sequence[int],
                      n_texts: int) -> np.ndarray | None:
    """Each text's sub-type logits, from its deciding window (the one with the highest p(extremist))."""
    if subs is None or len(owner) == n_texts:
        return subs
    owner_arr, e = np.asarray(owner), L.LABEL2ID[L.EXTREMIST]
    rows = [np.flatnonzero(owner_arr == i) for i in range(n_texts)]
    return np.stack([subs[r[probs[r, e].argmax()]] for r in rows])


@dataclass(frozen=True)
class Prediction:
    label: str
    scores: dict[str, float]
    flagged: bool
    language: str
    review: bool = False
    #: ``{"name", "score"}`` from a sub-type head (None without one).
    subtype: dict | None = None
    #: The deciding window's sub-type logits, to re-choose the sub-type when a profile changes the label.
    subtype_logits: tuple | None = field(default=None, repr=False, compare=False)
    taxonomy: dict | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        out = {"label": self.label, "scores": self.scores, "flagged": self.flagged, "language": self.language,
               "review": self.review}
        if self.subtype is not None:
            out["subtype"] = self.subtype
        return out

    def under(self, profile: Profile) -> "Prediction":
        """The same scores judged under another profile's thresholds and review band."""
        probs = np.asarray([[self.scores[name] for name in L.LABELS]])
        label = L.ID2LABEL[int(decide(probs, profile.thresholds)[0])]
        review = bool(profile.review(probs[:, L.LABEL2ID[L.EXTREMIST]])[0])
        sub = self.subtype if label == self.label else subtype_choice(
            None if self.subtype_logits is None else np.asarray(self.subtype_logits), label, self.taxonomy)
        return Prediction(label, self.scores, label == L.FLAG_LABEL, self.language, review, sub,
                          self.subtype_logits, self.taxonomy)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def decide(probs: np.ndarray, thresholds: dict[str, float] | None) -> np.ndarray:
    """Label ids from calibrated probabilities and per-label thresholds.

    With thresholds: a text is ``extremist`` (and flagged) when its extremist probability reaches the extremist
    threshold; otherwise ``counter_narrative`` when its share of the remaining probability,
    p(counter) / (p(counter) + p(neutral)), reaches the counter-narrative threshold; otherwise ``neutral``.
    Without thresholds: the most probable label.
    """
    probs = np.asarray(probs)
    if not thresholds:
        return probs.argmax(axis=1)
    e, c, n = (L.LABEL2ID[x] for x in (L.EXTREMIST, L.COUNTER_NARRATIVE, L.NEUTRAL))
    flagged = probs[:, e] >= thresholds.get(L.EXTREMIST, 0.5)
    share = probs[:, c] / np.maximum(probs[:, c] + probs[:, n], 1e-12)
    counter = share >= thresholds.get(L.COUNTER_NARRATIVE, 0.5)
    return np.where(flagged, e, np.where(counter, c, n))


class Predictor(Protocol):
    meta: ModelMeta
    folder: Path
    backend: str

    def predict(self, texts: Sequence[str], profile=None, contexts: Sequence[str | None] | None = None
                ) -> list[Prediction]: ...

    def predict_proba(self, texts: Sequence[str], *, normalized: bool = False,
                      contexts: Sequence[str | None] | None = None) -> np.ndarray: ...


class _Base:
    """What every backend shares: normalisation, calibration, thresholds and language tags."""

    backend = "base"

    def __init__(self, folder: Path, meta: ModelMeta):
        self.folder = Path(folder)
        self.meta = meta

    def _logits(self, texts: list[str]) -> np.ndarray:  # texts are normalised
        raise NotImplementedError

    def window_costs(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        """``(windows, tokens)`` per text; a model without windows reads a text at once (about 4 characters a
        token)."""
        return [(1, len(t) // 4 + 2) for t in texts]

    def _contexts(self, contexts: Sequence[str | None] | None, n: int, normalized: bool) -> list[str | None] | None:
        """Normalised parents aligned with the texts, or None when no text has one."""
        if contexts is None:
            return None
        contexts = list(contexts)
        if len(contexts) != n:
            raise ValueError(f"{len(contexts)} contexts for {n} texts; give one per text (null where none)")
        if all(c is None or not str(c).strip() for c in contexts):
            return None
        if not self.meta.context:
            raise ContextNotSupported(
                f"model {self.meta.name} {self.meta.version} was not trained to read parent posts (contexts); send "
                "the texts without contexts, or use a model trained on (parent, reply) pairs")
        return [None if c is None or not str(c).strip() else (c if normalized else normalize(c)) for c in contexts]

    def scores(self, texts: Sequence[str], *, normalized: bool = False,
               contexts: Sequence[str | None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated label probabilities and, with a sub-type head, each text's deciding-window sub-type logits."""
        texts = list(texts) if normalized else [normalize(t) for t in texts]
        ctx = self._contexts(contexts, len(texts), normalized)
        if not texts:
            return np.zeros((0, len(L.LABELS))), None
        return self._aggregate(texts, ctx)

    def predict_proba(self, texts: Sequence[str], *, normalized: bool = False,
                      contexts: Sequence[str | None] | None = None) -> np.ndarray:
        return self.scores(texts, normalized=normalized, contexts=contexts)[0]

    def _aggregate(self, texts: list[str], contexts: list[str | None] | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
        return softmax(self._logits(texts), self.meta.temperature), None

    def predict(self, texts: Sequence[str], profile: str | Profile | None = None,
                contexts: Sequence[str | None] | None = None) -> list[Prediction]:
        """Labels under ``profile`` (a name, a ``Profile``, or ``None`` for the folder's default profile);
        ``contexts``: an optional parent post per text (None where a text has none)."""
        prof = profile if isinstance(profile, Profile) else resolve_profile(self.meta, profile)
        norm = [normalize(t) for t in texts]
        ctx = self._contexts(contexts, len(norm), False)  # checked and normalised once, here
        probs, subs = self._aggregate(norm, ctx) if norm else (np.zeros((0, len(L.LABELS))), None)
        return self._predictions(norm, probs, subs, prof)

    def _predictions(self, norm: Sequence[str], probs: np.ndarray, subs: np.ndarray | None,
                     prof: Profile) -> list[Prediction]:
        """Predictions from calibrated probabilities (and deciding-window sub-type logits) of normalised texts."""
        if not len(norm):
            return []
        ids = decide(probs, prof.thresholds)
        review = prof.review(probs[:, L.LABEL2ID[L.EXTREMIST]])
        taxonomy = self.meta.subtypes
        out = []
        for k, (text, p, i, r) in enumerate(zip(norm, probs, ids, review)):
            label = L.ID2LABEL[int(i)]
            scores = {name: round(float(p[j]), 6) for j, name in enumerate(L.LABELS)}
            sub = None if subs is None else subs[k]
            out.append(Prediction(label, scores, label == L.FLAG_LABEL, detect_language(text), bool(r),
                                  subtype_choice(sub, label, taxonomy),
                                  None if sub is None else tuple(float(v) for v in sub), taxonomy))
        return out


class LinearPredictor(_Base):
    backend = "linear"

    def __init__(self, folder: Path, meta: ModelMeta):
        super().__init__(folder, meta)
        from serving.skops_io import load_pipeline

        self.pipeline = load_pipeline(self.folder / "model.skops")

    def _logits(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.pipeline.decision_function(texts), dtype=np.float64)


class _TransformerBase(_Base):
    """Tokenisation, sliding windows and length-sorted batching shared by the ONNX and torch backends."""

    def __init__(self, folder: Path, meta: ModelMeta, batch_size: int = 32):
        super().__init__(folder, meta)
        from tokenizers import Tokenizer

        tok_path = self.folder / "tokenizer.json"
        if not tok_path.is_file():
            raise ModelFolderError(f"{self.folder} has no tokenizer.json; retrain or re-export the model folder.")
        self.tokenizer = Tokenizer.from_file(str(tok_path))
        # The shipped tokenizer.json of some bases pads every input to 128 tokens; we pad per batch ourselves.
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        specials = self.tokenizer.encode("", add_special_tokens=True).ids
        if len(specials) != 2:
            raise ModelFolderError(f"{tok_path}: expected a [CLS] ... [SEP] post-processor, got {specials}")
        self.cls_id, self.sep_id = specials
        config = json.loads((self.folder / "config.json").read_text())
        self.pad_id = int(config.get("pad_token_id") or 0)
        self.max_length = int(meta.max_length or 128)
        self.stride = int(meta.window_stride or max(1, self.max_length - 2 - 32))
        self.batch_size = batch_size
        self.pad_multiple = 1  # model chunks padded to a multiple of this many tokens (TorchPredictor's bfloat16)
        self.blend, self.blend_weight, self.subtype_blend_weight = None, 0.0, 0.0
        if meta.linear_blend:  # the linear baseline's share of the label logits (``blend_logits``)
            from serving.linear_arrays import LinearArrays

            path = inside_folder(self.folder, meta.linear_blend["file"], what="linear_blend.file")
            if not path.is_file():
                raise ModelFolderError(f"{self.folder} has no {path.name} (model_meta.json linear_blend.file); retrain "
                                       "the folder.")
            self.blend = LinearArrays.load(path)
            self.blend_weight = float(meta.linear_blend["weight"])
            self.subtype_blend_weight = float(meta.linear_blend.get("subtype_weight") or 0.0)
            if self.subtype_blend_weight and self.blend.sub_intercept is None:
                raise ModelFolderError(f"{path} holds no sub-type rows, but model_meta.json linear_blend.subtype_weight "
                                       "asks for them; retrain the folder.")

    def blend_logits(self, logits: np.ndarray, owner: Sequence[int], texts: Sequence[str],
                     parents: Sequence[object] | None = None) -> np.ndarray:
        """Window logits with the linear baseline's share (``meta.linear_blend``, weight w): each window's label
        logits become (1 - w) x its own + w x the linear model's decision values for its (normalised) text. A text
        read with a parent post (a truthy ``parents[i]``) keeps the transformer's logits: the linear model reads no
        parent. Sub-type columns likewise with ``linear_blend.subtype_weight`` where the folder has one (the linear
        model's own sub-type regressions), else left as they are. Without a blend, ``logits`` itself."""
        if self.blend is None or not len(logits):
            return logits
        alone = [i for i in range(len(texts)) if not parents or not parents[i]]
        if not alone:
            return logits
        n = len(L.LABELS)
        ws = self.subtype_blend_weight if logits.shape[1] > n else 0.0
        labels, subs = self.blend.decisions([texts[i] for i in alone], subtypes=bool(ws))
        decision = np.zeros((len(texts), n), dtype=np.float64)
        decision[alone] = np.asarray(labels, dtype=np.float64)
        owner = np.asarray(owner, dtype=np.int64)
        rows = np.isin(owner, alone)
        out = np.array(logits, dtype=np.float64, copy=True)
        w = self.blend_weight
        out[rows, :n] = (1 - w) * out[rows, :n] + w * decision[owner[rows]]
        if ws:
            sub = np.zeros((len(texts), subs.shape[1]), dtype=np.float64)
            sub[alone] = subs
            out[rows, n:] = (1 - ws) * out[rows, n:] + ws * sub[owner[rows]]
        return out

    def _starts(self, n_tokens: int, span: int | None = None) -> list[int]:
        """Start offsets of the windows over ``n_tokens`` tokens (without special tokens); ``span``: text tokens a
        window holds (shorter when a parent post shares the window)."""
        full = self.max_length - 2
        span = span or full
        stride = min(self.stride, span) if span < full else self.stride
        if n_tokens <= span:
            return [0]
        starts = []
        for s in range(0, n_tokens - span + stride, stride):
            starts.append(s)
            if s + span >= n_tokens:
                break
        return starts

    def _context_ids(self, contexts: Sequence[str | None] | None, n: int) -> list[list[int]]:
        if not contexts:
            return [[] for _ in range(n)]
        encoded = self.tokenizer.encode_batch([c or "" for c in contexts], add_special_tokens=False)
        return [e.ids if c else [] for c, e in zip(contexts, encoded)]

    def _text_windows(self, ids: list[int], ctx: list[int]) -> list[list[int]]:
        span = self.max_length - 2
        if not ctx:
            return [[self.cls_id, *ids[s:s + span], self.sep_id] for s in self._starts(len(ids))]
        c = context_tokens(len(ctx), len(ids), span)
        prefix = [self.cls_id, *ctx[:c], self.sep_id]
        own = span - 1 - c
        return [[*prefix, *ids[s:s + own], self.sep_id] for s in self._starts(len(ids), own)]

    def windows(self, texts: list[str], contexts: Sequence[str | None] | None = None
                ) -> tuple[list[list[int]], list[int]]:
        """Token-id windows (with special tokens; a parent's tokens first where a text has one) and, for each
        window, the index of its text."""
        all_windows, owner = [], []
        encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        for i, (enc, ctx) in enumerate(zip(encoded, self._context_ids(contexts, len(texts)))):
            for window in self._text_windows(enc.ids, ctx):
                all_windows.append(window)
                owner.append(i)
        return all_windows, owner

    def window_costs(self, texts: Sequence[str], contexts: Sequence[str | None] | None = None
                     ) -> list[tuple[int, int]]:
        """``(windows, tokens)`` per text as the model will see it (normalised; tokens summed over the windows,
        special tokens, parent tokens and overlaps included): what a text costs, known before the model runs."""
        norm = [normalize(t) for t in texts]
        ctx = [None if c is None else normalize(c) for c in contexts] if contexts else None
        out = []
        encoded = self.tokenizer.encode_batch(norm, add_special_tokens=False)
        for enc, cids in zip(encoded, self._context_ids(ctx, len(norm))):
            windows = self._text_windows(enc.ids, cids)
            out.append((len(windows), sum(len(w) for w in windows)))
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch([normalize(t) for t in texts])]

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _window_logits(self, windows: list[list[int]]) -> np.ndarray:
        order = sorted(range(len(windows)), key=lambda k: len(windows[k]))  # sort by token count: little padding
        logits = None
        for start in range(0, len(order), self.batch_size):
            if _should_stop():
                raise Abandoned(f"model call abandoned after {start} of {len(order)} windows: no one is waiting")
            chunk = order[start:start + self.batch_size]
            out = self._run(*pad_windows([windows[k] for k in chunk], self.pad_id, self.pad_multiple,
                                         self.max_length))
            if logits is None:  # label logits, then (with a sub-type head) the sub-type logits
                logits = np.zeros((len(windows), out.shape[1]), dtype=np.float64)
            logits[chunk] = out
        return logits if logits is not None else np.zeros((0, len(L.LABELS)))

    def _window_outputs(self, texts: list[str], contexts: Sequence[str | None] | None = None
                        ) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
        windows, owner = self.windows(texts, contexts)
        raw = self.blend_logits(self._window_logits(windows), owner, texts, contexts)
        n = len(L.LABELS)
        subs = raw[:, n:] if self.meta.subtypes and raw.shape[1] > n else None
        return softmax(raw[:, :n], self.meta.temperature), subs, owner

    def window_probs(self, texts: list[str], contexts: Sequence[str | None] | None = None
                     ) -> tuple[np.ndarray, list[int]]:
        """Calibrated probabilities of every window of the (normalised) texts, and each window's text index."""
        probs, _, owner = self._window_outputs(texts, contexts)
        return probs, owner

    def _aggregate(self, texts: list[str], contexts: list[str | None] | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
        probs, subs, owner = self._window_outputs(texts, contexts)
        return (aggregate_windows(probs, owner, len(texts), self.meta.window_aggregation),
                deciding_subtypes(subs, probs, owner, len(texts)))

    def _logits(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError("transformer backends aggregate windows in _aggregate")

    # -- ``predict`` in pieces, for window-level scheduling (the service's batcher) --------------------------------
    # text_windows -> score_windows (any windows, in any grouping) -> predict_windows (per text, once all its windows
    # are scored) gives what ``predict`` gives, up to int8 batch noise (about 1e-3).
    def text_windows(self, texts: Sequence[str], contexts: Sequence[str | None] | None = None
                     ) -> tuple[list[str], list[list[list[int]]]]:
        """The normalised texts and each text's token-id windows, built as ``predict`` builds them."""
        norm = [normalize(t) for t in texts]
        ctx = self._contexts(contexts, len(norm), False)  # normalised, as predict() hands them to scores()
        windows, owner = self.windows(norm, ctx)
        per_text: list[list[list[int]]] = [[] for _ in norm]
        for window, i in zip(windows, owner):
            per_text[i].append(window)
        return norm, per_text

    def score_windows(self, windows: list[list[int]]) -> np.ndarray:
        """Raw logits of each window (label columns, then any sub-type columns): length-sorted model chunks of
        ``batch_size`` windows, stoppable between chunks (``stop_when``)."""
        return self._window_logits(windows)

    def predict_windows(self, texts: Sequence[str], logits: Sequence[np.ndarray], profile: str | Profile | None = None,
                        parents: Sequence[object] | None = None) -> list[Prediction]:
        """``predict`` from scored windows: ``texts`` normalised (``text_windows``), ``logits[i]`` the raw logits of
        text ``i``'s windows, one row per window in ``text_windows`` order (``score_windows``); ``parents[i]``
        truthy where text ``i`` was read with a parent post."""
        prof = profile if isinstance(profile, Profile) else resolve_profile(self.meta, profile)
        n = len(L.LABELS)
        if not len(texts):
            return []
        rows = [np.asarray(r, dtype=np.float64).reshape(len(r), -1) for r in logits]
        owner = [i for i, r in enumerate(rows) for _ in range(len(r))]
        raw = self.blend_logits(np.concatenate(rows), owner, texts, parents)
        probs = softmax(raw[:, :n], self.meta.temperature)
        subs = raw[:, n:] if self.meta.subtypes and raw.shape[1] > n else None
        agg = aggregate_windows(probs, owner, len(texts), self.meta.window_aggregation)
        return self._predictions(texts, agg, deciding_subtypes(subs, probs, owner, len(texts)), prof)


class OnnxPredictor(_TransformerBase):
    def __init__(self, folder: Path, meta: ModelMeta, *, quantized: bool = True, batch_size: int = 32,
                 threads: int | None = None, explain_cut: int | None = None):
        super().__init__(folder, meta, batch_size)
        import onnxruntime as ort

        key = "int8" if quantized else "fp32"
        name = meta.onnx.get(key)
        if not name:
            why = meta.onnx.get("int8_note" if key == "int8" else "fp32_note")
            other = "onnx, torch" if key == "int8" else "onnx-int8, torch"
            raise ModelFolderError(
                f"{self.folder} has no {key} ONNX graph{f' ({why})' if why else ''}; export it with "
                f"`counterpoint export --model {self.folder}` or choose another --backend ({other}).")
        path = inside_folder(self.folder, name, what=f"onnx.{key}")
        if not path.is_file():
            raise ModelFolderError(
                f"{self.folder} has no {key} ONNX graph ({name} is missing); export it with "
                f"`counterpoint export --model {self.folder}` or choose --backend torch.")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.graph_path, self.threads = path, threads
        self._cuts: dict[int, object] = {}
        self._cut_lock = threading.Lock()
        # ``explain_cut`` (the service): the graph is cut for explanations now, so that one session is ever built.
        cut = self.graph_cut(explain_cut) if explain_cut else None
        if cut is None:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.backend = "onnx-int8" if quantized else "onnx"

    def graph_cut(self, upper_layers: int):
        """The served graph cut before its last ``upper_layers`` encoder layers (``serving.graph_cut.GraphCut``),
        built on first use (about a second), or None where the graph cannot be cut. The first cut's session also
        becomes the one that answers ``predict``: it is the served graph with more outputs and nodes that only
        explanations ask for, so predictions do not change and the weights are held once."""
        with self._cut_lock:
            if upper_layers not in self._cuts:
                from serving.graph_cut import cut_graph

                try:
                    cut = cut_graph(self.graph_path, upper_layers, threads=self.threads or os.cpu_count() or 1)
                except Exception as exc:  # a graph we cannot cut must not stop the service: explain falls back
                    logging.getLogger(__name__).warning(
                        "could not cut %s for explanations (%s: %s); evidence uses full occlusion",
                        self.graph_path.name, type(exc).__name__, exc)
                    cut = None
                if cut is not None and not any(self._cuts.values()):
                    self.session = cut.session  # (at load, the only session: ``explain_cut``)
                self._cuts[upper_layers] = cut
            return self._cuts[upper_layers]

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return self.session.run(["logits"], feeds)[0]


def native_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (oneDNN's check: AVX512-BF16 or AMX); False without torch."""
    try:
        import torch
    except ImportError:
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())


# Torch's intra-op threads are an OpenMP team per calling thread. A service loads the model on one thread and runs
# it on another (its model thread, an explanation's worker thread), so two teams share two cores, libgomp stops
# spinning between parallel regions and a one-post forward pass took 1.9x as long (docs/EVALUATION.md, "A bug the
# service hid"). A predictor that loads its own weights therefore loads and runs them on this one thread, whoever
# calls it.
_TORCH_THREAD: ThreadPoolExecutor | None = None
_TORCH_THREAD_LOCK = threading.Lock()


def _torch_thread() -> ThreadPoolExecutor:
    global _TORCH_THREAD
    with _TORCH_THREAD_LOCK:
        if _TORCH_THREAD is None:
            _TORCH_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="counterpoint-torch")
        return _TORCH_THREAD


def _forget_torch_thread() -> None:  # a forked child has no such thread: it starts its own when it needs one
    global _TORCH_THREAD, _TORCH_THREAD_LOCK
    _TORCH_THREAD, _TORCH_THREAD_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only; elsewhere processes are spawned, not forked
    os.register_at_fork(after_in_child=_forget_torch_thread)


def on_torch_thread(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on the process's torch thread (directly when already on it)."""
    if threading.current_thread().name.startswith("counterpoint-torch"):
        return fn(*args, **kwargs)
    return _torch_thread().submit(fn, *args, **kwargs).result()


#: ``torch-bf16`` pads each model chunk to a multiple of this many tokens (bounded oneDNN shapes, so bounded memory).
BF16_PAD_MULTIPLE = 16


class TorchPredictor(_TransformerBase):
    """fp32 (``torch``) or bfloat16 (``torch-bf16``) weights in torch. Weights read from the folder are loaded and run
    on the process's torch thread (``on_torch_thread``); a model passed in as ``model`` runs on the calling thread,
    where its caller built it."""

    backend = "torch"

    def __init__(self, folder: Path, meta: ModelMeta, *, batch_size: int = 32, model=None, bf16: bool = False):
        super().__init__(folder, meta, batch_size)
        import torch
        from transformers import AutoModelForSequenceClassification

        if bf16 and not native_bf16():  # checked before the weights are read
            raise ModelFolderError("backend torch-bf16 needs a CPU with native bfloat16 arithmetic (AVX512-BF16 or "
                                   "AMX; oneDNN reports none here); choose onnx-int8, onnx or torch.")
        self._torch = torch
        self._own_thread = model is None

        def build():  # bfloat16 weights are read as such: the same numbers, no float32 copy on the way
            built = model if model is not None else AutoModelForSequenceClassification.from_pretrained(
                self.folder, **({"dtype": torch.bfloat16} if bf16 else {}))
            return (built.to(torch.bfloat16) if bf16 else built).eval()

        self.model = on_torch_thread(build) if self._own_thread else build()
        if bf16:
            self.backend = "torch-bf16"
            # oneDNN runs bfloat16 matrix products and keeps a primitive (with its own buffers) per input shape:
            # chunks of every width from 3 to 128 tokens took a 5,000-post `counterpoint label` job to a peak of
            # 1.1 GB, chunks padded to multiples of 16 tokens to 0.81-0.86 GB at the same speed (bench/
            # batch_throughput.py --bf16-pad-multiples 1,16; docs/EVALUATION.md, issue 13).
            self.pad_multiple = BF16_PAD_MULTIPLE

    def _forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return out.logits.float().numpy()

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        if self._own_thread:
            return on_torch_thread(self._forward, input_ids, attention_mask)
        return self._forward(input_ids, attention_mask)


def load_predictor(folder: str | Path, backend: str = "auto", *, verify: bool = True, batch_size: int = 32,
                   threads: int | None = None, explain_cut: int | None = None) -> Predictor:
    """Load a verified model folder with the chosen backend (``auto``: int8 ONNX for transformers). ``explain_cut``:
    ONNX backends build the graph cut for explanations at load (``OnnxPredictor.graph_cut``; the service does)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    folder = Path(folder)
    meta = load_meta(folder, verify=verify)
    if meta.kind == "linear":
        if backend not in ("auto", "linear"):
            raise ModelFolderError(f"{folder} holds a linear model; it runs only with --backend linear (or auto).")
        return LinearPredictor(folder, meta)
    if backend == "linear":
        raise ModelFolderError(f"{folder} holds a transformer model; choose onnx-int8, onnx, torch or torch-bf16.")
    if backend == "auto":
        backend = "onnx-int8" if meta.onnx.get("int8") else "onnx" if meta.onnx.get("fp32") else "torch"
    if backend in ("torch", "torch-bf16"):
        return TorchPredictor(folder, meta, batch_size=batch_size, bf16=backend == "torch-bf16")
    return OnnxPredictor(folder, meta, quantized=backend == "onnx-int8", batch_size=batch_size, threads=threads,
                         explain_cut=explain_cut)
