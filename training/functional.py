"""The functional test suite: pass rate per functionality and language (HateCheck-style, for our three labels).

A suite file (``data/functional/*.jsonl``) is a corpus file whose rows add ``functionality`` (and ``group`` where a
group is targeted or mentioned). A case *passes* when the predicted label equals its expected label; the
``flag_pass_rate`` is the looser check that a case is flagged exactly when it is expected to be extremist (a
counter-speech case predicted neutral fails the first and passes the second).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from serving import labels as L

SUITE_DIR = Path(__file__).resolve().parent.parent / "data" / "functional"
LANG_ORDER = ("en", "ur", "roman_ur")
#: The issue's goal: every functionality passes at least this often in every language.
GOAL = 0.90


def suite_files(where: str | Path | None = None) -> list[Path]:
    """The suite's JSONL files (a folder, or one file)."""
    where = Path(where) if where else SUITE_DIR
    files = sorted(where.glob("*.jsonl")) if where.is_dir() else [where]
    if not files:
        raise FileNotFoundError(f"no functional-suite .jsonl files in {where}; build them with "
                                "`.venv/bin/python data/functional/build.py`")
    return files


def load_suite(where: str | Path | None = None) -> list:
    from training.data import FieldMap, load_many

    return load_many(suite_files(where), FieldMap(strict=True))


def has_functionality(examples: Sequence) -> bool:
    return any(ex.extra.get("functionality") for ex in examples)


def _rates(y: np.ndarray, pred: np.ndarray) -> dict:
    e = L.LABEL2ID[L.FLAG_LABEL]
    return {"n": int(len(y)), "pass_rate": float((pred == y).mean()) if len(y) else None,
            "flag_pass_rate": float(((pred == e) == (y == e)).mean()) if len(y) else None}


def pass_rates(examples: Sequence, pred: np.ndarray) -> dict:
    """``{functionality: {"expected", "n", "pass_rate", "flag_pass_rate", "per_lang": {lang: {...}}}}`` for the
    rows that carry a ``functionality``; functionalities in the order they first appear."""
    y = np.asarray([ex.label_id for ex in examples])
    pred = np.asarray(pred)
    cells: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    expected: dict[str, set] = defaultdict(set)
    for i, ex in enumerate(examples):
        func = ex.extra.get("functionality")
        if not func:
            continue
        cells[func][ex.lang].append(i)
        expected[func].add(ex.label)
    out = {}
    for func, by_lang in cells.items():
        idx = [i for rows in by_lang.values() for i in rows]
        row = {"expected": "/".join(sorted(expected[func])), **_rates(y[idx], pred[idx])}
        langs = sorted(by_lang, key=lambda g: (LANG_ORDER.index(g) if g in LANG_ORDER else 99, g))
        row["per_lang"] = {g: _rates(y[by_lang[g]], pred[by_lang[g]]) for g in langs}
        out[func] = row
    return out


def languages(per_func: dict) -> list[str]:
    seen = {g for v in per_func.values() for g in v["per_lang"]}
    return sorted(seen, key=lambda g: (LANG_ORDER.index(g) if g in LANG_ORDER else 99, g))


def failing(per_func: dict, goal: float = GOAL) -> list[tuple[str, str, float]]:
    """(functionality, language, pass rate) of every cell under ``goal``, worst first."""
    bad = [(f, g, v["pass_rate"]) for f, row in per_func.items() for g, v in row["per_lang"].items()
           if v["pass_rate"] is not None and v["pass_rate"] < goal]
    return sorted(bad, key=lambda t: (t[2], t[0], t[1]))


def summary(per_func: dict, goal: float = GOAL) -> dict:
    cells = [v["pass_rate"] for row in per_func.values() for v in row["per_lang"].values()
             if v["pass_rate"] is not None]
    n = sum(row["n"] for row in per_func.values())
    passed = sum(row["pass_rate"] * row["n"] for row in per_func.values() if row["pass_rate"] is not None)
    return {"cases": n, "functionalities": len(per_func), "cells": len(cells),
            "overall_pass_rate": passed / n if n else None,
            "mean_cell_pass_rate": float(np.mean(cells)) if cells else None,
            "cells_under_goal": sum(1 for c in cells if c < goal), "goal": goal}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def render_table(per_func: dict, goal: float = GOAL) -> list[str]:
    """Markdown: one row per functionality, one column per language; cells under ``goal`` in bold."""
    langs = languages(per_func)
    lines = ["| functionality | expected | n | " + " | ".join(langs) + " | all | flag-only |",
             "|---|---|---:|" + "---:|" * (len(langs) + 2)]
    for func, row in per_func.items():
        cells = []
        for g in langs:
            v = row["per_lang"].get(g)
            rate = v["pass_rate"] if v else None
            cells.append(f"**{_pct(rate)}**" if rate is not None and rate < goal else _pct(rate))
        lines.append(f"| {func} | {row['expected']} | {row['n']} | " + " | ".join(cells)
                     + f" | {_pct(row['pass_rate'])} | {_pct(row['flag_pass_rate'])} |")
    s = summary(per_func, goal)
    lines += ["", f"{s['cases']} cases, {s['functionalities']} functionalities; overall pass rate "
                  f"{_pct(s['overall_pass_rate'])}; {s['cells_under_goal']} of {s['cells']} functionality × language "
                  f"cells under the {100 * goal:.0f}% goal (bold). *flag-only*: flagged exactly when expected "
                  "extremist."]
    return lines


def plot_pass_rates(per_func: dict, path: str | Path, title: str = "", goal: float = GOAL) -> None:
    """Heatmap of pass rate, functionality × language, with the numbers in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    funcs = list(per_func)
    langs = languages(per_func)
    grid = np.full((len(funcs), len(langs)), np.nan)
    for i, f in enumerate(funcs):
        for j, g in enumerate(langs):
            v = per_func[f]["per_lang"].get(g)
            if v and v["pass_rate"] is not None:
                grid[i, j] = v["pass_rate"]
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * len(langs), 1.2 + 0.28 * len(funcs)))
    ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(funcs)), [f"{f} ({per_func[f]['expected'][:4]})" for f in funcs], fontsize=7)
    for i in range(len(funcs)):
        for j in range(len(langs)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{100 * grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        fontweight="bold" if grid[i, j] < goal else "normal")
    ax.set_title(f"Functional pass rate (%) {title}".strip(), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)



def regression_subset(examples: Sequence, per_cell: int = 6) -> list:
    """A small, stable slice of the suite for ``make test``: ``per_cell`` cases of every functionality x language,
    evenly spaced in file order (so templated cells span several groups and templates); it changes only when the
    suite does."""
    cells: dict[tuple[str, str], list] = defaultdict(list)
    for ex in examples:
        if ex.extra.get("functionality"):
            cells[(ex.extra["functionality"], ex.lang)].append(ex)
    out = []
    for number, rows in enumerate(cells.values()):
        k = min(per_cell, len(rows))
        shift = (number * 5) % max(1, len(rows) // k)  # vary the offset so cells do not all pick the same groups
        out += [rows[(shift + (j * len(rows)) // k) % len(rows)] for j in range(k)]
    return out
