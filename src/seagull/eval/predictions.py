"""The prediction file: one JSON line per sample id, holding what a predictor said about each ROI.

```
{"id": "kodim01__blur__s07", "predictor": "brisque",
 "rois": [{"roi": "r0", "quality": 0.62, "quality_level": "fair",
           "importance": null, "importance_level": null,
           "distortions": [{"type": "blur", "confidence": 0.9, "severity_level": "moderate", "severity": 0.3}],
           "raw": {"brisque": 41.2}}]}
```

``quality``/``importance`` are scores in [0, 1] (higher = better quality / more important) or null
when the predictor does not answer that task; ``distortions`` lists the distortions the predictor
says are present (an empty list means "clean"), or is null when it does not answer. ``raw`` keeps
the predictor's own numbers. A folder of such files (one per predictor) is evaluated later with
:func:`load_prediction_dir` without running anything again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SchemaError
from ..schema import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS, atomic_write_text


@dataclass
class PredictedDistortion:
    type: str
    confidence: float | None = None
    severity_level: str | None = None
    severity: float | None = None

    def __post_init__(self) -> None:
        if self.type not in DISTORTION_TYPES:
            raise SchemaError(f"predicted distortion type {self.type!r} is not one of {DISTORTION_TYPES}")
        if self.severity_level is not None and self.severity_level not in SEVERITY_LEVELS:
            raise SchemaError(f"predicted severity {self.severity_level!r} is not one of {SEVERITY_LEVELS}")


@dataclass
class RoiPrediction:
    roi: str
    quality: float | None = None
    quality_level: str | None = None
    importance: float | None = None
    importance_level: str | None = None
    distortions: list[PredictedDistortion] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("quality", "importance"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(float(v)):
                setattr(self, name, None)  # NaN is "no answer", written as null
        if self.quality_level is not None and self.quality_level not in QUALITY_LEVELS:
            raise SchemaError(
                f"ROI {self.roi}: quality level {self.quality_level!r} is not one of {QUALITY_LEVELS}"
            )
        if self.importance_level is not None and self.importance_level not in IMPORTANCE_LEVELS:
            raise SchemaError(
                f"ROI {self.roi}: importance level {self.importance_level!r} is not one of {IMPORTANCE_LEVELS}"
            )

    @property
    def type_set(self) -> list[str] | None:
        return None if self.distortions is None else sorted({d.type for d in self.distortions})

    @property
    def severity_pairs(self) -> list[tuple[str, str]] | None:
        if self.distortions is None:
            return None
        return sorted({(d.type, d.severity_level) for d in self.distortions if d.severity_level is not None})

    @classmethod
    def from_dict(cls, d: dict[str, Any], roi: str | None = None) -> RoiPrediction:
        d = dict(d)
        d.setdefault("roi", roi if roi is not None else "r?")
        dist = d.get("distortions")
        d["distortions"] = None if dist is None else [PredictedDistortion(**x) for x in dist]
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SamplePrediction:
    id: str
    predictor: str
    rois: list[RoiPrediction]
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "predictor": self.predictor,
            "seconds": self.seconds,
            "rois": [r.to_dict() for r in self.rois],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplePrediction:
        try:
            rois = [RoiPrediction.from_dict(r) for r in d["rois"]]
            return cls(str(d["id"]), str(d.get("predictor", "?")), rois, d.get("seconds"))
        except (KeyError, TypeError) as e:
            raise SchemaError(
                f"prediction line for {d.get('id', '?')!r} does not follow the format: {e}"
            ) from e


def _json_safe(v: Any) -> Any:
    """NaN/inf become null (JSON has no NaN); containers are walked."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def write_predictions(path: Path, preds: Iterable[SamplePrediction]) -> None:
    lines = [json.dumps(_json_safe(p.to_dict()), allow_nan=False) for p in preds]
    atomic_write_text(Path(path), "\n".join(lines) + ("\n" if lines else ""))


def read_predictions(path: Path) -> Iterator[SamplePrediction]:
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"prediction file {path} does not exist")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise SchemaError(f"{path}:{n} is not valid JSON ({e.msg})") from e
            yield SamplePrediction.from_dict(d)


def load_prediction_file(path: Path) -> tuple[str, dict[str, SamplePrediction]]:
    """(predictor name, predictions by sample id) of one JSONL file; a duplicated id is an error."""
    out: dict[str, SamplePrediction] = {}
    name = Path(path).stem
    for p in read_predictions(path):
        if p.id in out:
            raise SchemaError(f"{path}: sample id {p.id!r} occurs twice")
        out[p.id] = p
        name = p.predictor or name
    return name, out


def load_prediction_dir(folder: Path) -> dict[str, dict[str, SamplePrediction]]:
    """Every ``*.jsonl`` in ``folder``: {predictor name: {sample id: prediction}}."""
    folder = Path(folder)
    paths = sorted(folder.glob("*.jsonl"))
    if not paths:
        raise SchemaError(f"{folder} holds no *.jsonl prediction files")
    out: dict[str, dict[str, SamplePrediction]] = {}
    for p in paths:
        name, preds = load_prediction_file(p)
        if name in out:
            raise SchemaError(f"{folder}: two prediction files are both for predictor {name!r}")
        out[name] = preds
    return out
