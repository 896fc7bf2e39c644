"""Select the English real posts on the abuse / group-hate boundary for an independent second pass (issue 9).

Usage: python data/real/make_boundary.py   (from the repository root; reads data/labeled/{dev,test}.real.jsonl)

Writes data/real/work/en_boundary.jsonl: every English real **post** (not a reply) in the dev and test splits that
was labelled by one annotator only, is labelled `neutral` or `extremist`, and contains a slur, a profanity aimed at
people, or a group word from the list below. The selection uses no model and no label but the two-way one above, so
the pass is blind to what any model flags; the work file carries no labels (the second annotator must not see the
first pass). Dev and test first: they are the yardstick that thresholds are chosen on and results reported on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "data/real/work/en_boundary.jsonl"
#: Slurs (hard and borrowed), abuse words and group words that put a post near the §11.2-§11.7 boundary.
WORDS = (r"nig+(?:a|er|ga|guh|az|ers|as|gaz)?s?\b|nicca|coon|spear ?chucker|honk(?:e?y|ie)|cracker|kike|spic"
         r"|wetback|beaner|chink|gook|towel ?head|rag ?head|sand ?n|paki|muzzie|jungle bunny|porch monkey|monkey|ape"
         r"|ghetto|thug|redneck|hillbill|white trash|trailer trash|fag|dyke|tranny|queer|homo\b|retard|mongoloid|hoe"
         r"|bitch|slut|whore|cunt|mudshark|savage|animal|vermin|cockroach|subhuman|muslim|islam|jew|black|white"
         r"|asian|mexican|african|arab|immigrant|refugee|gay|lesbian|women|girls|females|feminis|libtard|leftist"
         r"|liberal|globalist")
PATTERN = re.compile(r"\b(?:" + WORDS + ")", re.I)


def main() -> None:
    picked = []
    for split in ("dev", "test"):
        with (ROOT / f"data/labeled/{split}.real.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                if (r["lang"] == "en" and not r.get("context") and r["annotators"] == 1
                        and r["label"] in ("neutral", "extremist") and PATTERN.search(r["text"])):
                    picked.append({"id": r["source_id"], "text": r["text"], "lang": "en", "part": r["part"],
                                   "reason": "boundary_recheck", "background": r["source"], "double": True})
    picked.sort(key=lambda r: r["id"])
    with OUT.open("w", encoding="utf-8") as fh:
        for r in picked:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(picked)} posts")


if __name__ == "__main__":
    main()
