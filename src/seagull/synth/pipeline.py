"""The per-reference synthesis function and its configuration.

One work item is one reference photo: its ROIs are proposed once, then every (family, setting)
distortion of it is rendered, labelled and written. The item's records go to one shard,
``shards/<ref_id>.jsonl``, written atomically after its images, so a finished item is exactly a
shard that exists; a killed run resumes by skipping those.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import distortions as D
from ..errors import ConfigError
from ..imageio import SUPPORTED_SUFFIXES, load_image, save_image
from ..metrics import fr
from ..proposals import RegionFilter, auto_regions, bsds_regions, coco_regions
from ..roi import Roi, mask_bbox, mask_to_rle
from ..schema import (
    DEFAULT_THRESHOLDS,
    DISTORTION_TYPES,
    DistortionLabel,
    RoiRecord,
    SampleRecord,
    Thresholds,
    atomic_write_bytes,
    importance_level,
    quality_level,
    severity_level,
    write_shard,
)
from ..templates import label_conversations

SPLITS = ("train", "val", "test")


@dataclass
class SynthConfig:
    refs: Path
    out: Path
    rois: str = "auto"  # auto | gt | both
    annotations: Path | None = None  # COCO instances JSON; None = the folder's own annotations/*.json
    settings: int = 10  # settings per family, spread over the 20-step ladder
    families: tuple[str, ...] = DISTORTION_TYPES
    seed: int = 0
    max_rois: int = 6
    max_side: int = 512  # references are downscaled to this working size first
    clean: bool = True  # also emit the undistorted reference (labels: excellent, no distortion)
    local_fraction: float = 0.0  # share of items distorted inside one ROI only
    # Share of items distorted everywhere except one ROI (the subject), like a defocused background
    # behind a sharp subject with blur; the seam is feathered by ``background_feather`` pixels.
    background_fraction: float = 0.0
    background_feather: float = 4.0
    metric: str = ""  # full-reference label metric; "" = the default
    thresholds: Thresholds = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    min_roi_frac: float = 0.01
    max_roi_frac: float = 0.7
    threads: int = 1  # torch threads per worker; workers, not threads, are the unit of scale-out
    settings_per_ref: int | None = (
        None  # render only this many of the ladder's settings per (reference, family)
    )
    importance_max_side: int | None = None  # working size for the whole-image importance metric (speed)

    def __post_init__(self) -> None:
        self.refs, self.out = Path(self.refs), Path(self.out)
        self.families = tuple(self.families)
        self.metric = self.metric or fr.DEFAULT_FR_METRIC
        if self.rois not in ("auto", "gt", "both"):
            raise ConfigError(f"--rois must be auto, gt or both, got {self.rois!r}")
        if self.annotations is not None:
            self.annotations = Path(self.annotations)
            if self.rois == "auto":
                raise ConfigError(
                    f"--annotations {self.annotations} gives human segmentations, which only "
                    "--rois gt or both use; add one of them or leave --annotations out"
                )
            if not self.annotations.is_file():
                raise ConfigError(
                    f"--annotations {self.annotations} is not a file; name the COCO instances JSON "
                    "of the reference photos"
                )
        bad = [f for f in self.families if f not in DISTORTION_TYPES]
        if bad:
            raise ConfigError(f"unknown distortion families {bad}; choose from {DISTORTION_TYPES}")
        if not 1 <= self.settings <= D.NUM_SETTINGS:
            raise ConfigError(f"--settings must be between 1 and {D.NUM_SETTINGS}, got {self.settings}")
        if self.max_rois < 1:
            raise ConfigError(f"--max-rois must be at least 1, got {self.max_rois}")
        if self.settings_per_ref is not None and not 1 <= self.settings_per_ref <= self.settings:
            raise ConfigError(
                f"--settings-per-ref must be between 1 and --settings ({self.settings}), got {self.settings_per_ref}"
            )
        for name in ("local_fraction", "background_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {v}")
        if self.local_fraction + self.background_fraction > 1.0:
            raise ConfigError(
                f"--local-fraction ({self.local_fraction}) plus --background-fraction "
                f"({self.background_fraction}) must be at most 1: an item is local, background or global"
            )
        if not np.isfinite(self.background_feather) or self.background_feather < 0:
            raise ConfigError(f"background feather must be >= 0 pixels, got {self.background_feather}")
        if abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ConfigError(f"split fractions must sum to 1, got {self.split_fractions}")

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a run to resume into an existing folder."""
        d = asdict(self)
        d.pop("out")
        d.pop("threads")
        d["refs"] = str(self.refs)
        d["thresholds"] = self.thresholds.to_dict()
        d["families"] = list(self.families)
        d["split_fractions"] = list(self.split_fractions)
        if not self.background_fraction:  # folders written before the option existed still resume
            d.pop("background_fraction")
            d.pop("background_feather")
        if self.annotations is None or _same_file(self.annotations, _implicit_annotations(self.refs)):
            d.pop("annotations")  # as above; and naming the file used implicitly changes nothing
        else:
            d["annotations"] = str(self.annotations)
        return d


