"""The functional suite: its files keep the contract, and the pass-rate table/plot and the evaluate hook work."""

import json
import runpy
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from serving import labels as L
from training import functional as F
from training.data import Example

ROOT = Path(__file__).resolve().parents[2]
BUILD = runpy.run_path(str(ROOT / "data" / "functional" / "build.py"))
KINDS = {
    L.EXTREMIST: {"recruitment", "incitement", "glorification", "justification", "dehumanisation", "derogation"},
    L.COUNTER_NARRATIVE: {"quotes_extremist", "survivor_voice", "exit_story", "religious_rebuttal", "debunking",
                          "community_cohesion", "alternative_narrative"},
    L.NEUTRAL: {"news_report", "policy_analysis", "religious_content", "identity_mention", "political_grievance",
                "nonviolent_violence_words", "everyday"},
}


@pytest.fixture(scope="module")
def suite():
    return F.load_suite()


def test_suite_size_and_coverage(suite):
    assert len(suite) >= 1800
    cells = Counter((ex.extra["functionality"], ex.lang) for ex in suite)
    funcs = {f for f, _ in cells}
    assert len(funcs) >= 30
    for f in funcs:
        for lang in ("en", "ur", "roman_ur"):
            assert cells[(f, lang)] >= 5, (f, lang)
    groups = defaultdict(set)
    for ex in suite:
        if ex.extra.get("group"):
            groups[ex.lang].add(ex.extra["group"])
    for lang in ("en", "ur", "roman_ur"):
        assert groups[lang] == set(BUILD["GROUPS"]), lang


def test_rows_follow_the_contract(suite):
    ids = Counter(ex.id for ex in suite)
    assert max(ids.values()) == 1
    texts = Counter(ex.text for ex in suite)
    assert max(texts.values()) == 1
    for ex in suite:
        expected, kind, _ = BUILD["FUNCTIONALITIES"][ex.extra["functionality"]]
        assert ex.label == expected and ex.kind == kind, ex.id
        assert ex.kind in KINDS[ex.label], ex.id
        assert ex.extra["origin"] == "written" and ex.source
        assert ex.extra.get("group") in (None, *BUILD["GROUPS"]), ex.id


def test_files_are_built_from_the_case_modules():
    for lang in BUILD["LANGS"]:
        rows = BUILD["build_language"](lang)
        on_disk = [json.loads(line) for line in (ROOT / "data" / "functional" / f"{lang}.jsonl").open(encoding="utf-8")]
        assert rows == on_disk, f"data/functional/{lang}.jsonl is stale: run .venv/bin/python data/functional/build.py"


def _ex(func, lang, label):
    return Example(id=f"{func}-{lang}", text="x", label=label, lang=lang, extra={"functionality": func})


def test_pass_rates_table_and_plot(tmp_path):
    e, c, n = (L.LABEL2ID[x] for x in (L.EXTREMIST, L.COUNTER_NARRATIVE, L.NEUTRAL))
    rows = [_ex("negation", "en", L.COUNTER_NARRATIVE), _ex("negation", "en", L.COUNTER_NARRATIVE),
            _ex("negation", "ur", L.COUNTER_NARRATIVE), _ex("slurs", "en", L.EXTREMIST),
            Example(id="plain", text="y", label=L.NEUTRAL, lang="en")]
    pred = np.asarray([c, n, c, e, e])
    pr = F.pass_rates(rows, pred)
    assert list(pr) == ["negation", "slurs"]  # rows without a functionality are left out
    assert pr["negation"]["expected"] == L.COUNTER_NARRATIVE
    assert pr["negation"]["n"] == 3 and pr["negation"]["pass_rate"] == pytest.approx(2 / 3)
    assert pr["negation"]["flag_pass_rate"] == 1.0  # nothing flagged that should not be
    assert pr["negation"]["per_lang"]["en"]["pass_rate"] == 0.5
    assert pr["negation"]["per_lang"]["ur"]["pass_rate"] == 1.0
    assert F.failing(pr) == [("negation", "en", 0.5)]
    table = "\n".join(F.render_table(pr))
    assert "**50%**" in table and "| slurs | extremist | 1 | 100% | – |" in table
    F.plot_pass_rates(pr, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_evaluate_reports_per_functionality(tmp_path):
    from training.evaluate import compute_metrics

    rows = [_ex("negation", "en", L.COUNTER_NARRATIVE), _ex("slurs", "en", L.EXTREMIST),
            _ex("news", "en", L.NEUTRAL)]
    probs = np.asarray([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.6, 0.1, 0.3]])
    m = compute_metrics(rows, probs, None)
    assert m["per_functionality"]["news"]["pass_rate"] == 0.0
    assert m["per_functionality"]["slurs"]["pass_rate"] == 1.0
    plain = compute_metrics([Example(id="a", text="t", label=L.NEUTRAL, lang="en")], probs[:1], None)
    assert "per_functionality" not in plain


def test_regression_subset_covers_every_cell(suite):
    sub = F.regression_subset(suite, per_cell=6)
    cells = Counter((ex.extra["functionality"], ex.lang) for ex in sub)
    full = {(ex.extra["functionality"], ex.lang) for ex in suite}
    assert set(cells) == full and max(cells.values()) == 6
    assert len({ex.extra.get("group") for ex in sub if ex.extra.get("group")}) == 16


def test_cli_audit_writes_report_and_card(linear_model_dir, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from training.cli import app

    folder = tmp_path / "model"
    shutil.copytree(linear_model_dir, folder)
    suite_file = tmp_path / "slice.jsonl"
    with open(suite_file, "w", encoding="utf-8") as fh:
        for ex in F.regression_subset(F.load_suite(), per_cell=2):
            fh.write(json.dumps({"id": ex.id, "text": ex.text, "label": ex.label, "lang": ex.lang, "kind": ex.kind,
                                 "source": ex.source, **ex.extra}, ensure_ascii=False) + "\n")
    res = CliRunner().invoke(app, ["audit", "--model", str(folder), "--functional", str(suite_file), "--test", "none",
                                   "--perturbation", "zero_width", "--perturbation", "roman_spelling",
                                   "--out", str(tmp_path / "audit"), "--update-card"])
    assert res.exit_code == 0, res.output
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text(encoding="utf-8"))
    cells = {(ex.extra["functionality"], ex.lang) for ex in F.load_suite()}
    assert audit["functional"]["summary"]["cases"] == 2 * len(cells)
    assert set(audit["robustness"]["functional"]) == {"zero_width", "roman_spelling"}
    assert "shia" in audit["bias"]["functional"]["groups"]
    assert (tmp_path / "audit" / "functional_pass_rates.png").is_file()
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Functional tests, bias and robustness" in card and "| hate_obfuscated | extremist |" in card
    assert (folder / "eval" / "audit.json").is_file()
    from serving.predictor import load_predictor

    load_predictor(folder)  # the card and eval/ are outside the checksums: the folder still verifies
