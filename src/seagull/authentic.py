"""Authentic (camera-made) blur with human labels: the CUHK blur folder, its fixed photo split and the
checks every reader of a photo applies.

The folder (``cuhk_blur_regions``, shared/data/README.md section 1) holds ``labels.csv`` (``image``,
``mask``, ``blur_type`` motion/defocus, ``mos_paq2piq`` 0-100), the photos and their masks
(255 = blurred region, 0 = sharp). Evaluation (``seagull eval --suite cuhk``) and the stage-2 converter
(``seagull data cuhk``, :mod:`seagull.synth.cuhk`) both read it here, so they see the same photos, the
same split and the same skip rules. Photos without a MOS are left out, in no split.

Split: by photo file stem, 70 / 10 / 20 % train / val / test with seed 0
(:func:`seagull.splits.assign_split`, the rule every synthetic folder is split by).

Human-rated photo sets (``seagull data mos``, :mod:`seagull.synth.mos`; ``seagull eval --suite mos``,
:mod:`seagull.eval.mos`) share the second half of this module: :class:`MosScale`, how a declared MOS
scale is normalised to [0, 1] (higher = better) and cut into the five quality words, and
:func:`mos_of`, the MOS fields a record of such a folder carries.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .errors import ConfigError, SchemaError
from .labels import QUALITY_LEVELS, level_index
from .records import SampleRecord
from .roi import load_mask_file
from .splits import SPLITS, assign_split

LABELS_FILE = "labels.csv"
BLUR_TYPES = ("motion", "defocus")
SPLIT_CHOICES = (*SPLITS, "all")
CUHK_SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
CUHK_SPLIT_SEED = 0
# A photo whose blurred or sharp region is under this share of its pixels gives no usable pair of ROIs.
MIN_REGION_FRACTION = 0.02
_COLUMNS = ("image", "mask", "blur_type", "mos_paq2piq")


def cuhk_split(stem: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` of the photo with file stem ``stem`` (fixed for good)."""
    return assign_split(stem, CUHK_SPLIT_FRACTIONS, CUHK_SPLIT_SEED)


@dataclass(frozen=True)
class CuhkPhoto:
    """One row of ``labels.csv`` with a MOS; paths are relative to the folder, as the file gives them."""

    image: str
    mask: str
    blur_type: str
    mos: float

    @property
    def stem(self) -> str:
        return PurePosixPath(self.image).stem

    @property
    def split(self) -> str:
        return cuhk_split(self.stem)


def read_cuhk_index(root: Path) -> list[CuhkPhoto]:
    """The photos of a CUHK blur folder that have a MOS, in ``labels.csv`` order."""
    path = Path(root) / LABELS_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist: pass the CUHK blur folder that holds {LABELS_FILE}, images/ and masks/ "
            "(e.g. ../shared/data/cuhk_blur_regions)"
        )
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path} lacks the columns {missing}; it needs {list(_COLUMNS)}")
        rows = list(reader)
    photos = []
    for n, r in enumerate(rows, 2):
        if not r["mos_paq2piq"]:
            continue
        if r["blur_type"] not in BLUR_TYPES:
            raise ConfigError(f"{path}:{n}: blur_type {r['blur_type']!r} is not one of {BLUR_TYPES}")
        try:
            mos = float(r["mos_paq2piq"])
        except ValueError as e:
            raise ConfigError(f"{path}:{n}: mos_paq2piq {r['mos_paq2piq']!r} is not a number") from e
        photos.append(CuhkPhoto(r["image"], r["mask"], r["blur_type"], mos))
    return photos


