"""The model registry: promoted models with their history, ``promote`` with guarded slices, ``rollback``.

Scheme (simple and atomic on one filesystem):

- ``models/registry/v0001/``, ``v0002/`` …: a full copy of each promoted model folder. A copy is made under a
  hidden temporary name and renamed into place, so a half-copied version never carries a version name.
- ``models/registry/registry.json``: ``{"current": "v0002" | null, "entries": [...], "events": [...]}``, written
  to a temporary file and ``os.replace``-d. An entry: version, model name/version, sha256, data fingerprints,
  training config, metrics (the comparison against the champion it replaced), who promoted it, why, whether it was
  forced, when, and ``status`` (``promoted`` or ``rolled_back``). ``events`` logs every promote and rollback.
- ``models/default`` (what ``counterpoint serve`` uses) is a relative symlink to the current version, switched by
  creating a new link beside it and ``os.replace``-ing it over the old one. If ``models/default`` is still a plain
  folder on the first promote, it is first adopted into the registry as a version (moved, not copied), so the
  rollback target exists.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import getpass
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

from serving.artifact import atomic_write_text, load_meta

REGISTRY_DIR = Path("models/registry")
SERVED_LINK = Path("models/default")
#: Slices a challenger may not lose on (fnmatch patterns over the slice names of training.compare).
DEFAULT_GUARDS = ("all", "lang=*", "counter_speech", "origin=real")
#: Largest macro-F1 drop (challenger - champion) tolerated on a guarded slice.
DEFAULT_TOLERANCE = 0.02


class RegistryError(ValueError):
    """A registry operation that cannot go ahead, with a message that says why."""


class PromotionRefused(RegistryError):
    def __init__(self, violations: list[str]):
        self.violations = violations
        super().__init__("challenger refused: worse than the champion beyond the tolerance on "
                         + "; ".join(violations) + ". Re-run with --force --reason TEXT to promote anyway.")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Registry:
    def __init__(self, root: str | Path = REGISTRY_DIR, served: str | Path = SERVED_LINK):
        self.root, self.served = Path(root), Path(served)

    # -- state -------------------------------------------------------------------------------------------------
    @property
    def _file(self) -> Path:
        return self.root / "registry.json"

    def read(self) -> dict:
        if not self._file.exists():
            return {"current": None, "entries": [], "events": []}
        return json.loads(self._file.read_text(encoding="utf-8"))

    def _write(self, state: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._file, json.dumps(state, indent=2))

    def current_folder(self) -> Path | None:
        """The folder in service: the registry's current version, else a plain ``models/default`` if present."""
        state = self.read()
        if state["current"]:
            return self.root / state["current"]
        return self.served if (self.served / "model_meta.json").exists() else None

    # -- helpers -----------------------------------------------------------------------------------------------
    def _next_version(self, state: dict) -> str:
        return f"v{len(state['entries']) + 1:04d}"

    def _point_to(self, version: str) -> None:
        """Switch the served link atomically to ``version``."""
        self.served.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(self.root / version, self.served.parent)
        tmp = self.served.parent / f".{self.served.name}.{os.getpid()}.tmp"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, self.served)

    def _entry(self, version: str, folder: Path, *, reason: str, by: str, forced: bool, metrics: dict | None,
               source: str) -> dict:
        meta = load_meta(folder)
        return {"version": version, "model_name": meta.name, "model_version": meta.version, "sha256": meta.sha256(),
                "data": meta.data, "training_config": meta.training_config, "metrics": metrics or {},
                "promoted_by": by, "reason": reason, "forced": forced, "promoted_at": _now(), "source": source,
                "status": "promoted"}

    def _adopt_plain_default(self, state: dict) -> None:
        """First promote over a plain ``models/default`` folder: move it into the registry as a version."""
        if state["current"] or self.served.is_symlink() or not (self.served / "model_meta.json").exists():
            return
        version = self._next_version(state)
        self.root.mkdir(parents=True, exist_ok=True)
        entry = self._entry(version, self.served, reason="adopted: the folder served before the registry",
                            by=getpass.getuser(), forced=False, metrics=None, source=str(self.served))
        os.rename(self.served, self.root / version)
        state["entries"].append(entry)
        state["current"] = version
        state["events"].append({"action": "adopt", "version": version, "at": entry["promoted_at"]})
        self._write(state)
        self._point_to(version)

    # -- operations --------------------------------------------------------------------------------------------
    def promote(self, challenger: str | Path, *, reason: str = "", by: str | None = None, force: bool = False,
                metrics: dict | None = None) -> dict:
        """Copy ``challenger`` in as the next version and serve it. Guards are checked by the caller
        (``check_guards``); ``force`` only records that they were overridden."""
        challenger = Path(challenger)
        load_meta(challenger)  # verifies checksums: a broken folder never enters the registry
        state = self.read()
        self._adopt_plain_default(state)
        state = self.read()
        version = self._next_version(state)
        staging = self.root / f".{version}.tmp"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(challenger, staging, symlinks=False)
        os.rename(staging, self.root / version)
        entry = self._entry(version, self.root / version, reason=reason, by=by or getpass.getuser(), forced=force,
                            metrics=metrics, source=str(challenger))
        state["entries"].append(entry)
        state["current"] = version
        state["events"].append({"action": "promote", "version": version, "at": entry["promoted_at"],
                                "forced": force, "reason": reason})
        self._write(state)
        self._point_to(version)
        return entry

    def rollback(self, *, reason: str = "", by: str | None = None) -> dict:
        """Serve the promoted entry before the current one; the current one is marked ``rolled_back``."""
        state = self.read()
        if not state["current"]:
            raise RegistryError(f"nothing to roll back: {self._file} has no current model")
        versions = [e["version"] for e in state["entries"]]
        i = versions.index(state["current"])
        earlier = [e for e in state["entries"][:i] if e["status"] == "promoted"]
        if not earlier:
            raise RegistryError(f"nothing to roll back to: {state['current']} is the oldest promoted model")
        state["entries"][i]["status"] = "rolled_back"
        target = earlier[-1]["version"]
        state["current"] = target
        state["events"].append({"action": "rollback", "from": versions[i], "version": target, "at": _now(),
                                "by": by or getpass.getuser(), "reason": reason})
        self._write(state)
        self._point_to(target)
        return earlier[-1]


