import csv
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.data import DataError, FieldMap, load_examples, load_many, near_duplicate_pairs, split_by_family
from training.validate import validate_files
from tests.helpers import write_jsonl

ROW = {"id": "x1", "text": "Police said the blast killed three people.", "label": "neutral", "lang": "en",
       "kind": "news_report", "source": "test", "family": "f1"}


def test_every_bad_row_is_reported_with_its_line(tmp_path):
    rows = [ROW,
            {**ROW, "id": "x2", "label": "hateful"},
            {**ROW, "id": "x3", "text": "   "},
            {k: v for k, v in ROW.items() if k != "kind"} | {"id": "x4"},
            {**ROW, "id": "x5", "text": 42},
            {**ROW, "id": "x6", "lang": "English!"}]
    path = write_jsonl(tmp_path / "bad.jsonl", rows, raw_lines=['{"id": "x7", "text": ', "[1, 2]"])
    examples, problems = load_examples(path, FieldMap(strict=True))
    assert [e.id for e in examples] == ["x1"]
    by_line = {p.line: p.message for p in problems}
    assert "is not one of extremist" in by_line[2]
    assert "empty or whitespace" in by_line[3]
    assert "missing field 'kind'" in by_line[4]
    assert "must be a string" in by_line[5]
    assert "not a language tag" in by_line[6]
    assert "invalid JSON" in by_line[7]
    assert "expected a JSON object" in by_line[8]
    with pytest.raises(DataError, match=r"bad\.jsonl:2: label 'hateful'"):
        load_many([path], FieldMap(strict=True))


def test_undecodable_bytes_are_a_problem_not_a_crash(tmp_path):
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(json.dumps(ROW).encode() + b"\n" + b'{"text": "\xff\xfe"}\n')
    examples, problems = load_examples(path, FieldMap(strict=True))
    assert len(examples) == 1 and "not valid UTF-8" in problems[0].message and problems[0].line == 2


def test_csv_parquet_and_datasets_folders_with_column_mapping(tmp_path):
    rows = [{"body": "we will win the final", "y": "none"}, {"body": "kill them all", "y": "hate"}]
    fields = FieldMap(text="body", label="y", label_map={"none": "neutral", "hate": "extremist"}, strict=False)
    with open(tmp_path / "d.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["body", "y"])
        w.writeheader()
        w.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    ds = tmp_path / "ds"  # real `save_to_disk` output, read with the `datasets` library
    pytest.importorskip("datasets").Dataset.from_list(rows).save_to_disk(str(ds))
    for path in (tmp_path / "d.csv", tmp_path / "d.parquet", ds):
        examples = load_many([path], fields)
        assert [(e.text, e.label) for e in examples] == [("we will win the final", "neutral"),
                                                          ("kill them all", "extremist")]


def test_near_duplicates_found_and_distinct_texts_not():
    a = "the brothers who stood firm at the checkpoint will be remembered forever in our prayers"
    b = "the brothers who stood firm at the checkpoint will be remembered forever in our prayers tonight"
    c = "a completely different sentence about cricket and the weather in Lahore this week"
    pairs = near_duplicate_pairs([a, b, c])
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]


def test_split_keeps_families_together_and_is_deterministic():
    from training.data import Example

    examples = [Example(id=f"r{i}", text=f"t{i}", label="neutral", lang="en" if i % 2 else "ur",
                        family=f"f{i // 3}") for i in range(300)]
    s1 = split_by_family(examples, (0.15, 0.2), seed=7)
    s2 = split_by_family(examples, (0.15, 0.2), seed=7)
    assert {k: [e.id for e in v] for k, v in s1.items()} == {k: [e.id for e in v] for k, v in s2.items()}
    fam_split = {}
    for split, rows in s1.items():
        for e in rows:
            assert fam_split.setdefault(e.family, split) == split
    assert 0.15 <= len(s1["test"]) / 300 <= 0.3


def test_validate_catches_leakage_duplicates_and_balance(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [
        ROW, {**ROW, "id": "x2", "family": "f2", "text": "Praise the brave brothers, join the caravan now"},
        {**ROW, "id": "x2", "family": "f3", "text": "police said the blast killed three people"}])
    test = write_jsonl(tmp_path / "test.jsonl", [
        {**ROW, "id": "t1", "family": "f1", "text": "A different report about a court hearing today."},
        {**ROW, "id": "t2", "family": "f9", "text": "Praise the brave brothers, join the caravan now!!"}])
    report = validate_files([train, test], min_label_share=0.25)
    text = "\n".join(str(p) for p in report.problems)
    assert "duplicate id 'x2'" in text
    assert "exact duplicate" in text
    assert "family 'f1' is split across" in text
    assert "label extremist is 0.0% of en rows" in text
    assert not report.ok


def test_extra_training_rows_share_families_with_train_but_not_with_test(tmp_path):
    train = write_jsonl(tmp_path / "train.real.jsonl", [{**ROW, "id": "a", "family": "f1"}])
    extra = write_jsonl(tmp_path / "extra.real.jsonl", [
        {**ROW, "id": "b", "family": "f1", "text": "A second post of the same thread, about the market."},
        {**ROW, "id": "c", "family": "f2", "text": "A third post, about the weather in the hills today."}])
    test = write_jsonl(tmp_path / "test.real.jsonl", [
        {**ROW, "id": "d", "family": "f2", "text": "A fourth post, about a cricket match on Sunday."}])
    text = "\n".join(str(p) for p in validate_files([train, extra, test]).problems)
    assert "family 'f1'" not in text  # extra rows only ever train: no leakage
    assert "family 'f2' is split across test" in text


def test_data_validate_cli_on_a_clean_and_a_bad_file(tmp_path):
    good = write_jsonl(tmp_path / "train.jsonl", [
        {**ROW, "id": f"g{i}", "family": f"f{i}", "text": f"report number {i} about {w} and a quiet city street"}
        for i, w in enumerate(["cricket", "prices", "weather", "exams"])])
    bad = write_jsonl(tmp_path / "user.jsonl", [{**ROW, "label": "spam"}])
    cmd = [sys.executable, "-m", "training.cli", "data", "validate"]
    ok = subprocess.run(cmd + [str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "problems: 0" in ok.stdout
    fail = subprocess.run(cmd + [str(bad)], capture_output=True, text=True)
    assert fail.returncode == 1
    assert "user.jsonl:1: label 'spam' is not one of" in fail.stderr
