"""Pictures of assessments: ROI outlines with scores, and region quality heatmaps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont


@dataclass
class Annotation:
    mask: np.ndarray  # bool HxW
    title: str
    lines: list[str]
    score: float | None = None  # colours the outline: 0 red .. 1 green


def score_colour(score: float | None) -> tuple[int, int, int]:
    """Red (0) through yellow to green (1); grey when there is no score."""
    if score is None or not np.isfinite(score):
        return (160, 160, 160)
    s = float(np.clip(score, 0.0, 1.0))
    return (int(255 * min(1.0, 2 * (1 - s))), int(255 * min(1.0, 2 * s)), 40)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def annotate(image: np.ndarray, annotations: Sequence[Annotation]) -> np.ndarray:
    """Outline each ROI in its score colour and write its title and lines next to it."""
    h, w = image.shape[:2]
    canvas = image.copy()
    thick = max(2, round(max(h, w) / 300))
    for a in annotations:
        contours, _ = cv2.findContours(a.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, score_colour(a.score), thick)
    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)
    font = _font(max(11, round(max(h, w) / 55)))
    for a in annotations:
        ys, xs = np.nonzero(a.mask)
        x, y = int(xs.min()), int(ys.min())
        text = "\n".join([a.title, *a.lines])
        box = draw.multiline_textbbox((x, y), text, font=font)
        bw, bh = box[2] - box[0] + 6, box[3] - box[1] + 6
        x = min(max(0, x), max(0, w - bw))
        y = y - bh - 2 if y - bh - 2 >= 0 else min(y + 2, max(0, h - bh))
        draw.rectangle((x, y, x + bw, y + bh), fill=(0, 0, 0))
        draw.multiline_text((x + 3, y + 2), text, fill=score_colour(a.score), font=font)
    return np.asarray(pil)


def region_heatmap(
    image: np.ndarray, masks: Sequence[np.ndarray], scores: Sequence[float], alpha: float = 0.55
) -> np.ndarray:
    """Colour every region by its score (smaller regions drawn last, so the most specific wins);
    pixels in no region keep the photo, darkened."""
    h, w = image.shape[:2]
    colour = np.zeros((h, w, 3), np.float32)
    covered = np.zeros((h, w), bool)
    for i in sorted(range(len(masks)), key=lambda i: -int(masks[i].sum())):
        colour[masks[i]] = score_colour(scores[i])
        covered |= masks[i]
    out = image.astype(np.float32) * 0.6
    out[covered] = image[covered].astype(np.float32) * (1 - alpha) + colour[covered] * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
