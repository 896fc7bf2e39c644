"""Saving and loading the linear baseline with skops (no pickle).

Only types skops trusts by default are accepted on load: a file that needs anything else is refused rather than
trusted, since trusting a type is what lets a file run code.
"""

from __future__ import annotations

from pathlib import Path

from serving.artifact import ModelFolderError


def save_pipeline(pipeline, path: Path) -> None:
    import skops.io as sio

    sio.dump(pipeline, str(path))


def load_pipeline(path: Path):
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - skops is a core dependency
        raise ModelFolderError("the linear model needs skops: pip install skops") from exc
    if not Path(path).is_file():
        raise ModelFolderError(f"{path} is missing; retrain the linear model with `counterpoint train "
                               "--set model.kind=linear`.")
    untrusted = sio.get_untrusted_types(file=str(path))
    if untrusted:
        raise ModelFolderError(f"{path} asks to load types that are not trusted ({', '.join(untrusted)}); refusing it. "
                               "Retrain the model with this version of Counterpoint.")
    return sio.load(str(path), trusted=[])
