"""New written rows that come too close to a held-out row: the functional suite (which written training rows must
not copy) and the written and real dev and test files.

Closeness is word 3-gram containment (shared 3-grams over the smaller row's 3-grams) after ``normalize``, lower
case and every group word replaced by one token (``training.bias.mask_groups``, the bias audit's lexicon), so "Shia
X nahi hain" and "Hindu X nahi hain" count as the same frame. Rows at or over ``--threshold`` (0.5) are printed
with their nearest held-out row; ``--drop FILE`` writes their ids as a JSON list. Wave 9 (DATASHEET §14) dropped 10
of 860 rows this way.

Run from the repository root: ``.venv/bin/python data/written/near_heldout.py data/written/wave9_*.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from training.bias import mask_groups  # noqa: E402

HELD_OUT = [*sorted((ROOT / "data" / "functional").glob("*.jsonl")),
            *(ROOT / "data" / "labeled" / f"{s}.jsonl" for s in ("dev", "test", "dev.real", "test.real"))]


def grams(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", mask_groups(text))
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def nearest(row_grams: set, held: list[tuple[str, str, set]]) -> tuple[float, str, str]:
    return max(((len(row_grams & g) / min(len(row_grams), len(g)), src, text) for src, text, g in held if g),
               default=(0.0, "", ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--drop", type=Path, help="write the ids at or over the threshold here (JSON list)")
    args = ap.parse_args(argv)
    held = [(p.name, r["text"], grams(r["text"]))
            for p in HELD_OUT if p.is_file()
            for r in (json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip())]
    close = []
    for path in args.files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            g = grams(row["text"])
            if len(g) < 2:  # one- and two-word rows: nothing to measure
                continue
            score, src, text = nearest(g, held)
            if score >= args.threshold:
                close.append(row["id"])
                print(f"{score:.2f} {row['id']} | {row['text'][:90]}\n      {src} | {text[:90]}")
    print(f"{len(close)} row(s) at or over {args.threshold}")
    if args.drop:
        args.drop.write_text(json.dumps(close) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
