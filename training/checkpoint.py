"""Checkpoints of a transformer fine-tune (issue 12): a run killed at any point continues with ``--resume`` and
ends with exactly the metrics of an uninterrupted run with the same seed.

The checkpoint folder is ``<output.dir>.partial/`` (``models/default`` -> ``models/default.partial/``). It holds:

- ``checkpoint.json``: the commit point. What the run is (a fingerprint of the config and the data), where it is
  (epoch, batches of this epoch done, optimiser step of the planned total) and which state files belong to it.
- ``state-<step>-<token>.pt``: model, optimiser and scheduler state, the torch / NumPy / Python RNG states, the
  batch-order ``random.Random`` state as it was at the start of the current epoch (the epoch's batch order is drawn
  again and the batches already done are skipped), the running loss sums, history and early-stopping counters.
- ``best-e<epoch>-<token>.pt``: the best-on-dev weights, written once per epoch when they change.

Every file is written to a temporary name and moved into place with ``os.replace``; ``checkpoint.json`` is
replaced last and names its files, so a kill at any moment leaves the previous checkpoint or the new one, never a
mix. Files no longer named by ``checkpoint.json`` are removed after it is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

META = "checkpoint.json"
VERSION = 1
#: Train keys that do not change what a run computes (a resumed run may change them).
_NEUTRAL_TRAIN_KEYS = ("checkpoint_every",)


class CheckpointError(ValueError):
    """A checkpoint that cannot be continued (other config or data, unreadable); the message says what to do."""


def checkpoint_dir(output_dir: str | Path) -> Path:
    """The checkpoint folder of a run writing ``output_dir``: its sibling ``<name>.partial``."""
    out = Path(output_dir)
    return out.with_name(out.name + ".partial")


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=int).encode()).hexdigest()


def run_fingerprint(cfg, data: dict[str, list | None]) -> dict:
    """What decides a fine-tune's result: the ``model`` and ``train`` config sections (less ``checkpoint_every``)
    and the exact training inputs (texts, labels, parents, sub-types, dev set)."""
    train = {k: v for k, v in cfg.train.model_dump(mode="json").items() if k not in _NEUTRAL_TRAIN_KEYS}
    config = {"model": cfg.model.model_dump(mode="json"), "train": train}
    return {"config": config, "config_sha256": _sha(config), "data_sha256": _sha(data),
            "rows": {name: len(v) for name, v in data.items() if v is not None and name.endswith("texts")}}


def differences(saved: dict, now: dict) -> list[str]:
    """Human-readable differences between two fingerprints (empty when they match)."""
    out = []
    if saved.get("config_sha256") != now["config_sha256"]:
        old, new = saved.get("config", {}), now["config"]
        for section in sorted(set(old) | set(new)):
            a, b = old.get(section, {}), new.get(section, {})
            for key in sorted(set(a) | set(b)):
                if a.get(key, "<unset>") != b.get(key, "<unset>"):
                    out.append(f"{section}.{key}: checkpoint {json.dumps(a.get(key, '<unset>'))}, "
                               f"now {json.dumps(b.get(key, '<unset>'))}")
        if not out:
            out.append("the config differs")
    if saved.get("data_sha256") != now["data_sha256"]:
        rows_old, rows_new = saved.get("rows", {}), now["rows"]
        detail = ", ".join(f"{k.removesuffix('_texts')} {rows_old.get(k, '?')} -> {rows_new.get(k, '?')} rows"
                           for k in sorted(rows_new) if rows_old.get(k) != rows_new.get(k))
        out.append("the training or dev data differ" + (f" ({detail})" if detail else
                                                         " (same row counts, different texts or labels)"))
    return out


def read_meta(folder: Path) -> dict | None:
    """The checkpoint's ``checkpoint.json``, or None where the folder has none."""
    path = Path(folder) / META
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc}); delete {folder} to start over") from exc
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {meta.get('version')}, this code writes "
                              f"{VERSION}; delete {folder} to start over")
    return meta


def describe(meta: dict) -> str:
    if meta.get("finished"):
        return f"training finished at step {meta['step']} of {meta['total_steps']}"
    return (f"step {meta['step']} of {meta['total_steps']} (epoch {meta['epoch']}, {meta['batches_done']} batches "
            "of it done)")


def check(meta: dict, fingerprint: dict, folder: Path) -> None:
    """Refuse to continue a checkpoint made with another config or other data."""
    diff = differences(meta.get("fingerprint", {}), fingerprint)
    if diff:
        raise CheckpointError(
            f"cannot resume from {folder}: it was made by a different run: {'; '.join(diff)}. Resume with the "
            f"checkpoint's settings and data, or run without --resume to start over (the checkpoint is then "
            f"overwritten as the new run proceeds), or delete {folder}")


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_best(folder: Path, state_dict: dict, epoch: int) -> str:
    """Write the best-on-dev weights; returns the file name to pass to ``save``."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"best-e{epoch}-{uuid.uuid4().hex[:8]}.pt"
    _atomic_torch_save(state_dict, folder / name)
    return name


def save(folder: Path, state: dict, *, fingerprint: dict, total_steps: int, best_file: str | None) -> None:
    """Write a state file, then commit it (and ``best_file``) in ``checkpoint.json``; drop files no longer named."""
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    name = f"state-{state['step']:07d}-{uuid.uuid4().hex[:8]}.pt"
    _atomic_torch_save(state, folder / name)
    meta = {"version": VERSION, "step": state["step"], "total_steps": total_steps, "epoch": state["epoch"],
            "batches_done": state["batches_done"], "finished": state["finished"], "state": name, "best": best_file,
            "fingerprint": fingerprint, "torch": torch.__version__, "transformers": transformers.__version__}
    _atomic_write_text(json.dumps(meta, indent=1), folder / META)
    keep = {META, name, best_file}
    for path in folder.iterdir():
        if path.name not in keep and (path.suffix in (".pt", ".tmp")):
            path.unlink(missing_ok=True)


def load(folder: Path, meta: dict) -> tuple[dict, dict | None]:
    """The state dict and the best-on-dev weights (None before the first epoch ended) of a checkpoint."""
    import torch

    try:
        state = torch.load(folder / meta["state"], map_location="cpu", weights_only=True)
        best = (torch.load(folder / meta["best"], map_location="cpu", weights_only=True) if meta.get("best")
                else None)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: one clear message
        raise CheckpointError(f"checkpoint {folder} cannot be read ({type(exc).__name__}: {exc}); delete it or run "
                              "without --resume to start over") from exc
    return state, best


def library_drift(meta: dict) -> str | None:
    """A note when torch / transformers changed since the checkpoint (the results may then differ in the last
    bits from an uninterrupted run)."""
    import torch
    import transformers

    now = {"torch": torch.__version__, "transformers": transformers.__version__}
    changed = [f"{k} {meta.get(k)} -> {v}" for k, v in now.items() if meta.get(k) != v]
    return ("library versions changed since the checkpoint (" + ", ".join(changed) + "); the resumed run may not "
            "match an uninterrupted one bit for bit") if changed else None
