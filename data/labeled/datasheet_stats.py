"""Recompute the whole-corpus tables of DATASHEET.md §11 (all waves together).

Run from the repository root:

    .venv/bin/python data/labeled/datasheet_stats.py                 # the current files
    .venv/bin/python data/labeled/datasheet_stats.py --dir /tmp/old   # any folder with train/dev/test.jsonl

Prints Markdown tables: counts per split x language x label (with families and rows per wave), kinds, registers
by label, length per label, quotation-mark and other surface-feature rates per label, and the surface-cue probe
(training/probe.py: fit on train, macro-F1 on test, with and without `register`, overall and per language).
To see the state before a change, export the old files first, e.g.
``mkdir /tmp/old && for s in train dev test; do git show HEAD~1:data/labeled/$s.jsonl > /tmp/old/$s.jsonl; done``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics as st
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

L = ("extremist", "counter_narrative", "neutral")
G = ("en", "roman_ur", "ur")
S = ("train", "dev", "test")
# Waves by id prefix (DATASHEET.md §2.1 and §11).
WAVES = (("w1", ("en-a", "en-b", "en-c", "ru-a", "ru-b", "ur-a", "ur-b")), ("w2", ("en-d", "en-e", "ru-c", "ur-c")),
         ("w3", ("hd-a",)), ("w4", ("sh-en", "sh-ru", "sh-ur")), ("w5", ("w5-",)), ("w6", ("w6-",)), ("w8", ("w8-",)),
         ("w9", ("w9-",)))
QUOTE = re.compile(r"[\"“”„«»‹›]|(?<!\w)['‘’]|['‘’](?!\w)")
EMOJI = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF]")
FEATURES = {"quotation mark": QUOTE, "emoji": EMOJI, "hashtag": re.compile(r"(^|\s)#\w"),
            "@mention": re.compile(r"(^|\s)@\w"), "question mark": re.compile(r"[?؟]"), "!": re.compile(r"!"),
            "digit": re.compile(r"\d"), "line break": re.compile(r"\n")}


def wave_of(rid: str) -> str:
    for name, prefixes in WAVES:
        if rid.startswith(prefixes):
            return name
    return "other"


def load(folder: Path) -> list[dict]:
    rows = []
    for s in S:
        for line in open(folder / f"{s}.jsonl", encoding="utf-8"):
            if line.strip():
                r = json.loads(line)
                r["split"], r["wave"], r["words"] = s, wave_of(r["id"]), len(r["text"].split())
                rows.append(r)
    return rows


def t(*cells) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |")


def head(*cells) -> None:
    t(*cells)
    print("|" + "|".join("---" if i < 2 else "---:" for i in range(len(cells))) + "|")


def sel(rows, **kw):
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


def f(n) -> str:
    return f"{n:,}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "data/labeled")
    ap.add_argument("--no-probe", action="store_true")
    a = ap.parse_args(argv)
    rows = load(a.dir)
    waves = [w for w, _ in WAVES if any(r["wave"] == w for r in rows)] + (["other"] if sel(rows, wave="other") else [])

    print(f"rows: {len(rows)}; per wave: {dict(Counter(r['wave'] for r in rows))}\n")
    print("### Counts: split x language x label\n")
    head("split", "lang", *L, "total", "families", *[f"{w} rows" for w in waves])
    for s in S:
        for g in G + ("all",):
            rs = sel(rows, split=s) if g == "all" else sel(rows, split=s, lang=g)
            c, w = Counter(r["label"] for r in rs), Counter(r["wave"] for r in rs)
            t(s if g != "all" else f"**{s}**", g, *[f(c[x]) for x in L], f(len(rs)), f(len({r['family'] for r in rs})),
              *[f(w[x]) for x in waves])
    c, w = Counter(r["label"] for r in rows), Counter(r["wave"] for r in rows)
    t("**all**", "all", *[f(c[x]) for x in L], f(len(rows)), f(len({r['family'] for r in rows})), *[f(w[x]) for x in waves])

    print("\n### Kinds (rows per language; share of the label)\n")
    head("label", "kind", *G, "total", "share of label")
    for (lab, kind), n in sorted(Counter((r["label"], r["kind"]) for r in rows).items(),
                                 key=lambda x: (L.index(x[0][0]), -x[1])):
        c = Counter(r["lang"] for r in rows if r["label"] == lab and r["kind"] == kind)
        t(lab, f"`{kind}`", *[c[g] for g in G], n, f"{100 * n / len(sel(rows, label=lab)):.1f}%")

    print("\n### Registers by label (all rows; in brackets wave 5 only)\n")
    head("register", *L, "total", "commonest label")
    for reg, n in Counter(r["register"] for r in rows).most_common():
        rs = sel(rows, register=reg)
        c, c5 = Counter(r["label"] for r in rs), Counter(r["label"] for r in sel(rs, wave="w5"))
        top = max(L, key=lambda x: c[x])
        t(f"`{reg}`", *[f"{c[x]} [{c5[x]}]" for x in L], n, f"{100 * c[top] / n:.0f}% {top.split('_')[0]}")

    print("\n### Length per language x label (words = whitespace tokens; chars = code points)\n")
    head("lang", "label", "n", "mean words", "median", "p10", "p90", "mean chars", "<10 words", "≥80 words",
         "w5: n", "w5: mean words", "w5: mean chars")
    for g in G:
        for lab in L:
            rs = sel(rows, lang=g, label=lab)
            ws = sorted(r["words"] for r in rs)
            r5 = sel(rs, wave="w5")
            t(g, lab, len(ws), f"{st.mean(ws):.1f}", st.median(ws), ws[int(.1 * len(ws))], ws[int(.9 * len(ws))],
              round(st.mean(len(r["text"]) for r in rs)), sum(x < 10 for x in ws), sum(x >= 80 for x in ws),
              len(r5), f"{st.mean(r['words'] for r in r5):.1f}" if r5 else "–",
              round(st.mean(len(r["text"]) for r in r5)) if r5 else "–")

    print("\n### Surface features: share of rows containing the feature (all rows; in brackets wave 5 only)\n")
    head("feature", "lang", *L)
    for name, rx in FEATURES.items():
        for g in G:
            cells = []
            for lab in L:
                rs, r5 = sel(rows, lang=g, label=lab), sel(rows, lang=g, label=lab, wave="w5")
                k = lambda xs: sum(1 for r in xs if rx.search(r["text"]))  # noqa: E731
                cells.append(f"{100 * k(rs) / len(rs):.0f}%" + (f" [{100 * k(r5) / len(r5):.0f}%]" if r5 else ""))
            t(name, g, *cells)

    if a.no_probe:
        return
    from training.probe import run_probe

    train, test = sel(rows, split="train"), sel(rows, split="test")
    print("\n### Surface probe (fit on train, macro-F1 on test; chance 0.33)\n")
    head("rows", "fit / scored", "text features", "with register", "top text features (permutation importance)")
    res = run_probe(train, test, importance_repeats=3)
    t("all", f"{len(train):,} / {len(test):,}", f"{res.f1_text:.2f}", f"{res.f1_register:.2f}",
      ", ".join(f"{n} {v:.3f}" for n, v in res.top_text[:5]))
    for g in G:
        r = run_probe(sel(train, lang=g), sel(test, lang=g), importance_repeats=0)
        t(g, f"{len(sel(train, lang=g)):,} / {len(sel(test, lang=g)):,}", f"{r.f1_text:.2f}", f"{r.f1_register:.2f}", "")
    t5 = sel(test, wave="w5")
    if t5:
        r = run_probe(train, t5, importance_repeats=0)
        t("wave-5 test rows only", f"{len(train):,} / {len(t5):,}", f"{r.f1_text:.2f}", f"{r.f1_register:.2f}", "")
    old = [x for x in test if x["wave"] != "w5"]
    if t5 and old:
        r = run_probe(train, old, importance_repeats=0)
        t("test rows of waves 1–4 only", f"{len(train):,} / {len(old):,}", f"{r.f1_text:.2f}", f"{r.f1_register:.2f}", "")


if __name__ == "__main__":
    main()
