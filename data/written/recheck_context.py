"""A blind second pass over the written reply pairs, and its adjudication (issue 15).

    python data/written/recheck_context.py compare   # agreement, and the disagreements to adjudicate
    python data/written/recheck_context.py apply     # settled labels into data/written/context_<lang>.jsonl

The written pairs (``data/written/context_<lang>.jsonl``) were labelled once, by their writer. A second annotator
labelled every reply under its parent, blind to the first label (``data/written/labels/context_recheck.<lang>.jsonl``,
``{"id", "label", "kind"}``, GUIDELINES.md §12.2).

``compare`` prints the agreement and Cohen's kappa per language, writes them to
``data/written/labels/context_recheck.agreement.json``, and writes each disagreement to
``data/written/work/context_disagreements.jsonl`` with the two labels as ``label_a`` / ``label_b`` in a seeded random
order, so the adjudicator cannot tell which was the writer's. The adjudicator writes
``data/written/labels/context_adjudicated.jsonl`` (``{"id", "label", "kind", "rule"}``).

``apply`` sets ``label``, ``kind`` and ``pattern`` of each adjudicated pair in the written files (``alone_label`` and
``ambiguous_alone`` describe the reply alone and do not change); then ``python data/written/split.py`` rewrites the
corpus files (the split is by family and does not depend on labels).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

from recombine import kappa
from split import read, write

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = ROOT / "data" / "written"
LABELS = WRITTEN / "labels"
WORK = WRITTEN / "work"
LANGS = ("en", "roman_ur", "ur")


def compare() -> None:
    if (LABELS / "context_adjudicated.jsonl").exists():
        sys.exit(f"{LABELS / 'context_adjudicated.jsonl'} exists: the disagreements were settled and applied, so the "
                 "written files hold the settled labels; comparing now would overwrite the recorded agreement")
    rng = random.Random("counterpoint:context-recheck")
    agreement, disagreements, all_a, all_b = {}, [], [], []
    for lang in LANGS:
        first = read(WRITTEN / f"context_{lang}.jsonl")
        second = {r["id"]: r for r in read(LABELS / f"context_recheck.{lang}.jsonl")}
        missing = [r["id"] for r in first if r["id"] not in second]
        if missing:
            sys.exit(f"{len(missing)} {lang} pairs have no second label (first: {missing[0]})")
        a, b = [r["label"] for r in first], [second[r["id"]]["label"] for r in first]
        all_a, all_b = all_a + a, all_b + b
        moves = Counter(f"{x} -> {y}" for x, y in zip(a, b) if x != y)
        agreement[lang] = {"n": len(a), "agreement": round(sum(x == y for x, y in zip(a, b)) / len(a), 3),
                           "kappa": round(kappa(a, b), 3), "first -> second": dict(moves.most_common())}
        for r in first:
            other = second[r["id"]]
            if other["label"] != r["label"]:
                pair = [(r["label"], r.get("kind", "")), (other["label"], other.get("kind", ""))]
                rng.shuffle(pair)
                disagreements.append({"id": r["id"], "lang": lang, "context": r["context"], "text": r["text"],
                                      "label_a": pair[0][0], "kind_a": pair[0][1],
                                      "label_b": pair[1][0], "kind_b": pair[1][1]})
    same = sum(x == y for x, y in zip(all_a, all_b))
    agreement["all"] = {"n": len(all_a), "agreement": round(same / len(all_a), 3),
                        "kappa": round(kappa(all_a, all_b), 3)}
    (LABELS / "context_recheck.agreement.json").write_text(json.dumps(agreement, indent=2) + "\n", encoding="utf-8")
    write(WORK / "context_disagreements.jsonl", disagreements)
    for key, v in agreement.items():
        print(f"{key}: {v}")
    print(f"{len(disagreements)} disagreements -> {WORK / 'context_disagreements.jsonl'}")


def apply() -> None:
    settled = {r["id"]: r for r in read(LABELS / "context_adjudicated.jsonl")}
    moved = Counter()
    for lang in LANGS:
        path = WRITTEN / f"context_{lang}.jsonl"
        rows = read(path)
        for r in rows:
            s = settled.get(r["id"])
            if s and s["label"] != r["label"]:
                moved[f"{lang}: {r['label']} -> {s['label']}"] += 1
                r["label"], r["kind"] = s["label"], s.get("kind") or r.get("kind", "")
                r["pattern"] = f"{r['context_label']}->{r['label']}"
        write(path, rows)
    print(f"{sum(moved.values())} labels moved: {dict(moved.most_common())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("compare", "apply"))
    args = parser.parse_args()
    compare() if args.command == "compare" else apply()


if __name__ == "__main__":
    main()
