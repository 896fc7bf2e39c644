"""Batch labelling hardening (issue 10): whole-model failures abort the chunk instead of being checkpointed as row
errors; a per-text cap; readers for `datasets` folders (real save_to_disk output), JSON arrays, CSV with a stray
quote or duplicate headers; output never holds bare NaN or live spreadsheet formulas; the model identity."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.artifact import update_meta
from serving.batch import BatchError, JobPaths, run_label_job
from tests.helpers import read_jsonl, write_jsonl

TEXTS = ["Join the caravan, brothers; the checkpoint soldiers will taste fear.",
         "My brother was killed at that checkpoint. Tell my mother the killers are lions.",
         "BREAKING: two personnel injured as militants attack a checkpoint, says ISPR.",
         "yaar kal match dekhne chalein?"]


def rows(n: int) -> list[dict]:
    return [{"id": f"r{i}", "text": TEXTS[i % len(TEXTS)]} for i in range(n)]


def label(inp, out, model, **kw):
    kw.setdefault("progress", False)
    return run_label_job(inp, out, model=model, **kw)


class Broken:
    """The real predictor until ``after`` calls, then failing every call (memory gone, session broken)."""

    def __init__(self, inner, after: int, exc: type[Exception] = RuntimeError, poison: str | None = None):
        self.inner, self.after, self.exc, self.poison = inner, after, exc, poison
        self.meta, self.backend, self.folder = inner.meta, inner.backend, inner.folder

    def predict(self, texts, *args):
        if self.poison is not None:
            if any(self.poison in t for t in texts):
                raise ValueError("this one text breaks the model")
            return self.inner.predict(texts, *args)
        if self.after <= 0:
            raise self.exc("the model session is broken")
        self.after -= 1
        return self.inner.predict(texts, *args)


@pytest.mark.parametrize("exc", [RuntimeError, MemoryError])
def test_a_broken_model_aborts_the_chunk_and_resume_retries_it(tmp_path, linear_model_dir, linear_predictor, exc):
    inp, out = write_jsonl(tmp_path / "in.jsonl", rows(100)), tmp_path / "out.jsonl"
    with pytest.raises(BatchError, match="--resume") as excinfo:
        label(inp, out, linear_model_dir, batch_size=10, chunk_rows=20,
              predictor=Broken(linear_predictor, after=3, exc=exc))
    assert "the model, not the rows" in str(excinfo.value)
    checkpoint = json.loads(JobPaths.for_output(out).checkpoint.read_text())
    assert checkpoint["rows"] == 20 and checkpoint["errors"] == 0  # nothing recorded as row errors
    summary = label(inp, out, linear_model_dir, batch_size=10, chunk_rows=20, resume=True)
    assert (summary.rows, summary.labelled, summary.errors) == (100, 100, 0)
    assert [r["id"] for r in read_jsonl(out)] == [f"r{i}" for i in range(100)]


def test_one_text_the_model_fails_on_is_a_row_error(tmp_path, linear_model_dir, linear_predictor):
    data = rows(30)
    data[7]["text"] = "POISON " + data[7]["text"]
    inp, out = write_jsonl(tmp_path / "in.jsonl", data), tmp_path / "out.jsonl"
    summary = label(inp, out, linear_model_dir, batch_size=10, predictor=Broken(linear_predictor, 0, poison="POISON"))
    assert (summary.labelled, summary.errors) == (29, 1)
    assert read_jsonl(tmp_path / "out.jsonl.errors.jsonl")[0]["id"] == "r7"


def test_texts_over_the_character_cap_are_row_errors(tmp_path, linear_model_dir):
    data = rows(5)
    data[2]["text"] = "long " * 100
    inp, out = write_jsonl(tmp_path / "in.jsonl", data), tmp_path / "out.jsonl"
    summary = label(inp, out, linear_model_dir, max_chars=200)
    assert (summary.labelled, summary.errors) == (4, 1)
    error = read_jsonl(tmp_path / "out.jsonl.errors.jsonl")[0]
    assert error["id"] == "r2" and "limit is 200" in error["error"] and "long long" not in error["error"]
    with pytest.raises(BatchError, match="--max-chars"):
        label(inp, tmp_path / "x.jsonl", linear_model_dir, max_chars=0)


def test_datasets_folders_are_read_with_the_datasets_library(tmp_path, linear_model_dir):
    datasets = pytest.importorskip("datasets")
    data = rows(12)
    single = tmp_path / "single"
    datasets.Dataset.from_list(data).save_to_disk(str(single))
    (single / "cache-0123456789abcdef.arrow").write_bytes((next(single.glob("data-*.arrow"))).read_bytes())
    summary = label(single, tmp_path / "single.jsonl", linear_model_dir)
    assert summary.rows == 12  # the stray cache file is not read as more rows
    assert [r["id"] for r in read_jsonl(tmp_path / "single.jsonl")] == [r["id"] for r in data]

    both = tmp_path / "dict"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(data[:8]),
                          "test": datasets.Dataset.from_list(data[8:])}).save_to_disk(str(both))
    with pytest.raises(BatchError, match="--split"):
        label(both, tmp_path / "nosplit.jsonl", linear_model_dir)
    with pytest.raises(BatchError, match="no split 'dev'"):
        label(both, tmp_path / "badsplit.jsonl", linear_model_dir, split="dev")
    summary = label(both, tmp_path / "test.jsonl", linear_model_dir, split="test")
    assert [r["id"] for r in read_jsonl(tmp_path / "test.jsonl")] == ["r8", "r9", "r10", "r11"]
    with pytest.raises(BatchError, match="only"):
        label(tmp_path / "test.jsonl", tmp_path / "t2.jsonl", linear_model_dir, split="test")


def test_a_json_array_file_is_read_as_an_array(tmp_path, linear_model_dir):
    data = rows(6) + ["not an object"]
    (tmp_path / "in.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    summary = label(tmp_path / "in.json", tmp_path / "out.jsonl", linear_model_dir)
    assert (summary.rows, summary.labelled, summary.errors) == (7, 6, 1)
    assert read_jsonl(tmp_path / "out.jsonl.errors.jsonl")[0]["line"] == 7
    (tmp_path / "bad.json").write_text('[{"id": "a", "text": "x"},', encoding="utf-8")
    with pytest.raises(BatchError, match="not a valid JSON array"):
        label(tmp_path / "bad.json", tmp_path / "bad.jsonl", linear_model_dir)


def test_a_stray_quote_cannot_swallow_the_rest_of_a_csv(tmp_path, linear_model_dir, monkeypatch):
    import serving.tabular as tabular

    monkeypatch.setattr(tabular, "CSV_FIELD_LIMIT", 300)
    lines = ["id,text", 'r0,"an unbalanced quote starts here'] + [f"r{i},{TEXTS[i % 4].replace(',', '')}"
                                                                 for i in range(1, 40)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = label(tmp_path / "in.csv", tmp_path / "out.csv", linear_model_dir)
    errors = read_jsonl(tmp_path / "out.csv.errors.jsonl")
    assert "unbalanced quote" in errors[0]["error"]
    assert summary.labelled >= 30  # the rows after the runaway field are read and labelled


def test_duplicate_csv_headers_are_refused(tmp_path, linear_model_dir):
    (tmp_path / "in.csv").write_text("id,text,text\nr1,a,b\n", encoding="utf-8")
    with pytest.raises(BatchError, match="'text' more than once"):
        label(tmp_path / "in.csv", tmp_path / "out.csv", linear_model_dir)


def test_nan_is_never_written_as_bare_nan_and_csv_formulas_are_neutralised(tmp_path, linear_model_dir):
    table = pa.table({"id": ["a", "b", "c"], "text": TEXTS[:3], "score": [1.5, math.nan, math.inf],
                      "note": ["=HYPERLINK(\"http://x\")", "-12.5", "@SUM(A1)"]})
    pq.write_table(table, tmp_path / "in.parquet")
    label(tmp_path / "in.parquet", tmp_path / "out.jsonl", linear_model_dir)
    raw = (tmp_path / "out.jsonl").read_text()
    assert "NaN" not in raw and "Infinity" not in raw
    assert [r["score"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1.5, None, None]
    label(tmp_path / "in.parquet", tmp_path / "out.csv", linear_model_dir)
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["note"] for r in got] == ["'=HYPERLINK(\"http://x\")", "-12.5", "'@SUM(A1)"]
    assert [r["score"] for r in got] == ["1.5", "", ""]


def test_changed_thresholds_change_the_identity_and_resume_refuses(tmp_path, linear_model_dir, linear_predictor):
    folder = tmp_path / "model"
    shutil.copytree(linear_model_dir, folder)
    before = update_meta(folder).sha256()
    inp, out = write_jsonl(tmp_path / "in.jsonl", rows(60)), tmp_path / "out.jsonl"
    from serving.predictor import load_predictor

    with pytest.raises(BatchError):
        label(inp, out, folder, batch_size=10, chunk_rows=20,
              predictor=Broken(load_predictor(folder), after=2))
    meta = update_meta(folder, thresholds={"extremist": 0.91, "counter_narrative": 0.5})
    assert meta.sha256() != before
    assert update_meta(folder, temperature=meta.temperature * 2).sha256() not in (before, meta.sha256())
    with pytest.raises(BatchError, match="model_sha256"):
        label(inp, out, folder, batch_size=10, chunk_rows=20, resume=True)
