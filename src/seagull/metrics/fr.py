"""Full-reference ROI labels as SEAGULL defines them: ROI quality and ROI importance.

* ROI quality: crop the bounding box of the ROI from the distorted and the reference image; in
  the distorted crop, pixels outside the mask are replaced by the reference's; the label is the
  full-reference similarity of the two crops.
* ROI importance: the reference with only the ROI's pixels taken from the distorted image,
  compared with the reference; importance = 1 - similarity (the more the region's distortion
  harms the whole picture, the more important the region).

Metrics are similarities in [0, 1] (1 = identical), computed with torch on CPU in float32 on
batches Bx3xHxW in [0, 1]. See docs/labels.md for the metric choice and the calibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, ImageLoadError, RoiError
from ..imageio import fit_longest_side
from ..registry import Registry

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DEFAULT_FR_METRIC = "haarpsi"
# Upper bound on pixels per metric call; larger batches are split (memory, not results, changes).
MAX_BATCH_PIXELS = 4_000_000


@dataclass(frozen=True)
class FRMetric:
    """A full-reference similarity: ``metric(distorted, reference) -> (B,)`` in [0, 1], higher = better."""

    name: str
    fn: Metric
    min_side: int  # smallest height/width the metric accepts (or is meaningful at)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.clamp(0.0, 1.0)
        y = y.clamp(0.0, 1.0)
        if min(x.shape[-2:]) < self.min_side:
            x, y = upsample_pair(x, y, self.min_side)
        with torch.no_grad():
            return self.fn(x, y).reshape(-1).clamp(0.0, 1.0)


def _piq_haarpsi(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    return piq.haarpsi(x, y, data_range=1.0, reduction="none")


def _piq_mdsi(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    # MDSI is a deviation (0 = identical, about 0.6 for the worst TID2013 images); 1 - MDSI is a
    # monotone similarity, clamped to [0, 1].
    return 1.0 - piq.mdsi(x, y, data_range=1.0, reduction="none")


def _piq_vsi(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    return piq.vsi(x, y, data_range=1.0, reduction="none")


def _piq_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    # SSIM can be slightly negative for anti-correlated images; clamping to 0 keeps it monotone.
    return piq.ssim(x, y, data_range=1.0, reduction="none")


def _piq_ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import piq

    return piq.multi_scale_ssim(x, y, data_range=1.0, reduction="none")


def _topiq_fr() -> Metric:
    try:
        import pyiqa
    except ImportError as e:
        raise ConfigError(
            "FR metric 'topiq_fr' needs the pyiqa package; install it (pip install 'seagull[iqa]') "
            "or choose a piq metric such as 'haarpsi'"
        ) from e
    try:
        model = pyiqa.create_metric("topiq_fr", as_loss=False, device=torch.device("cpu"))
    except Exception as e:  # pyiqa raises many kinds of errors when its weights cannot be fetched
        raise ConfigError(
            "FR metric 'topiq_fr': pyiqa could not load its weights (download them once into pyiqa's "
            f"cache while online, or choose a piq metric such as 'haarpsi'): {e}"
        ) from e
    model.eval()

    def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return model(x, y).float()

    return fn


@dataclass(frozen=True)
class FRMetricInfo:
    """A registered full-reference similarity: how to make it and how to read its number."""

    name: str
    factory: Callable[[], Metric]  # called once, on first use (it may import a package or load weights)
    # Smallest height/width the metric accepts (or is meaningful at); smaller crops are upsampled to it.
    min_side: int
    description: str  # what it responds to, in words
    package: str  # the package that computes it
    higher_is_better: bool = True  # every registered metric is a similarity (1 = identical)
    value_range: tuple[float, float] = (0.0, 1.0)


FR_METRICS: Registry[FRMetricInfo] = Registry("full-reference metric")
for _info in (
    # HaarPSI needs 2**(scales+1) = 16 px after its 2x subsampling, i.e. 32 px.
    FRMetricInfo(
        "haarpsi", lambda: _piq_haarpsi, 32, "structural and edge changes (Haar wavelet phase)", "piq"
    ),
    FRMetricInfo("mdsi", lambda: _piq_mdsi, 16, "gradient and chromaticity deviations (1 - MDSI)", "piq"),
    FRMetricInfo("vsi", lambda: _piq_vsi, 16, "changes weighted by visual saliency", "piq"),
    # SSIM's 11x11 window.
    FRMetricInfo("ssim", lambda: _piq_ssim, 16, "local luminance, contrast and structure changes", "piq"),
    # MS-SSIM: (kernel - 1) * 2**(levels - 1) + 1 = 161 px for the default 11 px window and 5 levels.
    FRMetricInfo("ms_ssim", lambda: _piq_ms_ssim, 161, "structure changes over 5 scales", "piq"),
    FRMetricInfo("topiq_fr", _topiq_fr, 64, "learned perceptual differences (TOPIQ, weights)", "pyiqa"),
):
    FR_METRICS.add(_info)


def list_fr_metrics() -> tuple[str, ...]:
    """Names of the registered full-reference metrics."""
    return FR_METRICS.names()


def get_fr_metric_info(name: str) -> FRMetricInfo:
    """The registry entry (metadata and factory) of the full-reference metric ``name``."""
    return FR_METRICS.get(name)


_CACHE: dict[str, FRMetric] = {}


def get_fr_metric(name: str = DEFAULT_FR_METRIC) -> FRMetric:
    """The full-reference similarity called ``name`` (one of :func:`list_fr_metrics`), ready to call."""
    if name not in _CACHE:
        info = get_fr_metric_info(name)
        _CACHE[name] = FRMetric(name, info.factory(), info.min_side)
    return _CACHE[name]


def upsample_pair(x: torch.Tensor, y: torch.Tensor, min_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Upsample both batches with the same bilinear interpolation so the shorter side is ``min_side``."""
    h, w = x.shape[-2:]
    s = min_side / min(h, w)
    size = (max(min_side, math.ceil(h * s)), max(min_side, math.ceil(w * s)))
    # Interpolation of values in [0, 1] can land a rounding error outside it; piq refuses that.
    return (
        F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0),
        F.interpolate(y, size=size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0),
    )


