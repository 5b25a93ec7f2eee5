"""Regions of interest: specs (mask, box, point, COCO RLE, polygon) to binary masks and back.

A :class:`Roi` always holds a boolean mask at image size. Points need a proposer (a callable that
turns an image and a point into a mask, see :mod:`seagull.proposals`); everything else is exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils

from .errors import RoiError
from .imageio import DEFAULT_MAX_PIXELS, RAISE_LIMIT_HINT, not_a_file
from .labels import TASKS

PointProposer = Callable[[np.ndarray, tuple[float, float]], np.ndarray]
# The smallest ROI the model can judge. Measured on the example photos (12 places each): squares of 1
# or 2 pixels drift by about 0.1 in quality from the 32x32 patch they start, and change level in up to
# a third of cases (their variance statistics are degenerate); from 4x4 on, the drift is under 0.05.
MIN_ROI_PIXELS = 16


@dataclass
class Roi:
    """A region of interest: a boolean mask at image size plus where it came from."""

    mask: np.ndarray
    name: str = "roi"
    source: str = "user"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = _mask_array(self.mask, self.name)
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


def check_roi_size(roi: Roi) -> None:
    """Refuse an ROI smaller than :data:`MIN_ROI_PIXELS` (the model cannot judge it)."""
    if roi.area < MIN_ROI_PIXELS:
        raise RoiError(
            f"ROI {roi.name!r}: {roi.area} pixel(s) is too small to assess; give a region of at least "
            f"{MIN_ROI_PIXELS} pixels (e.g. a 4x4 box)"
        )


# --------------------------------------------------------------------------- input checks


def _mask_array(value: Any, name: str) -> np.ndarray:
    """A numeric or boolean array, or :class:`RoiError` (ragged lists, strings, objects)."""
    try:
        m = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise RoiError(f"ROI {name!r}: the mask is not a rectangular array ({e})") from e
    if m.dtype.kind not in "biuf":
        raise RoiError(f"ROI {name!r}: the mask must hold numbers or booleans, got {m.dtype} values")
    return m


def numbers(value: Any, count: int, what: str, name: str, example: str) -> list[float]:
    """Exactly ``count`` finite numbers from a list, or :class:`RoiError` naming ``what`` and ``example``."""
    fix = f"give {count} finite numbers like {example}"
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise RoiError(f"ROI {name!r}: {what} must be a list of numbers, got {value!r:.80}; {fix}")
    if len(value) != count:
        raise RoiError(f"ROI {name!r}: {what} needs {count} numbers, got {len(value)}; {fix}")
    out = []
    for v in value:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise RoiError(f"ROI {name!r}: {what} holds {v!r:.40}, which is not a number; {fix}")
        try:
            f = float(v)
        except OverflowError:
            f = math.inf
        if not math.isfinite(f):
            raise RoiError(f"ROI {name!r}: {what} holds {v}, which is not finite; {fix}")
        out.append(f)
    return out


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


def rle_to_mask(
    rle: Mapping[str, Any] | str, name: str = "rle", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode a COCO RLE (compressed str/bytes counts or uncompressed list counts, or its JSON text).

    The counts are checked before any pixel is written: they must cover exactly ``h * w`` pixels.
    """
    if isinstance(rle, str):
        try:
            rle = json.loads(rle)
        except json.JSONDecodeError as e:
            raise RoiError(
                f"ROI {name!r}: RLE is not valid JSON ({e.msg}); pass {{'size': [h, w], 'counts': ...}}"
            ) from e
        except RecursionError as e:
            raise RoiError(f"ROI {name!r}: RLE JSON is nested too deeply") from e
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise RoiError(f"ROI {name!r}: an RLE needs 'size' [h, w] and 'counts'")
    h, w = _rle_size(rle["size"], name, max_pixels)
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = _rle_string_counts(counts, name)
    elif not isinstance(counts, Sequence) or not all(
        isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in counts
    ):
        raise RoiError(f"ROI {name!r}: RLE counts must be a COCO string or a list of non-negative integers")
    total = sum(int(c) for c in counts)
    if total != h * w:
        raise RoiError(f"ROI {name!r}: RLE counts sum to {total}, expected h*w = {h * w}")
    values = np.arange(len(counts)) % 2 == 1  # runs alternate 0, 1, 0, ... in column-major order
    return np.ascontiguousarray(np.repeat(values, np.asarray(counts, dtype=np.int64)).reshape(w, h).T)


