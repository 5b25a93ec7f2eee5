"""THE per-ROI prediction type: what a predictor says about one region (:class:`RegionPrediction`)
and about one distortion type in it (:class:`DistortionPrediction`).

The Assessor and the evaluation baselines answer with :class:`RegionPrediction`; ``seagull assess
--json``, batch JSONL, the REST API, evaluation and reports read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import SchemaError
from .labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS


@dataclass
class DistortionPrediction:
    """What a predictor says about one distortion type in a region."""

    type: str
    confidence: float | None = None  # P(the answer names this type)
    present: bool = True  # the Assessor lists every type with this decision; baselines only present ones
    severity_level: str | None = None
    severity: float | None = None  # 0 (slight) .. 1 (extreme)
    severity_probs: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.type not in DISTORTION_TYPES:
            raise SchemaError(f"predicted distortion type {self.type!r} is not one of {DISTORTION_TYPES}")
        if self.severity_level is not None and self.severity_level not in SEVERITY_LEVELS:
            raise SchemaError(f"predicted severity {self.severity_level!r} is not one of {SEVERITY_LEVELS}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DistortionPrediction:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# Fields written only when set: evaluation's, never part of what the Assessor returns.
EVALUATION_FIELDS = ("quality_uncalibrated", "importance_uncalibrated", "raw")
# Keys of earlier prediction files and saved evaluation outputs, read under their current names.
LEGACY_KEYS = {"roi": "name", "score": "quality_uncalibrated", "importance_score": "importance_uncalibrated"}


@dataclass
class RegionPrediction:
    """What a predictor says about one region: the per-ROI JSON of ``seagull assess``, batch JSONL and
    the REST API, and what evaluation scores (model and baselines alike).

    ``quality``/``importance`` are in [0, 1] (higher = better quality / more important), None when
    not answered (NaN is read as no answer). ``distortions`` None means not answered; evaluation counts
    the ``present`` ones (none present = clean). Baselines give ``*_uncalibrated`` scores (their own
    scale, oriented like the labels) that evaluation calibrates into ``quality``/``importance``, and
    keep their own numbers in ``raw``.
    """

    name: str
    bbox: tuple[int, int, int, int] | None = None  # x, y, w, h
    area: int | None = None
    quality: float | None = None
    quality_level: str | None = None
    quality_probs: dict[str, float] | None = None
    importance: float | None = None
    importance_level: str | None = None
    importance_probs: dict[str, float] | None = None
    distortions: list[DistortionPrediction] | None = None
    answers: dict[str, str] = field(default_factory=dict)  # generated text (text=True)
    parsed: dict[str, Any] = field(default_factory=dict)  # strict parses of ``answers``
    quality_uncalibrated: float | None = None
    importance_uncalibrated: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("quality", "importance"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(float(v)):
                setattr(self, name, None)
        if self.quality_level is not None and self.quality_level not in QUALITY_LEVELS:
            raise SchemaError(
                f"ROI {self.name}: quality level {self.quality_level!r} is not one of {QUALITY_LEVELS}"
            )
        if self.importance_level is not None and self.importance_level not in IMPORTANCE_LEVELS:
            raise SchemaError(
                f"ROI {self.name}: importance level {self.importance_level!r} is not one of {IMPORTANCE_LEVELS}"
            )

    @property
    def present_distortions(self) -> list[DistortionPrediction] | None:
        return None if self.distortions is None else [d for d in self.distortions if d.present]

    @property
    def type_set(self) -> list[str] | None:
        present = self.present_distortions
        return None if present is None else sorted({d.type for d in present})

    @property
    def severity_pairs(self) -> list[tuple[str, str]] | None:
        present = self.present_distortions
        if present is None:
            return None
        return sorted({(d.type, d.severity_level) for d in present if d.severity_level is not None})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.bbox is not None:
            d["bbox"] = list(self.bbox)
        for k in EVALUATION_FIELDS:
            if d[k] is None or d[k] == {}:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegionPrediction:
        d = {LEGACY_KEYS.get(k, k): v for k, v in d.items()}
        d.setdefault("name", "")
        dist = d.get("distortions")
        d["distortions"] = None if dist is None else [DistortionPrediction.from_dict(x) for x in dist]
        if d.get("bbox") is not None:
            d["bbox"] = tuple(d["bbox"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
