"""Full-reference ROI labels: definitions, monotone ladders, tiny ROIs and input errors."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from seagull.distortions import FAMILIES, apply_distortion
from seagull.errors import ConfigError, ImageLoadError, RoiError
from seagull.metrics.fr import DEFAULT_FR_METRIC, FR_METRICS, get_fr_metric, roi_importance, roi_quality

DATA = Path(os.environ.get("SEAGULL_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
KODAK = DATA / "kodak" / "images"
PIQ_METRICS = [m for m in FR_METRICS if m != "topiq_fr"]
SETTINGS = [1, 5, 10, 15, 20]


def _photos(names: list[str], step: int = 4) -> list[np.ndarray]:
    if not KODAK.is_dir():
        pytest.skip(f"shared data not found at {KODAK} (set SEAGULL_DATA)")
    from seagull.imageio import load_image

    return [np.ascontiguousarray(load_image(KODAK / n)[::step, ::step]) for n in names]


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return _photos(["kodim01.png", "kodim05.png", "kodim14.png", "kodim21.png"])


def _box(shape: tuple[int, ...], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros(shape[:2], bool)
    m[y0:y1, x0:x1] = True
    return m


def test_default_metric_is_known() -> None:
    assert DEFAULT_FR_METRIC in FR_METRICS
    assert {"haarpsi", "mdsi", "vsi", "ssim", "ms_ssim", "topiq_fr"} <= set(FR_METRICS)


@pytest.mark.parametrize("name", PIQ_METRICS)
def test_identical_images_and_tiny_rois(photos: list[np.ndarray], name: str) -> None:
    img = photos[0]
    one = _box(img.shape, 10, 11, 20, 21)
    two = _box(img.shape, 40, 42, 60, 62)
    big = _box(img.shape, 0, img.shape[0], 0, img.shape[1])
    assert roi_quality(img, img, [one, two, big], metric=name) == [1.0, 1.0, 1.0]
    assert roi_importance(img, img, [one, two, big], metric=name) == [0.0, 0.0, 0.0]
    dist = apply_distortion(img, "noise", 20, "impulse").image
    q = roi_quality(img, dist, [one, two, big], metric=name)
    imp = roi_importance(img, dist, [one, two, big], metric=name)
    assert all(0.0 <= v <= 1.0 for v in q + imp)
    assert q[2] < 1.0 and imp[2] > 0.0


def test_metric_callable_range() -> None:
    x = torch.rand(2, 3, 40, 40)
    for name in PIQ_METRICS:
        s = get_fr_metric(name)(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1))
        assert s.shape == (2,) and bool(((s >= 0) & (s <= 1)).all())


def test_outside_mask_is_ignored(photos: list[np.ndarray]) -> None:
    img = photos[1]
    dist = apply_distortion(img, "blur", 20, "gaussian").image
    roi = _box(img.shape, 30, 90, 40, 140)
    only_outside = np.where(roi[..., None], img, dist)
    assert roi_quality(img, only_outside, [roi]) == [1.0]
    assert roi_importance(img, only_outside, [roi]) == [0.0]
    assert roi_quality(img, dist, [roi])[0] < 0.9


@pytest.mark.parametrize("family", list(FAMILIES))
def test_quality_falls_with_setting(photos: list[np.ndarray], family: str) -> None:
    """For every sub-type, the mean ROI quality over real photos and ROIs falls as the setting rises."""
    for subtype in FAMILIES[family]:
        means = []
        for s in SETTINGS:
            vals = []
            for i, img in enumerate(photos[:3]):
                h, w = img.shape[:2]
                # Two equal-size halves: one batched metric call per distorted image.
                rois = [_box(img.shape, 0, h, 0, w // 2), _box(img.shape, 0, h, w - w // 2, w)]
                dist = apply_distortion(img, family, s, subtype, seed=i).image
                vals += roi_quality(img, dist, rois)
            means.append(float(np.mean(vals)))
        assert all(b < a for a, b in zip(means, means[1:], strict=False)), (subtype, means)
        assert means[0] < 0.99, f"{subtype}: setting 1 should be visible, mean quality {means[0]:.3f}"


def test_importance_grows_with_area(photos: list[np.ndarray]) -> None:
    img = photos[2]
    h, w = img.shape[:2]
    dist = apply_distortion(img, "noise", 12, "gaussian").image
    cy, cx = h // 2, w // 2
    masks = [_box(img.shape, cy - r, cy + r, cx - r, cx + r) for r in (4, 10, 25, 50)]
    masks.append(_box(img.shape, 0, h, 0, w))
    imp = roi_importance(img, dist, masks)
    assert all(b > a for a, b in zip(imp, imp[1:], strict=False)), imp
    # One batched call gives what separate calls give.
    single = [roi_importance(img, dist, [m])[0] for m in masks]
    assert np.allclose(imp, single, atol=1e-5)


def test_max_side_working_resolution(photos: list[np.ndarray]) -> None:
    img = photos[3]
    h, w = img.shape[:2]
    dist = apply_distortion(img, "blur", 10, "defocus").image
    masks = [_box(img.shape, 0, h // 2, 0, w // 2), _box(img.shape, 0, h, 0, w)]
    full = roi_importance(img, dist, masks)
    small = roi_importance(img, dist, masks, max_side=96)
    assert small[0] < small[1] and full[0] < full[1]
    with pytest.raises(ConfigError, match="max_side"):
        roi_importance(img, dist, masks, max_side=0)


def test_bad_inputs(photos: list[np.ndarray]) -> None:
    img = photos[0]
    roi = _box(img.shape, 0, 5, 0, 5)
    with pytest.raises(ConfigError, match="unknown full-reference metric"):
        get_fr_metric("psnr-ish")
    with pytest.raises(RoiError, match="empty"):
        roi_quality(img, img, [np.zeros(img.shape[:2], bool)])
    with pytest.raises(RoiError, match="does not match"):
        roi_importance(img, img, [np.ones((4, 4), bool)])
    with pytest.raises(ImageLoadError, match="differ in size"):
        roi_quality(img, img[:-1], [roi])
    with pytest.raises(ImageLoadError, match="uint8"):
        roi_quality(img.astype(np.float32), img, [roi])
    assert roi_quality(img, img, []) == [] and roi_importance(img, img, []) == []


@pytest.mark.skipif(importlib.util.find_spec("pyiqa") is not None, reason="pyiqa is installed here")
def test_topiq_fr_without_pyiqa_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="pyiqa"):
        get_fr_metric("topiq_fr")
