"""Pictures of assessments: ROI outlines with scores, and region maps with a colour scale."""

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


def score_colours(scores: np.ndarray) -> np.ndarray:
    """:func:`score_colour` for an array of scores in [0, 1] (HxW -> HxWx3 float)."""
    s = np.clip(scores, 0.0, 1.0)
    r = 255 * np.minimum(1.0, 2 * (1 - s))
    g = 255 * np.minimum(1.0, 2 * s)
    return np.stack([r, g, np.full_like(s, 40.0)], axis=-1).astype(np.float32)


@dataclass
class Outline:
    mask: np.ndarray  # bool HxW
    label: str  # e.g. the rank, "1" = worst


def map_overlay(
    image: np.ndarray, values: np.ndarray, higher_is_worse: bool, alpha: float = 0.5
) -> np.ndarray:
    """The photo with each pixel tinted by its map value (red = worst end); pixels no region covers
    (NaN) keep the photo, darkened."""
    covered = np.isfinite(values)
    good = np.where(covered, values, 0.0)
    good = 1.0 - good if higher_is_worse else good
    photo = image.astype(np.float32)
    out = photo * 0.6
    out[covered] = photo[covered] * (1 - alpha) + score_colours(good)[covered] * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def draw_outlines(canvas: np.ndarray, outlines: Sequence[Outline]) -> np.ndarray:
    """White-on-black outlines with their labels (ranks) at each region's top-left corner."""
    h, w = canvas.shape[:2]
    thick = max(1, round(max(h, w) / 400))
    out = canvas.copy()
    for o in outlines:
        contours, _ = cv2.findContours(o.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (0, 0, 0), thick + 2)
        cv2.drawContours(out, contours, -1, (255, 255, 255), thick)
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    font = _font(max(11, round(max(h, w) / 50)))
    for o in outlines:
        ys, xs = np.nonzero(o.mask)
        x, y = int(xs.min()) + thick + 2, int(ys.min()) + thick + 2
        box = draw.textbbox((x, y), o.label, font=font)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((x, y), o.label, fill=(255, 255, 255), font=font)
    return np.asarray(pil)


def scale_panel(
    height: int, label: str, higher_is_worse: bool, levels: Sequence[tuple[float, str]] = ()
) -> np.ndarray:
    """A colour scale bar 0 (bottom) .. 1 (top) with ticks, the level words at their cut points and
    what is mapped written above it."""
    font = _font(max(11, round(height / 45)))
    width = max(150, round(height / 3.2))
    pil = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(pil)
    text_h = draw.multiline_textbbox((0, 0), "Ag", font=font)[3] + 4
    words = label.split(" (")
    title = words[0] + ("\n(" + words[1] if len(words) > 1 else "")
    top = draw.multiline_textbbox((6, 4), title, font=font)[3] + text_h // 2 + 6
    bottom = height - text_h
    bar_x0, bar_x1 = 8, 8 + max(14, width // 8)
    span = max(1, bottom - top)
    ramp = 1.0 - (np.arange(span) + 0.5) / span  # value at each row, 1 at the top
    shown = 1.0 - ramp if higher_is_worse else ramp
    bar = np.repeat(score_colours(shown)[:, None, :], bar_x1 - bar_x0, axis=1)
    pil.paste(Image.fromarray(bar.astype(np.uint8)), (bar_x0, top))
    draw.rectangle((bar_x0, top, bar_x1, top + span), outline=(0, 0, 0))
    draw.multiline_text((6, 4), title, fill=(0, 0, 0), font=font)

    def row(v: float) -> int:
        return round(top + (1.0 - v) * span)

    for v in (0.0, 0.5, 1.0):
        y = row(v)
        draw.line((bar_x1, y, bar_x1 + 5, y), fill=(0, 0, 0))
        draw.text((bar_x1 + 7, y - text_h // 2), f"{v:g}", fill=(0, 0, 0), font=font)
    tick_w = draw.textbbox((0, 0), "0.5 ", font=font)[2]
    lowest = bottom + text_h // 2  # level words go bottom up, each at least a line above the last
    for k, (cut, word) in enumerate(levels):
        upper = levels[k + 1][0] if k + 1 < len(levels) else 1.0
        lowest = y = min(row((cut + upper) / 2), lowest - text_h)
        draw.line((bar_x1, row(cut), bar_x1 + 3, row(cut)), fill=(90, 90, 90))
        draw.text((bar_x1 + 7 + tick_w, y - text_h // 2), word, fill=(60, 60, 60), font=font)
    return np.asarray(pil)


def map_picture(
    image: np.ndarray,
    values: np.ndarray,
    label: str,
    higher_is_worse: bool,
    levels: Sequence[tuple[float, str]] = (),
    outlines: Sequence[Outline] = (),
    scale: bool = True,
) -> np.ndarray:
    """The photo under its map, the outlined worst regions, and (``scale``) a colour scale to its
    right; without it the picture has the photo's size, to be laid over the photo."""
    canvas = draw_outlines(map_overlay(image, values, higher_is_worse), outlines)
    if not scale:
        return canvas
    panel = scale_panel(canvas.shape[0], label, higher_is_worse, levels)
    return np.concatenate([canvas, panel], axis=1)
