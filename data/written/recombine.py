"""Recombined reply pairs: training replies under more parents, kept where an annotator agrees (issue 15).

    python data/written/recombine.py draw  [--per-reply 2] [--seed 13]   # work files for the annotators
    python data/written/recombine.py build                               # data/labeled/train.recombined.jsonl

``draw`` proposes new parents for the replies of ``data/labeled/train.context.jsonl`` with the label a rule gives
(``training/context_mix.py``: a clear reply keeps its label; a reply that agrees with or rejects a flagged parent
takes or flips the parent's label) and writes

- ``data/written/work/recombined.jsonl``: what the annotators see: ``id``, ``lang``, ``context``, ``text``;
- ``data/written/work/recombined.rule.jsonl``: the full candidates with the rule and its label (not shown to them).

Annotators label each reply as read under its parent (GUIDELINES.md §12.2, §4, §11.8) into
``data/written/labels/recombined.<annotator>.jsonl`` (``{"id", "label", "kind"}``), blind to the rule.

``build`` keeps the candidates whose annotator label equals the rule's label (the others are dropped, not
relabelled: a reply written for another parent that reads oddly is not a good training pair) and writes them, in the
format of the written pairs, to ``data/labeled/train.recombined.jsonl``; it prints the agreement of the rule and the
annotators per language and rule (``AGREEMENT`` in ``data/written/labels/recombined.agreement.json``). Only training
replies and training parents are used: dev and test pairs are never touched.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from split import read, write  # noqa: E402  (data/written/split.py: the corpus's JSONL reader and writer)
from training.context_mix import candidates  # noqa: E402

LABELED = ROOT / "data" / "labeled"
WORK = ROOT / "data" / "written" / "work"
LABELS = ROOT / "data" / "written" / "labels"
BLIND_FIELDS = ("id", "lang", "context", "text")
#: Fields of a written pair row (data/labeled/*.context.jsonl), in their order.
PAIR_FIELDS = ("id", "context", "text", "label", "alone_label", "ambiguous_alone", "context_label", "pattern", "lang",
               "kind", "source", "family", "register")


def draw(per_reply: int, seed: int) -> None:
    blind, full = WORK / "recombined.jsonl", WORK / "recombined.rule.jsonl"
    if blind.exists() or full.exists():
        sys.exit(f"{blind} exists: the candidates were drawn and may be labelled already; remove it to draw again")
    rows, counts = candidates(read(LABELED / "train.context.jsonl"), per_reply, seed)
    write(full, rows)
    write(blind, [{k: r[k] for k in BLIND_FIELDS} for r in rows])
    print(f"{len(rows)} candidates ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}) -> {blind}")


def kappa(a: list[str], b: list[str]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else None


def build() -> None:
    rule = {r["id"]: r for r in read(WORK / "recombined.rule.jsonl")}
    labelled = {r["id"]: r for path in sorted(LABELS.glob("recombined.*.jsonl")) for r in read(path)}
    missing = [i for i in rule if i not in labelled]
    if missing:
        sys.exit(f"{len(missing)} candidates have no annotator label yet (first: {missing[0]})")
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    kept, moves = [], Counter()
    for i, r in rule.items():
        human = labelled[i]["label"]
        for key in ("all", r["lang"], r["rule"]):
            groups[key].append((r["rule_label"], human))
        if human == r["rule_label"]:
            row = {**r, "label": human, "kind": labelled[i].get("kind") or r.get("kind", "")}
            kept.append({**{k: row.get(k) for k in PAIR_FIELDS}, "recombined": r["rule"]})
        else:
            moves[f"{r['rule']}: {r['rule_label']} -> {human}"] += 1
    agreement = {key: {"n": len(p), "agreement": round(sum(a == b for a, b in p) / len(p), 3),
                       "kappa": None if (k := kappa(*map(list, zip(*p)))) is None else round(k, 3)}
                 for key, p in groups.items()}
    agreement["dropped"] = dict(moves.most_common())
    write(LABELED / "train.recombined.jsonl", kept)
    (LABELS / "recombined.agreement.json").write_text(json.dumps(agreement, indent=2, ensure_ascii=False) + "\n",
                                                      encoding="utf-8")
    print(f"{len(kept)} of {len(rule)} candidates kept -> {LABELED / 'train.recombined.jsonl'}")
    for key, v in agreement.items():
        print(f"  {key}: {v}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("draw", help="write the candidates for annotation")
    d.add_argument("--per-reply", type=int, default=2)
    d.add_argument("--seed", type=int, default=13)
    sub.add_parser("build", help="keep the candidates the annotators agree with")
    args = parser.parse_args()
    draw(args.per_reply, args.seed) if args.command == "draw" else build()


if __name__ == "__main__":
    main()
