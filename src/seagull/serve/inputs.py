"""Request inputs to arrays and ROIs, within the server's limits.

Every problem with what a client sent becomes an HTTP 4xx with a message that names the field and
the fix: :class:`RequestTooLarge` (413) for bytes and pixels, :class:`seagull.errors.SeagullError`
(422) for everything malformed. Clients never name files on the server: masks are uploaded parts,
referred to by their file name or index.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageLoadError, RoiError, SeagullError
from ..imageio import load_image
from ..roi import Roi, RoiSpec
from .limits import Limits

KINDS = ("box", "point", "rle", "polygon", "mask")
# A ROI list needs 5 levels at most ({"rois": [{"rle": {"counts": [...]}}]}); deeper JSON is refused
# before anything walks it (json.loads itself fails on a few thousand levels).
MAX_JSON_DEPTH = 16
MAX_JSON_CHARS = 2**20  # as Starlette's limit of one multipart text field
# Automatic regions (/v1/map, point and box prompts) work at about 512 pixels on the longer side; a
# photo far longer than wide would have a side of no pixels there.
MAX_ASPECT = 100


class RequestTooLarge(SeagullError):
    """Bytes or pixels over a server limit (HTTP 413)."""


class TooManyRois(RoiError):
    """More ROIs than the server accepts in one request (HTTP 422)."""


class FieldError(SeagullError, ValueError):
    """A request field sent twice or empty, or a query parameter where fields are read (HTTP 422)."""


@dataclass
class Upload:
    filename: str
    data: bytes


def safe_name(filename: str | None, default: str = "upload") -> str:
    """The last component of a client's file name, for echoing back only (never opened)."""
    name = PurePath((filename or "").replace("\\", "/")).name
    return name[:200] or default


