"""Every region of a photo at once, for ``seagull map``, ``seagull assess --every`` and
``POST /v1/map``: which regions to judge (content segments or a grid of overlapping tiles), what
value each region puts on the map, the per-pixel map and the regions ranked worst first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, RoiError
from ..labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, Thresholds
from ..region_prediction import RegionPrediction
from ..roi import MIN_ROI_PIXELS, Roi

MAP_TASKS = ("quality", "importance")  # what a quality or importance map asks of every region
MAP_MODES = ("tiles", "segments", "superpixels")  # the first is the default (benchmarks/map_localisation.py)
MAP_BY = ("quality", "importance", *DISTORTION_TYPES, "worst")
# Tile side in pixels at the working size. benchmarks/map_localisation.py on 4 Kodak photos: 128 px
# tiles (77 on 768x512) find the damaged half as well as 96 px tiles (150) at about a third of the time.
DEFAULT_TILE = 128
MIN_TILE = 4  # a 4x4 tile is MIN_ROI_PIXELS


def judgeable(rois: list[Roi]) -> list[Roi]:
    """Automatic regions the model can judge (at least MIN_ROI_PIXELS pixels)."""
    return [r for r in rois if r.area >= MIN_ROI_PIXELS]


def check_map_options(mode: str, by: str, tile: int | None) -> None:
    """Refuse an unknown mode or ``by``, or a tile the model cannot judge, before any work."""
    if mode not in MAP_MODES:
        raise ConfigError(f"map mode {mode!r} is not one of {', '.join(MAP_MODES)}")
    if by not in MAP_BY:
        raise ConfigError(f"map by {by!r} is not one of {', '.join(MAP_BY)}")
    if tile is not None and tile < MIN_TILE:
        raise RoiError(
            f"tile {tile} px is too small: the model judges regions of at least {MIN_TILE}x{MIN_TILE}"
        )


def map_tasks(by: str) -> tuple[str, ...]:
    """The questions a map ``by`` this asks (distortion types need the distortion question)."""
    return MAP_TASKS if by in MAP_TASKS else (*MAP_TASKS, "distortion")


def _starts(length: int, tile: int) -> list[int]:
    """Tile starts along one side: every tile/2 pixels, the last one flush with the far edge."""
    step = max(1, tile // 2)
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def tile_rois(height: int, width: int, tile: int | None = None) -> list[Roi]:
    """A grid of square tiles overlapping by half, covering every pixel of a ``width`` x ``height`` photo.

    With the default tile, a photo smaller than one tile gets one tile of its own size along that side;
    a tile given explicitly that is larger than the photo is an error.
    """
    if tile is None:
        th, tw = min(DEFAULT_TILE, height), min(DEFAULT_TILE, width)
    else:
        if tile < MIN_TILE:
            raise RoiError(
                f"tile {tile} px is too small: the model judges regions of at least {MIN_TILE}x{MIN_TILE}"
            )
        if tile > height or tile > width:
            raise RoiError(
                f"tile {tile}x{tile} px is larger than the photo ({width}x{height} px at the working size); "
                f"give --tile at most {min(height, width)}"
            )
        th = tw = tile
    rois = []
    for y in _starts(height, th):
        for x in _starts(width, tw):
            mask = np.zeros((height, width), bool)
            mask[y : y + th, x : x + tw] = True
            rois.append(Roi(mask, name=f"tile_{y}_{x}", source="tile"))
    return rois


def distortion_confidence(result: RegionPrediction, kind: str) -> float:
    """Confidence of one distortion type, or (``worst``) of the most confident type."""
    if not result.distortions:
        raise RoiError(f"region {result.name}: no distortion answer to map; assess with the distortion task")
    conf = {d.type: float(d.confidence or 0.0) for d in result.distortions}
    return max(conf.values()) if kind == "worst" else conf.get(kind, 0.0)


def region_value(result: RegionPrediction, by: str) -> float:
    """What one region puts on a map ``by`` this, in [0, 1]."""
    if by in MAP_TASKS:
        return float(getattr(result, by))
    return distortion_confidence(result, by)


@dataclass(frozen=True)
class MapMeaning:
    """What a map shows, for its colour scale: the label, which end is bad, the level words."""

    by: str
    label: str
    higher_is_worse: bool
    levels: tuple[tuple[float, str], ...] = ()  # (lower cut, word) along 0..1


def map_meaning(by: str, thresholds: Thresholds | None = None) -> MapMeaning:
    th = thresholds or Thresholds()
    if by == "quality":
        cuts = (0.0, *th.quality)
        return MapMeaning(by, "quality (low = damaged)", False, tuple(zip(cuts, QUALITY_LEVELS, strict=True)))
    if by == "importance":
        cuts = (0.0, *th.importance)
        return MapMeaning(by, "importance", True, tuple(zip(cuts, IMPORTANCE_LEVELS, strict=True)))
    if by == "worst":
        return MapMeaning(by, "strongest distortion confidence", True)
    return MapMeaning(by, f"{by} confidence (high = more {by})", True)


@dataclass
class RegionMap:
    values: list[float]  # per region: what the map shows (quality, importance or a confidence)
    worst: list[int]  # region indices, worst first on that map (lowest quality, highest otherwise)
    meaning: MapMeaning


def region_map(results: Sequence[RegionPrediction], by: str = "quality") -> RegionMap:
    """Each region's value on a map ``by`` quality, importance, a distortion type or ``worst``,
    and the regions ranked worst first on it."""
    meaning = map_meaning(by)
    values = [region_value(r, by) for r in results]
    sign = -1.0 if meaning.higher_is_worse else 1.0
    return RegionMap(values, sorted(range(len(values)), key=lambda i: sign * values[i]), meaning)


def pixel_map(masks: Sequence[np.ndarray], values: Sequence[float], mode: str) -> np.ndarray:
    """Per-pixel value (NaN where no region covers it). ``tiles``: the mean of the tiles covering each
    pixel; ``segments`` / ``superpixels``: the smallest region covering it (the most specific wins)."""
    if not masks:
        raise RoiError("a map needs at least one region")
    shape = masks[0].shape
    if mode == "tiles":
        total = np.zeros(shape, np.float64)
        count = np.zeros(shape, np.int32)
        for m, v in zip(masks, values, strict=True):
            total[m] += v
            count[m] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
    out = np.full(shape, np.nan, np.float32)
    for i in sorted(range(len(masks)), key=lambda i: -int(masks[i].sum())):
        out[masks[i]] = values[i]
    return out


def map_rois(image: np.ndarray, mode: str, tile: int | None, max_regions: int) -> list[Roi]:
    """The regions a map of ``image`` judges: overlapping tiles, or judgeable content segments or
    superpixels (about ``max_regions`` of them)."""
    if mode == "tiles":
        return tile_rois(image.shape[0], image.shape[1], tile)
    from ..proposals import every_region, superpixel_regions

    propose = superpixel_regions if mode == "superpixels" else every_region
    return judgeable(propose(image, max_regions))


def separate_worst(rois: Sequence[Roi], worst: Sequence[int], count: int) -> list[int]:
    """The first ``count`` of ``worst`` that share less than a quarter of their area with each one taken
    before (overlapping tiles or nested segments would otherwise outline one place several times)."""
    taken: list[int] = []
    for i in worst:
        if len(taken) == count:
            break
        m = rois[i].mask
        if all((m & rois[j].mask).sum() < 0.25 * min(rois[i].area, rois[j].area) for j in taken):
            taken.append(i)
    return taken


def map_image(
    image: np.ndarray,
    rois: Sequence[Roi],
    rmap: RegionMap,
    mode: str,
    outlined: int = 5,
    scale: bool = True,
) -> np.ndarray:
    """The map picture: the photo under the per-pixel map, the worst regions outlined with their
    ranks, and (``scale``) a colour scale saying what is mapped."""
    from .pictures import Outline, map_picture

    values = pixel_map([r.mask for r in rois], rmap.values, mode)
    outlines = [
        Outline(rois[i].mask, str(k)) for k, i in enumerate(separate_worst(rois, rmap.worst, outlined), 1)
    ]
    m = rmap.meaning
    return map_picture(image, values, m.label, m.higher_is_worse, m.levels, outlines, scale)
