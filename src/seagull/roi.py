"""Regions of interest: specs (mask, box, point, COCO RLE, polygon) to binary masks and back.

A :class:`Roi` always holds a boolean mask at image size. Points need a proposer (a callable that
turns an image and a point into a mask, see :mod:`seagull.proposals`); everything else is exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .errors import RoiError

PointProposer = Callable[[np.ndarray, tuple[float, float]], np.ndarray]


@dataclass
class Roi:
    """A region of interest: a boolean mask at image size plus where it came from."""

    mask: np.ndarray
    name: str = "roi"
    source: str = "user"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = np.asarray(self.mask)
        if m.ndim != 2:
            raise RoiError(f"ROI {self.name!r}: mask must be 2-D (HxW), got shape {m.shape}")
        self.mask = m.astype(bool, copy=False)
        if not self.mask.any():
            raise RoiError(f"ROI {self.name!r}: the mask is empty; give a region with at least one pixel")

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return mask_bbox(self.mask)

    def to_rle(self) -> dict[str, Any]:
        return mask_to_rle(self.mask)

    def check_size(self, height: int, width: int) -> None:
        if self.mask.shape != (height, width):
            raise RoiError(
                f"ROI {self.name!r}: mask is {self.mask.shape[1]}x{self.mask.shape[0]} but the image is "
                f"{width}x{height}; resize the mask to the image or give the ROI for this image"
            )


# --------------------------------------------------------------------------- mask helpers


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box ``(x, y, w, h)`` around the true pixels; a one-pixel-wide mask has w = 1."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise RoiError("cannot take the bounding box of an empty mask")
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    return x0, y0, x1 - x0 + 1, y1 - y0 + 1


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE with ``counts`` as a str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: Mapping[str, Any] | str, name: str = "rle") -> np.ndarray:
    """Decode a COCO RLE (compressed str/bytes counts or uncompressed list counts, or its JSON text)."""
    if isinstance(rle, str):
        try:
            rle = json.loads(rle)
        except json.JSONDecodeError as e:
            raise RoiError(
                f"ROI {name!r}: RLE is not valid JSON ({e.msg}); pass {{'size': [h, w], 'counts': ...}}"
            ) from e
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise RoiError(f"ROI {name!r}: an RLE needs 'size' [h, w] and 'counts'")
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    try:
        if isinstance(counts, list):
            if sum(counts) != h * w:
                raise RoiError(f"ROI {name!r}: RLE counts sum to {sum(counts)}, expected h*w = {h * w}")
            coded = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        else:
            coded = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        m = mask_utils.decode(coded)
    except RoiError:
        raise
    except Exception as e:  # pycocotools raises bare exceptions on malformed strings
        raise RoiError(f"ROI {name!r}: RLE could not be decoded ({e})") from e
    return m.astype(bool)


def box_to_mask(
    box: Sequence[float], height: int, width: int, fmt: str = "xywh", name: str = "box"
) -> np.ndarray:
    """Rasterise a box; ``fmt`` is ``xywh`` or ``xyxy``. Coordinates are pixels; the box is clipped."""
    if len(box) != 4:
        raise RoiError(f"ROI {name!r}: a box needs 4 numbers, got {list(box)}")
    x, y, a, b = (float(v) for v in box)
    if fmt == "xywh":
        x0, y0, x1, y1 = x, y, x + a, y + b
    elif fmt == "xyxy":
        x0, y0, x1, y1 = x, y, a, b
    else:
        raise RoiError(f"ROI {name!r}: box format must be 'xywh' or 'xyxy', got {fmt!r}")
    if x1 <= x0 or y1 <= y0:
        raise RoiError(f"ROI {name!r}: box {list(box)} ({fmt}) has zero or negative area")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise RoiError(f"ROI {name!r}: box {list(box)} ({fmt}) lies outside the {width}x{height} image")
    c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    c1, r1 = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
    m = np.zeros((height, width), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def polygon_to_mask(
    polygons: Sequence[Sequence[float]], height: int, width: int, name: str = "polygon"
) -> np.ndarray:
    """COCO-style polygons ``[[x1, y1, x2, y2, ...], ...]`` (one flat list is accepted too)."""
    if polygons and isinstance(polygons[0], (int, float)):
        polygons = [polygons]  # type: ignore[list-item]
    polys = [list(map(float, p)) for p in polygons]
    if not polys or any(len(p) < 6 or len(p) % 2 for p in polys):
        raise RoiError(f"ROI {name!r}: each polygon needs at least 3 (x, y) points as a flat list")
    rles = mask_utils.frPyObjects(polys, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def load_mask_file(path: str | Path, name: str | None = None) -> np.ndarray:
    """A mask image (PNG etc.): any non-zero pixel is inside the ROI."""
    p = Path(path)
    if not p.is_file():
        raise RoiError(f"ROI {name or p.name!r}: mask file {p} does not exist")
    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("L") if im.mode not in ("1", "L", "I", "I;16") else im)
    except OSError as e:
        raise RoiError(f"ROI {name or p.name!r}: mask file {p} is not a readable image ({e})") from e
    return arr > 0


# --------------------------------------------------------------------------- specs


@dataclass
class RoiSpec:
    """An ROI as the user gives it, before it is resolved against an image."""

    kind: str  # mask | box | point | rle | polygon
    value: Any
    name: str = "roi"
    fmt: str = "xywh"  # for boxes

    def resolve(self, image: np.ndarray, point_proposer: PointProposer | None = None) -> Roi:
        h, w = image.shape[:2]
        n = self.name
        if self.kind == "mask":
            m = (
                load_mask_file(self.value, n)
                if isinstance(self.value, (str, Path))
                else np.asarray(self.value)
            )
            roi = Roi(m, n, "mask")
        elif self.kind == "box":
            roi = Roi(box_to_mask(self.value, h, w, self.fmt, n), n, "box")
        elif self.kind == "rle":
            roi = Roi(rle_to_mask(self.value, n), n, "rle")
        elif self.kind == "polygon":
            roi = Roi(polygon_to_mask(self.value, h, w, n), n, "polygon")
        elif self.kind == "point":
            x, y = (float(v) for v in self.value)
            if not (0 <= x < w and 0 <= y < h):
                raise RoiError(f"ROI {n!r}: point ({x}, {y}) lies outside the {w}x{h} image")
            if point_proposer is None:
                raise RoiError(f"ROI {n!r}: a point ROI needs a proposer to turn it into a mask")
            roi = Roi(point_proposer(image, (x, y)), n, "point")
        else:
            raise RoiError(f"ROI {n!r}: unknown kind {self.kind!r}; use mask, box, point, rle or polygon")
        roi.check_size(h, w)
        return roi


def spec_from_dict(d: Mapping[str, Any], index: int = 0) -> RoiSpec:
    """One entry of a ROI JSON file: ``{"box": [x, y, w, h], "format": "xywh", "name": ...}`` or
    ``{"point": [x, y]}``, ``{"rle": {...}}``, ``{"polygon": [[...]]}``, ``{"mask": "file.png"}``."""
    name = str(d.get("name", f"roi{index}"))
    kinds = [k for k in ("mask", "box", "point", "rle", "polygon") if k in d]
    if len(kinds) != 1:
        raise RoiError(
            f"ROI {name!r}: give exactly one of mask, box, point, rle, polygon (got {kinds or list(d)})"
        )
    return RoiSpec(kinds[0], d[kinds[0]], name, str(d.get("format", "xywh")))


def load_roi_file(path: str | Path) -> list[RoiSpec]:
    """A JSON file holding a list of ROI entries (see :func:`spec_from_dict`) or ``{"rois": [...]}``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise RoiError(f"ROI file {p} does not exist") from e
    except json.JSONDecodeError as e:
        raise RoiError(f"ROI file {p} is not valid JSON: {e.msg} at line {e.lineno}") from e
    if isinstance(data, Mapping):
        data = data.get("rois", [])
    if not isinstance(data, list) or not data:
        raise RoiError(f"ROI file {p} must hold a non-empty list of ROI entries")
    base = p.parent
    specs = []
    for i, d in enumerate(data):
        if not isinstance(d, Mapping):
            raise RoiError(f"ROI file {p}: entry {i} is not an object")
        s = spec_from_dict(d, i)
        if s.kind == "mask" and isinstance(s.value, str) and not Path(s.value).is_absolute():
            s.value = str(base / s.value)
        specs.append(s)
    return specs


def parse_box(text: str, fmt: str = "xywh") -> RoiSpec:
    """``"x,y,w,h"`` from the command line."""
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError as e:
        raise RoiError(f"box {text!r}: expected four comma-separated numbers like 10,20,100,80") from e
    return RoiSpec("box", vals, f"box({text})", fmt)


def parse_point(text: str) -> RoiSpec:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError as e:
        raise RoiError(f"point {text!r}: expected two comma-separated numbers like 120,64") from e
    return RoiSpec("point", (x, y), f"point({text})")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter / union) if union else 0.0