def check_pixels(data: bytes, label: str, limits: Limits) -> None:
    """Refuse an image whose header declares more than ``max_pixels`` before decoding it."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError as e:
        raise RequestTooLarge(f"{label}: the image is far too large ({e})") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return  # not an image: load_image names the problem
    if w * h > limits.max_pixels:
        raise RequestTooLarge(
            f"{label}: {w}x{h} = {w * h} pixels is over this server's limit of {limits.max_pixels} "
            "pixels; downscale the image and send it again"
        )


def decode_image(upload: Upload, limits: Limits) -> np.ndarray:
    label = f"image {safe_name(upload.filename)!r}"
    if not upload.data:
        raise ImageLoadError(f"{label}: the upload is empty; send the photo's bytes in the 'image' field")
    check_pixels(upload.data, label, limits)
    return load_image(upload.data, max_pixels=limits.max_pixels, name=label)


def check_aspect(image: np.ndarray, upload: Upload, purpose: str) -> None:
    """Refuse a photo too thin for the automatic regions of ``purpose``."""
    h, w = image.shape[:2]
    if max(h, w) > MAX_ASPECT * min(h, w):
        raise ImageLoadError(
            f"image {safe_name(upload.filename)!r} is {w}x{h}: {purpose} needs the longer side at most "
            f"{MAX_ASPECT} times the shorter one; crop or pad the photo"
        )


def decode_mask(upload: Upload, limits: Limits, name: str) -> np.ndarray:
    label = f"ROI {name!r}: mask image {safe_name(upload.filename)!r}"
    if not upload.data:
        raise RoiError(f"{label} is empty")
    check_pixels(upload.data, label, limits)
    try:
        with Image.open(io.BytesIO(upload.data)) as im:
            im.load()
            arr = np.asarray(im.convert("L") if im.mode not in ("1", "L") else im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise RoiError(f"{label} is not a readable image (send a PNG, non-zero = inside)") from e
    return arr > 0


def parse_numbers(value: Any, n: int, what: str) -> list[float]:
    """``"x,y"`` text or a JSON list of ``n`` finite numbers."""
    given = value
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.replace(" ", "").strip("[]").split(",")]
        except ValueError:
            value = None
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and all(math.isfinite(v) for v in value)
    )
    if not ok:
        example = "x,y" if n == 2 else "x,y,w,h"
        raise RoiError(f"{what}: expected {n} finite numbers like {example}, got {given!r}")
    return [float(v) for v in value]


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in parsed JSON (0 for a number); stops past the limit."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def load_json(text: str, what: str) -> Any:
    """JSON text from a form field, within the size and depth limits (``what`` names the field)."""
    if len(text) > MAX_JSON_CHARS:
        raise RoiError(
            f"{what} is {len(text)} characters long; this server reads at most {MAX_JSON_CHARS} "
            "(send large masks as 'masks' image parts)"
        )
    too_deep = RoiError(
        f"{what} is nested more than {MAX_JSON_DEPTH} levels deep; ROIs need at most 5, "
        'as in [{"box": [x, y, w, h]}]'
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RoiError(f"{what} is not valid JSON: {e.msg} at column {e.colno}") from e
    except RecursionError:
        raise too_deep from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise too_deep
    return data


def _check_rle(value: Any, name: str, h: int, w: int) -> Any:
    if isinstance(value, str):
        value = load_json(value, f"ROI {name!r}: the RLE")
    if not isinstance(value, Mapping) or "size" not in value or "counts" not in value:
        raise RoiError(f"ROI {name!r}: an RLE is an object with 'size' [h, w] and 'counts'")
    size = value["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise RoiError(f"ROI {name!r}: RLE 'size' must be [height, width] integers, got {size!r}")
    if tuple(size) != (h, w):
        # Checked before decoding: a forged size could otherwise allocate any amount of memory.
        raise RoiError(f"ROI {name!r}: RLE size {size} does not match the {w}x{h} image (size is [h, w])")
    if not isinstance(value["counts"], (str, list)):
        raise RoiError(f"ROI {name!r}: RLE 'counts' must be a string or a list of integers")
    return dict(value)


def _entries(rois_json: str | None) -> list[Mapping[str, Any]]:
    if rois_json is None or not rois_json.strip():
        return []
    data = load_json(rois_json, "field 'rois'")
    if isinstance(data, Mapping) and "rois" in data:
        data = data["rois"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, Mapping) for d in data):
        raise RoiError("field 'rois' must be a JSON list of objects like [{\"box\": [x, y, w, h]}]")
    return data


def build_specs(
    rois_json: str | None,
    boxes: Sequence[str],
    points: Sequence[str],
    box_format: str,
    masks: Sequence[Upload],
    image_hw: tuple[int, int],
    limits: Limits,
) -> list[RoiSpec]:
    """ROI specs from the form fields; masks and RLEs are checked against the image size here."""
    h, w = image_hw
    entries = _entries(rois_json)
    n = len(entries) + len(boxes) + len(points)
    if n > limits.max_rois or len(masks) > limits.max_rois:
        raise TooManyRois(
            f"{max(n, len(masks))} ROIs in one request; this server accepts at most {limits.max_rois} "
            "(split them over several requests)"
        )
    by_name = {safe_name(m.filename, f"mask{i}"): i for i, m in enumerate(masks)}
    used: set[int] = set()
    specs: list[RoiSpec] = []
    for i, d in enumerate(entries):
        name = str(d.get("name", f"roi{i}"))[:100]
        kinds = [k for k in KINDS if k in d]
        if len(kinds) != 1:
            raise RoiError(f"ROI {name!r}: give exactly one of {', '.join(KINDS)} (got {kinds or list(d)})")
        kind, value = kinds[0], d[kinds[0]]
        fmt = str(d.get("format", box_format))
        if kind == "box":
            value = parse_numbers(value, 4, f"ROI {name!r} box")
        elif kind == "point":
            value = parse_numbers(value, 2, f"ROI {name!r} point")
        elif kind == "rle":
            value = _check_rle(value, name, h, w)
        elif kind == "polygon":
            if not isinstance(value, list):
                raise RoiError(f"ROI {name!r}: a polygon is a list of [x1, y1, x2, y2, ...] lists")
        else:  # mask: an uploaded part, by index or file name; never a path on the server
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(masks):
                idx = value
            elif isinstance(value, str) and value in by_name:
                idx = by_name[value]
            else:
                raise RoiError(
                    f"ROI {name!r}: mask {value!r} is not an uploaded 'masks' part; upload the mask "
                    f"image as a 'masks' file and refer to it by file name or index ({sorted(by_name)})"
                )
            used.add(idx)
            value = decode_mask(masks[idx], limits, name)
        specs.append(RoiSpec(kind, value, name, fmt))
    specs += [
        RoiSpec("box", parse_numbers(b, 4, f"box {b!r}"), f"box({b.strip()})", box_format) for b in boxes
    ]
    specs += [RoiSpec("point", parse_numbers(p, 2, f"point {p!r}"), f"point({p.strip()})") for p in points]
    for i, m in enumerate(masks):
        if i not in used:
            name = safe_name(m.filename, f"mask{i}")
            specs.append(RoiSpec("mask", decode_mask(m, limits, name), name))
    if len(specs) > limits.max_rois:
        raise TooManyRois(
            f"{len(specs)} ROIs in one request; this server accepts at most {limits.max_rois} "
            "(split them over several requests)"
        )
    return specs


def resolve_rois(
    image: np.ndarray,
    specs: Sequence[RoiSpec],
    point_proposer: Callable[[np.ndarray, tuple[float, float]], np.ndarray],
) -> list[Roi]:
    """Masks for the specs; no spec means the whole image (as the CLI does)."""
    if not specs:
        return [Roi(np.ones(image.shape[:2], bool), "whole image", "whole")]
    rois = []
    for s in specs:
        try:
            rois.append(s.resolve(image, point_proposer))
        except RoiError:
            raise
        except (ValueError, TypeError, KeyError) as e:  # odd values deep in pycocotools or numpy
            raise RoiError(f"ROI {s.name!r}: the {s.kind} could not be read ({e})") from e
    names = [r.name for r in rois]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RoiError(f"ROI names must be unique within a request; repeated: {dup}")
    return rois