@dataclass(frozen=True)
class Reference:
    id: str
    path: Path
    gt: Path | None = None  # BSDS500 ground-truth .mat
    coco: Path | None = None  # COCO instances json


@dataclass
class ItemResult:
    ref_id: str
    records: int = 0
    rois: int = 0
    error: str | None = None
    seconds: dict[str, float] = field(
        default_factory=lambda: {"propose": 0.0, "distort": 0.0, "label": 0.0, "write": 0.0}
    )


def _ref_id(rel: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(rel.with_suffix("")).replace("/", "-"))


def _annotation_files(root: Path) -> list[Path]:
    folder = Path(root) / "annotations"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _implicit_annotations(root: Path) -> Path | None:
    """The file folders made before ``--annotations`` existed took: the first in name order."""
    found = _annotation_files(root)
    return found[0] if found else None


def _same_file(a: Path, b: Path | None) -> bool:
    return b is not None and a.resolve() == b.resolve()


def find_annotations(root: Path, named: Path | None = None) -> Path | None:
    """The COCO instances file that gives the photos under ``root`` their human segmentations:
    ``named`` if given, else the only ``annotations/*.json`` of the folder, else None. Several
    files and none named is an error listing them, as picking one silently could label the photos
    with the wrong annotations."""
    if named is not None:
        return Path(named)
    found = _annotation_files(root)
    if len(found) > 1:
        raise ConfigError(
            f"--refs {root} has {len(found)} COCO annotation files ({', '.join(p.name for p in found)}); "
            "name the one to use with --annotations FILE"
        )
    return found[0] if found else None


def discover_references(root: Path, annotations: Path | None = None, *, coco: bool = True) -> list[Reference]:
    """Reference photos under ``root``: a BSDS500 folder (with ground truth), a COCO folder (with
    its annotation file, see :func:`find_annotations`), any folder of images, or a single image
    file. ``coco=False`` attaches no COCO annotations (automatic ROIs need none)."""
    root = Path(root)
    coco_file = find_annotations(root, annotations) if coco else None
    if root.is_file():
        return [Reference(_ref_id(Path(root.name)), root, coco=coco_file)]
    if not root.is_dir():
        raise ConfigError(f"--refs {root} is neither an image nor a folder")
    images = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file() and "groundTruth" not in p.parts
    )
    if (root / "groundTruth").is_dir():
        images = [p for p in images if p.parts[len(root.parts)] == "images"]
    if not images:
        raise ConfigError(f"--refs {root} holds no images ({', '.join(SUPPORTED_SUFFIXES)})")
    refs = []
    for p in images:
        rel = p.relative_to(root)
        gt = None
        if (root / "groundTruth").is_dir():
            cand = root / "groundTruth" / Path(*rel.parts[1:]).with_suffix(".mat")
            gt = cand if cand.is_file() else None
        refs.append(Reference(_ref_id(rel), p, gt, coco_file))
    return refs


def item_seed(seed: int, *keys: object) -> int:
    h = hashlib.sha256("|".join(map(str, (seed, *keys))).encode()).digest()
    return int.from_bytes(h[:4], "little")


