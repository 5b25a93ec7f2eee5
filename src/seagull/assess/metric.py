"""``seagull.create_metric(name)``: registered metrics and SEAGULL models behind one callable.

``create_metric("niqe")`` is the metric of :mod:`seagull.metrics.factory`; ``create_metric("seagull")``
is the shipped default model, and ``create_metric("path/to/model")`` any model folder: its quality
(or, with ``task="importance"``, importance) score of a region, the expectation over the five level
words, in [0, 1], higher = better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics.factory import IQAMetric, MetricInfo, _roi_mask, list_metrics
from ..metrics.factory import create_metric as create_registered_metric
from ..roi import Roi

DEFAULT_MODEL_NAME = "seagull"
MODEL_TASKS = ("quality", "importance")


class ModelMetric(IQAMetric):
    """A SEAGULL model folder as a metric: ``metric(image, roi=None) -> float`` in [0, 1]."""

    def __init__(self, model: str | Path | None, task: str = "quality", **assessor_kwargs: Any) -> None:
        from .assessor import Assessor, default_model_dir

        folder = default_model_dir() if model is None else Path(model)
        name = DEFAULT_MODEL_NAME if model is None else str(model)
        super().__init__(MetricInfo(name, "NR", False, (0.0, 1.0), f"region {task} (SEAGULL model {folder})"))
        self.task = task
        self.assessor = Assessor(folder, **assessor_kwargs)

    def __call__(self, image: Any, reference: Any = None, roi: np.ndarray | None = None) -> float:
        from ..imageio import load_image

        if reference is not None:
            raise ConfigError(f"metric {self.name!r} is no-reference: it takes no reference image")
        rgb = load_image(image)
        mask = _roi_mask(roi, rgb.shape[:2])
        (result,) = self.assessor.assess(rgb, [Roi(mask, name="roi", source="metric")], tasks=(self.task,))
        return float(getattr(result, self.task))


def create_metric(name: str, task: str = "quality", **assessor_kwargs: Any) -> IQAMetric:
    """A metric by name (:func:`seagull.metrics.factory.list_metrics`), ``"seagull"`` for the shipped
    model, or a model folder. ``task`` and ``assessor_kwargs`` apply to models only."""
    if task not in MODEL_TASKS:
        raise ConfigError(f"task {task!r} is not a scored task; choose one of {', '.join(MODEL_TASKS)}")
    if name == DEFAULT_MODEL_NAME:
        return ModelMetric(None, task, **assessor_kwargs)
    if name not in list_metrics() and Path(name).is_dir():
        return ModelMetric(name, task, **assessor_kwargs)
    return create_registered_metric(name)
