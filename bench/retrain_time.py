"""Issue 12's goal: `counterpoint retrain` (the corpus + a feedback export of 1,000 rows) ends with the comparison
table in <= 15 minutes on a 2-core machine.

The feedback file is made the way a deployment makes it, through the review store (SQLite in a temp folder): the
champion scores 1,000 posts, they are enqueued as `POST /v1/review/items` does, a moderator decides each one (the
corpus label: agreeing with the model or correcting it), and `counterpoint feedback export` writes the file. The
posts are the corpus's real-post training rows first, then written training rows (never dev or test rows: those
decide the challenger's thresholds and its comparison). Then `counterpoint retrain` runs in its own process, timed
end to end, and its stage times (train / compare) are read from compare.json.

    python bench/retrain_time.py [--champion models/default] [--rows 1000] [--set train.threads=2]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GOAL_S = 15 * 60


def posts(n: int) -> list[dict]:
    """``n`` training rows, real posts first (a moderator queue holds real posts)."""
    picked = []
    for name in ("train.real.jsonl", "train.jsonl"):
        picked += [json.loads(line) for line in open(ROOT / "data/labeled" / name, encoding="utf-8")]
    picked = picked[:n]
    if len(picked) < n:
        sys.exit(f"only {len(picked)} training rows; ask for fewer with --rows")
    return picked


def make_feedback(champion: Path, rows: list[dict], folder: Path) -> tuple[Path, dict]:
    from serving.predictor import load_predictor
    from serving.profiles import resolve
    from serving.review.export import export_feedback
    from serving.review.store import ReviewStore, Scored, Who

    predictor = load_predictor(champion)
    profile = resolve(predictor.meta)
    texts = [r["text"] for r in rows]
    started = time.perf_counter()
    predictions = predictor.predict(texts, profile)
    scored_s = time.perf_counter() - started
    store = ReviewStore(f"sqlite:///{folder / 'review.db'}", store_texts=True)
    ids = store.enqueue(Scored.of(t, p, profile, predictor.meta.name, predictor.meta.version,
                                  r.get("source_id") or r["id"]) for t, p, r in zip(texts, predictions, rows))
    moderator = Who("bench-moderator", "bench-key")
    for item_id, p, r in zip(ids, predictions, rows):
        store.decide(item_id, moderator, r["label"], None if p.label == r["label"] else "model was wrong")
    out = folder / "feedback.jsonl"
    summary = export_feedback(store, out)
    store.close()
    return out, {"scored_s": round(scored_s, 1), "written": summary.written, "overridden": summary.overridden}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--champion", type=Path, default=ROOT / "models/default")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="passed to counterpoint retrain")
    ap.add_argument("--keep", type=Path, help="write the challenger here (default: a temp folder, removed)")
    args = ap.parse_args()
    if not (args.champion / "model_meta.json").is_file():
        sys.exit(f"{args.champion} is not a model folder; train one first (make train)")
    with tempfile.TemporaryDirectory(prefix="retrain-bench-") as tmp:
        tmp = Path(tmp)
        feedback, fb = make_feedback(args.champion, posts(args.rows), tmp)
        print(f"feedback export: {fb['written']} rows ({fb['overridden']} corrected the model), champion scored "
              f"them in {fb['scored_s']} s", flush=True)
        out = args.keep or tmp / "challenger"
        cmd = [str(Path(sys.executable).with_name("counterpoint")), "retrain", "--champion", str(args.champion),
               "--feedback", str(feedback), "--output", str(out), "--quiet"]
        for o in args.overrides:
            cmd += ["--set", o]
        load0 = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode:
            sys.exit(f"retrain failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        print(proc.stdout)
        result = json.loads((out / "eval" / "compare.json").read_text(encoding="utf-8"))
        secs = result["seconds"]
        print(f"retrain wall {wall:.0f} s (train {secs['train']:.0f} s, compare {secs['compare']:.0f} s); goal "
              f"{GOAL_S} s: {'met' if wall <= GOAL_S else 'missed'}  (load average {load0:.1f} -> "
              f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
