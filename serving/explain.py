"""Evidence for a prediction: which words of a post drove its extremist (or counter-narrative) score.

Word occlusion on the served predictor (int8 ONNX in production): each word is deleted in turn from the text *as
sent* and the variant is scored; a word's weight for a label is how much the label's calibrated log-odds drop
without it (log-odds, so a confident post at p = 0.9999 still ranks its words). Occlusion needs no gradients, so
it explains the exact graph that answers /v1/classify; tests/review/test_explain.py checks that it is faithful
(deleting the top evidence lowers p(extremist) more than deleting random words).

Why offsets come out right: variants are cut from the original string and go through the same ``normalize`` as
every request, so a span's ``start``/``end`` index the text as the client sent it (Python ``str`` indices, i.e.
Unicode code points: an emoji counts 1; in JavaScript index ``Array.from(text)``). Urdu and other right-to-left
text needs nothing special: offsets are logical order, the browser lays them out.

Cost: one batched ``predict_proba`` call over ``1 + words`` variants per text (all texts of a request together).
Posts longer than ``max_words`` words go coarse to fine (runs of neighbouring words first, then the words of the
strongest runs), so a 30-word post costs about 23 variants instead of 31 and a very long one at most ~60.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from serving import labels as L

_TOKEN = re.compile(r"\S+")
EXPLAINED = (L.EXTREMIST, L.COUNTER_NARRATIVE)  # the labels evidence is given for


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str
    label: str
    weight: float

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "text": self.text, "label": self.label,
                "weight": round(self.weight, 4)}


def _is_edge_punct(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat.startswith("P") or cat == "Cf"  # punctuation, and invisible controls such as RLM or ZWJ


def word_spans(text: str) -> list[tuple[int, int]]:
    """Words as ``(start, end)`` offsets into ``text``: whitespace-separated tokens without edge punctuation.

    Tokens made only of punctuation are skipped; emojis and symbols count as words (they can carry the signal)."""
    spans = []
    for m in _TOKEN.finditer(text):
        s, e = m.start(), m.end()
        while s < e and _is_edge_punct(text[s]):
            s += 1
        while e > s and _is_edge_punct(text[e - 1]):
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans


def _groups(spans: list[tuple[int, int]], size: int) -> list[list[tuple[int, int]]]:
    return [spans[i:i + size] for i in range(0, len(spans), size)]


def _cover(group: list[tuple[int, int]]) -> tuple[int, int]:
    return group[0][0], group[-1][1]


def _without(text: str, start: int, end: int) -> str:
    # Keep one separator so the neighbours do not fuse into one word ("a b c" minus "b" -> "a  c" -> "a c").
    return text[:start] + " " + text[end:]


def _drops(predictor, jobs: list[tuple[str, list[tuple[int, int]]]], contexts: Sequence[str | None] | None = None
           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each (text, units): log-odds of the explained labels for the full text, and their drop without each
    unit. One model call. ``contexts``: a parent post per job (the reply's words are occluded, never the parent's)."""
    variants: list[str] = []
    parents: list[str | None] = []
    for k, (text, units) in enumerate(jobs):
        variants.append(text)
        variants.extend(_without(text, s, e) for s, e in units)
        parents.extend([contexts[k] if contexts else None] * (1 + len(units)))
    if not variants:
        return []
    # One call for every variant of every text: the predictor sorts by length and batches them.
    probs = (predictor.predict_proba(variants, contexts=parents) if any(parents) else
             predictor.predict_proba(variants))[:, [L.LABEL2ID[name] for name in EXPLAINED]]
    # Log-odds, not probability: a confident post (p = 0.9999) still ranks its words instead of all dropping ~0.
    probs = np.clip(probs, 1e-7, 1 - 1e-7)
    probs = np.log(probs) - np.log1p(-probs)
    out, row = [], 0
    for _, units in jobs:
        base = probs[row]
        out.append((base, base[None, :] - probs[row + 1:row + 1 + len(units)]))
        row += 1 + len(units)
    return out


