"""Region crops for stage 0: windows cut at native resolution from a corpus's images, with each
region's targets (quality, per-type severity) inside the window.

A step draws ``groups`` photos and, for each, ``variants`` of its records (the clean one or distorted
ones) cut at the same window, so a group holds the same content at different qualities as well as
different regions of one photo: the within-photo ranking loss compares both. Everything random is
drawn from ``(seed, step)``, so any step can be rebuilt after a restart.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError
from ...imageio import load_image
from ...labels import DISTORTION_TYPES
from ...records import RoiRecord, SampleRecord, iter_records
from ...roi import rle_to_mask
from ...splits import item_seed


@dataclass(frozen=True)
class LabelledImage:
    """One record of a dataset folder, reduced to what stage 0 reads."""

    path: Path
    reference: str
    width: int
    height: int
    rois: tuple[RoiRecord, ...]


@dataclass
class CropBatch:
    """Crops of one step and the targets of their regions (``R`` regions in all)."""

    pixels: torch.Tensor  # [B, 3, S, S] in [0, 1]
    masks: list[torch.Tensor]  # B x [R_i, S, S] bool
    quality: torch.Tensor  # [R]
    severity: torch.Tensor  # [R, 6] damage per distortion type (0 where absent)
    group: torch.Tensor  # [R] photo index within the step (ranking pairs stay inside a photo)


def severity_vector(roi: RoiRecord) -> list[float]:
    out = [0.0] * len(DISTORTION_TYPES)
    for d in roi.distortions:
        i = DISTORTION_TYPES.index(d.type)
        out[i] = max(out[i], float(d.severity))
    return out


def load_photos(folders: Sequence[Path], split: str | None) -> list[list[LabelledImage]]:
    """Records of ``folders`` in ``split`` grouped by reference photo (groups in first-seen order)."""
    groups: dict[tuple[str, str], list[LabelledImage]] = defaultdict(list)
    for folder in folders:
        for rec in iter_records(Path(folder), split):
            groups[(str(folder), rec.reference)].append(_labelled(Path(folder), rec))
    photos = [g for g in groups.values() if any(r.quality is not None for im in g for r in im.rois)]
    if not photos:
        raise ConfigError(f"no labelled records in split {split!r} of {[str(f) for f in folders]}")
    return photos


def _labelled(folder: Path, rec: SampleRecord) -> LabelledImage:
    rois = tuple(r for r in rec.rois if r.quality is not None)
    return LabelledImage(folder / rec.image, rec.reference, rec.width, rec.height, rois)


@dataclass
class CropSampler:
    """Deterministic crops: :meth:`batch` of step ``k`` is the same in every run with the same seed."""

    photos: list[list[LabelledImage]]
    crop: int = 256
    groups: int = 2
    variants: int = 2
    max_rois: int = 8
    # A region is kept when at least this share of it falls inside the window, or when it fills a
    # quarter of the window (large regions such as a whole background never fit whole).
    min_fraction: float = 0.5
    min_pixels: int = 256
    seed: int = 0

    DRAWS = 20  # windows drawn for a step before giving up (regions too small for the crop)

    def batch(self, step: int) -> CropBatch:
        rng = random.Random(item_seed(self.seed, "tower-step", step))
        for _ in range(self.DRAWS):  # redraws come from the same generator: a step stays reproducible
            picks = [rng.randrange(len(self.photos)) for _ in range(self.groups)]
            out = self.cut(picks, rng)
            if out is not None:
                return out
        raise ConfigError(
            f"step {step}: no region fell inside any of {self.DRAWS} drawn windows; raise crop or lower "
            "min_pixels (the regions of these photos are small)"
        )

    def fixed(self, index: int) -> CropBatch | None:
        """The window of photo ``index`` used for validation (all its records, the same every time);
        None when no region of the photo falls inside it."""
        rng = random.Random(item_seed(self.seed, "tower-val", index))
        return self.cut([index], rng, every_variant=True)

    def cut(self, picks: Sequence[int], rng: random.Random, every_variant: bool = False) -> CropBatch | None:
        pixels, masks, quality, severity, group = [], [], [], [], []
        for g, p in enumerate(picks):
            records = self.photos[p]
            chosen = records if every_variant else rng.sample(records, min(self.variants, len(records)))
            w, h = min(im.width for im in chosen), min(im.height for im in chosen)
            s = min(self.crop, w, h)
            x0, y0 = rng.randrange(w - s + 1), rng.randrange(h - s + 1)
            for im in chosen:
                crop, rois = self._window(im, x0, y0, s, rng)
                if not rois:
                    continue
                pixels.append(crop)
                masks.append(torch.from_numpy(np.stack([m for m, _ in rois])))
                quality += [float(r.quality) for _, r in rois]
                severity += [severity_vector(r) for _, r in rois]
                group += [g] * len(rois)
        if not pixels:
            return None
        size = max(int(t.shape[-1]) for t in pixels)
        return CropBatch(
            torch.stack([_pad(t, size) for t in pixels]),
            [_pad(m, size) for m in masks],
            torch.tensor(quality),
            torch.tensor(severity),
            torch.tensor(group),
        )

    def _window(
        self, im: LabelledImage, x0: int, y0: int, s: int, rng: random.Random
    ) -> tuple[torch.Tensor, list[tuple[np.ndarray, RoiRecord]]]:
        rgb = load_image(im.path)[y0 : y0 + s, x0 : x0 + s]
        crop = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float() / 255.0
        inside = []
        for r in im.rois:
            full = rle_to_mask(r.rle, name=f"{im.path}:{r.id}")
            m = full[y0 : y0 + s, x0 : x0 + s]
            n = int(m.sum())
            if n >= self.min_pixels and (n >= self.min_fraction * int(full.sum()) or 4 * n >= s * s):
                inside.append((m, r))
        if len(inside) > self.max_rois:
            inside = rng.sample(inside, self.max_rois)
        return crop, inside


def _pad(t: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the last two dims to ``size`` (crops are square; smaller images give smaller crops)."""
    dh, dw = size - t.shape[-2], size - t.shape[-1]
    return torch.nn.functional.pad(t, (0, dw, 0, dh)) if dh or dw else t
