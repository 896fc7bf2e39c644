"""Select the English real posts on the abuse / group-hate boundary for an independent second pass (issue 9).

Usage: python data/real/make_boundary.py [--split train]   (from the repository root; reads data/labeled/*.real.jsonl)

Writes data/real/work/en_boundary.jsonl: every English real **post** (not a reply) in the dev and test splits that
was labelled by one annotator only, is labelled `neutral` or `extremist`, and contains a slur, a profanity aimed at
people, or a group word from the list below. The selection uses no model and no label but the two-way one above, so
the pass is blind to what any model flags; the work file carries no labels (the second annotator must not see the
first pass). Dev and test first: they are the yardstick that thresholds are chosen on and results reported on.
With ``--split train`` it writes data/real/work/en_boundary_train.jsonl, the same selection over the training split
(the second round, once dev and test had shown that the labels on this boundary hold). Run each mode once, before
its pass is built into the corpus: afterwards the rechecked posts count two annotators and are no longer selected.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "data/real/work"
#: Slurs (hard and borrowed), abuse words and group words that put a post near the §11.2-§11.7 boundary.
WORDS = (r"nig+(?:a|er|ga|guh|az|ers|as|gaz)?s?\b|nicca|coon|spear ?chucker|honk(?:e?y|ie)|cracker|kike|spic"
         r"|wetback|beaner|chink|gook|towel ?head|rag ?head|sand ?n|paki|muzzie|jungle bunny|porch monkey|monkey|ape"
         r"|ghetto|thug|redneck|hillbill|white trash|trailer trash|fag|dyke|tranny|queer|homo\b|retard|mongoloid|hoe"
         r"|bitch|slut|whore|cunt|mudshark|savage|animal|vermin|cockroach|subhuman|muslim|islam|jew|black|white"
         r"|asian|mexican|african|arab|immigrant|refugee|gay|lesbian|women|girls|females|feminis|libtard|leftist"
         r"|liberal|globalist")
PATTERN = re.compile(r"\b(?:" + WORDS + ")", re.I)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("dev+test", "train"), default="dev+test")
    args = ap.parse_args()
    splits, out = (("train",), WORK / "en_boundary_train.jsonl") if args.split == "train" else \
        (("dev", "test"), WORK / "en_boundary.jsonl")
    picked = []
    for split in splits:
        with (ROOT / f"data/labeled/{split}.real.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                if (r["lang"] == "en" and not r.get("context") and r["annotators"] == 1
                        and r["label"] in ("neutral", "extremist") and PATTERN.search(r["text"])):
                    picked.append({"id": r["source_id"], "text": r["text"], "lang": "en", "part": r["part"],
                                   "reason": "boundary_recheck", "background": r["source"], "double": True})
    picked.sort(key=lambda r: r["id"])
    if out.exists():
        raise SystemExit(f"{out.relative_to(ROOT)} exists: a drawn round is committed as drawn")
    with out.open("w", encoding="utf-8") as fh:
        for r in picked:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {out.relative_to(ROOT)}: {len(picked)} posts")


if __name__ == "__main__":
    main()