def explain(predictor, texts: Sequence[str], *, top_k: int = 8, min_weight: float = 0.05, max_words: int = 16,
            group: int = 4, refine: int = 3, contexts: Sequence[str | None] | None = None) -> list[list[Span]]:
    """Evidence spans per text, strongest first: at most ``top_k`` words whose deletion lowers the log-odds of a
    label by at least ``min_weight``, where label is extremist or counter_narrative (whichever the word supports
    more); ``weight`` is that drop.

    Posts of up to ``max_words`` words: every word is deleted in turn. Longer posts, coarse to fine: first each run
    of ``group`` neighbouring words is deleted, then every word of the ``refine`` runs whose deletion moved a score
    most; the others get no evidence (their run mattered less than three others). Two model calls in all."""
    words = [word_spans(t) for t in texts]
    coarse = [len(w) > max_words for w in words]
    groups = [_groups(w, max(group, -(-len(w) // 32))) if c else [] for w, c in zip(words, coarse)]
    contexts = list(contexts) if contexts is not None else [None] * len(texts)
    first = _drops(predictor, [(t, [_cover(g) for g in gs] if c else w)
                               for t, w, c, gs in zip(texts, words, coarse, groups)], contexts)
    fine_units: list[list[tuple[int, int]]] = []
    for (base, drops), w, c, gs in zip(first, words, coarse, groups):
        if not c:
            fine_units.append(w)
            continue
        strength = drops.max(axis=1)
        chosen = sorted(i for i in np.argsort(-strength, kind="stable")[:refine] if strength[i] > 0)
        fine = [span for i in chosen for span in gs[i]]
        size = max(1, -(-len(fine) // 24))  # very long posts: refine in runs again, 24 variants at most
        fine_units.append(fine if size == 1 else [_cover(g) for g in _groups(fine, size)])
    second = _drops(predictor, [(t, u) for t, u, c in zip(texts, fine_units, coarse) if c],
                    [p for p, c in zip(contexts, coarse) if c])
    it = iter(second)
    out: list[list[Span]] = []
    for text, units, c, (base, drops) in zip(texts, fine_units, coarse, first):
        if c:
            _, drops = next(it)  # drops against the full text of the same (second) batch
        if not units:
            out.append([])
            continue
        best = drops.argmax(axis=1)
        weights = drops[np.arange(len(units)), best]
        order = np.argsort(-weights, kind="stable")
        out.append([Span(units[i][0], units[i][1], text[units[i][0]:units[i][1]], EXPLAINED[best[i]],
                         float(weights[i])) for i in order[:top_k] if weights[i] >= min_weight])
    return out


def occlusion_drops(predictor, text: str, remove: Sequence[tuple[int, int]]) -> float:
    """p(extremist) of ``text`` minus p(extremist) with all ``remove`` spans deleted (for faithfulness checks)."""
    cut = text
    for s, e in sorted(remove, reverse=True):
        cut = _without(cut, s, e)
    p = predictor.predict_proba([text, cut])[:, L.LABEL2ID[L.EXTREMIST]]
    return float(p[0] - p[1])


_one_at_a_time = threading.Lock()


def _explain_locked(predictor, texts: list[str], contexts: list[str | None] | None = None) -> list[list[Span]]:
    with _one_at_a_time:  # each request is already a full batch of variants: running two at once gains nothing
        return explain(predictor, texts, contexts=contexts)


async def explain_async(predictor, texts: Sequence[str], contexts: Sequence[str | None] | None = None
                        ) -> list[list[dict]]:
    """``explain`` off the event loop, one request at a time."""
    import anyio

    spans = await anyio.to_thread.run_sync(_explain_locked, predictor, list(texts),
                                           list(contexts) if contexts is not None else None)
    return [[s.to_dict() for s in row] for row in spans]
