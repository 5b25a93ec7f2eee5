"""Where one item's distortion goes: the whole photo, one ROI, everything but one ROI, or several ROIs.

* ``global``: the distorted photo as rendered.
* ``local``: the distortion inside one ROI only (hard seam, as SEAGULL-100w's local samples).
* ``background``: everywhere but one ROI (the sharp subject), seam feathered; the distorted rest of
  the photo is one more ROI, the shape of a defocused background.
* ``multi``: up to ``regions_per_image`` disjoint ROIs, each with its own distortion (the item's
  own first, then other families or strengths drawn from the seed), seams feathered, the rest of the
  photo untouched; one more box ROI straddles the first region's seam. Each ROI is labelled with the
  type of the region it overlaps most (``roi_types``), so ROIs of one photo disagree.

The scope follows from the item's seed as local items always did, so earlier folders are made
again item by item: ``u < local``, then background, then multi, else global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .. import distortions as D
from ..roi import Roi

if TYPE_CHECKING:
    from .pipeline import SynthConfig

# (family, setting, key) -> the whole photo distorted that way; the pipeline renders plain or camera.
Render = Callable[[str, int, str], D.DistortionResult]


@dataclass
class Region:
    """One distorted region of a multi-region item."""

    roi: int
    result: D.DistortionResult

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "roi": self.roi,
            "family": r.family,
            "subtype": r.subtype,
            "setting": r.setting,
            "params": r.params,
        }


@dataclass
class Composite:
    scope: str  # global | local | background | multi
    image: np.ndarray
    local_roi: int | None = (
        None  # the distorted ROI (local), the sharp subject (background), region 0 (multi)
    )
    extra_rois: list[Roi] = field(default_factory=list)  # appended after the item's ROIs
    regions: list[Region] = field(default_factory=list)  # multi only


def compose(
    image: np.ndarray,
    first: D.DistortionResult,
    masks: list[np.ndarray],
    seed: int,
    cfg: SynthConfig,
    render: Render,
) -> Composite:
    """The item's image from the reference, its rendered distortion and its ROI masks."""
    u = (seed % 10_000) / 10_000
    k = seed % len(masks)
    if u < cfg.local_fraction:
        return Composite("local", D.apply_in_mask(image, first.image, masks[k]), k)
    if u < cfg.local_fraction + cfg.background_fraction:
        out = D.apply_in_mask(image, first.image, ~masks[k], cfg.background_feather)
        return Composite("background", out, k, [Roi(~masks[k], name="background", source="background")])
    if u < cfg.local_fraction + cfg.background_fraction + cfg.multi_fraction:
        return _multi(image, first, masks, seed, cfg, render)
    return Composite("global", first.image)


def _multi(
    image: np.ndarray,
    first: D.DistortionResult,
    masks: list[np.ndarray],
    seed: int,
    cfg: SynthConfig,
    render: Render,
) -> Composite:
    rng = np.random.default_rng(seed)
    picked = disjoint_regions(masks, cfg.regions_per_image, rng)
    results = [first]
    used = {(first.family, first.setting)}
    ladder = D.setting_ladder(cfg.settings, cfg.strongest)
    for j in range(1, len(picked)):
        options = [(f, s) for f in cfg.families for s in ladder if (f, s) not in used]
        if not options:
            break
        family, setting = options[int(rng.integers(len(options)))]
        used.add((family, setting))
        results.append(render(family, setting, f"region{j}"))
    out = image
    for k, r in zip(picked, results, strict=False):
        out = D.apply_in_mask(out, r.image, masks[k], cfg.region_feather)
    regions = [Region(k, r) for k, r in zip(picked, results, strict=False)]
    seam = seam_box(masks[picked[0]], rng)
    return Composite("multi", out, picked[0], [seam] if seam is not None else [], regions)


def disjoint_regions(masks: list[np.ndarray], k: int, rng: np.random.Generator) -> list[int]:
    """Up to ``k`` indices of masks that do not overlap, in a seeded order (at least one)."""
    picked: list[int] = []
    taken = np.zeros_like(masks[0], dtype=bool)
    for i in rng.permutation(len(masks)):
        if not (masks[i] & taken).any():
            picked.append(int(i))
            taken |= masks[i]
        if len(picked) == k:
            break
    return picked


def seam_box(mask: np.ndarray, rng: np.random.Generator) -> Roi | None:
    """A square ROI centred on a seeded point of the mask's border inside the image, so it holds
    pixels on both sides of the seam; None if the mask has no such border."""
    h, w = mask.shape
    outside = cv2.dilate((~mask).astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT)
    ys, xs = np.nonzero(mask & outside.astype(bool))
    if len(ys) == 0:
        return None
    i = int(rng.integers(len(ys)))
    half = int(np.clip(np.sqrt(mask.sum()) * 0.3, 8, min(h, w) // 4))
    y0, x0 = max(0, ys[i] - half), max(0, xs[i] - half)
    box = np.zeros_like(mask)
    box[y0 : ys[i] + half + 1, x0 : xs[i] + half + 1] = True
    return Roi(box, name="seam", source="seam")


def region_of_rois(comp: Composite, masks: list[np.ndarray]) -> list[int | None]:
    """For a multi item, the index of the region each ROI overlaps most (None: it touches none, so it
    is undistorted and its damage is 0)."""
    region_masks = [masks[r.roi] for r in comp.regions]
    out: list[int | None] = []
    for m in masks:
        overlap = [int((m & rm).sum()) for rm in region_masks]
        out.append(int(np.argmax(overlap)) if max(overlap, default=0) > 0 else None)
    return out


def distortion_fields(comp: Composite, first: D.DistortionResult, masks: list[np.ndarray]) -> dict[str, Any]:
    """The record's ``distortion`` entry; multi items add their regions and each ROI's region."""
    d: dict[str, Any] = {
        "family": first.family,
        "subtype": first.subtype,
        "setting": first.setting,
        "num_settings": D.NUM_SETTINGS,
        "params": first.params,
        "scope": comp.scope,
        # the distorted ROI ("local"), the sharp subject ("background"; then the last ROI is the
        # distorted rest of the photo) or the first region ("multi")
        "local_roi": comp.local_roi,
    }
    if comp.scope == "multi":
        d["regions"] = [r.to_dict() for r in comp.regions]
        d["roi_regions"] = region_of_rois(comp, masks)
    return d


def _per_roi(distortion: dict[str, Any], n_rois: int, keys: tuple[str, str]) -> list[tuple[Any, Any]]:
    """``keys`` of the distortion each of a record's ROIs carries: the item's, or for a multi item its
    region's ((None, None) for an ROI outside every region)."""
    if "roi_regions" not in distortion:
        return [(distortion.get(keys[0]), distortion.get(keys[1]))] * n_rois
    regions = distortion["regions"]
    return [
        (None, None) if j is None else (regions[j][keys[0]], regions[j][keys[1]])
        for j in distortion["roi_regions"]
    ]


def roi_types(distortion: dict[str, Any], n_rois: int) -> list[tuple[str | None, str | None]]:
    """(family, sub-type) each of a record's ROIs is labelled with."""
    return _per_roi(distortion, n_rois, ("family", "subtype"))


def roi_settings(distortion: dict[str, Any], n_rois: int) -> list[tuple[str | None, int | None]]:
    """(family, setting) of the distortion each of a record's ROIs carries."""
    return _per_roi(distortion, n_rois, ("family", "setting"))