def _rle_size(size: Any, name: str, max_pixels: int) -> tuple[int, int]:
    ok = (
        isinstance(size, Sequence)
        and not isinstance(size, (str, bytes))
        and len(size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in size)
    )
    if not ok:
        raise RoiError(
            f"ROI {name!r}: RLE 'size' must be [height, width] in positive integers, got {size!r:.80}"
        )
    h, w = int(size[0]), int(size[1])
    if h * w > max_pixels:
        raise RoiError(
            f"ROI {name!r}: RLE size {h}x{w} exceeds the {max_pixels}-pixel limit; {RAISE_LIMIT_HINT}"
        )
    return h, w


def _rle_string_counts(text: str | bytes, name: str) -> list[int]:
    """COCO's compressed counts (pycocotools ``rleFrString``): 5 bits per char from 48, a continuation
    bit (0x20) and a sign bit (0x10) in the last char; counts after the second are deltas."""
    data = text.encode("latin-1", "replace") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise RoiError(f"ROI {name!r}: RLE counts string ends in the middle of a number")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise RoiError(
                    f"ROI {name!r}: RLE counts string holds {chr(data[p])!r}, not a COCO RLE character"
                )
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x -= 1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise RoiError(f"ROI {name!r}: RLE counts string decodes to a negative run length")
        counts.append(x)
    return counts


