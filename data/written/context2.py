"""Round 2 of the written reply pairs: replies whose stance only their parent shows (issue 15), training only.

    python data/written/context2.py blind   # leakage check against dev/test, blind files for the second annotator
    python data/written/context2.py build   # agreement and kappa; the pairs both annotators agree on -> train

Why: the model reads a reply that is ambiguous alone with its parent at ~0.70 accuracy (goal 0.85), and under a
hateful parent it flags a rejecting reply about as often as an agreeing one. Round 1 (``context_<lang>.jsonl``,
1,526 pairs, split 70/15/15) has ~680 training pairs whose reply is ambiguous alone. Round 2 adds pairs built for
that reading: the same reply under a hateful, a counter-speech and an ordinary parent, and one hateful parent with an
agreeing and a rejecting reply (GUIDELINES.md §12.2-12.4).

Writers drafted ``data/written/work/context2_<lang>.draft.jsonl`` (the row format of round 1, ids ``ctx2-*``).
``blind`` drops every family whose reply or parent equals (case and spacing folded) a reply or parent of the dev or
test pairs, so nothing held out is trained on, and writes ``work/context2_blind.<lang>.jsonl`` (``{"id", "context",
"text"}``, seeded order) for a second annotator, who labels each reply under its parent without seeing the writer's
label (``labels/context2_second.<lang>.jsonl``, ``{"id", "label"}``). ``build`` reports agreement and Cohen's kappa
per language (``labels/context2.agreement.json``) and keeps only the pairs both gave the same label:
``data/written/context2_<lang>.jsonl`` and ``data/labeled/train.context2.jsonl``. Dev and test are not touched, so
the context figures stay comparable with earlier rounds.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from recombine import kappa
from split import read, write

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = ROOT / "data" / "written"
LABELED = ROOT / "data" / "labeled"
LABELS = WRITTEN / "labels"
WORK = WRITTEN / "work"
LANGS = ("en", "roman_ur", "ur")
LABEL_NAMES = ("extremist", "counter_narrative", "neutral")


def fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def held_out() -> set[str]:
    seen = set()
    for split in ("dev", "test"):
        for r in read(LABELED / f"{split}.context.jsonl"):
            seen.add(fold(r["text"]))
            if r.get("context"):
                seen.add(fold(r["context"]))
    return seen


def checked(rows: list[dict], lang: str) -> list[dict]:
    """The draft's rows after the format and leakage checks (a family with a held-out text goes whole)."""
    seen = held_out()
    problems = []
    for r in rows:
        if r.get("lang") != lang or r.get("label") not in LABEL_NAMES or r.get("context_label") not in LABEL_NAMES:
            problems.append(r.get("id"))
        elif r.get("pattern") != f"{r['context_label']}->{r['label']}":
            r["pattern"] = f"{r['context_label']}->{r['label']}"
    if problems:
        sys.exit(f"{lang}: {len(problems)} rows with a bad lang or label (first: {problems[0]})")
    if len({r["id"] for r in rows}) != len(rows):
        sys.exit(f"{lang}: duplicate ids in the draft")
    leaked = {r["family"] for r in rows if fold(r["text"]) in seen or fold(r["context"]) in seen}
    if leaked:
        print(f"{lang}: {len(leaked)} families dropped, a text equal to a dev/test reply or parent")
    return [r for r in rows if r["family"] not in leaked]


def blind(langs: tuple[str, ...] = LANGS) -> None:
    for lang in langs:
        rows = checked(read(WORK / f"context2_{lang}.draft.jsonl"), lang)
        out = [{"id": r["id"], "context": r["context"], "text": r["text"]} for r in rows]
        random.Random(f"counterpoint:context2:{lang}").shuffle(out)
        write(WORK / f"context2_blind.{lang}.jsonl", out)
        print(f"{lang}: {len(out)} pairs -> {WORK / f'context2_blind.{lang}.jsonl'}")


def build() -> None:
    agreement, kept_all, all_a, all_b = {}, [], [], []
    for lang in LANGS:
        rows = checked(read(WORK / f"context2_{lang}.draft.jsonl"), lang)
        second = {r["id"]: r["label"] for r in read(LABELS / f"context2_second.{lang}.jsonl")}
        missing = [r["id"] for r in rows if r["id"] not in second]
        if missing:
            sys.exit(f"{len(missing)} {lang} pairs have no second label (first: {missing[0]})")
        a, b = [r["label"] for r in rows], [second[r["id"]] for r in rows]
        all_a, all_b = all_a + a, all_b + b
        kept = [r for r in rows if second[r["id"]] == r["label"]]
        moves = Counter(f"{x} -> {y}" for x, y in zip(a, b) if x != y)
        by_pattern = defaultdict(lambda: [0, 0])
        for r in rows:
            by_pattern[r["pattern"]][0] += 1
            by_pattern[r["pattern"]][1] += second[r["id"]] == r["label"]
        agreement[lang] = {"n": len(a), "agreement": round(sum(x == y for x, y in zip(a, b)) / len(a), 3),
                           "kappa": round(kappa(a, b), 3), "writer -> second": dict(moves.most_common()),
                           "kept": len(kept), "kept ambiguous alone": sum(bool(r["ambiguous_alone"]) for r in kept),
                           "agreement by pattern": {k: round(v[1] / v[0], 3) for k, v in sorted(by_pattern.items())}}
        write(WRITTEN / f"context2_{lang}.jsonl", kept)
        kept_all += kept
    same = sum(x == y for x, y in zip(all_a, all_b))
    agreement["all"] = {"n": len(all_a), "agreement": round(same / len(all_a), 3),
                        "kappa": round(kappa(all_a, all_b), 3), "kept": len(kept_all)}
    (LABELS / "context2.agreement.json").write_text(json.dumps(agreement, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")
    write(LABELED / "train.context2.jsonl", kept_all)
    for key, v in agreement.items():
        print(f"{key}: {json.dumps(v, ensure_ascii=False)}")
    print(f"data/labeled/train.context2.jsonl: {len(kept_all)} pairs, "
          f"{sum(bool(r['ambiguous_alone']) for r in kept_all)} with a reply ambiguous alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("blind", "build"))
    parser.add_argument("--lang", choices=LANGS, action="append", help="blind: only these languages (default all)")
    args = parser.parse_args()
    blind(tuple(args.lang or LANGS)) if args.command == "blind" else build()


if __name__ == "__main__":
    main()
