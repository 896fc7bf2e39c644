"""Issue 12: a `counterpoint train` run killed with SIGKILL continues from its last checkpoint with `--resume` and
ends with exactly the result of an uninterrupted run with the same seed.

The runs are real `counterpoint train` processes on a tiny random-weight BERT (2 layers, hidden 64, the MiniLM
WordPiece tokenizer) with dropout, so both the dropout RNG and the batch order have to be restored exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import MINI_CORPUS, ROOT

STEPS = 48  # 48 train rows, batch 2, 2 epochs
KILL_AT = 30  # a checkpoint in epoch 2, after epoch 1's best weights were written
DATA = [f'data.train=["{MINI_CORPUS}"]', "data.dev=[]", "data.test=[]", "data.split_fractions=[0.25, 0.25]",
        'output.name="tiny-resume"', 'output.version="0.0.1"']
TRAIN = ['model.vocab_keep=""', "model.max_length=64", "model.window_stride=48", "train.freeze_layers=0",
         "train.epochs=2", "train.batch_size=2", "train.patience=5", "train.threads=1", "train.checkpoint_every=5",
         "train.warmup_ratio=0.1", "train.learning_rate=1e-3", "export.onnx=false"]
SETTINGS = DATA + TRAIN


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A random-weight 2-layer BERT (with dropout) and the MiniLM tokenizer: a step takes milliseconds."""
    import torch
    from transformers import BertConfig, BertModel

    from training.finetune import resolve_base

    minilm = Path(resolve_base("minilm"))
    base = tmp_path_factory.mktemp("bases") / "tiny-bert"
    base.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(minilm / name, base / name)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1)
    BertModel(config).save_pretrained(base)
    return base


