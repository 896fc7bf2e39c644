"""Window-like training rows, so that a long post read in windows is judged like a short one (issue 10).

The service reads a long text in windows of ``model.max_length`` tokens and flags it when one window is flagged
(``window_aggregation``). Two failures follow from training on whole short posts only (``training/long_text.py``
measures both): a window of a long *neutral* text starts and ends mid-sentence and strings unrelated sentences
together, which the model has never seen, so each extra window is another chance of a false flag; and one
extremist sentence among neutral ones is diluted below the threshold.

``train.long_mix`` adds this share of the training rows as window-like rows made from *training* rows of one
language (dev and test are never used, so the long-text slice built from dev stays unseen):

- ``long_neutral``: neutral texts joined and cut to a window at word boundaries (starting and ending
  mid-sentence) -> neutral;
- ``buried_extremist``: an extremist text with the end of a neutral text before it and the start of another after
  it -> extremist (its sub-type kept);
- ``buried_counter``: the same with a counter-speech text -> counter-narrative, so that a mixed window is not a cue
  of either flag.

The inserted text always lies in the first ~330 characters (well inside ``max_length`` tokens), so truncation
never cuts it off. Rows read with a parent post (reply context) are not used.

Fillers come from the same *origin* as what they surround (``origins``: written rows with written rows, real posts
with real posts), and neutral windows are drawn from each origin alike. Without that the mix is a style cue: a
first try drew fillers from all neutral rows (mostly short real chatter) around mostly written needles, and the
model learnt "a written-style sentence among chatter is flagged": windows of written neutral text were then
flagged far more often (long neutral posts 11% -> 55% on the dev long-text slice) while buried sentences were
caught more (40% -> 88%).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from serving import labels as L

KINDS = ("long_neutral", "buried_extremist", "buried_counter")
#: A window's length in characters (drawn per row): about 60-130 tokens of our languages.
WINDOW_CHARS = (240, 520)
#: Longest text buried, and the most neutral text before it (so it stays in the first max_length tokens).
NEEDLE_MAX_CHARS = 200
PREFIX_MAX_CHARS = 130


@dataclass
class Mixed:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    subtypes: list[int] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def _head(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text``, cut back to a word boundary."""
    if len(text) <= chars:
        return text
    cut = text.rfind(" ", 0, chars)
    return text[: cut if cut > 0 else chars]


def _tail(text: str, chars: int) -> str:
    """The last ``chars`` characters of ``text``, cut forward to a word boundary."""
    if len(text) <= chars:
        return text
    start = len(text) - chars
    cut = text.find(" ", start)
    return text[(cut + 1) if 0 <= cut < len(text) - 1 else start:]


def long_mixes(texts: Sequence[str], labels: Sequence[int], langs: Sequence[str | None], share: float, seed: int,
               *, subtypes: Sequence[int] | None = None, contexts: Sequence[str | None] | None = None,
               origins: Sequence[str | None] | None = None, neutral_share: float = 1 / 3) -> Mixed:
    """``round(share * len(texts))`` window-like rows from ``texts`` (normalised training texts) with their
    ``labels`` (ids) and ``langs``: ``neutral_share`` of them long neutral windows, the rest buried extremist and
    buried counter-speech alternately (a third of each kind by default); ``subtypes``: sub-type ids aligned with the
    texts (-100 for none); rows with a parent in ``contexts`` are skipped; ``origins`` (e.g. "real" / "written")
    keeps fillers of the same origin as the text they surround."""
    rng = random.Random(f"{seed}:long-mix")
    pools: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    origin_of = [(o or "written") for o in origins] if origins is not None else ["any"] * len(texts)
    for i, (text, y, lang) in enumerate(zip(texts, labels, langs)):
        if contexts is not None and contexts[i] is not None:
            continue
        if y != L.LABEL2ID[L.NEUTRAL] and len(text) > NEEDLE_MAX_CHARS:
            continue
        pools[int(y)][lang or "other"].append(i)
    neutral_by: dict[tuple[str, str], list[int]] = defaultdict(list)
    for lang, ids in pools[L.LABEL2ID[L.NEUTRAL]].items():
        for i in ids:
            neutral_by[(lang, origin_of[i])].append(i)
    neutral_by = {key: ids for key, ids in neutral_by.items() if len(ids) >= 5}
    neutral = sorted({lang for lang, _ in neutral_by})
    out = Mixed(kinds={k: 0 for k in KINDS})
    n = round(share * len(texts))
    if not neutral:
        return out

    def filler_key(lang: str, origin: str | None = None) -> tuple[str, str]:
        """The neutral pool for ``lang``: of ``origin`` where it has one, else of an origin drawn at random."""
        if origin is not None and (lang, origin) in neutral_by:
            return (lang, origin)
        return rng.choice(sorted(key for key in neutral_by if key[0] == lang))

    def stream(key: tuple[str, str], chars: int) -> str:
        """Neutral texts of one pool joined until at least ``chars`` long."""
        parts, size = [], 0
        while size < chars:
            parts.append(texts[rng.choice(neutral_by[key])])
            size += len(parts[-1]) + 1
        return " ".join(parts)

    if abs(neutral_share - 1 / 3) < 1e-9:  # the original cycle, so earlier runs (w11, w13) rebuild exactly
        kinds = [KINDS[k % len(KINDS)] for k in range(n)]
    else:  # interleaved, so a prefix of the rows has the same mix as the whole
        n_neutral = round(neutral_share * n)
        plan = sorted(range(n), key=lambda k: ((k + 0.5) / n_neutral if k < n_neutral else
                                               (k - n_neutral + 0.5) / max(n - n_neutral, 1), k >= n_neutral))
        kinds = ["long_neutral" if k < n_neutral else KINDS[1 + (k - n_neutral) % 2] for k in plan]
    for k in range(n):
        kind = kinds[k]
        window = rng.randint(*WINDOW_CHARS)
        if kind == "long_neutral":
            lang = rng.choice(neutral)
            joined = stream(filler_key(lang), window + 200)
            start = rng.randrange(0, 200)
            start = joined.find(" ", start) + 1 if start else 0
            out.texts.append(_head(joined[start:], window))
            out.labels.append(L.LABEL2ID[L.NEUTRAL])
            out.subtypes.append(-100)
        else:
            label = L.EXTREMIST if kind == "buried_extremist" else L.COUNTER_NARRATIVE
            needles = pools[L.LABEL2ID[label]]
            choices = [lang for lang in neutral if needles.get(lang)]
            if not choices:
                continue
            lang = rng.choice(choices)
            i = rng.choice(needles[lang])
            key = filler_key(lang, origin_of[i])
            before = _tail(stream(key, PREFIX_MAX_CHARS), rng.randint(30, PREFIX_MAX_CHARS))
            after_chars = max(40, window - len(before) - len(texts[i]))
            after = _head(stream(key, after_chars), after_chars)
            out.texts.append(f"{before} {texts[i]} {after}")
            out.labels.append(L.LABEL2ID[label])
            out.subtypes.append(subtypes[i] if subtypes is not None else -100)
        out.kinds[kind] += 1
    return out
