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

Cost: full occlusion scores ``1 + words`` variants per text in one batched ``predict_proba`` call. Posts longer
than ``max_words`` words go coarse to fine (runs of neighbouring words first, then the words of the strongest
runs), so a 30-word post costs about 16 variants instead of 31 and a very long one at most ~56. On an ONNX graph
with fused attention (the default), words are deleted *above a cut* instead (``UPPER_LAYERS``): the post goes
through the served graph once and each variant only through a (quantised) copy of its top layers, with the word's
token rows removed from the hidden states entering them (``serving/graph_cut.py``). That approximates deleting the
word from the text, so it is held to the same faithfulness check (deleting its top-3 words *from the text*), and
posts longer than one window are still occluded in the text. ``upper_layers=None``: full occlusion everywhere.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from serving import labels as L
from serving.predictor import pad_windows

_TOKEN = re.compile(r"\S+")
EXPLAINED = (L.EXTREMIST, L.COUNTER_NARRATIVE)  # the labels evidence is given for
#: Words are deleted above a cut before this many top encoder layers (``serving/graph_cut.py``); None: from the text.
#: Chosen on dev (bench/explain.py, the e5-small default, 60 flagged posts): faithful on 80% of them with a cut
#: before 2 layers (75% on test with the fp32 copy), 90% with 3, 92-93% with 4, at 43 / 53 / 42-55 ms per post.
UPPER_LAYERS: int | None = 4


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


