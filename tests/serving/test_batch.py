"""Batch labelling (``counterpoint label``): formats, carried-through fields, bad rows, refusals, resume, and
agreement with the service's predictor. Real model folders from conftest; no mocks of the model."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving import labels as L
from serving.batch import BatchError, JobPaths, prediction_columns, run_label_job
from serving.predictor import load_predictor
from serving.tabular import csv_cell
from tests.helpers import CrashAfter, Recording, read_jsonl, write_jsonl

PRED_COLUMNS = prediction_columns()


@pytest.fixture(scope="module")
def corpus(mini_corpus) -> list[dict]:
    return [json.loads(line) for line in mini_corpus.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def linear(linear_predictor):
    return linear_predictor


def read_output(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return read_jsonl(path)
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    return pq.read_table(path).to_pylist()


def write_input(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    if path.suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def label(inp: Path, out: Path, model: Path, **kw):
    kw.setdefault("progress", False)
    return run_label_job(inp, out, model=model, **kw)


def sample_rows(corpus, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        src = corpus[i % len(corpus)]
        rows.append({"id": f"r{i:05d}", "text": src["text"], "lang": src["lang"], "note": f"x,\"y\"\n{i}"})
    return rows


def check_predictions(row: dict, version: str, *, as_text: bool = False) -> None:
    assert row["pred_label"] in L.LABELS
    scores = [float(row[f"score_{name}"]) for name in L.LABELS]
    assert abs(sum(scores) - 1) < 1e-4
    flagged = row["flagged"] == "true" if as_text else row["flagged"]
    assert flagged == (row["pred_label"] == L.FLAG_LABEL)
    assert row["model_version"] == version


# --- formats and fields ---------------------------------------------------------------------------------------------


def test_jsonl_round_trip_carries_every_field_through(tmp_path, corpus, linear_model_dir, linear):
    rows = [{**r, "nested": {"k": [i, None, "ü"]}, "score": i / 7, "ok": i % 2 == 0, "nothing": None}
            for i, r in enumerate(corpus)]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    summary = label(inp, tmp_path / "out.jsonl", linear_model_dir)
    out = read_jsonl(tmp_path / "out.jsonl")
    assert len(out) == len(rows) == summary.labelled == summary.rows and summary.errors == 0
    for src, got in zip(rows, out):
        assert list(got) == list(src) + PRED_COLUMNS  # input columns unchanged and first, then ours
        assert {k: got[k] for k in src} == src
        check_predictions(got, linear.meta.version)
    assert not (tmp_path / "out.jsonl.errors.jsonl").exists()
    assert not JobPaths.for_output(tmp_path / "out.jsonl").parts.exists()  # parts and checkpoint cleaned up
    assert sum(summary.label_counts.values()) == summary.labelled
    assert "posts/s" in summary.render()


def test_csv_round_trip_keeps_header_and_cells(tmp_path, corpus, linear_model_dir, linear):
    rows = sample_rows(corpus, 150)
    inp = write_input(tmp_path / "in.csv", rows)
    label(inp, tmp_path / "out.csv", linear_model_dir)
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    assert header == list(rows[0]) + PRED_COLUMNS
    out = read_output(tmp_path / "out.csv")
    assert len(out) == len(rows)
    for src, got in zip(rows, out):
        # Commas, quotes and line breaks in cells survive; a cell a spreadsheet would run as a formula (e.g. a reply
        # starting with @user) gets a leading apostrophe.
        assert {k: got[k] for k in src} == {k: csv_cell(v) for k, v in src.items()}
        check_predictions(got, linear.meta.version, as_text=True)


def test_parquet_round_trip_keeps_column_types(tmp_path, corpus, linear_model_dir, linear):
    n = 120
    table = pa.table({
        "id": pa.array(range(n), pa.int32()),
        "text": [corpus[i % len(corpus)]["text"] for i in range(n)],
        "at": pa.array([dt.datetime(2024, 1, 1) + dt.timedelta(hours=i) for i in range(n)], pa.timestamp("ms")),
        "tags": [["a", str(i)] for i in range(n)],
        "meta": [{"k": i, "s": "v"} for i in range(n)],
    })
    pq.write_table(table, tmp_path / "in.parquet")
    label(tmp_path / "in.parquet", tmp_path / "out.parquet", linear_model_dir, batch_size=16)  # several parts
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.names == table.schema.names + PRED_COLUMNS
    for name in table.schema.names:
        assert out.schema.field(name).type == table.schema.field(name).type
        assert out.column(name).to_pylist() == table.column(name).to_pylist()
    assert out.schema.field("flagged").type == pa.bool_()
    for row in out.to_pylist():
        check_predictions(row, linear.meta.version)


@pytest.mark.parametrize("in_ext", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("out_ext", ["jsonl", "csv", "parquet"])
def test_every_format_pair_gives_the_same_labels(tmp_path, corpus, linear_model_dir, linear, in_ext, out_ext):
    rows = sample_rows(corpus, 100)
    inp = write_input(tmp_path / f"in.{in_ext}", rows)
    out = tmp_path / f"out.{out_ext}"
    label(inp, out, linear_model_dir, batch_size=32)
    got = read_output(out)
    expected = linear.predict([r["text"] for r in rows])
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert [r["note"] for r in got] == [r["note"] for r in rows]
    assert [r["pred_label"] for r in got] == [p.label for p in expected]
    for row, p in zip(got, expected):
        assert [float(row[f"score_{n}"]) for n in L.LABELS] == [p.scores[n] for n in L.LABELS]


def test_text_field_and_id_field(tmp_path, corpus, linear_model_dir, linear):
    rows = [{"post_id": f"p{i}", "body": r["text"], "text": "decoy"} for i, r in enumerate(corpus[:20])]
    rows.append({"post_id": "p-empty", "body": "  ", "text": "decoy"})
    inp = write_input(tmp_path / "in.csv", rows)
    summary = label(inp, tmp_path / "out.jsonl", linear_model_dir, text_field="body", id_field="post_id")
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [p.label for p in linear.predict([r["body"] for r in rows[:20]])] == [r["pred_label"] for r in out]
    assert summary.errors == 1
    assert read_jsonl(tmp_path / "out.jsonl.errors.jsonl") == [
        {"line": 21, "id": "p-empty", "error": "'body' is empty"}]
    with pytest.raises(BatchError, match="--text-field"):
        label(inp, tmp_path / "other.jsonl", linear_model_dir, text_field="message")


def test_format_option_for_unknown_extensions(tmp_path, corpus, linear_model_dir):
    inp = write_jsonl(tmp_path / "posts.txt", sample_rows(corpus, 10))
    with pytest.raises(BatchError, match="--format"):
        label(inp, tmp_path / "out.jsonl", linear_model_dir)
    label(inp, tmp_path / "out.csv", linear_model_dir, fmt="jsonl")
    assert len(read_output(tmp_path / "out.csv")) == 10


# --- rows that cannot be labelled ---------------------------------------------------------------------------------


def test_every_bad_row_kind_goes_to_errors_and_the_job_carries_on(tmp_path, corpus, linear_model_dir, linear):
    good = lambda i: json.dumps({"id": f"g{i}", "text": corpus[i]["text"]})  # noqa: E731
    lines = [
        good(0),
        '{"id": "broken", "text": "unterminated',                       # 2 invalid JSON
        good(1),
        b'{"id": "bytes", "text": "caf\xe9"}',                          # 4 not UTF-8
        json.dumps({"id": "missing", "body": "no text field"}),        # 5 missing text
        json.dumps({"id": "empty", "text": ""}),                        # 6 empty
        json.dumps({"id": "blank", "text": " \n\t "}),                 # 7 whitespace only
        json.dumps({"id": "number", "text": 42}),                      # 8 wrong type
        json.dumps({"id": "list", "text": ["a", "b"]}),                # 9 wrong type
        json.dumps({"id": "null", "text": None}),                      # 10 null
        json.dumps(["not", "an", "object"]),                           # 11 not an object
        "",                                                            # 12 blank line
        '{"id": "surrogate", "text": "bad \\ud800 escape"}',           # 13 not valid Unicode
        good(2),
    ]
    with open(tmp_path / "in.jsonl", "wb") as fh:
        for line in lines:
            fh.write((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")
    summary = label(tmp_path / "in.jsonl", tmp_path / "out.jsonl", linear_model_dir, batch_size=2)
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == ["g0", "g1", "g2"]
    assert [r["pred_label"] for r in out] == [p.label for p in linear.predict([c["text"] for c in corpus[:3]])]
    errors = read_jsonl(tmp_path / "out.jsonl.errors.jsonl")
    assert [e["line"] for e in errors] == [2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert [e["id"] for e in errors] == [None, None, "missing", "empty", "blank", "number", "list", "null", None,
                                         None, "surrogate"]
    reasons = [e["error"] for e in errors]
    for reason, word in zip(reasons, ["invalid JSON", "UTF-8", "no 'text' field", "empty", "empty", "not a string",
                                      "not a string", "no value", "JSON object", "blank", "not valid Unicode"]):
        assert word in reason
    assert (summary.rows, summary.labelled, summary.errors) == (len(lines), 3, 11)
    assert "café" not in (tmp_path / "out.jsonl.errors.jsonl").read_text()  # reasons never quote the text


def test_bad_csv_rows_go_to_errors(tmp_path, corpus, linear_model_dir):
    text = corpus[0]["text"].replace("\n", " ")
    content = (b"id,text,lang\n"
               + f"a,\"{text}\",en\n".encode()
               + b"b,caf\xe9 \xff,en\n"                              # 2 undecodable bytes
               + b"c,,en\n"                                          # 3 empty text
               + f"d,\"{text}\",en,surplus\n".encode()               # 4 too many cells
               + b"e\n"                                              # 5 too few cells: no text
               + f"f,\"{text}\",en\n".encode())                      # 6 fine: reading went on after bad bytes
    (tmp_path / "in.csv").write_bytes(content)
    summary = label(tmp_path / "in.csv", tmp_path / "out.csv", linear_model_dir)
    assert [r["id"] for r in read_output(tmp_path / "out.csv")] == ["a", "f"]
    errors = read_jsonl(tmp_path / "out.csv.errors.jsonl")
    assert [(e["line"], e["id"]) for e in errors] == [(2, None), (3, "c"), (4, None), (5, "e")]
    assert "UTF-8" in errors[0]["error"] and "more cell" in errors[2]["error"]
    assert summary.rows == 6 and summary.labelled + summary.errors == summary.rows


def test_a_later_row_with_prediction_columns_is_an_error_not_an_overwrite(tmp_path, corpus, linear_model_dir,
                                                                         monkeypatch):
    import serving.batch as batch

    monkeypatch.setattr(batch.records, "PREFLIGHT_ROWS", 2)  # the clash lies beyond what is inspected up front
    rows = sample_rows(corpus, 5)
    rows[3]["pred_label"] = L.NEUTRAL
    write_jsonl(tmp_path / "in.jsonl", rows)
    summary = label(tmp_path / "in.jsonl", tmp_path / "out.jsonl", linear_model_dir)
    assert summary.errors == 1
    assert read_jsonl(tmp_path / "out.jsonl.errors.jsonl")[0]["line"] == 4
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [r["id"] for i, r in enumerate(rows) if i != 3]


def test_all_rows_bad_still_writes_an_empty_output(tmp_path, linear_model_dir):
    write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": ""}, "nope"])
    for ext in ("jsonl", "csv", "parquet"):
        summary = label(tmp_path / "in.jsonl", tmp_path / f"out.{ext}", linear_model_dir)
        assert (summary.labelled, summary.errors) == (0, 2)
        assert read_output(tmp_path / f"out.{ext}") == []
    assert next(csv.reader(open(tmp_path / "out.csv", encoding="utf-8"))) == ["id", "text"] + PRED_COLUMNS
    assert pq.read_schema(tmp_path / "out.parquet").names[-len(PRED_COLUMNS):] == PRED_COLUMNS


# --- refusals -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("column", ["pred_label", "score_neutral", "model_version"])
def test_refuses_inputs_that_already_have_prediction_columns(tmp_path, corpus, linear_model_dir, ext, column):
    rows = [{**r, column: "x"} for r in sample_rows(corpus, 3)]
    inp = write_input(tmp_path / f"in.{ext}", rows)
    with pytest.raises(BatchError, match=f"already has prediction column\\(s\\) {column}"):
        label(inp, tmp_path / "out.jsonl", linear_model_dir)
    assert not (tmp_path / "out.jsonl").exists()
    assert not JobPaths.for_output(tmp_path / "out.jsonl").parts.exists()


def test_refuses_to_overwrite_without_resume(tmp_path, corpus, linear_model_dir):
    inp = write_jsonl(tmp_path / "in.jsonl", sample_rows(corpus, 10))
    out = tmp_path / "out.jsonl"
    label(inp, out, linear_model_dir)
    before = out.read_bytes()
    with pytest.raises(BatchError, match="already exists"):
        label(inp, out, linear_model_dir)
    with pytest.raises(BatchError, match="nothing to resume"):
        label(inp, out, linear_model_dir, resume=True)
    assert out.read_bytes() == before
    with pytest.raises(BatchError, match="not the input itself"):
        label(inp, inp, linear_model_dir)


def test_ray_engine_without_ray_says_how_to_install(tmp_path, corpus, linear_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the extra looks like
    inp = write_jsonl(tmp_path / "in.jsonl", sample_rows(corpus, 3))
    with pytest.raises(BatchError, match=r"pip install 'counterpoint\[ray\]'"):
        label(inp, tmp_path / "out.jsonl", linear_model_dir, engine="ray")
    assert not JobPaths.for_output(tmp_path / "out.jsonl").parts.exists()  # refused before creating anything


# --- crashes and --resume (in-process; test_batch_kill.py does a real kill -9) -----------------------------------


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_resume_after_a_crash_labels_every_row_exactly_once(tmp_path, corpus, linear_model_dir, linear, ext):
    rows = sample_rows(corpus, 300)
    lines = [json.dumps(r) for r in rows]
    for k in (7, 120, 250):
        lines[k] = "{broken"
    inp = write_jsonl(tmp_path / "in.jsonl", lines)
    reference = tmp_path / f"reference.{ext}"
    label(inp, reference, linear_model_dir, batch_size=10, chunk_rows=40)

    out = tmp_path / f"out.{ext}"
    paths = JobPaths.for_output(out)
    with pytest.raises(SystemExit):
        label(inp, out, linear_model_dir, batch_size=10, chunk_rows=40, predictor=CrashAfter(linear, 13))
    assert not out.exists()
    checkpoint = json.loads(paths.checkpoint.read_text())
    assert 0 < checkpoint["rows"] < len(lines)
    # The worst moment to die: a part written but not yet in the checkpoint, and a half-written temporary file.
    orphan = paths.part(len(checkpoint["parts"]) + 1, ext)
    orphan.write_bytes(b"rows that a checkpoint never counted")
    paths.error_part(len(checkpoint["parts"]) + 1).write_text('{"line": 1, "id": null, "error": "stale"}\n')
    (paths.parts / f".{orphan.name}.tmp-999").write_bytes(b"half")
    with pytest.raises(BatchError, match="--resume"):
        label(inp, out, linear_model_dir, batch_size=10, chunk_rows=40)

    summary = label(inp, out, linear_model_dir, batch_size=7, chunk_rows=25, resume=True)
    assert summary.resumed_from == checkpoint["rows"]
    assert summary.rows == len(lines) and (summary.labelled, summary.errors) == (297, 3)
    got = read_output(out)
    assert [r["id"] for r in got] == [r["id"] for k, r in enumerate(rows) if k not in (7, 120, 250)]
    assert got == read_output(reference)
    assert [e["line"] for e in read_jsonl(Path(f"{out}.errors.jsonl"))] == [8, 121, 251]
    assert not paths.parts.exists()


def test_resume_refuses_other_inputs_models_or_options(tmp_path, corpus, linear_model_dir, linear):
    from tests.helpers import tiny_config
    from training.pipeline import train

    other_model = train(tiny_config(tmp_path / "other", 'model.kind="linear"', "linear.max_features=2048"),
                        progress=False, log=lambda m: None)
    inp = write_jsonl(tmp_path / "in.jsonl", sample_rows(corpus, 100))
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit):
        label(inp, out, linear_model_dir, batch_size=10, predictor=CrashAfter(linear, 3))
    with pytest.raises(BatchError, match="text_field"):
        label(inp, out, linear_model_dir, text_field="note", resume=True)
    with pytest.raises(BatchError, match="model_sha256"):
        label(inp, out, other_model, resume=True)
    with open(inp, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "late", "text": "appended after the job started"}) + "\n")
    with pytest.raises(BatchError, match="input"):
        label(inp, out, linear_model_dir, resume=True)


# --- the same predictions as the service ----------------------------------------------------------------------------


def test_same_scores_as_the_service_linear(tmp_path, corpus, linear_model_dir, linear):
    texts = [r["text"] for r in corpus]
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(texts)])
    label(inp, tmp_path / "out.jsonl", linear_model_dir, batch_size=16)
    out = read_jsonl(tmp_path / "out.jsonl")
    for text, row in zip(texts, out):
        served = linear.predict([text])[0]  # what POST /v1/classify answers for this one text
        assert row["pred_label"] == served.label and row["flagged"] == served.flagged
        assert {n: row[f"score_{n}"] for n in L.LABELS} == served.scores


def test_same_scores_as_the_service_transformer(tmp_path, corpus, transformer_model_dir):
    predictor = load_predictor(transformer_model_dir)
    # Unnormalised variants: the batch job must normalise exactly as the service does.
    texts = [r["text"] for r in corpus[:40]] + ["j1had zero\u200bwidth ＦＵＬＬ ｗｉｄｔｈ", "k-a-f-i-r plzzzz"]
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(texts)])
    label(inp, tmp_path / "out.jsonl", transformer_model_dir, batch_size=len(texts))
    out = read_jsonl(tmp_path / "out.jsonl")
    # Same batch as one service request with these texts (the job hands them over shortest first): identical, int8
    # included.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batch = predictor.predict([texts[i] for i in order])
    for row, served in zip(out, [batch[order.index(i)] for i in range(len(texts))]):
        assert row["pred_label"] == served.label
        assert {n: row[f"score_{n}"] for n in L.LABELS} == served.scores
    # One text per request: int8 activation scales depend on batch mates, so within a small bound.
    for text, row in zip(texts, out):
        served = predictor.predict([text])[0]
        assert max(abs(row[f"score_{n}"] - served.scores[n]) for n in L.LABELS) < 0.02


def test_each_chunk_is_labelled_shortest_first_and_rows_keep_their_order(tmp_path, corpus, linear_model_dir, linear):
    # Texts of about one length per predict call: the model pads each batch's windows to its longest one.
    rows = sample_rows(corpus, 90)
    for k, row in enumerate(rows):
        row["text"] = row["text"] + " pad" * ((k * 37) % 23)  # lengths in no order
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    recording = Recording(linear)
    label(inp, tmp_path / "out.jsonl", linear_model_dir, batch_size=8, chunk_rows=40, predictor=recording)
    assert sum(map(len, recording.calls)) == len(rows)
    chunks = [recording.calls[0:5], recording.calls[5:10], recording.calls[10:]]  # 40, 40, 10 rows
    for calls in chunks:
        lengths = [len(t) for call in calls for t in call]
        assert lengths == sorted(lengths)
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    for row, src in zip(out, rows):
        assert {n: row[f"score_{n}"] for n in L.LABELS} == linear.predict([src["text"]])[0].scores


# --- the command ----------------------------------------------------------------------------------------------------


def test_cli_label_prints_a_summary_and_refuses_cleanly(tmp_path, corpus, linear_model_dir):
    from typer.testing import CliRunner

    from training.cli import app

    inp = write_jsonl(tmp_path / "in.jsonl", sample_rows(corpus, 30) + ["{bad"])
    args = ["label", str(inp), "-o", str(tmp_path / "out.csv"), "--model", str(linear_model_dir), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "labelled 30 of 31 rows" in result.output and "posts/s" in result.output
    assert "out.csv.errors.jsonl" in result.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output


def test_refuses_a_parquet_text_column_that_is_not_text(tmp_path, linear_model_dir):
    pq.write_table(pa.table({"id": ["a", "b"], "text": [1, 2]}), tmp_path / "in.parquet")
    with pytest.raises(BatchError, match="not text"):
        label(tmp_path / "in.parquet", tmp_path / "out.parquet", linear_model_dir)


def test_gzipped_jsonl_input(tmp_path, corpus, linear_model_dir):
    import gzip

    rows = sample_rows(corpus, 20)
    with gzip.open(tmp_path / "in.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    summary = label(tmp_path / "in.jsonl.gz", tmp_path / "out.jsonl", linear_model_dir, progress=True)
    assert summary.labelled == 20
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == [r["id"] for r in rows]