# --------------------------------------------------------------------------- inputs
def _resolve(metric: str | Metric | None) -> Metric:
    if metric is None:
        return get_fr_metric(DEFAULT_FR_METRIC)
    if isinstance(metric, str):
        return get_fr_metric(metric)
    if not callable(metric):
        raise ConfigError(
            f"metric must be a name from {', '.join(FR_METRICS)} or a callable, got {type(metric).__name__}"
        )
    return metric


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    for name, a in (("reference", reference), ("distorted", distorted)):
        if not isinstance(a, np.ndarray) or a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            shape = getattr(a, "shape", None)
            dtype = getattr(a, "dtype", type(a).__name__)
            raise ImageLoadError(
                f"{name}: expected an HxWx3 uint8 array, got shape {shape} and dtype {dtype}"
            )
    if reference.shape != distorted.shape:
        raise ImageLoadError(
            f"reference {reference.shape} and distorted {distorted.shape} images differ in size; "
            "labels need the distorted image at the reference's size"
        )


def _check_masks(masks: Sequence[np.ndarray], shape: tuple[int, int]) -> list[np.ndarray]:
    out = []
    for i, m in enumerate(masks):
        a = np.asarray(m)
        if a.shape != shape:
            raise RoiError(f"mask {i}: shape {a.shape} does not match the image size {shape} (HxW)")
        a = a.astype(bool, copy=False)
        if not a.any():
            raise RoiError(f"mask {i}: the mask is empty; every ROI needs at least one pixel")
        out.append(a)
    return out


def _to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    arr = np.stack(images).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def _score_batches(metric: Metric, xs: list[np.ndarray], ys: list[np.ndarray]) -> list[float]:
    """metric(x_i, y_i) for equally sized pairs, in as few calls as the pixel budget allows."""
    # Identical pairs are similarity 1 by definition (metrics return 1 up to float rounding).
    scores: list[float] = [1.0] * len(xs)
    todo = [i for i in range(len(xs)) if not np.array_equal(xs[i], ys[i])]
    if not todo:
        return scores
    per = xs[0].shape[0] * xs[0].shape[1]
    step = max(1, MAX_BATCH_PIXELS // per)
    with torch.no_grad():
        for k in range(0, len(todo), step):
            chunk = todo[k : k + step]
            s = metric(_to_tensor([xs[i] for i in chunk]), _to_tensor([ys[i] for i in chunk]))
            for i, v in zip(chunk, s.reshape(-1).tolist(), strict=True):
                scores[i] = float(v)
    return scores


def _check_max_side(max_side: int | None) -> None:
    if max_side is not None and (not isinstance(max_side, (int, np.integer)) or max_side < 1):
        raise ConfigError(f"max_side must be a positive integer or None, got {max_side!r}")


# --------------------------------------------------------------------------- labels
def roi_quality(
    reference: np.ndarray,
    distorted: np.ndarray,
    masks: Sequence[np.ndarray],
    metric: str | Metric | None = None,
    max_side: int | None = None,
) -> list[float]:
    """Full-reference quality in [0, 1] of each ROI (bbox crops; outside the mask both are the reference).

    ``max_side`` optionally downscales crops larger than that (both alike, area interpolation).
    """
    _check_pair(reference, distorted)
    _check_max_side(max_side)
    ms = _check_masks(masks, reference.shape[:2])
    fn = _resolve(metric)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for m in ms:
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        ref_crop = reference[sl]
        dist_crop = np.where(m[sl][..., None], distorted[sl], ref_crop)
        xs.append(fit_longest_side(dist_crop, max_side))
        ys.append(fit_longest_side(ref_crop, max_side))
    # Batch crops of equal size together; keep the caller's order.
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(xs):
        groups.setdefault(x.shape, []).append(i)
    out = [0.0] * len(xs)
    for idx in groups.values():
        for i, s in zip(idx, _score_batches(fn, [xs[i] for i in idx], [ys[i] for i in idx]), strict=True):
            out[i] = s
    return out


def roi_importance(
    reference: np.ndarray,
    distorted: np.ndarray,
    masks: Sequence[np.ndarray],
    metric: str | Metric | None = None,
    max_side: int | None = None,
) -> list[float]:
    """Importance in [0, 1] of each ROI: 1 - metric(reference with the ROI distorted, reference).

    All ROIs of an image are scored in one batch (split only above a pixel budget). ``max_side``
    downscales the composed and the reference image alike (area interpolation) for speed.
    """
    _check_pair(reference, distorted)
    _check_max_side(max_side)
    ms = _check_masks(masks, reference.shape[:2])
    fn = _resolve(metric)
    ref_small = fit_longest_side(reference, max_side)
    replaced = [fit_longest_side(np.where(m[..., None], distorted, reference), max_side) for m in ms]
    if not replaced:
        return []
    sims = _score_batches(fn, replaced, [ref_small] * len(replaced))
    return [min(1.0, max(0.0, 1.0 - s)) for s in sims]
