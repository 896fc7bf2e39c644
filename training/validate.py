"""``counterpoint data validate``: check corpus files before anyone trains on them.

Checks: schema (every contract field), allowed labels and language tags, empty/whitespace texts, duplicate ids,
exact duplicates (after case and punctuation folding) anywhere, near-duplicates (word 5-gram Jaccard >= 0.6) within
a split (a problem above ``max_near_dup_rate``) and across splits (always a problem), families shared across
splits (leakage), label balance per language (a problem below ``min_label_share`` where that is set) and, with
``probe=True`` and both a train and a test split, the surface-cue probe (``training/probe.py``; a problem above
``max_probe_f1``).
A file's split is its stem (``train.jsonl`` -> ``train``); files with other stems count as their own split.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from serving import labels as L
from training.data import Example, FieldMap, Problem, dedup_key, load_examples, near_duplicate_pairs, parent_of, row_key


@dataclass
class ValidationReport:
    examples: list[Example]
    problems: list[Problem]
    near_dup_within: dict[str, int] = field(default_factory=dict)
    near_dup_rows_within: dict[str, int] = field(default_factory=dict)
    near_dup_across: int = 0
    probe: object = None  # training.probe.ProbeResult when the surface probe ran

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[tuple[str, str], Counter]:
        table: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for ex in self.examples:
            table[(_split_of(ex), ex.lang)][ex.label] += 1
        return table

    def render(self) -> str:
        lines = [f"{'split':<10} {'lang':<10} " + " ".join(f"{lab:>18}" for lab in L.LABELS) + f" {'total':>7}"]
        for (split, lang), c in sorted(self.counts().items()):
            lines.append(f"{split:<10} {lang:<10} " + " ".join(f"{c[lab]:>18}" for lab in L.LABELS)
                         + f" {sum(c.values()):>7}")
        total = Counter(ex.label for ex in self.examples)
        lines.append(f"{'all':<10} {'':<10} " + " ".join(f"{total[lab]:>18}" for lab in L.LABELS)
                     + f" {len(self.examples):>7}")
        kinds = Counter(ex.kind for ex in self.examples if ex.kind)
        lines.append(f"kinds: {len(kinds)}")
        for split, pairs in sorted(self.near_dup_within.items()):
            n = sum(1 for ex in self.examples if _split_of(ex) == split)
            rows = self.near_dup_rows_within.get(split, 0)
            lines.append(f"near-duplicates within {split}: {pairs} pair(s), {rows}/{n} rows "
                         f"({100 * rows / max(n, 1):.2f}%) have a near-twin")
        lines.append(f"near-duplicates across splits: {self.near_dup_across}")
        if self.probe is not None:
            lines.append(self.probe.render(6))
        lines.append(f"problems: {len(self.problems)}")
        return "\n".join(lines)


#: File-name prefixes of rows that only ever train: ``extra.*.jsonl`` holds rounds kept out of the default training
#: that a user may add to it (data/labeled/extra.real.jsonl), so a family shared with ``train`` is not leakage.
TRAINING_SIDE = ("train", "extra")


def _split_of(ex: Example) -> str:
    split = Path(ex.file).stem.split(".")[0]
    return "train" if split in TRAINING_SIDE else split


def validate_files(paths: Sequence[str | Path], fields: FieldMap | None = None, *, fmt: str | None = None,
                   min_label_share: float = 0.0, max_near_dup_rate: float = 0.03, probe: bool = False,
                   max_probe_f1: float | None = 0.50) -> ValidationReport:
    fields = fields or FieldMap(strict=True)
    examples: list[Example] = []
    problems: list[Problem] = []
    for p in paths:
        ex, pr = load_examples(p, fields, fmt)
        examples += ex
        problems += pr
    report = ValidationReport(examples, problems)

    seen_ids: dict[str, Example] = {}
    seen_text: dict[str, Example] = {}
    for ex in examples:
        if ex.id in seen_ids:
            first = seen_ids[ex.id]
            problems.append(Problem(ex.file, ex.line, f"duplicate id {ex.id!r} (first at {first.file}:{first.line})"))
        else:
            seen_ids[ex.id] = ex
        key = row_key(ex)  # a reply under another parent post is another row
        if key in seen_text:
            first = seen_text[key]
            problems.append(Problem(ex.file, ex.line, f"exact duplicate of the text at {first.file}:{first.line}"))
        else:
            seen_text[key] = ex

    # Families must not straddle splits.
    fam_splits: dict[str, dict[str, Example]] = defaultdict(dict)
    for ex in examples:
        if ex.family:
            fam_splits[ex.family].setdefault(_split_of(ex), ex)
    for fam, splits in fam_splits.items():
        if len(splits) > 1:
            where = ", ".join(f"{s} ({e.file}:{e.line})" for s, e in sorted(splits.items()))
            first = next(iter(splits.values()))
            problems.append(Problem(first.file, first.line, f"family {fam!r} is split across {where}: leakage"))

    # Replies with parents: near-twins only under the same parent (minimal pairs repeat a reply on purpose).
    pairs = [(i, j, jac) for i, j, jac in near_duplicate_pairs([ex.text for ex in examples])
             if dedup_key(parent_of(examples[i])) == dedup_key(parent_of(examples[j]))]
    rows_with_twin: dict[str, set[int]] = defaultdict(set)
    for i, j, jac in pairs:
        a, b = examples[i], examples[j]
        sa, sb = _split_of(a), _split_of(b)
        if sa != sb:
            report.near_dup_across += 1
            problems.append(Problem(b.file, b.line, f"near-duplicate (5-gram Jaccard {jac:.2f}) of {a.file}:{a.line} "
                                                    f"in another split ({sa}): leakage"))
        else:
            report.near_dup_within[sa] = report.near_dup_within.get(sa, 0) + 1
            rows_with_twin[sa].update((i, j))
    for split, rows in rows_with_twin.items():
        report.near_dup_rows_within[split] = len(rows)
        n = sum(1 for ex in examples if _split_of(ex) == split)
        if len(rows) / max(n, 1) >= max_near_dup_rate:
            examples_listed = ", ".join(f"{examples[i].file}:{examples[i].line}" for i in sorted(rows)[:10])
            problems.append(Problem(split, 0, f"{len(rows)} of {n} rows ({100 * len(rows) / n:.1f}%) have a "
                                              f"near-twin in their split (limit {100 * max_near_dup_rate:.0f}%): "
                                              f"{examples_listed} ..."))
    for split in {_split_of(ex) for ex in examples}:
        report.near_dup_within.setdefault(split, 0)

    if min_label_share > 0:
        by_lang: dict[str, Counter] = defaultdict(Counter)
        for ex in examples:
            by_lang[ex.lang][ex.label] += 1
        for lang, c in sorted(by_lang.items()):
            total = sum(c.values())
            for lab in L.LABELS:
                if c[lab] / total < min_label_share:
                    problems.append(Problem("(all files)", 0, f"label {lab} is {100 * c[lab] / total:.1f}% of {lang} "
                                                              f"rows, under the {100 * min_label_share:.0f}% minimum"))
    if probe:
        _surface_probe(report, examples, problems, max_probe_f1)
    report.problems = problems
    return report


def _surface_probe(report: ValidationReport, examples: list[Example], problems: list[Problem],
                   max_probe_f1: float | None) -> None:
    """When the files include a train and a test split: fit the surface-cue probe on train, score it on test."""
    from training.probe import run_probe

    train = [ex for ex in examples if _split_of(ex) == "train"]
    test = [ex for ex in examples if _split_of(ex) == "test"]
    if not train or not test:
        return
    report.probe = res = run_probe(train, test, importance_repeats=2)
    if max_probe_f1 is not None and res.f1_text > max_probe_f1:
        top = ", ".join(name for name, _ in res.top_text[:3])
        problems.append(Problem("(train -> test)", 0, f"surface probe predicts the label from style alone: macro-F1 "
                                                      f"{res.f1_text:.2f} (text features) > {max_probe_f1:.2f} "
                                                      f"(top cues: {top})"))
