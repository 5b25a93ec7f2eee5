"""The per-reference synthesis function and its configuration.

One work item is one reference photo: its ROIs are proposed once, then every (family, setting)
distortion of it is rendered, labelled and written. The item's records go to one shard,
``shards/<ref_id>.jsonl``, written atomically after its images, so a finished item is exactly a
shard that exists; a killed run resumes by skipping those.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .. import distortions as D
from ..camera import CAMERA_FAMILIES, apply_camera
from ..errors import ConfigError
from ..fileio import atomic_write_bytes
from ..imageio import fit_longest_side, load_image, resize_mask, save_image
from ..labels import (
    DistortionLabel,
    Thresholds,
    importance_level,
    quality_level,
    severity_level,
)
from ..metrics import fr
from ..proposals import RegionFilter, auto_regions
from ..records import RoiRecord, SampleRecord, write_shard
from ..references import Reference, human_regions
from ..roi import Roi, mask_bbox, mask_to_rle
from ..splits import assign_split, item_seed
from ..templates import label_conversations
from ..workers import limit_torch_threads
from .config import LABEL_SCHEMES, VISIBILITY_GAIN, VISIBILITY_THRESHOLDS, SynthConfig  # noqa: F401 (re-exported)
from .layouts import Composite, compose, distortion_fields, roi_types


@dataclass
class ItemResult:
    ref_id: str
    records: int = 0
    rois: int = 0
    error: str | None = None
    seconds: dict[str, float] = field(
        default_factory=lambda: {"propose": 0.0, "distort": 0.0, "label": 0.0, "write": 0.0}
    )


def propose_rois(ref: Reference, image: np.ndarray, cfg: SynthConfig) -> list[Roi]:
    """Human segmentations where the reference has them and ``cfg.rois`` asks, else automatic
    regions; filtered by area, de-duplicated, then a seeded pick alternating between sources."""
    h, w = image.shape[:2]
    candidates: list[Roi] = []
    if cfg.rois in ("gt", "both"):
        candidates += human_regions(ref)
    if cfg.rois in ("auto", "both") or not candidates:
        candidates += auto_regions(image)
    resized = []
    for r in candidates:
        m = resize_mask(r.mask, (h, w))
        if m.any():  # tiny segments can vanish at the working size
            resized.append(Roi(m, r.name, r.source))
    kept = RegionFilter(cfg.min_roi_frac, cfg.max_roi_frac)(resized)
    rng = np.random.default_rng(item_seed(cfg.seed, "rois", ref.id))
    by_source: dict[str, list[Roi]] = {}
    for r in kept:
        by_source.setdefault(r.source, []).append(r)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(by_source.items())]
    picked: list[Roi] = []
    while len(picked) < cfg.max_rois and any(queues):
        for q in queues:
            if q and len(picked) < cfg.max_rois:
                picked.append(q.pop(0))
    return picked


@lru_cache(maxsize=2)
def _metric(name: str):
    return fr.get_fr_metric(name)


def fill_corrected(quality: float, mask: np.ndarray) -> float:
    """ROI quality with its damage divided by the square root of the share of its bounding box the mask
    fills. The FR label compares bounding-box crops whose pixels outside the mask are the reference's,
    so a thin or ragged region dilutes its damage; on the same boxes with masks filling 15-100 % of
    them, damage / sqrt(fill) measured constant within 7 % (docs/labels.md)."""
    x, y, w, h = mask_bbox(mask)
    fill = float(mask.sum()) / (w * h)
    return float(np.clip(1.0 - (1.0 - quality) / np.sqrt(fill), 0.0, 1.0))


def visibility_corrected(quality: float, subtype: str | None) -> float:
    """ROI quality with its damage scaled by the sub-type's :data:`VISIBILITY_GAIN` (label scheme v2)."""
    gain = VISIBILITY_GAIN.get(subtype or "", 1.0)
    return float(np.clip(1.0 - (1.0 - quality) * gain, 0.0, 1.0))


