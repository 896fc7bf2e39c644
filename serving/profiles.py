"""Threshold profiles: named operating points of one model, and the review band.

A model folder ships several profiles (``high_recall``, ``balanced``, ``high_precision``), each chosen on dev for a
stated operating point rather than for balanced macro-F1 (see ``training.calibrate.choose_profiles``). A profile
holds the two thresholds of ``serving.predictor.decide`` and a **review band** on p(extremist): a post whose
extremist probability falls inside ``[review_band[0], review_band[1])`` gets ``review: true`` so that a human decides,
whether or not it was flagged. The folder's ``default_profile`` is what callers get when they name none; the
service can override that default (``COUNTERPOINT_PROFILE``), and every request may name its own.

Folders made before profiles existed have none: they get one implicit profile, ``default``, built from their
``thresholds`` and no review band.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from serving import labels as L

IMPLICIT = "default"


class UnknownProfile(ValueError):
    """A profile name the model folder does not have (the message lists the ones it has)."""


@dataclass(frozen=True)
class Profile:
    name: str
    thresholds: dict[str, float]
    review_band: tuple[float, float] | None = None
    description: str = ""
    metrics: dict = field(default_factory=dict, compare=False)

    def review(self, p_extremist: np.ndarray) -> np.ndarray:
        """Boolean mask: extremist probability inside the review band."""
        p = np.asarray(p_extremist, dtype=np.float64)
        if not self.review_band:
            return np.zeros(p.shape, dtype=bool)
        lo, hi = self.review_band
        return (p >= lo) & (p < hi)

    def to_dict(self) -> dict:
        return {"thresholds": dict(self.thresholds),
                "review_band": list(self.review_band) if self.review_band else None,
                "description": self.description, "metrics": self.metrics}


def profiles_of(meta) -> dict[str, Profile]:
    """All profiles of a model folder's meta, in the order stored (an implicit ``default`` for old folders)."""
    stored = getattr(meta, "profiles", None) or {}
    if not stored:
        return {IMPLICIT: Profile(IMPLICIT, dict(meta.thresholds), None, "the folder's thresholds")}
    out = {}
    for name, spec in stored.items():
        band = spec.get("review_band")
        out[name] = Profile(name, {k: float(v) for k, v in spec["thresholds"].items()},
                            (float(band[0]), float(band[1])) if band else None, spec.get("description", ""),
                            spec.get("metrics", {}))
    return out


def default_profile_name(meta) -> str:
    stored = getattr(meta, "profiles", None) or {}
    if not stored:
        return IMPLICIT
    name = getattr(meta, "default_profile", None)
    return name if name in stored else next(iter(stored))


def resolve(meta, name: str | None = None) -> Profile:
    """The profile called ``name`` (``None``: the folder's default); ``UnknownProfile`` names the choices."""
    profiles = profiles_of(meta)
    key = name or default_profile_name(meta)
    if key not in profiles:
        raise UnknownProfile(f"unknown profile {key!r}; this model has {', '.join(profiles)}")
    return profiles[key]


def check_band(band: tuple[float, float] | list[float] | None) -> None:
    if band is None:
        return
    lo, hi = band
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"review band {band!r} must satisfy 0 <= low <= high <= 1")


def extremist_column() -> int:
    return L.LABEL2ID[L.EXTREMIST]
