"""ROI proposers: human segmentations (BSDS500, COCO), a weight-free automatic proposer, point and
box prompts without weights, and an adapter for a user-supplied SAM checkpoint that encodes each
photo once for all its prompts.

The automatic proposer follows the paper's two routes: *object-level* regions from a coarse
graph segmentation and *component-level* regions from a fine one (SEAGULL used SEEM+SAM boxes
and SAM on random points; no segmentation weights ship offline, so the default is weight-free).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ConfigError, ModelError, RoiError
from .imageio import fit_longest_side, image_digest
from .roi import Roi, box_to_mask, iou, rle_to_mask


@dataclass(frozen=True)
class RegionFilter:
    """Keep regions whose area is within [min_frac, max_frac] of the image; drop near-duplicates."""

    min_frac: float = 0.01
    max_frac: float = 0.7
    max_iou: float = 0.8

    def __call__(self, rois: Sequence[Roi]) -> list[Roi]:
        if not rois:
            return []
        total = rois[0].mask.size
        kept: list[Roi] = []
        for r in rois:
            frac = r.area / total
            if not (self.min_frac <= frac <= self.max_frac):
                continue
            if any(iou(r.mask, k.mask) > self.max_iou for k in kept):
                continue
            kept.append(r)
        return kept


def _label_map_regions(labels: np.ndarray, source: str) -> list[Roi]:
    rois = []
    for v in np.unique(labels):
        m = labels == v
        if m.any():
            rois.append(Roi(m, f"{source}:{int(v)}", source))
    rois.sort(key=lambda r: -r.area)
    return rois


# --------------------------------------------------------------------------- human segmentations


def bsds_regions(gt_path: str | Path) -> list[Roi]:
    """Regions of a BSDS500 ground-truth ``.mat``: the coarsest annotation gives object-level
    regions, the finest gives component-level regions (sources ``bsds:object``/``bsds:component``)."""
    from scipy.io import loadmat

    p = Path(gt_path)
    if not p.is_file():
        raise RoiError(f"BSDS ground truth {p} does not exist")
    cells = loadmat(str(p))["groundTruth"][0]
    segs = [np.asarray(c["Segmentation"][0, 0]) for c in cells]
    counts = [len(np.unique(s)) for s in segs]
    coarse, fine = segs[int(np.argmin(counts))], segs[int(np.argmax(counts))]
    out = _label_map_regions(coarse, "bsds:object")
    if fine is not coarse:
        out += _label_map_regions(fine, "bsds:component")
    return out


@lru_cache(maxsize=4)
def _coco_index(annotation_file: str) -> tuple[dict[str, dict], dict[int, list[dict]]]:
    data = json.loads(Path(annotation_file).read_text(encoding="utf-8"))
    by_name = {im["file_name"]: im for im in data["images"]}
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    return by_name, by_image


def coco_regions(annotation_file: str | Path, file_name: str) -> list[Roi]:
    """Instance masks of one COCO image (non-crowd polygons and crowd RLEs), source ``coco:object``."""
    from pycocotools import mask as mask_utils

    by_name, by_image = _coco_index(str(annotation_file))
    im = by_name.get(Path(file_name).name)
    if im is None:
        raise RoiError(f"{file_name} has no entry in COCO annotations {annotation_file}")
    h, w = im["height"], im["width"]
    rois = []
    for a in by_image.get(im["id"], []):
        seg = a["segmentation"]
        if isinstance(seg, list):
            m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, h, w))).astype(bool)
        else:
            m = rle_to_mask(seg, f"coco:{a['id']}")
        if m.any():
            rois.append(Roi(m, f"coco:{a['id']}", "coco:object"))
    rois.sort(key=lambda r: -r.area)
    return rois


# --------------------------------------------------------------------------- automatic, weight-free

# Felzenszwalb scales per level at a 512-pixel working size (larger scale = larger segments).
_AUTO_LEVELS = {"object": (600.0, 0.02), "component": (120.0, 0.004)}


def auto_regions(image: np.ndarray, levels: Sequence[str] = ("object", "component")) -> list[Roi]:
    """Weight-free object- and component-level regions from graph segmentation at two scales."""
    from skimage.segmentation import felzenszwalb

    h, w = image.shape[:2]
    small = fit_longest_side(image, 512)
    out: list[Roi] = []
    for level in levels:
        if level not in _AUTO_LEVELS:
            raise ConfigError(f"unknown proposal level {level!r}; use 'object' or 'component'")
        scale, min_frac = _AUTO_LEVELS[level]
        labels = felzenszwalb(
            small, scale=scale, sigma=0.8, min_size=max(16, int(min_frac * small.shape[0] * small.shape[1]))
        )
        if labels.shape != (h, w):
            labels = cv2.resize(labels.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
        out += _label_map_regions(labels, f"auto:{level}")
    return out


def every_region(image: np.ndarray, max_regions: int = 24) -> list[Roi]:
    """Automatic object-level regions (component-level where objects are few), largest first."""
    rois = RegionFilter(min_frac=0.01, max_frac=0.9)(auto_regions(image, ("object",)))
    if len(rois) < 4:
        rois = RegionFilter(min_frac=0.005, max_frac=0.9)(rois + auto_regions(image, ("component",)))
    rois = rois[:max_regions]
    return [Roi(r.mask, f"region{i + 1}", r.source) for i, r in enumerate(rois)]


def superpixel_regions(image: np.ndarray, count: int = 24) -> list[Roi]:
    """About ``count`` compact SLIC superpixels covering the photo once: regions of even size that
    follow edges (so they localise damage like tiles, but do not cut across objects)."""
    from skimage.segmentation import slic

    if count < 1:
        raise RoiError(f"superpixel count must be at least 1, got {count}")
    labels = slic(image, n_segments=count, compactness=10.0, start_label=0, channel_axis=-1)
    rois = _label_map_regions(labels, "superpixel")
    return [Roi(r.mask, f"superpixel{i + 1}", r.source) for i, r in enumerate(rois)]


def point_to_mask(image: np.ndarray, point: tuple[float, float], min_frac: float = 0.005) -> np.ndarray:
    """Weight-free point prompt: the object-level segment under the point; if that is tiny, the
    component-level segments are grown around it. Returns a bool mask at image size."""
    h, w = image.shape[:2]
    x, y = int(round(point[0])), int(round(point[1]))
    if not (0 <= x < w and 0 <= y < h):
        raise RoiError(f"point ({point[0]}, {point[1]}) lies outside the {w}x{h} image")
    for level in ("object", "component"):
        for r in auto_regions(image, (level,)):
            if r.mask[y, x] and r.area >= min_frac * h * w:
                return r.mask
    # Fall back to a box around the point of min_frac area.
    side = max(3, int(np.sqrt(min_frac * h * w)))
    return box_to_mask((x - side / 2, y - side / 2, side, side), h, w, "xywh", "point")


def box_to_object_mask(image: np.ndarray, box: Sequence[float], iterations: int = 4) -> np.ndarray:
    """Weight-free box prompt: GrabCut seeded by the box (``x, y, w, h``); falls back to the box itself."""
    h, w = image.shape[:2]
    rect_mask = box_to_mask(box, h, w, "xywh", "box")
    x0, y0, bw, bh = (int(v) for v in box)
    if bw < 8 or bh < 8:
        return rect_mask
    gc_mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(
        cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
        gc_mask,
        (x0, y0, bw, bh),
        bgd,
        fgd,
        iterations,
        cv2.GC_INIT_WITH_RECT,
    )
    fg = np.isin(gc_mask, (cv2.GC_FGD, cv2.GC_PR_FGD)) & rect_mask
    return fg if fg.sum() >= 0.05 * rect_mask.sum() else rect_mask


# --------------------------------------------------------------------------- SAM adapter
DEFAULT_CACHED_IMAGES = 4


class CachedImagePredictor:
    """A segment-anything ``SamPredictor`` that encodes each distinct image once.

    SAM's pattern is one image encoding, many prompts. ``set_image`` looks the pixels' digest up in a
    small LRU of image embeddings (``max_images`` entries, about 4 MB each for ``vit_b``): on a hit it
    restores the predictor's state instead of running the image encoder again, so several points and
    boxes on one photo, or a photo sent again, encode once. Not thread-safe (nor is ``SamPredictor``).
    """

    STATE = ("features", "original_size", "input_size")  # what SamPredictor.set_image computes

    def __init__(self, predictor: Any, max_images: int = DEFAULT_CACHED_IMAGES) -> None:
        if max_images < 1:
            raise ConfigError(f"the SAM embedding cache needs at least one image, got {max_images}")
        self.predictor = predictor
        self.max_images = int(max_images)
        self._states: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self.encodes = 0  # images run through the encoder
        self.hits = 0  # set_image calls answered from the cache

    def set_image(self, image: np.ndarray) -> None:
        key = image_digest(image)
        state = self._states.get(key)
        if state is None:
            self.predictor.set_image(image)
            self.encodes += 1
            self._states[key] = tuple(getattr(self.predictor, a) for a in self.STATE)
            while len(self._states) > self.max_images:
                self._states.popitem(last=False)
            return
        self.hits += 1
        self._states.move_to_end(key)
        for a, v in zip(self.STATE, state, strict=True):
            setattr(self.predictor, a, v)
        self.predictor.is_image_set = True

    def predict(self, **prompts: Any) -> Any:
        return self.predictor.predict(**prompts)


def load_sam_model(checkpoint: str | Path | None, model_type: str = "vit_b") -> Any:
    """A segment-anything model of ``model_type`` with the weights of ``checkpoint`` (read weights-only);
    ``None`` leaves it randomly initialised (only useful to test the plumbing). Nothing is downloaded."""
    try:
        from segment_anything import sam_model_registry
    except ImportError as e:
        raise ConfigError("SAM needs the 'segment-anything' package: pip install 'seagull[sam]'") from e
    if model_type not in sam_model_registry:
        raise ConfigError(f"unknown SAM model type {model_type!r}; use one of {sorted(sam_model_registry)}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ConfigError(
            f"SAM checkpoint {checkpoint} does not exist; download it yourself and pass its path"
        )
    state = None if checkpoint is None else _read_sam_file(Path(checkpoint), model_type)
    model = sam_model_registry[model_type](checkpoint=None)
    if state is not None:
        _check_sam_fit(Path(checkpoint), state, model, model_type)
        model.load_state_dict(state)
    return model


def _sam_files(model_type: str) -> str:
    return f"the official SAM {model_type} checkpoint (sam_{model_type}_*.pth) or a .safetensors copy of it"


def _read_sam_file(path: Path, model_type: str) -> dict[str, Any]:
    """The tensors of a SAM checkpoint, read without running pickled code.

    (This layer may not import :mod:`seagull.model.weights`, the loader of the model's own files; the same
    two safe formats are accepted here.)"""
    import torch

    what = _sam_files(model_type)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch and safetensors raise several types for bad files
        # the line that says what was refused, not PyTorch's advice to load it with weights_only=False
        noise = ("Weights only load failed", "Check the documentation", "Please file an issue")
        lines = [x.split("WeightsUnpickler error:")[-1].strip() for x in str(e).splitlines()]
        reason = next(
            (f"{type(e).__name__}: {x}" for x in lines if x and not x.startswith(noise)), type(e).__name__
        )
        raise ModelError(
            f"SAM checkpoint {path} is not a safe weights file (a safetensors file, or a PyTorch file of plain "
            f"tensors that loads with weights_only=True): {reason}; pass {what}"
        ) from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"SAM checkpoint {path} is not a state dict of tensors; pass {what}")
    return state


def _check_sam_fit(path: Path, state: dict[str, Any], model: Any, model_type: str) -> None:
    own = model.state_dict()
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if wrong or missing or unexpected:
        raise ModelError(
            f"SAM checkpoint {path} does not fit SAM {model_type}: {len(wrong)} tensors of another shape "
            f"{wrong[:3]}, {len(missing)} missing {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}; "
            f"pass {_sam_files(model_type)}, or the --sam-type it was made for"
        )


class SamProposer:
    """Segment Anything with a user-supplied checkpoint (``segment-anything`` package).

    ``checkpoint=None`` builds a randomly initialised model, which is only useful to test the
    plumbing; ``model`` uses an already built SAM instead. Point and box prompts share one image
    encoding per photo (:class:`CachedImagePredictor`, ``cache_images`` photos kept).
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        model_type: str = "vit_b",
        device: str = "cpu",
        model: Any = None,
        cache_images: int = DEFAULT_CACHED_IMAGES,
    ) -> None:
        sam = model if model is not None else load_sam_model(checkpoint, model_type)
        from segment_anything import SamAutomaticMaskGenerator, SamPredictor

        self.model = sam.to(device).eval()
        self.predictor = CachedImagePredictor(SamPredictor(self.model), cache_images)
        self._amg_cls = SamAutomaticMaskGenerator

    def point(self, image: np.ndarray, point: tuple[float, float]) -> np.ndarray:
        self.predictor.set_image(image)
        masks, scores, _ = self.predictor.predict(point_coords=np.array([point]), point_labels=np.array([1]))
        return masks[int(np.argmax(scores))].astype(bool)

    def box(self, image: np.ndarray, box_xywh: Sequence[float]) -> np.ndarray:
        x, y, w, h = box_xywh
        self.predictor.set_image(image)
        masks, scores, _ = self.predictor.predict(box=np.array([x, y, x + w, y + h]), multimask_output=False)
        return masks[0].astype(bool)

    def every(self, image: np.ndarray, points_per_side: int = 16) -> list[Roi]:
        amg = self._amg_cls(self.model, points_per_side=points_per_side)
        return [
            Roi(r["segmentation"], f"sam:{i}", "sam")
            for i, r in enumerate(amg.generate(image))
            if r["area"] > 0
        ]