def level_fields(
    quality: float, importance: float, family: str | None, subtype: str | None, th: Thresholds
) -> dict[str, Any]:
    """Levels and distortion labels of one ROI from its scores; the one place labels are cut."""
    # cut the stored (rounded) numbers, so that `seagull data validate` re-cuts the same levels: a
    # damage of 0.0699999996 is stored as 0.07, which is on the next level's boundary
    q, imp = round(float(np.clip(quality, 0, 1)), 6), round(float(np.clip(importance, 0, 1)), 6)
    damage = round(1.0 - q, 6)
    dists = []
    if family not in (None, "none") and damage >= th.visible:
        dists.append(DistortionLabel(family, damage, severity_level(damage, th), subtype))
    return {
        "quality": q,
        "quality_level": quality_level(q, th),
        "importance": imp,
        "importance_level": importance_level(imp, th),
        "distortions": dists,
    }


def _label_rois(
    rois: list[Roi],
    quality: Sequence[float],
    importance: Sequence[float],
    types: Sequence[tuple[str | None, str | None]],
    cfg: SynthConfig,
) -> list[RoiRecord]:
    return [
        RoiRecord(
            id=f"r{k}",
            rle=mask_to_rle(roi.mask),
            bbox=list(mask_bbox(roi.mask)),
            area=roi.area,
            source=roi.source,
            **level_fields(q, imp, family, subtype, cfg.thresholds),
        )
        for k, (roi, q, imp, (family, subtype)) in enumerate(
            zip(rois, quality, importance, types, strict=True)
        )
    ]


def conversation_seed(cfg_seed: int, sample_id: str) -> int:
    return item_seed(cfg_seed, "conv", sample_id)


def load_reference(ref: Reference, max_side: int) -> np.ndarray:
    return fit_longest_side(load_image(ref.path), max_side)


def settings_for(ref_id: str, family: str, cfg: SynthConfig) -> list[int]:
    """The ladder settings rendered for one (reference, family): all, or a seeded subset."""
    ladder = D.setting_ladder(cfg.settings, cfg.strongest)
    if cfg.settings_per_ref is None:
        return ladder
    rng = np.random.default_rng(item_seed(cfg.seed, "settings", ref_id, family))
    return sorted(int(s) for s in rng.choice(ladder, size=cfg.settings_per_ref, replace=False))


def process_reference(ref: Reference, cfg: SynthConfig) -> ItemResult:
    """Render, label and write every distortion of one reference. Errors are returned, not raised,
    so that a batch goes on past one bad item."""
    res = ItemResult(ref.id)
    limit_torch_threads(cfg.threads)
    try:
        _process(ref, cfg, res)
    except Exception as e:  # one bad reference must not stop the run; the runner logs it
        res.error = f"{type(e).__name__}: {e}"
    return res


