"""The model as an evaluation predictor: wraps :class:`seagull.assess.Assessor`.

The assessor is imported lazily; if it is not installed or not written yet, :func:`load_model_predictor`
raises a :class:`ModelError` that says so (baselines still run with ``--model none``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..roi import Roi
from ..schema import DISTORTION_TYPES, SEVERITY_LEVELS
from .journal import digest
from .predictions import PredictedDistortion

TASKS = ("quality", "importance", "distortion")


def _num(v: Any) -> float | None:
    if isinstance(v, dict):
        v = v.get("score", v.get("value"))
    return None if v is None else float(v)


def _level(v: Any, d: dict[str, Any], key: str) -> str | None:
    if isinstance(v, dict):
        return v.get("level")
    return d.get(f"{key}_level")


def assessment_to_output(d: dict[str, Any]) -> dict[str, Any]:
    """An ``RoiAssessment.to_dict()`` -> the evaluator's per-ROI dict (quality, levels, distortions).

    Accepts flat (``quality``, ``quality_level``) or nested (``quality: {score, level}``) fields; the
    distortion list items need ``type`` and may carry ``present`` (items with ``present: false`` are
    dropped), ``confidence``, ``severity_level`` (or ``severity`` as a word) and a numeric ``severity``.
    Types outside the six are an error.
    """
    out: dict[str, Any] = {"raw": {}}
    for key in ("quality", "importance"):
        if key in d and d[key] is not None:
            out[key] = _num(d[key])
            lvl = _level(d[key], d, key)
            if lvl is not None:
                out[f"{key}_level"] = lvl
    if "distortions" in d and d["distortions"] is not None:
        items = []
        for x in d["distortions"]:
            if not x.get("present", True):
                continue  # the assessor lists every type with a presence decision
            t = x.get("type")
            if t not in DISTORTION_TYPES:
                raise ModelError(
                    f"the assessor returned distortion type {t!r}, not one of {DISTORTION_TYPES}"
                )
            sev_word = x.get("severity_level")
            sev_num = x.get("severity")
            if isinstance(sev_num, str):
                sev_word, sev_num = sev_num, None
            if sev_word is not None and sev_word not in SEVERITY_LEVELS:
                raise ModelError(f"the assessor returned severity {sev_word!r}, not one of {SEVERITY_LEVELS}")
            items.append(
                {
                    "type": t,
                    "confidence": x.get("confidence"),
                    "severity_level": sev_word,
                    "severity": sev_num,
                }
            )
        out["distortions"] = items
    if "text" in d:
        out["raw"]["text"] = d["text"]
    return out


@dataclass
class AssessorPredictor:
    """``predict(image, masks)`` through ``Assessor.assess(image, rois, tasks=...)``."""

    assessor: Any
    name: str = "seagull"
    tasks: tuple[str, ...] = TASKS
    identity: str | None = None  # what its outputs depend on (model files), for resuming a run

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[dict[str, Any]]:
        rois = [Roi(m, name=f"r{i}", source="eval") for i, m in enumerate(masks)]
        results = self.assessor.assess(image, rois, tasks=self.tasks)
        if len(results) != len(rois):
            raise ModelError(f"the assessor answered {len(results)} ROIs for {len(rois)} asked")
        outs = []
        for r in results:
            out = assessment_to_output(r.to_dict())
            if "distortion" not in self.tasks:
                out.pop("distortions", None)  # not asked: no answer, not "clean"
            if "distortions" in out:
                out["distortions"] = [PredictedDistortion(**x) for x in out["distortions"]]
            outs.append(out)
        return outs


def shipped_model_dir() -> Path:
    """The folder of the shipped default model (what ``seagull assess`` uses without ``--model``)."""
    try:
        from ..assess import default_model_dir
    except ImportError as e:
        raise ModelError(
            f"cannot evaluate the shipped model: seagull.assess is not available ({e}); "
            "run with --model none to evaluate the baselines only"
        ) from e
    return default_model_dir()


def load_model_predictor(model: str | Path, name: str | None = None) -> AssessorPredictor:
    try:
        from ..assess import Assessor
    except ImportError as e:
        raise ModelError(
            f"cannot evaluate model {model}: seagull.assess.Assessor is not available ({e}); "
            "run with --model none to evaluate the baselines only"
        ) from e
    return AssessorPredictor(
        Assessor(model), name or f"seagull:{Path(str(model)).name}", identity=model_identity(model)
    )


def model_identity(model: str | Path) -> str:
    """The model folder and a digest of its files' names, sizes and modification times."""
    path = Path(str(model)).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = (f"{p.relative_to(path.parent)}\t{p.stat().st_size}\t{p.stat().st_mtime_ns}" for p in files)
    return f"{path}@{digest(stats)}"
