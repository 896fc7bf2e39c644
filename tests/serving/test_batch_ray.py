"""The Ray engine gives the local engine's output on the same file (a small local Ray; starting it takes a while,
so this runs with ``-m slow``)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray.data", reason="the ray extra is not installed")

from serving.batch import run_label_job  # noqa: E402


@pytest.mark.slow
def test_ray_engine_equals_local_engine(tmp_path, mini_corpus, linear_model_dir):
    texts = [json.loads(line)["text"] for line in mini_corpus.read_text(encoding="utf-8").splitlines() if line]
    with open(tmp_path / "in.jsonl", "w", encoding="utf-8") as fh:
        for n in range(1, 701):
            if n % 101 == 0:
                fh.write("{not json\n")
            elif n % 150 == 0:
                fh.write(json.dumps({"id": f"r{n}", "text": ""}) + "\n")
            else:
                fh.write(json.dumps({"id": f"r{n}", "text": texts[n % len(texts)], "extra": [n]}) + "\n")
    inp = tmp_path / "in.jsonl"
    for ext in ("jsonl", "parquet"):
        local = run_label_job(inp, tmp_path / f"local.{ext}", model=linear_model_dir, batch_size=32,
                              progress=False)
        ray = run_label_job(inp, tmp_path / f"ray.{ext}", model=linear_model_dir, batch_size=32, engine="ray",
                            progress=False, ray_actors=2)
        assert (ray.rows, ray.labelled, ray.errors) == (local.rows, local.labelled, local.errors) == (700, 690, 10)
        assert ray.label_counts == local.label_counts
        assert (tmp_path / f"ray.{ext}").read_bytes() == (tmp_path / f"local.{ext}").read_bytes()
        assert ((tmp_path / f"ray.{ext}.errors.jsonl").read_bytes()
                == (tmp_path / f"local.{ext}.errors.jsonl").read_bytes())


@pytest.mark.slow
def test_ray_engine_resumes_a_crashed_local_job(tmp_path, mini_corpus, linear_model_dir):
    from serving.batch import JobPaths
    from serving.predictor import load_predictor
    from tests.helpers import CrashAfter

    texts = [json.loads(line)["text"] for line in mini_corpus.read_text(encoding="utf-8").splitlines() if line]
    with open(tmp_path / "in.jsonl", "w", encoding="utf-8") as fh:
        for n in range(1, 401):
            fh.write(json.dumps({"id": f"r{n}", "text": texts[n % len(texts)]}) + "\n")
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with pytest.raises(SystemExit):
        run_label_job(inp, out, model=linear_model_dir, batch_size=10, chunk_rows=50, progress=False,
                      predictor=CrashAfter(load_predictor(linear_model_dir), 12))
    done = json.loads(JobPaths.for_output(out).checkpoint.read_text())["rows"]
    assert 0 < done < 400
    summary = run_label_job(inp, out, model=linear_model_dir, engine="ray", resume=True, progress=False,
                            ray_actors=1)
    assert summary.resumed_from == done and summary.rows_this_run == 400 - done
    run_label_job(inp, tmp_path / "ref.jsonl", model=linear_model_dir, progress=False)
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
