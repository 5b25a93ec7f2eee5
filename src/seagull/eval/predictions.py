"""The prediction file: one JSON line per sample id, holding what a predictor said about each ROI.

```
{"id": "kodim01__blur__s07", "predictor": "brisque", "seconds": null,
 "rois": [{"name": "r0", "bbox": null, "area": null, "quality": 0.62, "quality_level": "fair",
           "quality_probs": null, "importance": null, "importance_level": null, "importance_probs": null,
           "distortions": [{"type": "blur", "confidence": null, "present": true, "severity_level": "moderate",
                            "severity": 0.3, "severity_probs": null}],
           "answers": {}, "parsed": {}, "quality_uncalibrated": -41.2, "raw": {"brisque": 41.2}}]}
```

Each ROI is a :class:`seagull.region_prediction.RegionPrediction` (the model's are what ``seagull assess``
gives): ``quality``/``importance`` in [0, 1] or null when the predictor does not answer that task;
``distortions`` null when it does not answer, else the present ones are its answer (none = clean).
Files written before this shape (``"roi"`` for the name) read the same. A folder of such files (one
per predictor) is evaluated later with :func:`load_prediction_dir` without running anything again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SchemaError
from ..fileio import atomic_write_text
from ..region_prediction import RegionPrediction


@dataclass
class SamplePrediction:
    id: str
    predictor: str
    rois: list[RegionPrediction]
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
            rois = [RegionPrediction.from_dict(r) for r in d["rois"]]
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
