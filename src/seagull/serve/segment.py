"""Point and box prompts to masks for the server, at a bounded working size, plus outline PNGs.

The weight-free prompts (:func:`seagull.proposals.point_to_mask`, GrabCut
:func:`seagull.proposals.box_to_object_mask`) segment at about 512 pixels anyway, so running them on a
copy whose longer side is ``work_side`` changes nothing but the memory and time spent on a large
photo. The mask comes back at the photo's size.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import RoiError
from ..imageio import fit_longest_side, resize_mask
from ..proposals import box_to_object_mask, point_to_mask
from ..roi import box_to_mask, mask_bbox


def downscale(image: np.ndarray, work_side: int) -> tuple[np.ndarray, float]:
    """A copy whose longer side is at most ``work_side`` and the factor applied (<= 1)."""
    return fit_longest_side(image, work_side), min(1.0, work_side / max(image.shape[:2]))


class Segmenter:
    """``point(image, (x, y))`` and ``box(image, (x, y, w, h))`` -> bool mask at image size.

    With a SAM checkpoint the prompts go to SAM (one request at a time: its predictor holds the
    current image); otherwise the weight-free prompts are used.
    """

    def __init__(
        self, sam_checkpoint: str | Path | None = None, sam_type: str = "vit_b", work_side: int = 1024
    ) -> None:
        self.work_side = int(work_side)
        self._sam = None
        self._lock = threading.Lock()
        if sam_checkpoint is not None:
            from ..proposals import SamProposer

            self._sam = SamProposer(sam_checkpoint, sam_type)
            self.name = f"sam:{sam_type}"
        else:
            self.name = "weight-free (graph segment under the point, GrabCut in the box)"

    @property
    def methods(self) -> dict[str, str]:
        if self._sam is not None:
            return {"point": self.name, "box": self.name}
        return {"point": "felzenszwalb", "box": "grabcut"}

    def point(self, image: np.ndarray, xy: Sequence[float]) -> np.ndarray:
        h, w = image.shape[:2]
        x, y = float(xy[0]), float(xy[1])
        if not (0 <= x < w and 0 <= y < h):
            raise RoiError(f"point ({x:g}, {y:g}) lies outside the {w}x{h} image")
        small, s = downscale(image, self.work_side)
        sh, sw = small.shape[:2]
        p = (min(x * s, sw - 1), min(y * s, sh - 1))
        if self._sam is not None:
            with self._lock:
                m = self._sam.point(small, p)
        else:
            m = point_to_mask(small, p)
        return resize_mask(m, image.shape[:2])

    def box(self, image: np.ndarray, xywh: Sequence[float]) -> np.ndarray:
        h, w = image.shape[:2]
        inside = box_to_mask(xywh, h, w, "xywh", "box")  # RoiError if empty or outside the image
        bx, by, bw, bh = mask_bbox(inside)  # the box clipped to the image
        small, s = downscale(image, self.work_side)
        b = [bx * s, by * s, max(1.0, bw * s), max(1.0, bh * s)]
        if self._sam is not None:
            with self._lock:
                m = self._sam.box(small, b)
        else:
            m = box_to_object_mask(small, b)
        return resize_mask(m, image.shape[:2])


def png_base64(rgb_or_rgba: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb_or_rgba).save(buf, format="PNG", optimize=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def outline_rgba(mask: np.ndarray, colour: tuple[int, int, int] = (0, 200, 255)) -> np.ndarray:
    """A transparent overlay at mask size: the region lightly filled, its outline opaque."""
    h, w = mask.shape
    out = np.zeros((h, w, 4), np.uint8)
    out[mask] = (*colour, 70)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (*colour, 255), max(2, round(max(h, w) / 300)))
    return out
