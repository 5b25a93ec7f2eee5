"""Camera-like degradations: monotone strengths on a real photo, determinism, linear-light behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from seagull import camera as C
from seagull import distortions as D
from seagull.errors import ConfigError
from seagull.metrics import fr
from seagull.metrics.nr import laplacian_variance

VARIANTS = list(C.CAMERA_SUBTYPES)
BLURS = list(C.CAMERA_FAMILIES["blur"])


@pytest.fixture(scope="module")
def photo(shared_data) -> np.ndarray:
    from seagull.imageio import load_image

    img = load_image(shared_data / "kodak" / "images" / "kodim05.png")
    return np.ascontiguousarray(img[::4, ::4])  # 192x128


def _quality(photo: np.ndarray, image: np.ndarray) -> float:
    return fr.roi_quality(photo, image, [np.ones(photo.shape[:2], bool)])[0]


@pytest.mark.parametrize("subtype", VARIANTS)
def test_quality_falls_with_strength_on_a_real_photo(photo, subtype):
    family = C.CAMERA_SUBTYPES[subtype]
    qs = [
        _quality(photo, C.apply_camera(photo, family, s, subtype, seed=1).image)
        for s in (1, 4, 8, 12, 16, 20)
    ]
    assert all(a > b for a, b in zip(qs, qs[1:], strict=False)), qs
    assert qs[0] > 0.8 and qs[-1] < 0.6, qs  # mild but measurable at 1, strong at 20


@pytest.mark.parametrize("subtype", BLURS)
def test_blur_statistic_falls_at_every_setting(photo, subtype):
    lv = [
        laplacian_variance(C.apply_camera(photo, "blur", s, subtype, seed=2).image)
        for s in range(1, D.NUM_SETTINGS + 1)
    ]
    assert lv[0] < laplacian_variance(photo)
    assert all(a > b for a, b in zip(lv, lv[1:], strict=False)), np.round(np.log(lv), 2)


def test_ladders_are_monotone_and_complete():
    for subtype, (name, values) in C.LADDERS.items():
        assert len(values) == D.NUM_SETTINGS
        step = np.diff(values)
        assert (step < 0).all() if name == "peak" else (step > 0).all(), subtype


@pytest.mark.parametrize("subtype", VARIANTS)
def test_deterministic_for_a_seed(photo, subtype):
    family = C.CAMERA_SUBTYPES[subtype]
    a = C.apply_camera(photo, family, 9, subtype, seed=5)
    b = C.apply_camera(photo.copy(), family, 9, subtype, seed=5)
    assert (a.image == b.image).all() and a.params == b.params
    assert a.image.dtype == np.uint8 and a.image.shape == photo.shape
    x = C.apply(subtype, 9, photo, np.random.default_rng(3))
    y = C.apply(subtype, 9, photo, np.random.default_rng(3))
    assert (x == y).all()


@pytest.mark.parametrize("subtype", ["shake", "sensor"])
def test_the_seed_changes_the_random_draws(photo, subtype):
    family = C.CAMERA_SUBTYPES[subtype]
    a = C.apply_camera(photo, family, 9, subtype, seed=5).image
    b = C.apply_camera(photo, family, 9, subtype, seed=6).image
    assert (a != b).any()


def test_defocus_in_linear_light_blooms_clipped_highlights():
    """A blown-out light on a dark scene spreads into a bright disc, as in a real photo; blurring the
    sRGB values (the plain family) leaves a dim grey smudge."""
    img = np.full((41, 41, 3), 20, np.uint8)
    img[18:23, 18:23] = 255
    camera = C.render(img, "lens_defocus", 12, np.random.default_rng(0))[0]
    plain = D.apply_distortion(img, "blur", 12, "defocus").image
    assert camera[20, 20].min() == 255 and plain[20, 20].max() < 250  # the light stays blown out
    assert camera.astype(float).mean() > plain.astype(float).mean() + 5


def test_no_blur_leaves_the_photo_unchanged(photo):
    """Lifting clipped highlights is undone by clipping where nothing else changed."""
    out = C._convolve_light(photo, np.ones((1, 1), np.float32))
    assert (out == photo).all()
    assert (C.linear_to_srgb(C.srgb_to_linear(photo)) == photo).all()


def test_sensor_noise_grows_with_the_signal():
    ramp = np.repeat(np.linspace(10, 245, 256).astype(np.uint8)[None, :, None], 256, axis=0).repeat(3, axis=2)
    noisy = C.render(ramp, "sensor", 10, np.random.default_rng(0))[0]
    diff = C.srgb_to_linear(noisy) - C.srgb_to_linear(ramp)
    dark, bright = diff[:, 10:60].std(), diff[:, 200:250].std()
    assert bright > 1.5 * dark  # shot noise: variance proportional to the light


def test_shake_kernels_are_curved_normalised_and_scale_with_extent():
    bent = 0
    for seed in range(6):
        path = C.shake_trajectory(np.random.default_rng(seed))
        centred = path - path.mean(axis=0)
        minor, major = np.linalg.svd(centred, compute_uv=False)[::-1]
        bent += minor > 0.1 * major  # not a straight line
        small, large = C.shake_kernel(4, path), C.shake_kernel(20, path)
        assert abs(small.sum() - 1) < 1e-5 and abs(large.sum() - 1) < 1e-5
        assert large.shape[0] > small.shape[0]
    assert bent >= 4


def test_apply_by_family_and_jpeg_after_the_rest(photo):
    rng = np.random.default_rng(11)
    raw = C.apply("noise", 6, photo, np.random.default_rng(11))
    assert (raw == C.render(photo, "sensor", 6, rng)[0]).all()
    jpeg = C.apply("noise", 6, photo, np.random.default_rng(11), jpeg_quality=80)
    assert (jpeg == C.camera_jpeg(raw, 80)[0]).all() and (jpeg != raw).any()
    seen = set()
    for seed in range(12):  # "blur" draws one of the three variants from the generator, then renders it
        r = np.random.default_rng(seed)
        subtype = BLURS[int(r.integers(len(BLURS)))]
        out = C.apply("blur", 3, photo, np.random.default_rng(seed))
        assert (out == C.render(photo, subtype, 3, r)[0]).all()
        seen.add(subtype)
    assert seen == set(BLURS)


def test_bad_requests_are_config_errors(photo):
    with pytest.raises(ConfigError, match="unknown camera degradation"):
        C.apply("bokeh", 3, photo, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="not a camera variant"):
        C.apply_camera(photo, "noise", 3, "shake")
    with pytest.raises(ConfigError, match="outside"):
        C.apply("shake", 21, photo, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="JPEG quality"):
        C.camera_jpeg(photo, 0)