def assign_split(ref_id: str, fractions: Sequence[float], seed: int) -> str:
    """Split by reference, so test content never appears in training."""
    u = item_seed(seed, "split", ref_id) / 2**32
    acc = 0.0
    for name, f in zip(SPLITS, fractions, strict=True):
        acc += f
        if u < acc:
            return name
    return SPLITS[-1]


def _resize_mask(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    if mask.shape == size_hw:
        return mask
    return cv2.resize(
        mask.astype(np.uint8), (size_hw[1], size_hw[0]), interpolation=cv2.INTER_NEAREST
    ).astype(bool)


def propose_rois(ref: Reference, image: np.ndarray, cfg: SynthConfig) -> list[Roi]:
    """Human segmentations where the reference has them and ``cfg.rois`` asks, else automatic
    regions; filtered by area, de-duplicated, then a seeded pick alternating between sources."""
    h, w = image.shape[:2]
    candidates: list[Roi] = []
    if cfg.rois in ("gt", "both"):
        if ref.gt is not None:
            candidates += bsds_regions(ref.gt)
        elif ref.coco is not None:
            candidates += coco_regions(ref.coco, ref.path.name)
    if cfg.rois in ("auto", "both") or not candidates:
        candidates += auto_regions(image)
    resized = []
    for r in candidates:
        m = _resize_mask(r.mask, (h, w))
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


def level_fields(
    quality: float, importance: float, family: str | None, subtype: str | None, th: Thresholds
) -> dict[str, Any]:
    """Levels and distortion labels of one ROI from its scores; the one place labels are cut."""
    q, imp = float(np.clip(quality, 0, 1)), float(np.clip(importance, 0, 1))
    damage = 1.0 - q
    dists = []
    if family not in (None, "none") and damage >= th.visible:
        dists.append(DistortionLabel(family, round(damage, 6), severity_level(damage, th), subtype))
    return {
        "quality": round(q, 6),
        "quality_level": quality_level(q, th),
        "importance": round(imp, 6),
        "importance_level": importance_level(imp, th),
        "distortions": dists,
    }


def _label_rois(
    rois: list[Roi],
    quality: Sequence[float],
    importance: Sequence[float],
    family: str | None,
    subtype: str | None,
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
        for k, (roi, q, imp) in enumerate(zip(rois, quality, importance, strict=True))
    ]


def choose_scope(
    image: np.ndarray, distorted: np.ndarray, masks: list[np.ndarray], seed: int, cfg: SynthConfig
) -> tuple[str, np.ndarray, int | None]:
    """Where one item's distortion goes: ``("global", image, None)``, ``("local", image, k)`` (inside
    ROI k only) or ``("background", image, k)`` (everywhere but ROI k). Scope and ROI both follow from
    the item's seed, as local items always did, so earlier folders are made again item by item."""
    u = (seed % 10_000) / 10_000
    k = seed % len(masks)
    if u < cfg.local_fraction:
        return "local", D.apply_in_mask(image, distorted, masks[k]), k
    if u < cfg.local_fraction + cfg.background_fraction:
        return "background", D.apply_in_mask(image, distorted, ~masks[k], cfg.background_feather), k
    return "global", distorted, None


def conversation_seed(cfg_seed: int, sample_id: str) -> int:
    return item_seed(cfg_seed, "conv", sample_id)


def load_reference(ref: Reference, max_side: int) -> np.ndarray:
    img = load_image(ref.path)
    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s < 1.0:
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return img


def settings_for(ref_id: str, family: str, cfg: SynthConfig) -> list[int]:
    """The ladder settings rendered for one (reference, family): all, or a seeded subset."""
    ladder = D.setting_ladder(cfg.settings)
    if cfg.settings_per_ref is None:
        return ladder
    rng = np.random.default_rng(item_seed(cfg.seed, "settings", ref_id, family))
    return sorted(int(s) for s in rng.choice(ladder, size=cfg.settings_per_ref, replace=False))


def _limit_threads(n: int) -> None:
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def process_reference(ref: Reference, cfg: SynthConfig) -> ItemResult:
    """Render, label and write every distortion of one reference. Errors are returned, not raised,
    so that a batch goes on past one bad item."""
    res = ItemResult(ref.id)
    _limit_threads(cfg.threads)
    try:
        _process(ref, cfg, res)
    except Exception as e:  # one bad reference must not stop the run; the runner logs it
        res.error = f"{type(e).__name__}: {e}"
    return res


def _process(ref: Reference, cfg: SynthConfig, res: ItemResult) -> None:
    t = time.perf_counter()
    image = load_reference(ref, cfg.max_side)
    h, w = image.shape[:2]
    rois = propose_rois(ref, image, cfg)
    if not rois:
        raise ConfigError(f"no ROI of {cfg.min_roi_frac:.0%}-{cfg.max_roi_frac:.0%} of the image was found")
    masks = [r.mask for r in rois]
    res.seconds["propose"] += time.perf_counter() - t
    metric = _metric(cfg.metric)
    split = assign_split(ref.id, cfg.split_fractions, cfg.seed)
    img_dir = cfg.out / "images" / ref.id
    records: list[SampleRecord] = []

    def add(sample_id: str, rel_image: str, distortion: dict[str, Any], roi_records: list[RoiRecord]) -> None:
        convs = label_conversations(roi_records, conversation_seed(cfg.seed, sample_id))
        records.append(
            SampleRecord(sample_id, rel_image, str(ref.path), w, h, distortion, roi_records, convs, split)
        )

    if cfg.clean:
        t = time.perf_counter()
        rel = f"images/{ref.id}/clean.png"
        img_dir.mkdir(parents=True, exist_ok=True)
        save_image(cfg.out / rel, image)
        res.seconds["write"] += time.perf_counter() - t
        t = time.perf_counter()
        # A similarity metric of an image with itself is 1: quality 1, importance 0 by definition.
        labels = _label_rois(rois, [1.0] * len(rois), [0.0] * len(rois), None, None, cfg)
        add(
            f"{ref.id}__clean",
            rel,
            {"family": "none", "subtype": None, "setting": 0, "scope": "global"},
            labels,
        )
        res.seconds["label"] += time.perf_counter() - t

    for family in cfg.families:
        for setting in settings_for(ref.id, family, cfg):
            sid = f"{ref.id}__{family}__s{setting:02d}"
            seed = item_seed(cfg.seed, sid)
            t = time.perf_counter()
            subtype = D.choose_subtype(family, sid, cfg.seed)
            out = D.apply_distortion(image, family, setting, subtype, seed=seed)
            scope, dist_img, local_roi = choose_scope(image, out.image, masks, seed, cfg)
            res.seconds["distort"] += time.perf_counter() - t

            t = time.perf_counter()
            item_rois = rois
            if scope == "background":  # the distorted background as one ROI too, as users draw it
                item_rois = [*rois, Roi(~masks[local_roi], name="background", source="background")]
            item_masks = [r.mask for r in item_rois]
            q = fr.roi_quality(image, dist_img, item_masks, metric=metric)
            imp = fr.roi_importance(
                image, dist_img, item_masks, metric=metric, max_side=cfg.importance_max_side
            )
            labels = _label_rois(item_rois, q, imp, family, subtype, cfg)
            res.seconds["label"] += time.perf_counter() - t

            t = time.perf_counter()
            if out.encoded is not None and scope == "global":
                rel = f"images/{ref.id}/{family}_s{setting:02d}{out.ext}"
                atomic_write_bytes(cfg.out / rel, out.encoded)
            else:
                rel = f"images/{ref.id}/{family}_s{setting:02d}.png"
                img_dir.mkdir(parents=True, exist_ok=True)
                save_image(cfg.out / rel, dist_img)
            res.seconds["write"] += time.perf_counter() - t
            distortion = {
                "family": family,
                "subtype": out.subtype,
                "setting": setting,
                "num_settings": D.NUM_SETTINGS,
                "params": out.params,
                "scope": scope,
                # the distorted ROI ("local") or the sharp subject ("background"; then the last ROI
                # is the distorted rest of the photo)
                "local_roi": local_roi,
            }
            add(sid, rel, distortion, labels)

    t = time.perf_counter()
    write_shard(cfg.out / "shards" / f"{ref.id}.jsonl", records)
    res.seconds["write"] += time.perf_counter() - t
    res.records = len(records)
    res.rois = sum(len(r.rois) for r in records)
