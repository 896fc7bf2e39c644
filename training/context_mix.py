"""Reply-context pairs recombined: written replies put under more parents than they were written for (issue 15).

The written parent -> reply pairs (``data/labeled/*.context.jsonl``) are minimal pairs: one reply under two or three
parents. A reply's label follows from its own words when it is *clear alone* (``ambiguous_alone: false``), and from
its relation to the parent when it is not: a reply that agrees ("W take", "بالکل ٹھیک") takes a flagged parent's
label, one that rejects a hateful parent ("May Allah guide you") is counter-speech. With two or three parents a
reply, the model sees each relation rarely, and the parent's own words pull clear replies towards the parent's label
(read with the parent, clear replies were judged worse than alone: docs/EVALUATION.md).

:func:`candidates` proposes, for each reply of the *training* pairs whose rule is known, ``per_reply`` new parents
drawn from the other training pairs of its language, with the label the rule gives (``rule_label``):

- ``keep``: a clear reply keeps its own label under any parent;
- ``agree``: an ambiguous reply whose rows under extremist and counter-speech parents all take the parent's label
  gets extremist or counter-speech parents, and their label;
- ``disagree``: one whose rows under flagged parents all take the other flag gets the other flag.

Ambiguous replies whose label under a *neutral* parent depends on what the parent is about ("they should all be
thrown out" under a post about a group or about a cricket team) have no rule that holds across parents: their new
parents are flagged posts only, and replies whose rows mix agreement and disagreement are not recombined.

The rule is only a proposal: a reply written for one parent can read oddly under another, and GUIDELINES.md §12.2
makes a bare dismissal of counter-speech neutral where the written pairs sometimes made it extremist. So the
candidates are labelled blind by an annotator under GUIDELINES.md (``data/written/recombine.py``), and only the
pairs where the annotator and the rule agree become training rows.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

FLAGS = ("extremist", "counter_narrative")
_FLIP = {"extremist": "counter_narrative", "counter_narrative": "extremist"}


def reply_rule(rows: list[dict]) -> str | None:
    """``keep``, ``agree`` or ``disagree`` for the pair rows of one reply (one text, one language), or None."""
    if len({r.get("alone_label") for r in rows}) == 1 and all(r["label"] == r.get("alone_label") for r in rows):
        return "keep"
    relations = set()
    for r in rows:
        parent = r.get("context_label")
        if parent in FLAGS:
            relations.add("agree" if r["label"] == parent else "disagree" if r["label"] == _FLIP[parent] else "other")
    return relations.pop() if len(relations) == 1 and relations <= {"agree", "disagree"} else None


def rule_label(rule: str, reply_alone: str, parent_label: str) -> str:
    """The label ``rule`` gives a reply (alone: ``reply_alone``) under a parent labelled ``parent_label``."""
    if rule == "keep":
        return reply_alone
    if parent_label not in FLAGS:
        raise ValueError(f"the {rule!r} rule holds under flagged parents only, not {parent_label!r}")
    return parent_label if rule == "agree" else _FLIP[parent_label]


def candidates(pairs: list[dict], per_reply: int, seed: int) -> tuple[list[dict], Counter]:
    """New parent -> reply rows for the pair rows ``pairs`` (training rows only), and counts by rule.

    Each candidate keeps the reply's fields (family, language, alone label, ambiguity) and gets a new ``id``
    (``<first row id>~r<k>``), ``context``, ``context_label``, ``pattern``, ``rule`` and ``rule_label``; ``kind`` is
    the kind of the reply's row with that label, or "" (then it teaches no sub-type)."""
    replies: dict[tuple[str, str], list[dict]] = defaultdict(list)
    parents: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in pairs:
        if isinstance(r.get("context"), str) and r.get("context_label") in (*FLAGS, "neutral"):
            replies[(r["lang"], r["text"])].append(r)
            parents[r["lang"]][r["context_label"]].add(r["context"])
    rng = random.Random(f"{seed}:context-recombine")
    out: list[dict] = []
    counts: Counter = Counter()
    for (lang, _text), rows in sorted(replies.items()):
        rule = reply_rule(rows)
        if rule is None:
            counts["no_rule"] += 1
            continue
        seen = {r["context"] for r in rows}
        labels = (*FLAGS, "neutral") if rule == "keep" else FLAGS
        pool = [(p, lab) for lab in labels for p in sorted(parents[lang].get(lab, ())) if p not in seen]
        kinds = {r["label"]: r.get("kind", "") for r in rows}
        first = rows[0]
        for k, (parent, parent_label) in enumerate(rng.sample(pool, min(per_reply, len(pool)))):
            label = rule_label(rule, first["alone_label"], parent_label)
            out.append({**{f: v for f, v in first.items() if f != "label"}, "id": f"{first['id']}~r{k}", "context": parent, "context_label": parent_label,
                        "pattern": f"{parent_label}->{label}", "kind": kinds.get(label, ""), "rule": rule,
                        "rule_label": label})
            counts[rule] += 1
    return out, counts
