"""The model as an evaluation predictor: wraps :class:`seagull.assess.Assessor`.

The Assessor (and with it torch and the model) is imported only when a model is evaluated, so that
``--model none`` runs the baselines without it; if that import fails, :func:`load_model_predictor`
raises a :class:`ModelError` that says so and suggests ``--model none``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..labels import TASKS
from ..region_prediction import RegionPrediction
from ..roi import Roi
from .journal import digest


@dataclass
class AssessorPredictor:
    """``predict(image, masks)`` through ``Assessor.assess(image, rois, tasks=...)``: evaluation scores
    the very predictions users get."""

    assessor: Any
    name: str = "seagull"
    tasks: tuple[str, ...] = TASKS
    identity: str | None = None  # what its outputs depend on (model files), for resuming a run

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[RegionPrediction]:
        rois = [Roi(m, name=f"r{i}", source="eval") for i, m in enumerate(masks)]
        results = self.assessor.assess(image, rois, tasks=self.tasks)
        if len(results) != len(rois):
            raise ModelError(f"the assessor answered {len(results)} ROIs for {len(rois)} asked")
        if "distortion" not in self.tasks:
            for r in results:
                r.distortions = None  # not asked: no answer, not "clean"
        return results


def shipped_model_dir() -> Path:
    """The folder of the shipped default model (what ``seagull assess`` uses without ``--model``)."""
    try:
        from ..assess.assessor import default_model_dir
    except ImportError as e:
        raise ModelError(
            f"cannot evaluate the shipped model: seagull.assess is not available ({e}); "
            "run with --model none to evaluate the baselines only"
        ) from e
    return default_model_dir()


def load_model_predictor(model: str | Path, name: str | None = None) -> AssessorPredictor:
    try:
        from ..assess.assessor import Assessor
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