def select_photos(
    photos: Sequence[CuhkPhoto], split: str = "all", limit: int | None = None
) -> list[CuhkPhoto]:
    """The photos of ``split`` (``"all"``: every photo); with ``limit``, the first ``(limit + 1) // 2``
    motion and ``limit // 2`` defocus photos of them, so that a small subset has both blur types."""
    if split not in SPLIT_CHOICES:
        raise ConfigError(f"split {split!r} is not one of {SPLIT_CHOICES}")
    out = [p for p in photos if split == "all" or p.split == split]
    if limit:
        motion = [p for p in out if p.blur_type == "motion"]
        defocus = [p for p in out if p.blur_type == "defocus"]
        out = motion[: (limit + 1) // 2] + defocus[: limit // 2]
    return out


def load_blur_mask(root: Path, photo: CuhkPhoto, shape: tuple[int, int]) -> np.ndarray:
    """The photo's blurred region (True = blurred); a mask of another size than ``shape`` (h, w) or an
    unreadable one raises :class:`seagull.errors.RoiError`."""
    return load_mask_file(Path(root) / photo.mask, name=photo.stem, shape=shape)


def tiny_region(blurred: np.ndarray, min_fraction: float = MIN_REGION_FRACTION) -> str | None:
    """Why the photo gives no pair of ROIs (its blurred or sharp region is under ``min_fraction`` of
    the pixels), or None when both regions are large enough."""
    frac = float(blurred.mean())
    if frac < min_fraction:
        return f"blurred region under {min_fraction:.0%}"
    if frac > 1 - min_fraction:
        return f"sharp region under {min_fraction:.0%}"
    return None


# --------------------------------------------------------------------------- human-rated photo sets
MOS_CONVERTER = "seagull data mos"  # the converter named in the card of a MOS folder
LEVEL_RULES = ("acr", "equal")
# Cut points on the normalised MOS n in [0, 1]. ACR 1-5 (ITU-T P.910 / P.800: 1 bad, 2 poor, 3 fair,
# 4 good, 5 excellent): the anchors sit at n = 0, 0.25, ..., 1 and the boundaries at the midpoints
# 1.5, 2.5, 3.5, 4.5. Any other scale: five equal intervals of the declared range (Q-Align's binning).
ACR_CUTS = (0.125, 0.375, 0.625, 0.875)
EQUAL_CUTS = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True)
class MosScale:
    """A declared MOS scale: its range, direction and how it is cut into the five quality words.

    ``levels`` is ``"acr"`` (the ACR 1-5 anchors, boundaries at the midpoints) or ``"equal"`` (equal
    intervals over [lo, hi]); ``"auto"`` picks ``"acr"`` for a 1-5 scale and ``"equal"`` otherwise.
    """

    lo: float
    hi: float
    lower_better: bool = False
    levels: str = "auto"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)) or self.hi <= self.lo:
            raise ConfigError(
                f"MOS scale {self.lo:g},{self.hi:g}: give LO,HI with LO < HI (e.g. --scale 1,5)"
            )
        if self.levels == "auto":
            object.__setattr__(self, "levels", "acr" if (self.lo, self.hi) == (1.0, 5.0) else "equal")
        if self.levels not in LEVEL_RULES:
            raise ConfigError(f"MOS level rule {self.levels!r} is not one of {('auto', *LEVEL_RULES)}")
        if self.levels == "acr" and (self.lo, self.hi) != (1.0, 5.0):
            raise ConfigError(
                f"the ACR anchors need the scale 1,5, not {self.lo:g},{self.hi:g}; use --levels equal"
            )

    @property
    def cuts(self) -> tuple[float, float, float, float]:
        """Cut points on the normalised MOS (the quality thresholds of the folder's card)."""
        return ACR_CUTS if self.levels == "acr" else EQUAL_CUTS

    def contains(self, mos: float, tol: float = 1e-9) -> bool:
        return self.lo - tol <= mos <= self.hi + tol

    def normalise(self, mos: float) -> float:
        """``mos`` on [0, 1], 1 = best (rounded to 6 decimals, as records store it)."""
        u = (float(mos) - self.lo) / (self.hi - self.lo)
        u = 1.0 - u if self.lower_better else u
        return round(min(1.0, max(0.0, u)), 6)

    def normalise_spread(self, std: float) -> float:
        """A standard deviation of the MOS in units of the normalised scale."""
        return round(float(std) / (self.hi - self.lo), 6)

    def level(self, mos: float) -> str:
        """The quality word of ``mos`` (at a boundary, the better word)."""
        return QUALITY_LEVELS[level_index(self.normalise(mos), self.cuts)]

    def to_dict(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi, "lower_better": self.lower_better, "levels": self.levels}


def mos_of(record: SampleRecord) -> dict[str, Any]:
    """The MOS fields of a record written by ``seagull data mos``: ``raw`` (on the set's own scale),
    ``normalised`` ([0, 1], higher = better), ``std`` / ``std_normalised`` (None when the set gives
    none), ``scale``, ``group`` and where it came from."""
    mos = record.distortion.get("mos") if isinstance(record.distortion, dict) else None
    if not isinstance(mos, dict) or "normalised" not in mos or "raw" not in mos:
        raise SchemaError(f"record {record.id!r} carries no MOS: read a folder written by `seagull data mos`")
    return mos
