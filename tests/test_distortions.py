"""Distortion families: determinism, strength ladders, masks and input errors."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from seagull import distortions as D
from seagull.distortions import (
    FAMILIES,
    NUM_SETTINGS,
    apply_distortion,
    apply_in_mask,
    choose_subtype,
    setting_ladder,
)
from seagull.errors import ConfigError, ImageLoadError, RoiError
from seagull.labels import DISTORTION_TYPES

DATA = Path(os.environ.get("SEAGULL_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
KODAK = DATA / "kodak" / "images"
ALL = [(f, s) for f, subs in FAMILIES.items() for s in subs]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    if not KODAK.is_dir():
        pytest.skip(f"shared data not found at {KODAK} (set SEAGULL_DATA)")
    from seagull.imageio import load_image

    img = load_image(KODAK / "kodim05.png")
    return np.ascontiguousarray(img[::4, ::4])  # 192x128, plenty for these checks


def test_families_follow_schema() -> None:
    assert tuple(FAMILIES) == DISTORTION_TYPES
    assert NUM_SETTINGS == 20
    assert all(len(s) >= 2 for s in FAMILIES.values())


@pytest.mark.parametrize(("family", "subtype"), ALL)
def test_deterministic_and_well_formed(photo: np.ndarray, family: str, subtype: str) -> None:
    a = apply_distortion(photo, family, 7, subtype, seed=3)
    b = apply_distortion(photo.copy(), family, 7, subtype, seed=3)
    assert a.image.dtype == np.uint8 and a.image.shape == photo.shape
    assert a.image.tobytes() == b.image.tobytes()
    assert a.params == b.params and a.encoded == b.encoded
    assert (a.family, a.subtype, a.setting) == (family, subtype, 7)
    assert not np.array_equal(a.image, photo), "setting 7 must change the image"
    if family == "compression":
        assert a.encoded and a.ext in (".jpg", ".webp", ".jp2")
        with Image.open(io.BytesIO(a.encoded)) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), a.image)
    else:
        assert a.encoded is None and a.ext == ".png"


def test_seed_changes_random_draws(photo: np.ndarray) -> None:
    a = apply_distortion(photo, "noise", 10, "gaussian", seed=0).image
    b = apply_distortion(photo, "noise", 10, "gaussian", seed=1).image
    assert not np.array_equal(a, b)
    ma = apply_distortion(photo, "blur", 10, "motion", seed=0).params["angle"]
    mb = apply_distortion(photo, "blur", 10, "motion", seed=5).params["angle"]
    assert ma != mb


@pytest.mark.parametrize(("family", "subtype"), ALL)
def test_strength_parameter_is_monotone(photo: np.ndarray, family: str, subtype: str) -> None:
    small = photo[:32, :32].copy()
    values = []
    for s in range(1, NUM_SETTINGS + 1):
        p = apply_distortion(small, family, s, subtype).params
        key = next(
            k
            for k in ("sigma", "length", "radius", "amount", "shift", "quality", "rate", "ev", "peak", "prob")
            if k in p
        )
        values.append(abs(float(p[key])))
    diffs = np.diff(values)
    assert (diffs > 0).all() or (diffs < 0).all(), values


def test_setting_ladder() -> None:
    assert setting_ladder(5) == [4, 8, 12, 16, 20]
    assert setting_ladder(20) == list(range(1, 21))
    assert setting_ladder(1) == [20]
    for n in range(1, 21):
        lad = setting_ladder(n)
        assert len(set(lad)) == n and lad[-1] == 20 and lad == sorted(lad) and lad[0] >= 1
    for bad in (0, 21, 2.5, True):
        with pytest.raises(ConfigError):
            setting_ladder(bad)
    # A lower strongest setting spreads the same count over the milder part of the ladder.
    assert setting_ladder(5, strongest=10) == [2, 4, 6, 8, 10]
    assert setting_ladder(10, strongest=10) == list(range(1, 11))
    for n, strongest in ((11, 10), (3, 0), (3, 21)):
        with pytest.raises(ConfigError):
            setting_ladder(n, strongest)


def test_choose_subtype() -> None:
    assert choose_subtype("blur", "img1", 0) == choose_subtype("blur", "img1", 0)
    seen = {choose_subtype("noise", f"img{i}", 0) for i in range(60)}
    assert seen == set(FAMILIES["noise"])
    with pytest.raises(ConfigError, match="family"):
        choose_subtype("haze", "x")


def test_default_subtype_is_deterministic(photo: np.ndarray) -> None:
    a = apply_distortion(photo, "blur", 3, seed=11)
    b = apply_distortion(photo, "blur", 3, seed=11)
    assert a.subtype == b.subtype and np.array_equal(a.image, b.image)


def test_apply_in_mask(photo: np.ndarray) -> None:
    dist = apply_distortion(photo, "noise", 15, "gaussian").image
    mask = np.zeros(photo.shape[:2], bool)
    mask[20:80, 30:120] = True
    out = apply_in_mask(photo, dist, mask)
    assert np.array_equal(out[~mask], photo[~mask]) and np.array_equal(out[mask], dist[mask])
    soft = apply_in_mask(photo, dist, mask, feather=6.0)
    assert np.array_equal(soft[~mask], photo[~mask])
    assert np.array_equal(soft[40:60, 50:100], dist[40:60, 50:100])  # deeper than 6 px inside
    edge = np.abs(soft[20, 50:100].astype(int) - photo[20, 50:100].astype(int)).mean()
    full = np.abs(dist[20, 50:100].astype(int) - photo[20, 50:100].astype(int)).mean()
    assert edge < full


def test_bad_inputs(photo: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="family"):
        apply_distortion(photo, "haze", 1)
    with pytest.raises(ConfigError, match="sub-type"):
        apply_distortion(photo, "blur", 1, "radial")
    for s in (0, 21, 1.5, True):
        with pytest.raises(ConfigError, match="setting"):
            apply_distortion(photo, "blur", s)
    with pytest.raises(ImageLoadError, match="uint8"):
        apply_distortion(photo.astype(np.float32), "blur", 1)
    with pytest.raises(ImageLoadError, match="HxWx3"):
        apply_distortion(photo[..., 0], "blur", 1)
    with pytest.raises(ImageLoadError):
        apply_distortion(photo.tolist(), "blur", 1)  # type: ignore[arg-type]
    with pytest.raises(RoiError, match="mask"):
        apply_in_mask(photo, photo, np.ones((5, 5), bool))
    with pytest.raises(ConfigError, match="feather"):
        apply_in_mask(photo, photo, np.ones(photo.shape[:2], bool), feather=-1)


@pytest.mark.skipif(not features.check("jpg_2000"), reason="PIL built without JPEG 2000")
def test_webp_fallback_is_jpeg2000(photo: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D, "_webp_available", lambda: False)
    weak = apply_distortion(photo, "compression", 1, "webp")
    strong = apply_distortion(photo, "compression", 20, "webp")
    assert weak.ext == ".jp2" and weak.params["codec"] == "jpeg2000" and weak.encoded
    assert len(strong.encoded or b"") < len(weak.encoded or b"")
