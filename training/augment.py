"""Surface augmentation of training rows: the same post with emojis, an elongated letter, leetspeak, words in the
other script or Roman Urdu spelling variants keeps its label (``train.augment``: the share of training rows
rewritten so, seeded).

Why: the audit (``training/robustness.py``) found the model reading emojis and elongation as tone (neutral posts
flagged more often with them) and losing extremist flags to leetspeak and script switching. Real posts carry these
in every label; the written corpus carried them unevenly. A rewritten row replaces its original (no extra steps).

The families are those of the audit, so the audit's figures for them measure invariance to a family the model was
trained on (with other random choices and a wider emoji pool), not to an unseen obfuscation: say so when reporting
them. Dev and test rows are never augmented.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

from training import robustness as R

#: Wider than the audit's ten: emojis of every tone, so no emoji is a label cue.
TRAIN_EMOJI = ("😂", "🤣", "😭", "🙏", "🔥", "💯", "👍", "👇", "😡", "🤬", "❤️", "💔", "🇵🇰", "✨", "🙄", "😤", "🤲",
               "👀", "💀", "🥲", "😎", "🌙", "🤝", "😊", "🥺", "😅", "👏", "🌹", "⚽", "🏏")


def emojis(text: str, rng: random.Random) -> str:
    """One to a few emojis between words or at the end (about one per six words)."""
    words = text.split(" ")
    for _ in range(rng.randint(1, max(1, len(words) // 6))):
        words.insert(rng.randrange(0, len(words) + 1), rng.choice(TRAIN_EMOJI) * rng.choice((1, 1, 1, 2, 3)))
    return " ".join(words)


_ALL = ("en", "ur", "roman_ur")
FAMILIES: dict[str, tuple[Callable[[str, random.Random], str], tuple[str, ...]]] = {
    "emoji": (emojis, _ALL),
    "elongation": (R.elongation, _ALL),
    "leetspeak": (R.leetspeak, ("en", "roman_ur")),
    "script_switch": (R.script_switch, ("ur", "roman_ur")),
    # Roman Urdu has no standard spelling (kafir / kaafir, nahi / nhi, ke / k): the audit lost 7 points of
    # extremist flags to these variants (docs/EVALUATION.md, session 13).
    "roman_spelling": (R.roman_spelling, ("roman_ur",)),
}


def augment(texts: Sequence[str], langs: Sequence[str | None], share: float, seed: int
            ) -> tuple[list[str], dict[str, int]]:
    """``texts`` with a ``share`` of them rewritten by one family that applies to their language; returns the texts
    and how many each family changed. Deterministic for a seed (a row's draw does not depend on other rows')."""
    out, changed = [], {name: 0 for name in FAMILIES}
    for i, (text, lang) in enumerate(zip(texts, langs)):
        rng = random.Random(f"counterpoint-augment:{seed}:{i}:{text}")
        if share > 0 and rng.random() < share:
            names = [name for name, (_, langs_) in FAMILIES.items() if (lang or "en") in langs_]
            name = rng.choice(names)
            new = FAMILIES[name][0](text, rng)
            if new != text:
                changed[name] += 1
                text = new
        out.append(text)
    return out, changed