def box_to_mask(
    box: Sequence[float], height: int, width: int, fmt: str = "xywh", name: str = "box"
) -> np.ndarray:
    """Rasterise a box; ``fmt`` is ``xywh`` or ``xyxy``. Coordinates are pixels; the box is clipped."""
    x, y, a, b = numbers(box, 4, "a box", name, "10,20,100,80")
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
    # Clip before rounding: x + w may overflow to infinity for huge finite numbers.
    c0, c1 = int(np.floor(min(max(x0, 0.0), width))), int(np.ceil(min(max(x1, 0.0), width)))
    r0, r1 = int(np.floor(min(max(y0, 0.0), height))), int(np.ceil(min(max(y1, 0.0), height)))
    m = np.zeros((height, width), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def polygon_to_mask(
    polygons: Sequence[Sequence[float]], height: int, width: int, name: str = "polygon"
) -> np.ndarray:
    """COCO-style polygons ``[[x1, y1, x2, y2, ...], ...]`` (one flat list is accepted too)."""
    shape = "each polygon needs at least 3 (x, y) points as a flat list [x1, y1, x2, y2, ...]"
    if isinstance(polygons, (str, bytes, Mapping)) or not isinstance(polygons, Sequence) or not polygons:
        raise RoiError(f"ROI {name!r}: a polygon must be a non-empty list; {shape}")
    if not isinstance(polygons[0], (Sequence, np.ndarray)) or isinstance(polygons[0], (str, bytes)):
        polygons = [polygons]  # one flat list
    polys = []
    for poly in polygons:
        n = len(poly) if isinstance(poly, (Sequence, np.ndarray)) and not isinstance(poly, str) else 0
        if n < 6 or n % 2:
            raise RoiError(f"ROI {name!r}: {shape}")
        polys.append(numbers(poly, n, "a polygon", name, "10,10,50,10,30,40"))
    # The rasteriser walks every edge, so far-away vertices would cost time and memory for nothing.
    reach = 4 * max(height, width) + 16
    if any(abs(v) > reach for poly in polys for v in poly):
        raise RoiError(
            f"ROI {name!r}: polygon coordinates lie far outside the {width}x{height} image (beyond "
            f"+-{reach}); give pixel coordinates of this image"
        )
    rles = mask_utils.frPyObjects(polys, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def mask_pixels(im: Image.Image) -> tuple[np.ndarray, str]:
    """A decoded mask image -> (boolean mask, which channel marked it), the one rule for mask images.

    An image whose alpha channel varies is a cut-out: the opaque pixels (alpha > 0) are inside, whatever
    their colour. Otherwise (no alpha, or the same alpha everywhere) a pixel is inside when any of its
    grey or colour values is non-zero.
    """
    if im.mode in ("1", "L", "I", "I;16", "F"):
        return np.asarray(im) > 0, "grey levels"
    if "A" in im.getbands() or "transparency" in im.info:
        alpha = np.asarray(im.convert("RGBA").getchannel("A"))
        if alpha.min() != alpha.max():
            return alpha > 0, "alpha channel"
        colours = f"colour channels (its alpha channel is {alpha.min()} everywhere: no cut-out)"
        return np.asarray(im.convert("RGB")).any(axis=2), colours
    return np.asarray(im.convert("RGB")).any(axis=2), "colour channels (it has no alpha channel)"


def load_mask_file(
    path: str | Path,
    name: str | None = None,
    shape: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """A mask image (PNG etc.): a non-zero pixel is inside the ROI, or an opaque one when the image has
    varying transparency (:func:`mask_pixels`). With ``shape`` (h, w) a mask of another size is refused
    from its header, before its pixels are decoded."""
    return read_mask_file(path, name, shape, max_pixels)[0]


def read_mask_file(
    path: str | Path,
    name: str | None = None,
    shape: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, str]:
    """:func:`load_mask_file` and which channel of the file marked the mask (for error messages)."""
    p = Path(path)
    label = name or p.name
    why = not_a_file(p)  # missing, a FIFO (never opened), a device, a symlink loop, ...
    if why:
        raise RoiError(f"ROI {label!r}: mask file {p}: {why}")
    try:
        with Image.open(p) as im:
            w, h = im.size
            if shape is not None and (h, w) != tuple(shape):
                raise RoiError(
                    f"ROI {label!r}: mask file {p} is {w}x{h} but the image is {shape[1]}x{shape[0]}; "
                    "give a mask of the image's size"
                )
            if w * h > max_pixels:
                raise RoiError(
                    f"ROI {label!r}: mask file {p} is {w}x{h}, over the {max_pixels}-pixel limit; "
                    + RAISE_LIMIT_HINT
                )
            im.load()
            mask, channel = mask_pixels(im)
    except RoiError:
        raise
    except Image.DecompressionBombError as e:
        raise RoiError(
            f"ROI {label!r}: mask file {p} declares a huge size ({e}); give a mask of the image's size"
        ) from e
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise RoiError(f"ROI {label!r}: mask file {p} is not a readable image ({e})") from e
    return mask, channel


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
            if isinstance(self.value, (str, Path)):
                m, channel = read_mask_file(self.value, n, (h, w))
                if not m.any():
                    raise RoiError(
                        f"ROI {n!r}: mask file {self.value} is empty: read by its {channel}, every pixel "
                        "is 0; mark the region with non-zero pixels (or opaque ones in a cut-out)"
                    )
            else:
                m = _mask_array(self.value, n)
            roi = Roi(m, n, "mask")
        elif self.kind == "box":
            roi = Roi(box_to_mask(self.value, h, w, self.fmt, n), n, "box")
        elif self.kind == "rle":
            roi = Roi(rle_to_mask(self.value, n, max(h * w, DEFAULT_MAX_PIXELS)), n, "rle")
        elif self.kind == "polygon":
            roi = Roi(polygon_to_mask(self.value, h, w, n), n, "polygon")
        elif self.kind == "point":
            x, y = numbers(self.value, 2, "a point", n, "120,64")
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
    except UnicodeDecodeError as e:
        raise RoiError(
            f"ROI file {p} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 JSON"
        ) from e
    except RecursionError as e:
        raise RoiError(f"ROI file {p}: the JSON is nested too deeply") from e
    except OSError as e:
        raise RoiError(f"ROI file {p} cannot be read ({e.strerror}); give a readable JSON file") from e
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


def _parse_numbers(text: str, count: int, what: str, example: str) -> list[float]:
    """``count`` finite comma-separated numbers from the command line, or :class:`RoiError`."""
    fix = f"expected {'two' if count == 2 else 'four'} comma-separated finite numbers like {example}"
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError as e:
        raise RoiError(f"{what} {text!r}: {fix}") from e
    if len(vals) != count or not all(math.isfinite(v) for v in vals):
        raise RoiError(f"{what} {text!r}: {fix}")
    return vals


def parse_box(text: str, fmt: str = "xywh") -> RoiSpec:
    """``"x,y,w,h"`` (or ``x0,y0,x1,y1`` with ``fmt="xyxy"``) from the command line."""
    if fmt not in ("xywh", "xyxy"):
        raise RoiError(f"box {text!r}: box format must be 'xywh' or 'xyxy', got {fmt!r}")
    return RoiSpec("box", _parse_numbers(text, 4, "box", "10,20,100,80"), f"box({text})", fmt)


def parse_point(text: str) -> RoiSpec:
    """``"x,y"`` from the command line."""
    x, y = _parse_numbers(text, 2, "point", "120,64")
    return RoiSpec("point", (x, y), f"point({text})")


def parse_tasks(text: str) -> tuple[str, ...]:
    """``"quality,distortion"``: a comma-separated, non-empty subset of the tasks, in the order given
    (repeats dropped); the one rule for the command line and the server alike."""
    tasks = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise RoiError(f"tasks {text!r}: give a comma-separated subset of {','.join(TASKS)}")
    return tasks


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter / union) if union else 0.0
