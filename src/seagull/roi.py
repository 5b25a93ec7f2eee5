"""Regions of interest: specs (mask, box, point, COCO RLE, polygon) to binary masks and back, and
the request layer: what a user sends, parsed once for the command line and the server alike.

A :class:`Roi` always holds a boolean mask at image size. Points need a proposer (a callable that
turns an image and a point into a mask, see :mod:`seagull.proposals`); everything else is exact.

The request layer (:func:`numbers`, :func:`parse_box`, :func:`parse_point`, :func:`parse_rle`,
:func:`spec_from_dict`, :func:`roi_entries`, :func:`load_roi_file`, :func:`decode_mask`,
:func:`parse_tasks`, :func:`request_specs`, :func:`request_rois`) raises :class:`RoiError` naming the
input and the fix; ``seagull assess`` turns it into exit code 2, ``seagull serve`` into HTTP 422.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

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


BOX_EXAMPLE, POINT_EXAMPLE = "10,20,100,80", "120,64"
BOX_FORMATS = ("xywh", "xyxy")
ROI_KINDS = ("box", "point", "rle", "polygon", "mask")
MAX_NAME_CHARS = 100  # a ROI's name is echoed back in every answer
# A ROI list needs 5 levels at most ({"rois": [{"rle": {"counts": [...]}}]}); deeper JSON is refused
# before anything walks it (json.loads itself fails on a few thousand levels).
MAX_JSON_DEPTH = 16
WHOLE_IMAGE = "whole image"  # the name of the ROI assessed when a request names none


def numbers(value: Any, count: int, what: str, name: str | None = None, example: str = "") -> list[float]:
    """Exactly ``count`` finite numbers, the one rule for every list of numbers a request holds: a
    list of numbers (JSON, Python) or text ``"x,y,..."`` (commas, spaces around each number and one
    pair of brackets allowed). Anything else is a :class:`RoiError` naming ``what`` (of ROI ``name``)."""
    example = example or {2: POINT_EXAMPLE, 4: BOX_EXAMPLE}.get(count, ",".join(["0"] * count))
    subject = f"ROI {name!r}: {what}" if name is not None else what
    fix = f"give {count} finite numbers separated by commas, like {example}"
    text_given = isinstance(value, str)
    if text_given:
        subject = f"{subject} {value!r:.80}"
        text = value.strip()
        if text[:1] == "[" and text[-1:] == "]":
            text = text[1:-1]
        if not text.strip():
            raise RoiError(f"{subject} is empty; {fix}")
        items: Sequence[Any] = [v.strip() for v in text.split(",")]
    elif isinstance(value, (bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise RoiError(f"{subject} must be {count} numbers, got {value!r:.80}; {fix}")
    else:
        items = value
    if len(items) != count:
        raise RoiError(f"{subject} needs {count} numbers, got {len(items)}; {fix}")
    out = []
    for v in items:
        if text_given:  # in a list, "1" is text, not a number
            try:
                f = float(v)
            except ValueError:
                raise RoiError(f"{subject} holds {v!r:.40}, which is not a number; {fix}") from None
        elif isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise RoiError(f"{subject} holds {v!r:.40}, which is not a number; {fix}")
        else:
            try:
                f = float(v)
            except OverflowError:
                f = math.inf
        if not math.isfinite(f):
            raise RoiError(f"{subject} holds {v!s:.40}, which is not finite; {fix}")
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
    rle: Mapping[str, Any] | str,
    name: str = "rle",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode a COCO RLE (compressed str/bytes counts or uncompressed list counts, or its JSON text).

    The counts are checked before any pixel is written: they must cover exactly ``h * w`` pixels.
    With ``shape`` (h, w), an RLE of another size is refused before it is decoded (a forged size
    cannot make anyone allocate memory).
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
    # Against an image, its size is the limit: any other size is refused before the pixel count.
    h, w = _rle_size(rle["size"], name, max_pixels if shape is None else None)
    if shape is not None and (h, w) != tuple(shape):
        raise RoiError(
            f"ROI {name!r}: RLE size {[h, w]} does not match the {shape[1]}x{shape[0]} image "
            "(size is [height, width])"
        )
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


def _rle_size(size: Any, name: str, max_pixels: int | None) -> tuple[int, int]:
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
    if max_pixels is not None and h * w > max_pixels:
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
    x, y, a, b = numbers(box, 4, "a box", name, BOX_EXAMPLE)
    shown = ",".join(f"{v:g}" for v in (x, y, a, b))
    if fmt == "xywh":
        x0, y0, x1, y1 = x, y, x + a, y + b
    elif fmt == "xyxy":
        x0, y0, x1, y1 = x, y, a, b
    else:
        raise RoiError(f"ROI {name!r}: box format must be 'xywh' or 'xyxy', got {fmt!r}")
    if x1 <= x0 or y1 <= y0:
        raise RoiError(f"ROI {name!r}: box {shown} ({fmt}) has zero or negative area")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise RoiError(f"ROI {name!r}: box {shown} ({fmt}) lies outside the {width}x{height} image")
    # Clip before rounding: x + w may overflow to infinity for huge finite numbers.
    c0, c1 = int(np.floor(min(max(x0, 0.0), width))), int(np.ceil(min(max(x1, 0.0), width)))
    r0, r1 = int(np.floor(min(max(y0, 0.0), height))), int(np.ceil(min(max(y1, 0.0), height)))
    m = np.zeros((height, width), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def polygon_numbers(polygons: Any, name: str = "polygon") -> list[list[float]]:
    """COCO-style polygons ``[[x1, y1, x2, y2, ...], ...]`` (one flat list is accepted too) as lists
    of finite numbers, each of at least 3 points, or :class:`RoiError`."""
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
    return polys


def polygon_to_mask(
    polygons: Sequence[Sequence[float]], height: int, width: int, name: str = "polygon"
) -> np.ndarray:
    """COCO-style polygons ``[[x1, y1, x2, y2, ...], ...]`` (one flat list is accepted too)."""
    polys = polygon_numbers(polygons, name)
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
    if im.mode in ("1", "L", "I", "F") or im.mode.startswith("I;16"):
        return np.asarray(im) > 0, "grey levels"
    if "A" in im.getbands() or "transparency" in im.info:
        alpha = np.asarray(im.convert("RGBA").getchannel("A"))
        if alpha.min() != alpha.max():
            return alpha > 0, "alpha channel"
        colours = f"colour channels (its alpha channel is {alpha.min()} everywhere: no cut-out)"
        return np.asarray(im.convert("RGB")).any(axis=2), colours
    return np.asarray(im.convert("RGB")).any(axis=2), "colour channels (it has no alpha channel)"


def read_mask(
    source: bytes | str | Path,
    label: str,
    shape: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, str]:
    """THE mask decoder: a mask image's bytes or file -> (boolean mask, which channel marked it), by
    :func:`mask_pixels`. With ``shape`` (h, w) a mask of another size is refused from its header,
    before its pixels are decoded. ``label`` names the mask in messages (``ROI 'cup': mask file x.png``).
    """
    fix = "give a mask image (PNG) of the image's size, non-zero = inside"
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise RoiError(f"{label} is empty (0 bytes); {fix}")
        opened: Any = io.BytesIO(source)
    else:
        opened = Path(source)
        with contextlib.suppress(OSError):  # unreadable: Image.open says why
            if opened.stat().st_size == 0:
                raise RoiError(f"{label} is empty (0 bytes); {fix}")
    try:
        with Image.open(opened) as im:
            w, h = im.size
            if shape is not None and (h, w) != tuple(shape):
                raise RoiError(
                    f"{label} is {w}x{h} but the image is {shape[1]}x{shape[0]}; give a mask of the "
                    "image's size"
                )
            if w * h > max_pixels:
                raise RoiError(f"{label} is {w}x{h}, over the {max_pixels}-pixel limit; " + RAISE_LIMIT_HINT)
            im.load()
            return mask_pixels(im)
    except RoiError:
        raise
    except Image.DecompressionBombError as e:
        raise RoiError(f"{label} declares a huge size ({e}); give a mask of the image's size") from e
    except UnidentifiedImageError as e:
        raise RoiError(f"{label} is not a readable image (no known image format); {fix}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise RoiError(f"{label} is not a readable image ({e}); {fix}") from e


def decode_mask(
    source: bytes | str | Path,
    name: str,
    shape: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    what: str | None = None,
) -> np.ndarray:
    """A request's mask: :func:`read_mask` of a file (``what`` defaults to ``mask file <path>``) or
    of uploaded bytes (``mask image``); a mask with no pixel inside is refused, naming the channel
    that was read."""
    if what is None:
        what = "mask image" if isinstance(source, (bytes, bytearray)) else f"mask file {source}"
    label = f"ROI {name!r}: {what}"
    if not isinstance(source, (bytes, bytearray)):
        why = not_a_file(Path(source))  # missing, a FIFO (never opened), a device, a symlink loop, ...
        if why:
            raise RoiError(f"{label}: {why}")
    mask, channel = read_mask(source, label, shape, max_pixels)
    if not mask.any():
        raise RoiError(
            f"{label} is empty: read by its {channel}, every pixel is 0; mark the region with non-zero "
            "pixels (or opaque ones in a cut-out)"
        )
    return mask


def load_mask_file(
    path: str | Path,
    name: str | None = None,
    shape: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """A mask image (PNG etc.): a non-zero pixel is inside the ROI, or an opaque one when the image has
    varying transparency (:func:`mask_pixels`). With ``shape`` (h, w) a mask of another size is refused
    from its header, before its pixels are decoded. An empty mask is returned (see :func:`decode_mask`
    for a request's masks)."""
    return read_mask_file(path, name, shape, max_pixels)[0]


def read_mask_file(
    path: str | Path,
    name: str | None = None,
    shape: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, str]:
    """:func:`load_mask_file` and which channel of the file marked the mask (for error messages)."""
    p = Path(path)
    label = f"ROI {name or p.name!r}: mask file {p}"
    why = not_a_file(p)  # missing, a FIFO (never opened), a device, a symlink loop, ...
    if why:
        raise RoiError(f"{label}: {why}")
    return read_mask(p, label, shape, max_pixels)


# --------------------------------------------------------------------------- the request layer
# What a user sends (command-line words, a ROI file, the server's form fields) is parsed here, once,
# for the CLI and the server alike: numbers, ROI entries, RLEs, polygons, masks, tasks, and the whole
# image when a request names no ROI. The faces only say where the words come from and turn
# RoiError into their own answer (exit code 2, HTTP 422).


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
            if isinstance(self.value, (str, Path, bytes, bytearray)):
                m = decode_mask(self.value, n, (h, w))
            else:
                m = _mask_array(self.value, n)
            roi = Roi(m, n, "mask")
        elif self.kind == "box":
            roi = Roi(box_to_mask(self.value, h, w, self.fmt, n), n, "box")
        elif self.kind == "rle":
            roi = Roi(rle_to_mask(self.value, n, shape=(h, w)), n, "rle")
        elif self.kind == "polygon":
            roi = Roi(polygon_to_mask(self.value, h, w, n), n, "polygon")
        elif self.kind == "point":
            x, y = numbers(self.value, 2, "a point", n, POINT_EXAMPLE)
            if not (0 <= x < w and 0 <= y < h):
                raise RoiError(f"ROI {n!r}: point ({x:g}, {y:g}) lies outside the {w}x{h} image")
            if point_proposer is None:
                raise RoiError(f"ROI {n!r}: a point ROI needs a proposer to turn it into a mask")
            roi = Roi(point_proposer(image, (x, y)), n, "point")
        else:
            raise RoiError(f"ROI {n!r}: unknown kind {self.kind!r}; use {', '.join(ROI_KINDS)}")
        roi.check_size(h, w)
        return roi


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in parsed JSON (0 for a number); stops past the limit."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def load_json(text: str, what: str, max_chars: int | None = None) -> Any:
    """JSON text of a request (a ROI list, an RLE), at most :data:`MAX_JSON_DEPTH` levels deep (and
    ``max_chars`` long); ``what`` names it in messages."""
    if max_chars is not None and len(text) > max_chars:
        raise RoiError(
            f"{what} is {len(text)} characters long; this server reads at most {max_chars} "
            "(send large masks as 'masks' image parts)"
        )
    too_deep = RoiError(
        f"{what} is nested more than {MAX_JSON_DEPTH} levels deep; ROIs need at most 5, "
        'as in [{"box": [x, y, w, h]}]'
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RoiError(f"{what} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from e
    except RecursionError:
        raise too_deep from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise too_deep
    return data


def parse_rle(value: Any, name: str) -> dict[str, Any]:
    """A COCO RLE of a request (an object, or its JSON text) -> ``{"size": [h, w], "counts": ...}``;
    its size is checked against the image and its counts decoded when the ROI is resolved."""
    if isinstance(value, str):
        value = load_json(value, f"ROI {name!r}: the RLE")
    if not isinstance(value, Mapping) or "size" not in value or "counts" not in value:
        raise RoiError(f"ROI {name!r}: an RLE is an object with 'size' [h, w] and 'counts'")
    _rle_size(value["size"], name, None)
    counts = value["counts"]
    if not isinstance(counts, (str, list)) or (
        isinstance(counts, list)
        and not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
    ):
        raise RoiError(f"ROI {name!r}: RLE counts must be a COCO string or a list of non-negative integers")
    return {"size": [int(v) for v in value["size"]], "counts": counts}


MaskSource = Callable[[Any, str], Any]  # a mask entry's value and the ROI's name -> RoiSpec value


def spec_from_dict(d: Any, index: int = 0, mask: MaskSource | None = None) -> RoiSpec:
    """One ROI entry (of a ROI file or the server's ``rois`` field): ``{"box": [x, y, w, h],
    "format": "xywh"|"xyxy", "name": ...}`` (the format defaults to xywh), ``{"point": [x, y]}``,
    ``{"rle": {...}}``, ``{"polygon": [[...]]}`` or ``{"mask": ...}``, where the face's ``mask``
    turns the value into a mask or a file to read (by default it is kept as given). Numbers, RLEs
    and polygons are checked here, before any image is read."""
    if not isinstance(d, Mapping):
        raise RoiError(f'ROI entry {index} is not an object; give objects like {{"box": [x, y, w, h]}}')
    name = str(d.get("name", f"roi{index}"))[:MAX_NAME_CHARS]
    kinds = [k for k in ROI_KINDS if k in d]
    if len(kinds) != 1:
        raise RoiError(f"ROI {name!r}: give exactly one of {', '.join(ROI_KINDS)} (got {kinds or list(d)})")
    kind, value = kinds[0], d[kinds[0]]
    fmt = d.get("format", "xywh")
    if kind == "box":
        if fmt not in BOX_FORMATS:
            raise RoiError(f"ROI {name!r}: box format must be 'xywh' or 'xyxy', got {fmt!r:.40}")
        value = numbers(value, 4, "a box", name, BOX_EXAMPLE)
    elif kind == "point":
        value = tuple(numbers(value, 2, "a point", name, POINT_EXAMPLE))
    elif kind == "rle":
        value = parse_rle(value, name)
    elif kind == "polygon":
        value = polygon_numbers(value, name)
    elif mask is not None:
        value = mask(value, name)
    return RoiSpec(kind, value, name, fmt if kind == "box" else "xywh")


def roi_entries(data: Any, what: str, mask: MaskSource | None = None) -> list[RoiSpec]:
    """The specs of a parsed ROI list: a list of entries, ``{"rois": [...]}``, or one entry object.
    An empty list is refused (a request with no ROI leaves the list out and gets the whole image)."""
    if isinstance(data, Mapping):
        data = data.get("rois", [data])
    if isinstance(data, Mapping):
        data = [data]
    example = '[{"box": [x, y, w, h]}]'
    if not isinstance(data, list):
        raise RoiError(f"{what} must be a JSON list of objects like {example}, got {type(data).__name__}")
    if not data:
        raise RoiError(f"{what} holds no ROI; give entries like {example}, or none for the whole image")
    if not all(isinstance(d, Mapping) for d in data):
        i = next(i for i, d in enumerate(data) if not isinstance(d, Mapping))
        raise RoiError(f"{what} must be a JSON list of objects like {example}; entry {i} is not an object")
    return [spec_from_dict(d, i, mask) for i, d in enumerate(data)]


def load_roi_file(path: str | Path) -> list[RoiSpec]:
    """A JSON file of ROI entries (:func:`roi_entries`); a mask entry names a mask image, relative to
    the file's folder."""
    p = Path(path)
    what = f"ROI file {p}"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise RoiError(f"{what} does not exist") from e
    except UnicodeDecodeError as e:
        raise RoiError(
            f"{what} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 JSON"
        ) from e
    except OSError as e:
        raise RoiError(f"{what} cannot be read ({e.strerror}); give a readable JSON file") from e

    def mask_file(value: Any, name: str) -> str:
        if not isinstance(value, str) or not value:
            raise RoiError(
                f"ROI {name!r}: mask {value!r:.80} is not a file name; give the mask image's path, "
                f"relative to {what}'s folder"
            )
        return value if Path(value).is_absolute() else str(p.parent / value)

    return roi_entries(load_json(text, what), what, mask_file)


def parse_box(text: str, fmt: str = "xywh") -> RoiSpec:
    """``"x,y,w,h"`` (or ``x0,y0,x1,y1`` with ``fmt="xyxy"``): ``--box`` and the server's ``box``."""
    if fmt not in BOX_FORMATS:
        raise RoiError(f"box {text!r:.80}: box format must be 'xywh' or 'xyxy', got {fmt!r:.40}")
    return RoiSpec("box", numbers(text, 4, "box", None, BOX_EXAMPLE), f"box({text.strip()})", fmt)


def parse_point(text: str) -> RoiSpec:
    """``"x,y"``: ``--point`` and the server's ``point``."""
    x, y = numbers(text, 2, "point", None, POINT_EXAMPLE)
    return RoiSpec("point", (x, y), f"point({text.strip()})")


def request_specs(
    boxes: Sequence[str] = (),
    points: Sequence[str] = (),
    masks: Sequence[tuple[str, Any]] = (),
    rles: Sequence[Any] = (),
    entries: Sequence[RoiSpec] = (),
    box_format: str = "xywh",
) -> list[RoiSpec]:
    """The ROIs a request names, in this order: boxes (``x,y,w,h`` text in ``box_format``), points,
    masks as (name, file or mask), RLEs (named ``rle0``, ...), then the entries of its ROI list."""
    specs = [parse_box(b, box_format) for b in boxes]
    specs += [parse_point(p) for p in points]
    specs += [RoiSpec("mask", value, name) for name, value in masks]
    specs += [RoiSpec("rle", parse_rle(r, f"rle{i}"), f"rle{i}") for i, r in enumerate(rles)]
    return specs + list(entries)


def whole_image(shape: Sequence[int]) -> Roi:
    """The ROI assessed when a request names none."""
    return Roi(np.ones(tuple(shape[:2]), bool), WHOLE_IMAGE, "whole")


def check_unique_names(names: Sequence[str]) -> None:
    """Refuse a request whose ROIs share a name (each repeated name listed once, in order)."""
    counts = Counter(names)
    repeated = [n for n in dict.fromkeys(names) if counts[n] > 1]
    if repeated:
        shown = repr(repeated) if len(repeated) <= 20 else f"{repeated[:20]!r} and {len(repeated) - 20} more"
        raise RoiError(f"ROI names must be unique, got {shown} more than once; give each ROI its own name")


class RoiSink(Protocol):
    """Where :func:`request_rois` puts the ROIs: a list, or the CLI's compact RoiList."""

    def append(self, roi: Roi, /) -> None: ...


SinkT = TypeVar("SinkT", bound=RoiSink)


def request_rois(
    image: np.ndarray,
    specs: Sequence[RoiSpec],
    into: SinkT,
    point_proposer: PointProposer | None = None,
    more: Callable[[int], Iterable[Roi]] | None = None,
) -> SinkT:
    """The ROIs of one request on its image, appended to ``into``: each spec resolved and checked (at
    least :data:`MIN_ROI_PIXELS`), then ``more(count so far)`` (automatic regions), the whole image
    when there is no ROI at all; names must be unique."""
    names: list[str] = []

    def add(roi: Roi) -> None:
        into.append(roi)
        names.append(roi.name)

    for spec in specs:
        try:
            roi = spec.resolve(image, point_proposer)
        except RoiError:
            raise
        except (ValueError, TypeError, KeyError) as e:  # odd values deep in pycocotools or numpy
            raise RoiError(f"ROI {spec.name!r}: the {spec.kind} could not be read ({e})") from e
        check_roi_size(roi)
        add(roi)
    for roi in more(len(names)) if more is not None else ():
        add(roi)
    if not names:
        add(whole_image(image.shape))
    check_unique_names(names)
    return into


def parse_tasks(text: str) -> tuple[str, ...]:
    """``"quality,distortion"``: a comma-separated, non-empty subset of the tasks, in the order given
    (repeats dropped); the one rule for the command line and the server alike."""
    tasks = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    bad = [t for t in tasks if t not in TASKS]
    fix = f"give a comma-separated subset of {','.join(TASKS)}"
    if bad:
        shown = ", ".join(repr(t) for t in bad)[:80]
        raise RoiError(
            f"tasks {text!r:.80}: {shown} {'is not a task' if len(bad) == 1 else 'are not tasks'}; {fix}"
        )
    if not tasks:
        raise RoiError(f"tasks {text!r:.80} names no task; {fix}")
    return tasks


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter / union) if union else 0.0