def _drops_full(predictor, jobs: list[tuple[str, list[tuple[int, int]]]], contexts: Sequence[str | None] | None = None
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
    probs = _log_odds(predictor.predict_proba(variants, contexts=parents) if any(parents) else
                      predictor.predict_proba(variants))
    out, row = [], 0
    for _, units in jobs:
        base = probs[row]
        out.append((base, base[None, :] - probs[row + 1:row + 1 + len(units)]))
        row += 1 + len(units)
    return out


def _log_odds(probs: np.ndarray) -> np.ndarray:
    # Log-odds, not probability: a confident post (p = 0.9999) still ranks its words instead of all dropping ~0.
    probs = np.clip(probs[:, [L.LABEL2ID[name] for name in EXPLAINED]], 1e-7, 1 - 1e-7)
    return np.log(probs) - np.log1p(-probs)


def _deleted_rows(full: list[int], variant: list[int]) -> tuple[int, int]:
    """``(p, q)``: ``variant`` keeps the first ``p`` and the last ``q`` tokens of ``full``; the rows between are the
    deleted word's. (Deleting a whitespace-separated word deletes its pieces; where the neighbours re-tokenise,
    the few new pieces are not represented and the variant is ``full`` without the changed rows.)"""
    limit = min(len(full), len(variant))
    p = 0
    while p < limit and full[p] == variant[p]:
        p += 1
    q = 0
    while q < limit - p and full[-1 - q] == variant[-1 - q]:
        q += 1
    return p, q


def _lower_pass(predictor, cut, jobs: list[tuple[str, list[tuple[int, int]]]], parents: list[str | None] | None,
                cache: dict) -> list[tuple[list[int], np.ndarray, np.ndarray] | None]:
    """Per job: the post's one window, its hidden states entering the cut and its logits (None where the post needs
    more than one window). ``cache`` keeps them per (post, parent) between the coarse and the fine pass."""
    from serving.text import normalize

    keys = [(text, parents[i] if parents else None) for i, (text, _) in enumerate(jobs)]
    todo = sorted({k for k in keys if k not in cache}, key=keys.index)
    if todo:
        windows, owner = predictor.windows([normalize(t) for t, _ in todo],
                                           [c for _, c in todo] if parents else None)
        per: list[list[list[int]]] = [[] for _ in todo]
        for w, i in zip(windows, owner):
            per[i].append(w)
        one = [i for i in range(len(todo)) if len(per[i]) == 1]
        cache.update(dict.fromkeys(todo))  # None: more than one window
        if one:
            logits, hidden = cut.run_lower(*pad_windows([per[i][0] for i in one], predictor.pad_id))
            for row, i in enumerate(one):
                cache[todo[i]] = (per[i][0], hidden[row, :len(per[i][0])], logits[row])
    return [cache[k] for k in keys]


def _drops_cut(predictor, cut, jobs: list[tuple[str, list[tuple[int, int]]]],
               contexts: Sequence[str | None] | None = None, cache: dict | None = None
               ) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """``_drops`` with each variant scored by the upper layers only (``serving/graph_cut.py``): the post goes through
    the served graph once (``cache``: once per ``explain`` call), and each unit's token rows are deleted from the
    hidden states entering the cut. A job whose post (with its parent) needs more than one window gets None (the
    caller scores it in full)."""
    from serving.predictor import softmax
    from serving.text import normalize

    n = len(jobs)
    parents = predictor._contexts(list(contexts) if contexts else [None] * n, n, False)
    lower = _lower_pass(predictor, cut, jobs, parents, {} if cache is None else cache)
    ok = [i for i in range(n) if lower[i] is not None]
    if not ok:
        return [None] * n
    base_logits = np.stack([lower[i][2] for i in ok])
    dim = lower[ok[0]][1].shape[1]
    # Every variant of every post: its hidden rows (the post's, without the unit's) for the upper layers.
    # The variants of every post, tokenised in one call as ``predict`` would (each variant's first window).
    owners = [i for i in ok for _ in jobs[i][1]]
    variants = [normalize(_without(jobs[i][0], s, e)) for i in ok for s, e in jobs[i][1]]
    v_windows, v_owner = (predictor.windows(variants, None if parents is None else [parents[i] for i in owners])
                          if variants else ([], []))
    firsts: dict[int, list[int]] = {}
    for w, k in zip(v_windows, v_owner):
        firsts.setdefault(k, w)
    seqs: list[np.ndarray] = []
    for k, i in enumerate(owners):
        full, h, _ = lower[i]
        p, q = _deleted_rows(full, firsts.get(k, full))
        seqs.append(np.concatenate([h[:p], h[len(full) - q:]]) if p + q < len(full) else h)
    logits = np.zeros((len(seqs), base_logits.shape[1]), dtype=np.float64)
    order = sorted(range(len(seqs)), key=lambda k: len(seqs[k]))
    chunk = max(1, 4 * predictor.batch_size)  # sorted by length: little padding (one chunk of 64 was slower)
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        lengths = np.array([len(seqs[k]) for k in part])
        batch = np.zeros((len(part), lengths.max(), dim), dtype=np.float32)
        for r, k in enumerate(part):
            batch[r, :lengths[r]] = seqs[k]
        logits[part] = cut.run_upper(batch, lengths)
    n_labels = len(L.LABELS)
    # As ``predict`` scores them: with the linear baseline's share where the model blends one (texts without a parent).
    base_logits = predictor.blend_logits(base_logits.astype(np.float64), range(len(ok)),
                                         [normalize(jobs[i][0]) for i in ok],
                                         None if parents is None else [parents[i] for i in ok])
    logits = predictor.blend_logits(logits, range(len(variants)), variants,
                                    None if parents is None else [parents[i] for i in owners])
    base = _log_odds(softmax(base_logits[:, :n_labels].astype(np.float64), predictor.meta.temperature))
    var = _log_odds(softmax(logits[:, :n_labels], predictor.meta.temperature)) if seqs else np.zeros((0, 2))
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n
    at = 0
    for row, i in enumerate(ok):
        count = len(jobs[i][1])
        out[i] = (base[row], base[row][None, :] - var[at:at + count])
        at += count
    return out


def _cut_of(predictor, upper_layers: int | None):
    if not upper_layers or not hasattr(predictor, "graph_cut"):
        return None
    return predictor.graph_cut(upper_layers)


def _drops(predictor, jobs: list[tuple[str, list[tuple[int, int]]]], contexts: Sequence[str | None] | None = None,
           upper_layers: int | None = None, cache: dict | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each (text, units): log-odds of the explained labels for the full text, and their drop without each
    unit. With ``upper_layers`` (and a graph that can be cut) units are deleted above the cut; otherwise, and for
    posts longer than one window, from the text."""
    cut = _cut_of(predictor, upper_layers)
    if cut is None or not jobs:
        return _drops_full(predictor, jobs, contexts)
    out = _drops_cut(predictor, cut, jobs, contexts, cache)
    rest = [k for k, o in enumerate(out) if o is None]
    if rest:
        full = _drops_full(predictor, [jobs[k] for k in rest], [contexts[k] for k in rest] if contexts else None)
        for k, o in zip(rest, full):
            out[k] = o
    return out


def explain(predictor, texts: Sequence[str], *, top_k: int = 8, min_weight: float = 0.05, max_words: int = 16,
            group: int = 4, refine: int = 2, contexts: Sequence[str | None] | None = None,
            upper_layers: int | None = UPPER_LAYERS) -> list[list[Span]]:
    """Evidence spans per text, strongest first: at most ``top_k`` words whose deletion lowers the log-odds of a
    label by at least ``min_weight``, where label is extremist or counter_narrative (whichever the word supports
    more); ``weight`` is that drop.

    Posts of up to ``max_words`` words: every word is deleted in turn. Longer posts, coarse to fine: first each run
    of ``group`` neighbouring words is deleted, then every word of the ``refine`` runs whose deletion moved a score
    most; the others get no evidence (their run mattered less than ``refine`` others). Two model calls in all."""
    words = [word_spans(t) for t in texts]
    coarse = [len(w) > max_words for w in words]
    groups = [_groups(w, max(group, -(-len(w) // 32))) if c else [] for w, c in zip(words, coarse)]
    contexts = list(contexts) if contexts is not None else [None] * len(texts)
    cache: dict = {}  # the posts' lower-layer pass, shared by the coarse and the fine pass
    first = _drops(predictor, [(t, [_cover(g) for g in gs] if c else w)
                               for t, w, c, gs in zip(texts, words, coarse, groups)], contexts, upper_layers, cache)
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
                    [p for p, c in zip(contexts, coarse) if c], upper_layers, cache)
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


def flagged_posts(predictor, rows: Sequence[dict], n: int, seed: int = 0) -> list[str]:
    """Up to ``n`` extremist posts of 8..60 words from corpus ``rows`` (shuffled with ``seed``) that ``predictor``
    flags: what the faithfulness check runs on."""
    import random

    rows = list(rows)
    random.Random(seed).shuffle(rows)
    texts = [r["text"] for r in rows if r["label"] == L.EXTREMIST and 8 <= len(word_spans(r["text"])) <= 60][:4 * n]
    return [t for t, p in zip(texts, predictor.predict(texts)) if p.flagged][:n]


def faithfulness(predictor, texts: Sequence[str], seed: int = 0, min_words: int = 0, **settings
                 ) -> tuple[int, int, list[set]]:
    """The faithfulness check: on how many of ``texts`` (with at least 3 extremist evidence words and
    ``min_words`` words) deleting the top-3 evidence words *from the text* lowers p(extremist) more than deleting 3
    random words (mean of 5 draws). ``(wins, checked, top-3 spans per text)``; ``settings`` go to ``explain``."""
    import random
    import statistics

    rng = random.Random(seed)
    wins = total = 0
    tops = []
    for text, spans in zip(texts, explain(predictor, texts, top_k=64, min_weight=-1e9, **settings)):
        top = [(s.start, s.end) for s in spans if s.label == L.EXTREMIST][:3]
        tops.append(set(top))
        words = word_spans(text)
        if len(top) < 3 or len(words) < min_words:
            continue
        random_drop = statistics.mean(occlusion_drops(predictor, text, rng.sample(words, 3)) for _ in range(5))
        wins += occlusion_drops(predictor, text, top) > random_drop
        total += 1
    return wins, total, tops


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
