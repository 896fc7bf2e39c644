"""A further model-surfaced annotation round: real posts the *current default* flags or is unsure about.

Usage: python data/real/surface_more.py --background DIR --model models/default --source davidson_tweets \
           --name en3 --n 350 [--pool 6000]

Posts already in any work file (data/real/work/*.jsonl) are left out. From a seeded random pool of ``--pool``
distinct, usable posts of the source, the model scores each one under its default profile; the round is ``--n``
posts drawn at random from those it flags (label extremist) or puts in its review band, half and half where both
are large enough. Every record says why it was picked (`reason`: ``flagged_by_default`` or
``review_band_of_default``, and the model version in `surfaced_by`), and a seeded 20% is marked `double: true` for
the second, independent annotator. The pool's flag and band rates are printed (they are the model's rates on
unannotated real posts of this source).

Where the rows go (build_corpus.py): a round surfaced by the model is the hard-negative and rare-positive
material, so all of it goes to *train*; dev and test keep the posts they had, so that the model trained with it can
be compared with the one before on the same real test posts.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_sample import distinct, read  # noqa: E402

LANG = {"davidson_tweets": "en", "roman_urdu_uci": "roman_ur", "dakshina_ur": "ur"}
SEED = 2027


def annotated_ids() -> set[str]:
    ids: set[str] = set()
    for path in (ROOT / "data/real/work").glob("*.jsonl"):
        ids.update(r["id"] for r in read(path))
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--background", required=True, type=Path)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--source", required=True, choices=sorted(LANG))
    ap.add_argument("--name", required=True, help="work file name (data/real/work/NAME.jsonl)")
    ap.add_argument("--n", type=int, default=350)
    ap.add_argument("--pool", type=int, default=6000)
    args = ap.parse_args()
    out = ROOT / "data/real/work" / f"{args.name}.jsonl"
    if out.exists():
        sys.exit(f"{out} exists: a drawn round is committed as drawn; choose another --name")
    rng = random.Random(f"{SEED}:{args.name}")
    done = annotated_ids()
    rows = [r for r in distinct(read(args.background / f"{args.source}.jsonl")) if r["id"] not in done]
    pool = rng.sample(rows, min(args.pool, len(rows)))

    from serving.predictor import load_predictor
    from serving.profiles import resolve

    predictor = load_predictor(args.model)
    profile = resolve(predictor.meta)
    preds = predictor.predict([r["text"] for r in pool], profile)
    flagged = [r for r, p in zip(pool, preds) if p.flagged]
    band = [r for r, p in zip(pool, preds) if p.review and not p.flagged]
    print(f"{args.source}: pool {len(pool)} unannotated posts; {predictor.meta.name} {predictor.meta.version} "
          f"({profile.name}) flags {len(flagged)} ({len(flagged) / len(pool):.1%}), review band only {len(band)} "
          f"({len(band) / len(pool):.1%})")
    k_flag = min(len(flagged), max(args.n // 2, args.n - len(band)))
    picked = [(r, "flagged_by_default") for r in rng.sample(flagged, k_flag)]
    picked += [(r, "review_band_of_default") for r in rng.sample(band, min(len(band), args.n - k_flag))]
    rng.shuffle(picked)
    doubles = set(rng.sample(range(len(picked)), round(0.2 * len(picked))))
    version = f"{predictor.meta.name} {predictor.meta.version}"
    with out.open("w", encoding="utf-8") as fh:
        for i, (r, reason) in enumerate(picked):
            fh.write(json.dumps({"id": r["id"], "text": r["text"], "lang": LANG[args.source], "part": "surfaced",
                                 "reason": reason, "surfaced_by": version, "background": args.source,
                                 "double": i in doubles}, ensure_ascii=False) + "\n")
    print(f"wrote {out}: {len(picked)} posts ({k_flag} flagged, {len(picked) - k_flag} review band; "
          f"{len(doubles)} double)")


if __name__ == "__main__":
    main()
