import json
import random

from training.probe import TEXT_FEATURES, run_probe, surface_features
from training.validate import validate_files

LABELS = ["extremist", "counter_narrative", "neutral"]
VOCAB = ("alpha beta gamma delta city market river school cricket bazaar train road tea rain field "
         "house lamp book green quiet window garden").split()
REGISTERS = ["x_post", "reply", "facebook_post", "sms"]


def corpus(n: int, seed: int, planted: bool, prefix: str):
    """Random-word rows; with ``planted`` counter rows are long and the others short."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        if planted:
            length = rng.randint(40, 60) if label == "counter_narrative" else rng.randint(4, 12)
        else:
            length = rng.randint(4, 60)
        text = " ".join(rng.choice(VOCAB) for _ in range(length))
        rows.append({"id": f"{prefix}{i}", "text": text, "label": label, "lang": "en", "kind": "",
                     "source": "test", "family": f"{prefix}f{i}", "register": rng.choice(REGISTERS)})
    return rows


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_features_count_quotes_but_not_apostrophes():
    f = dict(zip(TEXT_FEATURES, surface_features('He said "lions" don\'t die, ‘never’ 🔥 #x @y')))
    assert f["double_quotes"] == 2 and f["single_quotes"] == 2
    assert f["emojis"] == 1 and f["hashtags"] == 1 and f["mentions"] == 1
    assert f["latin_share"] == 1.0
    assert dict(zip(TEXT_FEATURES, surface_features("یہ ایک جملہ ہے۔")))["arabic_share"] == 1.0


def test_planted_length_cue_is_found_and_a_clean_corpus_is_near_chance():
    planted = run_probe(corpus(150, 1, True, "a"), corpus(60, 2, True, "b"), importance_repeats=2)
    assert planted.f1_text > 0.6
    assert planted.f1_register > 0.6
    assert {"chars", "words"} & {name for name, _ in planted.top_text[:2]}
    clean = run_probe(corpus(150, 1, False, "a"), corpus(60, 2, False, "b"), importance_repeats=0)
    assert clean.f1_text < 0.5
    assert clean.f1_register < 0.5


def test_validate_reports_the_probe_as_a_problem(tmp_path):
    train = write(tmp_path / "train.jsonl", corpus(150, 1, True, "a"))
    test = write(tmp_path / "test.jsonl", corpus(60, 2, True, "b"))
    report = validate_files([train, test], probe=True, max_probe_f1=0.5)
    assert report.probe is not None and report.probe.f1_text > 0.6
    assert any("surface probe" in p.message for p in report.problems)
    assert "surface probe: macro-F1" in report.render()
    # Without a test split, or when switched off, nothing runs.
    assert validate_files([train], probe=True).probe is None
    assert validate_files([train, test]).probe is None


def test_cli_prints_the_probe_line_and_respects_no_probe(tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    train = write(tmp_path / "train.jsonl", corpus(150, 1, True, "a"))
    test = write(tmp_path / "test.jsonl", corpus(60, 2, True, "b"))
    args = ["data", "validate", str(train), str(test)]
    reported = CliRunner().invoke(app, args)  # by default the probe is reported, not enforced
    assert reported.exit_code == 0, reported.output
    assert "surface probe: macro-F1" in reported.output and "chance 0.33" in reported.output
    out = CliRunner().invoke(app, args + ["--max-probe-f1", "0.5"])
    assert out.exit_code == 1
    assert "surface probe predicts the label" in out.output
    off = CliRunner().invoke(app, args + ["--no-probe"])
    assert off.exit_code == 0, off.output
    assert "surface probe" not in off.output