@contextmanager
def _timed(res: ItemResult, step: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    res.seconds[step] += time.perf_counter() - t


@dataclass
class _Item:
    """One reference being synthesised: its working image, ROIs and the records made so far."""

    ref: Reference
    cfg: SynthConfig
    res: ItemResult
    image: np.ndarray
    rois: list[Roi]
    split: str
    records: list[SampleRecord] = field(default_factory=list)

    def add(self, sample_id: str, rel_image: str, distortion: dict[str, Any], rois: list[RoiRecord]) -> None:
        h, w = self.image.shape[:2]
        convs = label_conversations(rois, conversation_seed(self.cfg.seed, sample_id))
        self.records.append(
            SampleRecord(sample_id, rel_image, str(self.ref.path), w, h, distortion, rois, convs, self.split)
        )

    def save(self, name: str, image: np.ndarray) -> str:
        rel = f"images/{self.ref.id}/{name}"
        (self.cfg.out / rel).parent.mkdir(parents=True, exist_ok=True)
        save_image(self.cfg.out / rel, image)
        return rel


def _process(ref: Reference, cfg: SynthConfig, res: ItemResult) -> None:
    item = _start(ref, cfg, res)
    if cfg.clean:
        _add_clean(item)
    for family in cfg.families:
        for setting in settings_for(ref.id, family, cfg):
            _add_distorted(item, family, setting)
    with _timed(res, "write"):
        write_shard(cfg.out / "shards" / f"{ref.id}.jsonl", item.records)
    res.records = len(item.records)
    res.rois = sum(len(r.rois) for r in item.records)


def _start(ref: Reference, cfg: SynthConfig, res: ItemResult) -> _Item:
    with _timed(res, "propose"):
        image = load_reference(ref, cfg.max_side)
        rois = propose_rois(ref, image, cfg)
        if not rois:
            raise ConfigError(
                f"no ROI of {cfg.min_roi_frac:.0%}-{cfg.max_roi_frac:.0%} of the image was found"
            )
    return _Item(ref, cfg, res, image, rois, assign_split(ref.id, cfg.split_fractions, cfg.seed))


def _add_clean(item: _Item) -> None:
    with _timed(item.res, "write"):
        rel = item.save("clean.png", item.image)
    with _timed(item.res, "label"):
        # A similarity metric of an image with itself is 1: quality 1, importance 0 by definition.
        n = len(item.rois)
        labels = _label_rois(item.rois, [1.0] * n, [0.0] * n, [(None, None)] * n, item.cfg)
        distortion = {"family": "none", "subtype": None, "setting": 0, "scope": "global"}
        item.add(f"{item.ref.id}__clean", rel, distortion, labels)


def render_distortion(
    image: np.ndarray, family: str, setting: int, key: str, seed: int, cfg: SynthConfig
) -> D.DistortionResult:
    """The whole photo distorted by ``family`` at ``setting``: the sub-type follows from ``key``;
    with ``cfg.camera`` blur and noise are the camera-like variants (seagull.camera)."""
    if cfg.camera and family in CAMERA_FAMILIES:
        subtype = D.choose_subtype(family, key, cfg.seed, CAMERA_FAMILIES[family])
        return apply_camera(image, family, setting, subtype, seed=seed)
    subtype = D.choose_subtype(family, key, cfg.seed)
    return D.apply_distortion(image, family, setting, subtype, seed=seed)


def _add_distorted(item: _Item, family: str, setting: int) -> None:
    cfg, res = item.cfg, item.res
    sid = f"{item.ref.id}__{family}__s{setting:02d}"
    seed = item_seed(cfg.seed, sid)
    with _timed(res, "distort"):
        first = render_distortion(item.image, family, setting, sid, seed, cfg)

        def render(fam: str, s: int, key: str) -> D.DistortionResult:
            return render_distortion(item.image, fam, s, f"{sid}|{key}", item_seed(cfg.seed, sid, key), cfg)

        comp = compose(item.image, first, [r.mask for r in item.rois], seed, cfg, render)
    with _timed(res, "label"):
        distortion, labels = _label(item, first, comp)
    with _timed(res, "write"):
        rel = _write(item, f"{family}_s{setting:02d}", first, comp)
    item.add(sid, rel, distortion, labels)


def _label(item: _Item, first: D.DistortionResult, comp: Composite) -> tuple[dict[str, Any], list[RoiRecord]]:
    """The record's distortion entry and the labels of every ROI (the item's and the layout's own)."""
    cfg = item.cfg
    rois = [*item.rois, *comp.extra_rois]
    masks = [r.mask for r in rois]
    distortion = distortion_fields(comp, first, masks)
    types = roi_types(distortion, len(rois))
    q = fr.roi_quality(item.image, comp.image, masks, metric=_metric(cfg.metric))
    if cfg.labels == "v2":
        q = [
            visibility_corrected(fill_corrected(x, m), subtype)
            for x, m, (_, subtype) in zip(q, masks, types, strict=True)
        ]
    imp = fr.roi_importance(
        item.image, comp.image, masks, metric=_metric(cfg.metric), max_side=cfg.importance_max_side
    )
    return distortion, _label_rois(rois, q, imp, types, cfg)


def _write(item: _Item, name: str, first: D.DistortionResult, comp: Composite) -> str:
    """A global codec item keeps the codec's bytes; every other image is stored losslessly."""
    if first.encoded is not None and comp.scope == "global":
        rel = f"images/{item.ref.id}/{name}{first.ext}"
        atomic_write_bytes(item.cfg.out / rel, first.encoded)
        return rel
    return item.save(f"{name}.png", comp.image)
