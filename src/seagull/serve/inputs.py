"""Request inputs to arrays and ROI specs, within the server's limits: an adapter of the request
layer in :mod:`seagull.roi`, which parses numbers, ROI entries, masks and tasks for the command line
and the server alike.

Every problem with what a client sent becomes an HTTP 4xx with a message that names the field and
the fix: :class:`RequestTooLarge` (413) for bytes and pixels, :class:`seagull.errors.SeagullError`
(422) for everything malformed. What is the server's own: its limits, the form fields, and uploads.
Clients never name files on the server: masks are uploaded parts, referred to by their file name or
index.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageLoadError, RoiError, SeagullError
from ..imageio import load_image
from ..roi import RoiSpec, decode_mask, load_json, request_specs, roi_entries
from .limits import Limits

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


def decode_upload_mask(upload: Upload, limits: Limits, name: str, shape: tuple[int, int]) -> np.ndarray:
    """An uploaded mask part, by the one mask decoder (:func:`seagull.roi.decode_mask`); over the
    pixel limit is 413 before it is decoded."""
    what = f"mask image {safe_name(upload.filename)!r}"
    if upload.data:
        check_pixels(upload.data, f"ROI {name!r}: {what}", limits)
    return decode_mask(upload.data, name, shape, limits.max_pixels, what)


def build_specs(
    rois_json: str | None,
    boxes: Sequence[str],
    points: Sequence[str],
    box_format: str,
    masks: Sequence[Upload],
    image_hw: tuple[int, int],
    limits: Limits,
) -> list[RoiSpec]:
    """ROI specs from the form fields, by the request layer (:func:`seagull.roi.request_specs`); a
    ``mask`` entry refers to an uploaded part, decoded here against the image size."""
    sent = rois_json is not None and bool(rois_json.strip())  # a blank field is no field
    data = load_json(rois_json, "field 'rois'", MAX_JSON_CHARS) if sent else []
    if isinstance(data, dict):
        data = data.get("rois", data)
    n = len(boxes) + len(points) + (len(data) if isinstance(data, list) else 1)
    if n > limits.max_rois or len(masks) > limits.max_rois:  # before any entry is parsed
        raise too_many(max(n, len(masks)), limits)
    by_name = {safe_name(m.filename, f"mask{i}"): i for i, m in enumerate(masks)}
    used: set[int] = set()

    def uploaded(value: Any, name: str) -> np.ndarray:  # never a path on the server
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(masks):
            idx = value
        elif isinstance(value, str) and value in by_name:
            idx = by_name[value]
        else:
            raise RoiError(
                f"ROI {name!r}: mask {value!r:.80} is not an uploaded 'masks' part; upload the mask "
                f"image as a 'masks' file and refer to it by file name or index ({sorted(by_name)})"
            )
        used.add(idx)
        return decode_upload_mask(masks[idx], limits, name, image_hw)

    listed = roi_entries(data, "field 'rois'", uploaded) if sent else []
    unused = [(safe_name(m.filename, f"mask{i}"), i) for i, m in enumerate(masks) if i not in used]
    specs = request_specs(
        boxes=boxes,
        points=points,
        masks=[(name, decode_upload_mask(masks[i], limits, name, image_hw)) for name, i in unused],
        entries=listed,
        box_format=box_format,
    )
    if len(specs) > limits.max_rois:
        raise too_many(len(specs), limits)
    return specs


def too_many(n: int, limits: Limits) -> TooManyRois:
    return TooManyRois(
        f"{n} ROIs in one request; this server accepts at most {limits.max_rois} "
        "(split them over several requests)"
    )
