"""Draw the unlabelled real posts a distilled student learns its teacher's scores on (reproducible, seeded).

Usage: python data/unlabeled/build.py --background DIR [--per-source 2000] [--out data/unlabeled/background.jsonl]
                                     [--skip FILE ...]

The two files here were drawn with it (each against the annotation samples of its day; later samples only add ids,
so a rebuild now draws other posts):
  background.jsonl  --per-source 2000 (6,000 posts; `distill.unlabeled`; 5 Dec 2026)
  adapt.jsonl       --per-source 5000 --skip data/unlabeled/background.jsonl (15,000 more, 6 Dec 2026; with
                    background.jsonl the text `counterpoint adapt-base` adapts the base on, training/adapt_base.py)

DIR holds the background sets named in data/LICENSES.md (roman_urdu_uci.jsonl, davidson_tweets.jsonl,
dakshina_ur.jsonl). A uniform random draw per set of the posts that are in no annotation sample
(data/real/work/*.jsonl) and in no corpus split (data/labeled/*.real.jsonl), so no dev or test post is seen even
without its label. ``--skip``: files whose posts (by ``source_id``) are not drawn again. CrowdCounter is left out:
all of it is annotated. Rows keep ``origin``, ``source``, ``source_id`` and ``licence``, and carry **no label**:
they are for `distill.unlabeled` and `counterpoint adapt-base` only.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED = 2026
SETS = {"roman_urdu_uci": ("roman_ur", "GPL-3.0"), "davidson_tweets": ("en", "MIT"),
        "dakshina_ur": ("ur", "CC-BY-SA-4.0")}


def used_ids() -> set[str]:
    """Background row ids already sampled for annotation or in the corpus (a reply's id is its thread's + /rN)."""
    ids = set()
    for path in [*(ROOT / "data/real/work").glob("*.jsonl"), *(ROOT / "data/labeled").glob("*.real.jsonl")]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                for key in ("source_id", "id", "thread"):
                    if isinstance(row.get(key), str):
                        ids.add(row[key].split("/")[0].removeprefix("real-"))
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--background", required=True, type=Path)
    ap.add_argument("--per-source", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=ROOT / "data/unlabeled/background.jsonl")
    ap.add_argument("--skip", type=Path, nargs="*", default=[], help="files of posts already drawn (source_id)")
    args = ap.parse_args()
    used = used_ids()
    for path in args.skip:
        used |= {json.loads(line)["source_id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    rng = random.Random(SEED)
    out = []
    for name, (lang, licence) in SETS.items():
        rows = [json.loads(line) for line in (args.background / f"{name}.jsonl").read_text(
            encoding="utf-8").splitlines() if line.strip()]
        seen, free = set(), []
        for row in rows:
            key = " ".join(row["text"].lower().split())
            if row["id"] not in used and key and key not in seen:
                seen.add(key)
                free.append(row)
        pick = rng.sample(free, min(args.per_source, len(free)))
        out += [{"id": f"unlabeled-{row['id']}", "text": row["text"], "lang": lang, "origin": "real",
                 "source": name, "source_id": row["id"], "licence": licence} for row in pick]
        print(f"{name}: {len(rows)} rows, {len(free)} unused and distinct, {len(pick)} drawn")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in out:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} rows to {args.out}")


if __name__ == "__main__":
    main()
