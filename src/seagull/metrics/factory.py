"""``create_metric(name)``: every registered metric as one callable, in pyiqa's shape.

pyiqa users write ``m = pyiqa.create_metric("niqe"); m(img)`` and read ``m.lower_better``. Here the
same call gives an :class:`IQAMetric` for each no-reference metric (:data:`nr.NR_METRICS`) and each
full-reference similarity (:data:`fr.FR_METRICS`); :func:`seagull.create_metric` (in
:mod:`seagull.assess.metric`) adds model folders and the shipped default model on top of this one.

A metric scores a whole image, or one region of it: ``roi`` is a boolean mask of the image's size.
No-reference metrics that read a crop (BRISQUE, NIQE, PIQE) see the ROI's bounding box; those that
read a mask (sharpness heuristics) see the mask. Full-reference similarities compare the bounding-box
crops of the image and the reference. The number is the metric's own, unoriented: read
``lower_better`` and ``score_range`` to interpret it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, RoiError
from ..imageio import load_image
from . import nr


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is, independent of how it is computed."""

    name: str
    mode: str  # "NR" (no reference) or "FR" (needs a reference image)
    lower_better: bool
    score_range: tuple[float, float | None]  # nominal; None = unbounded above
    description: str  # what it responds to, in words


class IQAMetric:
    """One image-quality metric: ``metric(image, reference=None, roi=None) -> float``.

    ``image`` and ``reference`` are a path, a PIL image or an HxWx3 uint8 array; ``roi`` is an HxW
    boolean mask (None = the whole image).
    """

    def __init__(self, info: MetricInfo) -> None:
        self.info = info

    name = property(lambda self: self.info.name)
    lower_better = property(lambda self: self.info.lower_better)
    score_range = property(lambda self: self.info.score_range)
    metric_mode = property(lambda self: self.info.mode)

    def __call__(self, image: Any, reference: Any = None, roi: np.ndarray | None = None) -> float:
        rgb = load_image(image)
        mask = _roi_mask(roi, rgb.shape[:2])
        if self.info.mode == "FR":
            if reference is None:
                raise ConfigError(f"metric {self.name!r} is full-reference: pass reference=<the clean image>")
            return self._score_fr(rgb, load_image(reference), mask)
        if reference is not None:
            raise ConfigError(f"metric {self.name!r} is no-reference: it takes no reference image")
        return self._score_nr(rgb, mask)

    def _score_nr(self, rgb: np.ndarray, mask: np.ndarray) -> float:
        entry = nr.get_nr_metric(self.name)
        if entry.takes == "mask":
            return float(entry.fn(rgb, mask))
        return float(entry.fn(nr.bbox_crop(rgb, mask)))

    def _score_fr(self, rgb: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
        import torch

        from . import fr

        if ref.shape != rgb.shape:
            raise ConfigError(
                f"metric {self.name!r}: the reference is {ref.shape[1]}x{ref.shape[0]} but the image is "
                f"{rgb.shape[1]}x{rgb.shape[0]}; pass the reference of this very image"
            )

        def tensor(a: np.ndarray) -> torch.Tensor:
            crop = nr.bbox_crop(a, mask).copy()  # torch wants a writable array
            return torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0

        return float(fr.get_fr_metric(self.name)(tensor(rgb), tensor(ref))[0])

    def __repr__(self) -> str:
        i = self.info
        return f"IQAMetric({i.name!r}, mode={i.mode}, lower_better={i.lower_better}, score_range={i.score_range})"


def _roi_mask(roi: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if roi is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(roi)
    if mask.shape != shape:
        raise RoiError(
            f"the ROI mask is {mask.shape} but the image is {shape}; give a mask of the image's size"
        )
    mask = mask.astype(bool)
    if not mask.any():
        raise RoiError("the ROI mask is empty; give a mask with at least one pixel set")
    return mask


def _registered() -> dict[str, MetricInfo]:
    from . import fr

    infos = {
        m.name: MetricInfo(m.name, "NR", not m.higher_is_better, m.value_range, m.description)
        for m in nr.NR_METRICS.entries()
    }
    for f in fr.FR_METRICS.entries():
        infos[f.name] = MetricInfo(f.name, "FR", not f.higher_is_better, f.value_range, f.description)
    return infos


def list_metrics() -> tuple[str, ...]:
    """Names of every registered no-reference and full-reference metric."""
    return tuple(_registered())


def create_metric(name: str) -> IQAMetric:
    """The registered metric ``name`` as one callable (see :class:`IQAMetric`)."""
    infos = _registered()
    if name not in infos:
        hint = " (a model folder is loaded by seagull.create_metric)" if Path(name).exists() else ""
        raise ConfigError(f"unknown metric {name!r}{hint}; choose one of {', '.join(infos)}")
    return IQAMetric(infos[name])
