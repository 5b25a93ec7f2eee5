"""Every automatic region of a photo at once: which regions can be judged, the values that colour
the heatmap and the regions ranked worst first (``seagull map``, ``seagull assess --every``,
``POST /v1/map``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..roi import MIN_ROI_PIXELS, Roi
from ..schema import RegionPrediction

MAP_TASKS = ("quality", "importance")  # what a region map asks of every region


def judgeable(rois: list[Roi]) -> list[Roi]:
    """Automatic regions the model can judge (at least MIN_ROI_PIXELS pixels)."""
    return [r for r in rois if r.area >= MIN_ROI_PIXELS]


@dataclass
class RegionMap:
    values: list[float]  # per region, for the heatmap: quality, or 1 - importance (red = worst either way)
    worst: list[int]  # region indices by quality, worst first


def region_map(results: Sequence[RegionPrediction], by: str = "quality") -> RegionMap:
    """Heatmap values coloured ``by`` quality or importance, and the ranking by quality."""
    scores = [getattr(r, by) for r in results]
    values = scores if by == "quality" else [1 - s for s in scores]
    return RegionMap(values, sorted(range(len(results)), key=lambda i: results[i].quality))