def check_guards(comparison: dict, guards: Sequence[str] = DEFAULT_GUARDS,
                 tolerance: float = DEFAULT_TOLERANCE) -> list[str]:
    """Guarded slices where the challenger's macro-F1 is below the champion's by more than ``tolerance``."""
    out = []
    for suite, slices in comparison.get("suites", {}).items():
        for name, row in slices.items():
            if any(fnmatch.fnmatchcase(name, g) for g in guards) and row["diff"] < -tolerance:
                out.append(f"{suite}/{name} macro-F1 {row['champion']['macro_f1']:.3f} -> "
                           f"{row['challenger']['macro_f1']:.3f} ({row['diff']:+.3f})")
    return out


def guarded_promote(registry: Registry, challenger: str | Path, suites: Sequence[str | Path], *,
                    reason: str = "", force: bool = False, guards: Sequence[str] = DEFAULT_GUARDS,
                    tolerance: float = DEFAULT_TOLERANCE, resamples: int = 1000, seed: int = 0,
                    by: str | None = None) -> tuple[dict, dict | None, list[str]]:
    """Compare with the model in service (if any), refuse on a guarded loss unless forced with a reason."""
    from training.compare import compare_models

    if force and not reason.strip():
        raise RegistryError("--force needs --reason TEXT saying why the guards are overridden")
    champion = registry.current_folder()
    comparison, violations = None, []
    if champion is not None:
        comparison = compare_models(champion, challenger, suites, resamples=resamples, seed=seed)
        violations = check_guards(comparison, guards, tolerance)
        if violations and not force:
            raise PromotionRefused(violations)
    metrics = {"guards": list(guards), "tolerance": tolerance, "violations": violations,
               "comparison": comparison}
    entry = registry.promote(challenger, reason=reason, by=by, force=bool(force and violations), metrics=metrics)
    return entry, comparison, violations


def render_history(state: dict) -> str:
    lines = [f"{'':1} {'version':<8} {'model':<28} {'sha256':<12} {'status':<11} {'promoted_at':<25} "
             f"{'by':<10} reason"]
    for e in state["entries"]:
        mark = "*" if e["version"] == state["current"] else " "
        lines.append(f"{mark} {e['version']:<8} {(e['model_name'] + ' ' + e['model_version'])[:28]:<28} "
                     f"{e['sha256'][:12]:<12} {e['status']:<11} {e['promoted_at']:<25} {e['promoted_by'][:10]:<10} "
                     f"{'(forced) ' if e['forced'] else ''}{e['reason']}")
    return "\n".join(lines)
