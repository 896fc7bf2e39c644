"""The model folder: ``model_meta.json`` schema, checksums, save and verified load.

A model folder describes itself: labels and schema version, normaliser version, training config, data
fingerprints, metrics, thresholds, temperature, library versions and a SHA-256 for every file that affects
predictions. ``load_meta`` refuses a folder that is missing files, was changed after training (tampered), or was
made for another label schema or normaliser, and says how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from serving import labels as label_schema
from serving.text import NORMALISER_VERSION

META_FILE = "model_meta.json"
FORMAT_VERSION = 1
# Files that do not change predictions and may be edited or regenerated freely.
_UNCHECKED = {META_FILE, "README.md"}
_UNCHECKED_DIRS = {"eval"}


class ModelFolderError(RuntimeError):
    """A model folder that cannot be used, with a message that says what to do about it."""


class ModelMeta(BaseModel):
    """The schema of ``model_meta.json``."""

    format_version: int = FORMAT_VERSION
    name: str
    version: str
    kind: Literal["transformer", "linear"]
    created_at: str
    labels: list[str]
    label_schema_version: int
    normaliser_version: int
    base_model: str | None = None
    max_length: int | None = None
    window_stride: int | None = None
    #: How a long text's window probabilities become one (serving.predictor.aggregate_windows).
    window_aggregation: Literal["max", "noisy_or", "topk_mean"] = "max"
    #: Sub-type head (issue 15): {label: [sub-type names]}; the graph's outputs after the label logits, in
    #: ``serving.labels.subtype_names`` order. None: no head.
    subtypes: dict[str, list[str]] | None = None
    #: Whether the model was trained on (parent, reply) pairs and so reads an optional parent post per text.
    context: bool = False
    #: The linear baseline blended into a transformer's label logits (``model.linear_blend``):
    #: {"file": an .npz in the folder, "weight": w, optionally "subtype_weight": the linear model's share of the
    #: sub-type logits (its file then holds sub-type rows)}. None: the transformer alone.
    linear_blend: dict[str, Any] | None = None
    temperature: float = 1.0
    thresholds: dict[str, float] = Field(default_factory=dict)
    #: Named operating points (serving/profiles.py): {name: {thresholds, review_band, description, metrics}}.
    profiles: dict[str, Any] = Field(default_factory=dict)
    default_profile: str | None = None
    calibration: dict[str, Any] = Field(default_factory=dict)
    training_config: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    onnx: dict[str, Any] = Field(default_factory=dict)
    library_versions: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _windows_cover_the_text(self) -> "ModelMeta":
        if self.max_length is not None and self.window_stride is not None and \
                self.window_stride > self.max_length - 2:
            raise ValueError(f"window_stride ({self.window_stride}) is larger than a window's {self.max_length - 2} "
                             f"text tokens (max_length {self.max_length} minus 2 special tokens): part of every "
                             "long text would never be read")
        return self

    @field_validator("onnx")
    @classmethod
    def _onnx_names_are_plain(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in ("fp32", "int8"):
            name = value.get(key)
            if name is not None and not _plain_relative(name):
                raise ValueError(f"onnx.{key} must be a file name inside the model folder, not {name!r}")
        return value

    @field_validator("linear_blend")
    @classmethod
    def _blend_is_a_file_and_a_share(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        if not _plain_relative(value.get("file")):
            raise ValueError(f"linear_blend.file must be a file name inside the model folder, not {value.get('file')!r}")
        weight = value.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < 1:
            raise ValueError(f"linear_blend.weight must be a number between 0 and 1 (exclusive), not {weight!r}")
        sub = value.get("subtype_weight")
        if sub is not None and (isinstance(sub, bool) or not isinstance(sub, (int, float)) or not 0 < sub < 1):
            raise ValueError(f"linear_blend.subtype_weight must be a number between 0 and 1 (exclusive), not {sub!r}")
        return value

    def decision_settings(self) -> dict[str, Any]:
        """Everything in the meta that changes a prediction: temperature, thresholds, profiles, windows."""
        return {"temperature": self.temperature, "thresholds": self.thresholds,
                "profiles": {k: {"thresholds": v.get("thresholds"), "review_band": v.get("review_band")}
                             for k, v in self.profiles.items()},
                "default_profile": self.default_profile, "max_length": self.max_length,
                "window_stride": self.window_stride, "normaliser_version": self.normaliser_version,
                "onnx": {k: self.onnx.get(k) for k in ("fp32", "int8")},
                # Only when not the default, so folders made before the field keep their identity.
                **({"window_aggregation": self.window_aggregation} if self.window_aggregation != "max" else {}),
                **({"subtypes": self.subtypes} if self.subtypes else {}),
                **({"context": True} if self.context else {}),
                **({"linear_blend": self.linear_blend} if self.linear_blend else {})}

    def sha256(self) -> str:
        """One digest for the whole model: every checked file's hash plus the decision settings of the meta, so a
        changed threshold, temperature or profile is a different model identity."""
        lines = "".join(f"{path}:{digest}\n" for path, digest in sorted(self.files.items()))
        lines += json.dumps(self.decision_settings(), sort_keys=True)
        return hashlib.sha256(lines.encode()).hexdigest()


def _plain_relative(name: Any) -> bool:
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return False
    path = Path(name)
    return not path.is_absolute() and ".." not in path.parts and not name.startswith(("/", "~"))


def inside_folder(folder: Path, name: str, *, what: str = "file") -> Path:
    """``folder / name``, refusing a name that leads outside the folder (absolute, ``..``, a symlink out)."""
    folder = Path(folder)
    if not _plain_relative(name):
        raise ModelFolderError(f"{folder}/{META_FILE}: {what} {name!r} is not a file name inside the model folder; "
                               "retrain or re-export the folder.")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ModelFolderError(f"{folder}/{META_FILE}: {what} {name!r} leads outside the model folder; retrain or "
                               "re-export the folder.")
    return path


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def checked_files(folder: Path) -> list[str]:
    """Relative paths of the files whose checksums the meta records."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if (path.is_file() and rel.as_posix() not in _UNCHECKED and rel.parts[0] not in _UNCHECKED_DIRS
                and not any(part.startswith(".") for part in rel.parts)):
            out.append(rel.as_posix())
    return out


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("counterpoint", "torch", "transformers", "tokenizers", "onnxruntime", "onnx", "scikit-learn", "skops",
                "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def write_meta(folder: Path, meta: ModelMeta) -> ModelMeta:
    """Record checksums of the folder's files in ``meta`` and write ``model_meta.json`` atomically."""
    folder = Path(folder)
    meta = meta.model_copy(update={"files": {rel: file_sha256(folder / rel) for rel in checked_files(folder)}})
    atomic_write_text(folder / META_FILE, meta.model_dump_json(indent=2))
    return meta


def update_meta(folder: Path, **changes: Any) -> ModelMeta:
    """Change fields of an existing folder's meta (e.g. after export) and re-record checksums."""
    meta = read_meta(folder)
    return write_meta(folder, meta.model_copy(update=changes))


@contextmanager
def new_folder(out: Path) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write a folder into: on success it replaces ``out`` whole (never half
    written); on any error it is removed and ``out`` is left as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_meta(folder: Path) -> ModelMeta:
    """Parse ``model_meta.json`` without verifying files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(
            f"model folder {folder} does not exist. Train one with `counterpoint train --output {folder}` "
            "(or `make serve`, which trains models/default on first run), or pass --model with an existing folder.")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ModelFolderError(
            f"{folder} is not a Counterpoint model folder: {META_FILE} is missing. Train one with "
            f"`counterpoint train --output {folder}`.")
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
        return ModelMeta.model_validate(raw)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ModelFolderError(f"{meta_path} is not valid model metadata ({exc}). Retrain the model folder.") from exc


def load_meta(folder: Path, *, verify: bool = True) -> ModelMeta:
    """Read and check a model folder: format, label schema, normaliser version and (if ``verify``) checksums."""
    folder = Path(folder)
    meta = read_meta(folder)
    if meta.format_version > FORMAT_VERSION:
        raise ModelFolderError(
            f"{folder} uses model-folder format {meta.format_version}, newer than this Counterpoint supports "
            f"({FORMAT_VERSION}). Upgrade Counterpoint.")
    if meta.label_schema_version != label_schema.SCHEMA_VERSION or meta.labels != list(label_schema.LABELS):
        raise ModelFolderError(
            f"{folder} was trained for label schema v{meta.label_schema_version} {meta.labels}, but this Counterpoint "
            f"uses v{label_schema.SCHEMA_VERSION} {list(label_schema.LABELS)}. Retrain the model on the current schema.")
    if meta.normaliser_version != NORMALISER_VERSION:
        raise ModelFolderError(
            f"{folder} was trained with text normaliser v{meta.normaliser_version}, but this Counterpoint normalises "
            f"with v{NORMALISER_VERSION}; its predictions would be off. Retrain the model.")
    if not meta.files:
        raise ModelFolderError(f"{folder}/{META_FILE} lists no files; the folder is incomplete. Retrain it.")
    if verify:
        verify_files(folder, meta)
    return meta


def verify_files(folder: Path, meta: ModelMeta) -> None:
    problems = []
    for rel, expected in meta.files.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif file_sha256(path) != expected:
            problems.append(f"{rel} does not match its recorded SHA-256 (changed after training)")
    extra = set(checked_files(folder)) - set(meta.files)
    problems += [f"{rel} is not part of the trained model" for rel in sorted(extra)]
    if problems:
        raise ModelFolderError(
            f"model folder {folder} failed verification: " + "; ".join(problems)
            + ". Restore the folder from where it came from, or retrain it with `counterpoint train`.")
