"""Low-level ROI statistics respond to the distortion they are meant to measure, inside the mask only."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from seagull.imageio import load_image
from seagull.model.lowlevel import NAMES, roi_context_statistics, roi_statistics


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from pathlib import Path

    return load_image(Path(__file__).resolve().parents[1] / "examples" / "coffee.jpg")


def _stats(img: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    x = torch.from_numpy(img.copy()).permute(2, 0, 1).float() / 255
    m = torch.ones(1, *img.shape[:2]) if mask is None else torch.from_numpy(mask).float()[None]
    return dict(zip(NAMES, roi_statistics(x, m)[0].tolist(), strict=True))


def test_noise_blur_jpeg_and_exposure_move_their_statistics(photo: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    clean = _stats(photo)
    noisy = _stats(np.clip(photo + rng.normal(0, 12, photo.shape), 0, 255).astype(np.uint8))
    blurred = _stats(np.asarray(Image.fromarray(photo).resize((150, 100)).resize(photo.shape[1::-1])))
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=8)
    jpeg = _stats(np.asarray(Image.open(buf).convert("RGB")))
    dark = _stats((photo * 0.3).astype(np.uint8))
    assert noisy["log_noise_sigma"] > clean["log_noise_sigma"] + 0.5
    assert blurred["log_laplacian_var"] < clean["log_laplacian_var"] - 1.0
    assert jpeg["blockiness_h"] > clean["blockiness_h"] + 0.1
    assert dark["luma_mean"] < clean["luma_mean"] * 0.5 and dark["dark_fraction"] > clean["dark_fraction"]
    gray = _stats(np.repeat(photo.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8))
    assert gray["colourfulness"] < 0.01 < clean["colourfulness"]


def test_only_pixels_inside_the_mask_count(photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    left = np.zeros((h, w), bool)
    left[:, : w // 2] = True
    noisy = photo.copy()
    rng = np.random.default_rng(0)
    noisy[:, w // 2 :] = np.clip(noisy[:, w // 2 :] + rng.normal(0, 20, noisy[:, w // 2 :].shape), 0, 255)
    a, b = _stats(photo, left), _stats(noisy, left)
    # the mask's edge column sees one noisy neighbour through the 3x3 kernels; nothing more
    assert b["log_noise_sigma"] == pytest.approx(a["log_noise_sigma"], abs=0.05)
    assert _stats(noisy, ~left)["log_noise_sigma"] > a["log_noise_sigma"] + 0.5


def test_empty_mask_falls_back_to_the_whole_crop(photo: np.ndarray) -> None:
    empty = np.zeros(photo.shape[:2], bool)
    assert _stats(photo, empty) == pytest.approx(_stats(photo))


def test_context_statistics_are_the_roi_and_its_difference_to_the_image(photo: np.ndarray) -> None:
    x = torch.from_numpy(photo.copy()).permute(2, 0, 1).float() / 255
    m = torch.zeros(2, *photo.shape[:2])
    m[0, :100, :100] = 1
    m[1] = 1
    out = roi_context_statistics(x, m)
    assert out.shape == (2, 2 * len(NAMES))
    assert torch.allclose(out[1, len(NAMES) :], torch.zeros(len(NAMES)), atol=1e-3)
    assert torch.allclose(out[0, : len(NAMES)] - out[1, : len(NAMES)], out[0, len(NAMES) :], atol=1e-3)


def test_rest_statistics_see_a_sharp_subject_on_a_blurred_background(photo: np.ndarray) -> None:
    """Blur all but a small subject: the subject's sharpness relative to the rest is far above its
    sharpness relative to the whole image only when the subject is large; relative to the rest it is
    always the full contrast."""
    import cv2

    h, w = photo.shape[:2]
    subject = np.zeros((h, w), bool)
    subject[h // 8 : 7 * h // 8, w // 8 : 7 * w // 8] = True  # a subject filling most of the photo
    blurred = cv2.GaussianBlur(photo, (0, 0), 3)
    img = np.where(subject[..., None], photo, blurred)
    x = torch.from_numpy(img.copy()).permute(2, 0, 1).float() / 255
    out = roi_context_statistics(x, torch.from_numpy(subject).float()[None], rest=True)
    assert out.shape == (1, 3 * len(NAMES))
    k = NAMES.index("log_laplacian_var")
    rel_whole, rel_rest = float(out[0, len(NAMES) + k]), float(out[0, 2 * len(NAMES) + k])
    assert rel_rest > 1.0 and rel_rest > 3 * rel_whole
    # the rest block is the ROI minus the statistics of its complement
    comp = roi_statistics(x, torch.from_numpy(~subject).float()[None])[0]
    assert torch.allclose(out[0, 2 * len(NAMES) :], out[0, : len(NAMES)] - comp, atol=1e-3)


def test_a_roi_covering_the_photo_compares_with_the_whole_image(photo: np.ndarray) -> None:
    x = torch.from_numpy(photo.copy()).permute(2, 0, 1).float() / 255
    out = roi_context_statistics(x, torch.ones(1, *photo.shape[:2]), rest=True)
    assert torch.isfinite(out).all() and torch.allclose(
        out[0, len(NAMES) :], torch.zeros(2 * len(NAMES)), atol=1e-3
    )


def test_whole_image_rois_share_one_pass_and_equal_the_mask_by_mask_statistics(photo: np.ndarray) -> None:
    """Covering ROIs and empty rests are the whole image's row, computed once: the result equals the
    statistics of every mask (ROI, whole image, rest) computed one by one."""
    x = torch.from_numpy(photo.copy()).permute(2, 0, 1).float() / 255
    h, w = photo.shape[:2]
    box = torch.zeros(h, w)
    box[10:90, 20:140] = 1
    nearly = torch.ones(h, w)
    nearly[0, :3] = 0  # leaves 3 pixels out: a partial ROI whose rest is too small to compare with
    masks = torch.stack([torch.ones(h, w), box, nearly, torch.ones(h, w)])
    got = roi_context_statistics(x, masks, rest=True)
    whole = roi_statistics(x, torch.ones(1, h, w))[0]
    for i, m in enumerate(masks):
        roi = roi_statistics(x, m[None])[0]
        outside = 1 - m
        rest = roi_statistics(x, outside[None])[0] if outside.sum() >= 16 else whole
        want = torch.cat([roi, roi - whole, roi - rest])
        assert torch.allclose(got[i], want, atol=1e-4), i  # matrix products of other shapes round differently
    assert torch.equal(got[0], got[3])
