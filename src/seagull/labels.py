"""Label words and levels: the distortion types, the five level words of each task, the thresholds
that turn scores into levels, and one distortion label of a region.

Synthesis labels regions with these words, templates put them in conversations, the model scores
them and evaluation compares them: level words and thresholds live here and nowhere else.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .errors import SchemaError

DISTORTION_TYPES: tuple[str, ...] = ("blur", "colorfulness", "compression", "contrast", "exposure", "noise")
# Settings of each family's strength ladder, 1 (mildest) .. NUM_SETTINGS (strongest).
NUM_SETTINGS: int = 20
QUALITY_LEVELS: tuple[str, ...] = ("bad", "poor", "fair", "good", "excellent")
IMPORTANCE_LEVELS: tuple[str, ...] = ("unimportant", "minor", "normal", "important", "essential")
SEVERITY_LEVELS: tuple[str, ...] = ("slight", "mild", "moderate", "severe", "extreme")
TASKS: tuple[str, ...] = ("quality", "importance", "distortion")


def _is_fraction(value: object) -> bool:
    """A real number in [0, 1] (NaN fails the comparison)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 <= value <= 1.0


@dataclass(frozen=True)
class Thresholds:
    """Cut points that turn scores in [0, 1] into the five level words.

    ``quality`` and ``importance`` cut their own scores; ``severity`` cuts the damage
    ``1 - quality`` of a region; ``visible`` is the smallest damage that counts as a distortion
    at all (below it the region is labelled as having no obvious distortion). Defaults come from
    the calibration described in docs/labels.md and are stored in every dataset card.
    """

    quality: tuple[float, float, float, float] = (0.50, 0.64, 0.77, 0.87)
    importance: tuple[float, float, float, float] = (0.015, 0.05, 0.14, 0.30)
    severity: tuple[float, float, float, float] = (0.14, 0.24, 0.36, 0.50)
    visible: float = 0.025

    def __post_init__(self) -> None:
        for name in ("quality", "importance", "severity"):
            cuts = getattr(self, name)
            if (
                len(cuts) != 4
                or not all(_is_fraction(c) for c in cuts)
                or any(b <= a for a, b in zip(cuts, cuts[1:], strict=False))
            ):
                raise SchemaError(
                    f"thresholds.{name} must be 4 increasing finite numbers in [0, 1], got {list(cuts)!r}"
                )
        if not _is_fraction(self.visible):
            raise SchemaError(f"thresholds.visible must be a finite number in [0, 1], got {self.visible!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Thresholds:
        return cls(
            quality=tuple(d["quality"]),
            importance=tuple(d["importance"]),
            severity=tuple(d["severity"]),
            visible=float(d["visible"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


DEFAULT_THRESHOLDS = Thresholds()


def level_index(score: float, cuts: Sequence[float]) -> int:
    """Index 0..4 of ``score`` among four increasing cut points."""
    return sum(1 for c in cuts if score >= c)


def quality_level(score: float, th: Thresholds = DEFAULT_THRESHOLDS) -> str:
    return QUALITY_LEVELS[level_index(score, th.quality)]


def importance_level(score: float, th: Thresholds = DEFAULT_THRESHOLDS) -> str:
    return IMPORTANCE_LEVELS[level_index(score, th.importance)]


def severity_level(damage: float, th: Thresholds = DEFAULT_THRESHOLDS) -> str:
    return SEVERITY_LEVELS[level_index(damage, th.severity)]


@dataclass
class DistortionLabel:
    """One distortion present in a region, with its strength in that region."""

    type: str
    severity: float  # damage 1 - quality caused in this region, in [0, 1]
    severity_level: str
    subtype: str | None = None

    def __post_init__(self) -> None:
        if self.type not in DISTORTION_TYPES:
            raise SchemaError(f"distortion type {self.type!r} is not one of {DISTORTION_TYPES}")
        if self.severity_level not in SEVERITY_LEVELS:
            raise SchemaError(f"severity level {self.severity_level!r} is not one of {SEVERITY_LEVELS}")
