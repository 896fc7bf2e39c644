"""``counterpoint retrain``: a challenger trained on the corpus plus moderators' feedback, then compared with the
champion on the same frozen suites.

The challenger is made with the champion's own recipe (``model_meta.json`` -> ``training_config``), so the
comparison is about the data, with the feedback files (``counterpoint feedback export``) added to ``data.train``.
By default it is *warm-started*: fine-tuned from the champion's weights (its pruned tokenizer and output layer
included) for one epoch, which is what lets a retraining round finish in minutes on a laptop CPU; ``--cold``
trains from the base as ``counterpoint train`` does. Nothing is promoted: the table says whether to
(``counterpoint promote --challenger DIR`` applies the guards).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

from training.config import ConfigError, TrainConfig, apply_override, load_config

#: Warm start: one epoch from the champion's weights at half its learning rate.
WARM_EPOCHS = 1
WARM_LR_FACTOR = 0.5


def champion_meta(champion: str | Path) -> dict:
    """The champion's ``model_meta.json`` (a dict), or a clear error for a folder without one."""
    meta_path = Path(champion) / "model_meta.json"
    if not meta_path.is_file():
        raise ConfigError(f"{champion} is not a model folder (no model_meta.json); pass --champion DIR")
    return json.loads(meta_path.read_text(encoding="utf-8"))


def champion_recipe(champion: str | Path) -> dict:
    """The champion's resolved training config (a dict), or a clear error for a folder without one."""
    meta = champion_meta(champion)
    recipe = meta.get("training_config") or {}
    if not recipe:
        raise ConfigError(f"{champion} does not record how it was trained (no training_config in model_meta.json); "
                          "pass --config with the recipe to use")
    return recipe


def retrain_config(champion: str | Path, feedback: Sequence[str | Path], output: str | Path, *,
                   config: str | Path | None = None, overrides: Sequence[str] = (), warm: bool = True
                   ) -> TrainConfig:
    """The challenger's config: the champion's recipe (or ``config``), feedback added to the training files, the
    output folder set, warm-start settings, then the caller's ``overrides`` (they win)."""
    for path in feedback:
        if not str(path).startswith("hf:") and not Path(path).exists():
            raise ConfigError(f"feedback file {path} does not exist (make one with `counterpoint feedback export`)")
    if config is not None:
        data = load_config(config).model_dump(mode="json")
    else:
        data = champion_recipe(champion)
    data = json.loads(json.dumps(data))  # a private copy
    data.setdefault("data", {})
    data["data"]["train"] = [*data["data"].get("train", []), *(str(p) for p in feedback)]
    data.setdefault("output", {})["dir"] = str(output)
    model = data.setdefault("model", {})
    train = data.setdefault("train", {})
    if warm:
        if model.get("kind", "transformer") != "transformer":
            raise ConfigError("a warm start needs a transformer champion; pass --cold to retrain a linear model")
        if not any((Path(champion) / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
            raise ConfigError(f"{champion} has no torch weights (model.safetensors) to start from; pass --cold to "
                              "train the challenger from the base model")
        model["base"] = str(Path(champion).resolve())
        model["vocab_keep"] = ""  # the champion's tokenizer is already the pruned one
        train["epochs"] = WARM_EPOCHS
        train["learning_rate"] = float(train.get("learning_rate", 6e-5)) * WARM_LR_FACTOR
        train["warmup_ratio"] = 0.0
        recipe = (champion_meta(champion).get("onnx") or {}).get("int8_recipe") or {}
        if recipe.get("name"):  # the challenger stays close to the champion: start where the champion passed
            data.setdefault("export", {})["int8_first_recipe"] = recipe["name"]
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        return TrainConfig.model_validate(data)
    except Exception as exc:  # pydantic's message names the key
        raise ConfigError(f"bad retraining config: {exc}") from exc


def retrain(champion: str | Path, feedback: Sequence[str | Path], output: str | Path, *,
            config: str | Path | None = None, overrides: Sequence[str] = (), warm: bool = True,
            suites: Sequence[str | Path] = (), resamples: int = 1000, progress: bool = True,
            log: Callable[[str], None] = print) -> dict:
    """Train the challenger into ``output`` and compare it with ``champion`` on ``suites``; returns the comparison
    (``eval/compare.json`` is also written into the challenger's folder) with ``seconds`` for each stage."""
    from training.compare import compare_models, write_result
    from training.pipeline import train as run_train

    started = time.perf_counter()
    cfg = retrain_config(champion, feedback, output, config=config, overrides=overrides, warm=warm)
    log(f"retraining from {'the weights of ' + str(champion) if warm else cfg.model.base}: "
        f"{len(cfg.data.train)} training file(s) incl. {len(feedback)} feedback file(s), {cfg.train.epochs} epoch(s)")
    folder = run_train(cfg, progress=progress, log=log)
    trained = time.perf_counter()
    if not suites:
        raise ConfigError("no evaluation suites: pass --eval FILE (data/labeled/test.jsonl was not found)")
    result = compare_models(champion, folder, suites, resamples=resamples)
    result["seconds"] = {"train": round(trained - started, 1), "compare": round(time.perf_counter() - trained, 1),
                         "total": round(time.perf_counter() - started, 1)}
    result["retrain"] = {"warm_start": warm, "feedback": [str(p) for p in feedback]}
    # eval/ holds reports and is not part of the verified model files: the challenger stays loadable and promotable
    write_result(result, Path(folder) / "eval" / "compare.json")
    return result
