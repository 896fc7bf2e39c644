"""A real crash: ``kill -9`` a running ``counterpoint label`` after it has written a part, then ``--resume``.

Every input row must end up exactly once in the output or the errors file, and the output must equal that of a
job that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving.batch import JobPaths, run_label_job

ROOT = Path(__file__).resolve().parents[2]
ROWS = 5_000
BAD_EVERY = 997


def label_command(inp: Path, out: Path, model: Path, *extra: str) -> list[str]:
    # Batches of 4 rows, so parts (16 batches, 64 rows) come often and the job is killed early in the file.
    return [sys.executable, "-m", "training.cli", "label", str(inp), "-o", str(out), "--model", str(model),
            "--batch-size", "4", "--quiet", *extra]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def checkpoint_parts(path: Path) -> int:
    try:
        return len(json.loads(path.read_text())["parts"])
    except (OSError, ValueError, KeyError):  # not there yet (it is replaced atomically, never half-written)
        return 0


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_kill_9_mid_run_then_resume_labels_every_row_exactly_once(tmp_path, mini_corpus, linear_model_dir, ext):
    texts = [json.loads(line)["text"] for line in mini_corpus.read_text(encoding="utf-8").splitlines() if line]
    expected_ids, expected_bad = [], []
    with open(tmp_path / "in.jsonl", "w", encoding="utf-8") as fh:
        for n in range(1, ROWS + 1):
            if n % BAD_EVERY == 0:
                fh.write('{"id": "broken"\n')
                expected_bad.append(n)
            else:
                fh.write(json.dumps({"id": f"r{n}", "text": texts[n % len(texts)], "n": n}, ensure_ascii=False) + "\n")
                expected_ids.append(f"r{n}")
    inp, out = tmp_path / "in.jsonl", tmp_path / f"out.{ext}"
    paths = JobPaths.for_output(out)

    proc = subprocess.Popen(label_command(inp, out, linear_model_dir), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300  # a guard against hanging, not a timing assertion
        while proc.poll() is None and checkpoint_parts(paths.checkpoint) < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, f"the job ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    done = json.loads(paths.checkpoint.read_text())["rows"]
    assert 0 < done < ROWS

    again = run(label_command(inp, out, linear_model_dir))
    assert again.returncode == 2 and "--resume" in again.stderr

    resumed = run(label_command(inp, out, linear_model_dir, "--resume", "--batch-size", "256"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"labelled {len(expected_ids):,} of {ROWS:,} rows" in resumed.stdout
    assert "resumed at row" in resumed.stdout

    if ext == "jsonl":
        got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        import pyarrow.parquet as pq

        got = pq.read_table(out).to_pylist()
    assert [row["id"] for row in got] == expected_ids  # each labelled once, in input order
    errors = [json.loads(line) for line in Path(f"{out}.errors.jsonl").read_text().splitlines()]
    assert [e["line"] for e in errors] == expected_bad
    assert not paths.parts.exists()

    reference = tmp_path / f"reference.{ext}"  # a job that was never interrupted
    run_label_job(inp, reference, model=linear_model_dir, progress=False)
    if ext == "jsonl":
        assert out.read_bytes() == reference.read_bytes()
    else:
        import pyarrow.parquet as pq

        assert pq.read_table(out).equals(pq.read_table(reference))
