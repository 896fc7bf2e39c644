"""Apply the wave-7 rewrites (``data/written/rewrite_<lang>.jsonl``) to the written corpus files.

Wave 7 (issue 9, "cue-free written corpus"): in the first waves, counter-speech rows were about twice as long as the
extremist and neutral rows of their family, with more sentences, so a surface-feature probe could tell the label
from length and punctuation alone. Each rewrite keeps the row's id, label, kind, family and language and gives it a
length and sentence count like its family's other rows (counter rows shortened; some neutral rows punctuated). The
rewritten row records ``rewritten: "w7"``; the text before is in git history.

Run from the repository root: ``python data/written/apply_rewrites.py`` (idempotent).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABELED = ROOT / "data" / "labeled"


def main() -> None:
    new: dict[str, str] = {}
    for path in sorted((ROOT / "data" / "written").glob("rewrite_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                new[row["id"]] = row["text"]
    for split in ("train", "dev", "test"):
        path = LABELED / f"{split}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        changed = 0
        for row in rows:
            text = new.get(row["id"])
            if text is not None and text.strip() and row["text"] != text:
                row["text"], row["rewritten"] = text, "w7"
                changed += 1
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {changed} rows rewritten")
    missing = set(new) - {json.loads(line)["id"] for s in ("train", "dev", "test")
                          for line in (LABELED / f"{s}.jsonl").read_text(encoding="utf-8").splitlines() if line}
    if missing:
        raise SystemExit(f"{len(missing)} rewrite ids are not in the corpus: {sorted(missing)[:5]}")


if __name__ == "__main__":
    main()