def _cmd(base: Path, out: Path, *flags: str, settings: tuple[str, ...] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "training.cli", "train", "--quiet", "--output", str(out), *flags,
           "--set", f'model.base="{base}"']
    for setting in [*SETTINGS, *settings]:
        cmd += ["--set", setting]
    return cmd


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def _checkpoint_step(folder: Path) -> int:
    try:
        return json.loads((folder / "checkpoint.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


@pytest.fixture(scope="module")
def killed_run(tiny_base, tmp_path_factory):
    """An uninterrupted reference run and, alongside it, the same run killed with SIGKILL at a checkpoint in
    epoch 2 (plus a copy of that checkpoint for the refusal test)."""
    tmp = tmp_path_factory.mktemp("resume")
    ref_out, out = tmp / "reference", tmp / "killed"
    reference = subprocess.Popen(_cmd(tiny_base, ref_out, "--resume"), cwd=ROOT, env=_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(_cmd(tiny_base, out), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    folder = out.with_name(out.name + ".partial")
    deadline = time.monotonic() + 240
    while _checkpoint_step(folder) < KILL_AT and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if victim.poll() is not None:
        pytest.fail(f"the run ended (status {victim.returncode}) before its checkpoint at step {KILL_AT}: "
                    f"{victim.communicate()[1][-3000:]}")
    os.kill(victim.pid, signal.SIGKILL)
    _, victim_err = victim.communicate()
    assert victim.returncode == -signal.SIGKILL, victim_err
    assert _checkpoint_step(folder) >= KILL_AT, victim_err
    assert not out.exists()
    copy = tmp / "other.partial"
    shutil.copytree(folder, copy)
    ref_stdout, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err
    return {"base": tiny_base, "out": out, "folder": folder, "reference": ref_out, "reference_err": ref_err,
            "copy": copy}


def _logits(folder: Path, texts: list[str]) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.finetune import predict_logits

    model = AutoModelForSequenceClassification.from_pretrained(folder)
    return predict_logits(model, AutoTokenizer.from_pretrained(folder), texts, 64)


def _untimed(metrics):
    """Metrics without the timings (seconds, posts per second), which differ between any two runs."""
    if isinstance(metrics, dict):
        return {k: _untimed(v) for k, v in metrics.items() if k not in ("seconds", "posts_per_second")}
    return [_untimed(v) for v in metrics] if isinstance(metrics, list) else metrics


def test_killed_run_resumes_to_the_same_result(killed_run):
    ref, out = killed_run["reference"], killed_run["out"]
    assert "no checkpoint in" in killed_run["reference_err"]  # --resume without a checkpoint starts normally
    assert not ref.with_name(ref.name + ".partial").exists()  # removed once the model folder was written

    run = subprocess.run(_cmd(killed_run["base"], out, "--resume"), cwd=ROOT, env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    resumed_at = [line for line in run.stderr.splitlines() if "resuming from checkpoint" in line]
    assert resumed_at and f"of {STEPS} (epoch 2" in resumed_at[0], run.stderr
    assert not killed_run["folder"].exists()

    meta_ref = json.loads((ref / "model_meta.json").read_text())["metrics"]
    meta_res = json.loads((out / "model_meta.json").read_text())["metrics"]
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in meta_ref["history"]]
    assert len(strip) == 2
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in meta_res["history"]] == strip
    assert meta_res["best_epoch"] == meta_ref["best_epoch"]
    assert meta_res["test"] == meta_ref["test"] and meta_res["dev"] == meta_ref["dev"]
    eval_ref = json.loads((ref / "eval" / "metrics.json").read_text())["datasets"]
    eval_res = json.loads((out / "eval" / "metrics.json").read_text())["datasets"]
    assert _untimed(eval_res) == _untimed(eval_ref)

    from safetensors.numpy import load_file

    w_ref, w_res = load_file(ref / "model.safetensors"), load_file(out / "model.safetensors")
    assert w_ref.keys() == w_res.keys()
    assert all(np.array_equal(w_ref[k], w_res[k]) for k in w_ref)
    texts = ["they deserve what is coming to them", "we stand together against hate", "the match starts at six"]
    assert np.allclose(_logits(ref, texts), _logits(out, texts), rtol=0, atol=0)


def test_resume_refuses_a_checkpoint_of_another_config_or_data(killed_run):
    other = killed_run["copy"].with_name("other")
    run = subprocess.run(_cmd(killed_run["base"], other, "--resume",
                              settings=("train.learning_rate=2e-3", "data.split_fractions=[0.3, 0.25]")),
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert "cannot resume from" in run.stderr and "made by a different run" in run.stderr
    assert "train.learning_rate: checkpoint 0.001, now 0.002" in run.stderr
    assert "training or dev data differ" in run.stderr and "without --resume" in run.stderr
    assert (killed_run["copy"] / "checkpoint.json").is_file()  # a refused checkpoint is left as it was
    assert not other.exists()


def test_a_run_without_resume_leaves_the_checkpoint_alone(killed_run):
    """Without --resume an existing checkpoint is reported, not deleted (this short run writes none of its own)."""
    other = killed_run["copy"].with_name("other")
    before = sorted(p.name for p in killed_run["copy"].iterdir())
    run = subprocess.run(_cmd(killed_run["base"], other, settings=("train.max_steps=2",)), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"a checkpoint of an interrupted run is in {killed_run['copy']}" in run.stderr
    assert "Starting from the beginning" in run.stderr
    assert sorted(p.name for p in killed_run["copy"].iterdir()) == before
    assert (other / "model_meta.json").is_file()


def test_a_checkpoint_of_a_finished_fine_tune_skips_training(tiny_base, tmp_path):
    """Killed after the fine-tune (during export or evaluation): --resume takes the trained weights as they were."""
    import torch

    from tests.helpers import tiny_config
    from training.checkpoint import read_meta
    from training.finetune import finetune

    cfg = tiny_config(tmp_path / "m", f'model.base="{tiny_base}"', *TRAIN, "train.max_steps=12")
    texts = [f"post number {i} about {'peace' if i % 3 else 'war'}" for i in range(24)]
    y = [i % 3 for i in range(24)]
    folder = tmp_path / "m.partial"
    threads = torch.get_num_threads()
    try:
        first = finetune(cfg, texts, y, texts[:6], y[:6], progress=False, checkpoint=folder, log=lambda m: None)
        meta = read_meta(folder)
        assert meta["finished"] and meta["step"] == 12 and first.checkpoint_used
        assert [p.suffix for p in folder.iterdir()].count(".pt") == 2  # the small final state + the best weights
        messages = []
        again = finetune(cfg, texts, y, texts[:6], y[:6], progress=False, checkpoint=folder, resume=True,
                         log=messages.append)
    finally:
        torch.set_num_threads(threads)
    assert any("training finished at step 12 of 12" in m for m in messages), messages
    assert again.history == first.history and again.best_epoch == first.best_epoch
    a, b = first.model.state_dict(), again.model.state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
