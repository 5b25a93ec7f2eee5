"""The six SEAGULL distortion families, each with sub-types and 20 settings ordered by strength.

Every sub-type has one strength parameter that moves monotonically from a mild but visible value
(setting 1) to a strong one (setting 20), spaced geometrically so that consecutive settings are
roughly equal steps in perceived strength. Everything is deterministic for
``(image, family, setting, subtype, seed)``: random draws (noise, motion angle, colour-cast
direction) come from a generator seeded by a hash of those values.

Only numpy, OpenCV and PIL are used. Compression returns the codec's bytes as well as the decoded
image, so a dataset can store the codec output unchanged.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, features

from .errors import ConfigError, ImageLoadError, RoiError
from .schema import DISTORTION_TYPES

NUM_SETTINGS: int = 20

FAMILIES: dict[str, tuple[str, ...]] = {
    "blur": ("gaussian", "motion", "defocus"),
    "colorfulness": ("saturation_down", "saturation_up", "color_shift"),
    "compression": ("jpeg", "webp"),
    "contrast": ("contrast_down", "contrast_up"),
    "exposure": ("under", "over"),
    "noise": ("gaussian", "shot", "impulse"),
}
assert tuple(FAMILIES) == DISTORTION_TYPES  # the schema owns the family names and their order

Params = dict[str, "float | int | str"]


@dataclass
class DistortionResult:
    """A distorted image and how it was made."""

    image: np.ndarray  # HxWx3 uint8, decoded for codecs
    family: str
    subtype: str
    setting: int
    params: Params
    encoded: bytes | None  # codec output for compression, else None
    ext: str  # ".png" for lossless storage, or the codec's extension


# --------------------------------------------------------------------------- strength ladders
# (parameter name, value at setting 1, value at setting NUM_SETTINGS); values in between are
# geometric, i.e. a constant ratio per setting. Ranges were calibrated on Kodak photos with the
# default full-reference metric (see docs/labels.md).
_LADDERS: dict[tuple[str, str], tuple[str, float, float]] = {
    ("blur", "gaussian"): ("sigma", 0.7, 9.0),
    ("blur", "motion"): ("length", 3.0, 45.0),
    ("blur", "defocus"): ("radius", 1.2, 14.0),
    ("colorfulness", "saturation_down"): ("amount", 0.25, 1.0),
    ("colorfulness", "saturation_up"): ("amount", 0.4, 4.0),
    ("colorfulness", "color_shift"): ("shift", 0.06, 0.9),
    ("compression", "jpeg"): ("quality", 50.0, 2.0),
    ("compression", "webp"): ("quality", 40.0, 0.0),
    ("compression", "jpeg2000"): ("rate", 30.0, 500.0),
    ("contrast", "contrast_down"): ("amount", 0.2, 0.9),
    ("contrast", "contrast_up"): ("amount", 0.25, 3.0),
    ("exposure", "under"): ("ev", 0.35, 3.5),
    ("exposure", "over"): ("ev", 0.3, 3.0),
    ("noise", "gaussian"): ("sigma", 3.0, 60.0),
    ("noise", "shot"): ("peak", 600.0, 6.0),
    ("noise", "impulse"): ("prob", 0.003, 0.3),
}


def _ladder_value(lo: float, hi: float, setting: int) -> float:
    """Geometric interpolation from ``lo`` (setting 1) to ``hi`` (setting NUM_SETTINGS)."""
    t = (setting - 1) / (NUM_SETTINGS - 1)
    if lo > 0 and hi > 0:
        return float(lo * (hi / lo) ** t)
    return float(lo + (hi - lo) * t)  # a ladder through zero cannot be geometric


def _webp_available() -> bool:
    return bool(features.check("webp"))


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# --------------------------------------------------------------------------- input checks
def _check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ImageLoadError(f"{name}: expected a numpy array (HxWx3 uint8), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageLoadError(
            f"{name}: expected an HxWx3 RGB array, got shape {image.shape}; "
            "convert it with seagull.imageio.array_to_rgb8"
        )
    if image.dtype != np.uint8:
        raise ImageLoadError(
            f"{name}: expected dtype uint8, got {image.dtype}; convert it with seagull.imageio.array_to_rgb8"
        )
    return np.ascontiguousarray(image)


def _check_family(family: str) -> tuple[str, ...]:
    if family not in FAMILIES:
        raise ConfigError(f"unknown distortion family {family!r}; choose one of {tuple(FAMILIES)}")
    return FAMILIES[family]


def _check_setting(setting: int) -> int:
    if isinstance(setting, bool) or not isinstance(setting, (int, np.integer)):
        raise ConfigError(f"distortion setting must be an integer in 1..{NUM_SETTINGS}, got {setting!r}")
    if not 1 <= int(setting) <= NUM_SETTINGS:
        raise ConfigError(f"distortion setting {setting} is outside 1..{NUM_SETTINGS}")
    return int(setting)


# --------------------------------------------------------------------------- helpers
_LUMA_W = np.array([0.299, 0.587, 0.114])
_GAMMA = 2.2  # display gamma used to go to (approximately) linear light and back


def _luma(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float32)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _apply_lut(img: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return cv2.LUT(img, _to_uint8(lut).reshape(256, 1))


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    out = cv2.filter2D(
        img.astype(np.float32), -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101
    )
    return _to_uint8(out)


# --------------------------------------------------------------------------- blur
def _gaussian_blur(img: np.ndarray, sigma: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    out = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return out, {"sigma": round(sigma, 4)}


def _motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised line of ``length`` pixels at ``angle_deg``, drawn anti-aliased at 4x and pooled."""
    size = int(math.ceil(length)) | 1
    up = 4
    big = np.zeros((size * up, size * up), np.float32)
    c = (size * up - 1) / 2.0
    dx = math.cos(math.radians(angle_deg)) * (length * up - 1) / 2.0
    dy = -math.sin(math.radians(angle_deg)) * (length * up - 1) / 2.0
    shift = 4  # sub-pixel precision bits of cv2.line
    p0 = (int(round((c - dx) * (1 << shift))), int(round((c - dy) * (1 << shift))))
    p1 = (int(round((c + dx) * (1 << shift))), int(round((c + dy) * (1 << shift))))
    cv2.line(big, p0, p1, 1.0, thickness=up, lineType=cv2.LINE_AA, shift=shift)
    k = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return k / k.sum()


def _motion_blur(img: np.ndarray, length: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    angle = float(rng.uniform(0.0, 180.0))
    return _filter(img, _motion_kernel(length, angle)), {"length": round(length, 4), "angle": round(angle, 2)}


def _disk_kernel(radius: float) -> np.ndarray:
    """A normalised disk (out-of-focus point spread), with anti-aliased edge from 4x supersampling."""
    half = int(math.ceil(radius))
    up = 4
    coords = (np.arange((2 * half + 1) * up, dtype=np.float32) + 0.5) / up - (half + 0.5)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    inside = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    k = inside.reshape(2 * half + 1, up, 2 * half + 1, up).mean(axis=(1, 3))
    return k / k.sum()


def _defocus_blur(img: np.ndarray, radius: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    return _filter(img, _disk_kernel(radius)), {"radius": round(radius, 4)}


# --------------------------------------------------------------------------- colorfulness
def _saturation_down(img: np.ndarray, amount: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    # Blend toward the luma image: amount 1 is fully grey.
    grey = _luma(img)[..., None]
    out = grey + (1.0 - amount) * (img.astype(np.float32) - grey)
    return _to_uint8(out), {"amount": round(amount, 4)}


def _saturation_up(img: np.ndarray, amount: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    # Push away from the luma image; channels clip at 0/255 as in an over-saturated photo.
    grey = _luma(img)[..., None]
    out = grey + (1.0 + amount) * (img.astype(np.float32) - grey)
    return _to_uint8(out), {"amount": round(amount, 4)}


def _color_shift(img: np.ndarray, shift: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    # A white-balance cast: per-channel gains in linear light, exp(shift * cos(angle - 120 deg * c)),
    # normalised so the gains' luma-weighted log mean is 0 (brightness about kept). The cast
    # direction (angle) is drawn from the seed; ``shift`` is the log-gain amplitude.
    angle = float(rng.uniform(0.0, 360.0))
    logs = np.array([shift * math.cos(math.radians(angle) - 2.0 * math.pi * c / 3.0) for c in range(3)])
    logs -= float(np.dot(_LUMA_W, logs))
    lin = (np.arange(256, dtype=np.float64) / 255.0) ** _GAMMA
    luts = [np.clip(lin * math.exp(g), 0.0, 1.0) ** (1.0 / _GAMMA) * 255.0 for g in logs]
    lut = _to_uint8(np.stack(luts, axis=1)).reshape(256, 1, 3)
    return cv2.LUT(img, lut), {"shift": round(shift, 4), "angle": round(angle, 2)}


# --------------------------------------------------------------------------- compression
def _encode(img: np.ndarray, fmt: str, **kwargs: object) -> tuple[np.ndarray, bytes]:
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format=fmt, **kwargs)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        decoded = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    return decoded, data


# --------------------------------------------------------------------------- contrast / exposure
def _contrast(img: np.ndarray, gain: float) -> np.ndarray:
    # Scale every channel about the mean luma of the image (one LUT, so it is fast).
    mean = float(_luma(img).mean())
    lut = mean + gain * (np.arange(256, dtype=np.float32) - mean)
    return _apply_lut(img, lut)


def _contrast_down(img: np.ndarray, amount: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    return _contrast(img, 1.0 - amount), {"amount": round(amount, 4)}


def _contrast_up(img: np.ndarray, amount: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    return _contrast(img, 1.0 + amount), {"amount": round(amount, 4)}


def _exposure(img: np.ndarray, ev: float) -> np.ndarray:
    # Multiply linear light by 2**ev and clip, like a camera exposed ev stops off.
    lin = (np.arange(256, dtype=np.float64) / 255.0) ** _GAMMA
    out = np.clip(lin * 2.0**ev, 0.0, 1.0) ** (1.0 / _GAMMA) * 255.0
    return _apply_lut(img, out)


def _under(img: np.ndarray, ev: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    return _exposure(img, -ev), {"ev": round(-ev, 4)}


def _over(img: np.ndarray, ev: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    return _exposure(img, ev), {"ev": round(ev, 4)}


# --------------------------------------------------------------------------- noise
def _gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    return _to_uint8(img.astype(np.float32) + noise), {"sigma": round(sigma, 4)}


def _shot_noise(img: np.ndarray, peak: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    # Poisson photon noise: white collects ``peak`` photons; fewer photons = stronger noise.
    lam = img.astype(np.float64) * (peak / 255.0)
    out = rng.poisson(lam).astype(np.float32) * np.float32(255.0 / peak)
    return _to_uint8(out), {"peak": round(peak, 4)}


def _impulse_noise(img: np.ndarray, prob: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    # Salt and pepper: each pixel (all channels together) becomes black or white with probability prob.
    u = rng.random(img.shape[:2], dtype=np.float32)
    out = img.copy()
    out[u < prob / 2] = 0
    out[(u >= prob / 2) & (u < prob)] = 255
    return out, {"prob": round(prob, 6)}


_Op = Callable[[np.ndarray, float, np.random.Generator], tuple[np.ndarray, Params]]
_OPS: dict[tuple[str, str], _Op] = {
    ("blur", "gaussian"): _gaussian_blur,
    ("blur", "motion"): _motion_blur,
    ("blur", "defocus"): _defocus_blur,
    ("colorfulness", "saturation_down"): _saturation_down,
    ("colorfulness", "saturation_up"): _saturation_up,
    ("colorfulness", "color_shift"): _color_shift,
    ("contrast", "contrast_down"): _contrast_down,
    ("contrast", "contrast_up"): _contrast_up,
    ("exposure", "under"): _under,
    ("exposure", "over"): _over,
    ("noise", "gaussian"): _gaussian_noise,
    ("noise", "shot"): _shot_noise,
    ("noise", "impulse"): _impulse_noise,
}


def _compress(img: np.ndarray, subtype: str, setting: int) -> DistortionResult:
    if subtype == "jpeg":
        _, lo, hi = _LADDERS[("compression", "jpeg")]
        q = max(1, int(round(_ladder_value(lo, hi, setting))))
        decoded, data = _encode(img, "JPEG", quality=q, subsampling=2, optimize=False)
        return DistortionResult(decoded, "compression", "jpeg", setting, {"quality": q}, data, ".jpg")
    if _webp_available():
        _, lo, hi = _LADDERS[("compression", "webp")]
        q = max(0, int(round(_ladder_value(lo, hi, setting))))
        decoded, data = _encode(img, "WEBP", quality=q, method=4, lossless=False)
        return DistortionResult(
            decoded, "compression", "webp", setting, {"quality": q, "codec": "webp"}, data, ".webp"
        )
    # PIL built without WebP: the second codec is JPEG 2000 at a fixed compression ratio.
    _, lo, hi = _LADDERS[("compression", "jpeg2000")]
    rate = round(_ladder_value(lo, hi, setting), 3)
    decoded, data = _encode(img, "JPEG2000", quality_mode="rates", quality_layers=[rate], irreversible=True)
    return DistortionResult(
        decoded, "compression", "webp", setting, {"rate": rate, "codec": "jpeg2000"}, data, ".jp2"
    )


# --------------------------------------------------------------------------- public API
def apply_distortion(
    image: np.ndarray, family: str, setting: int, subtype: str | None = None, seed: int = 0
) -> DistortionResult:
    """Distort the whole ``image`` with ``family`` at ``setting`` (1 mildest .. NUM_SETTINGS strongest).

    ``subtype`` defaults to a deterministic choice from the seed (:func:`choose_subtype`).
    """
    img = _check_image(image)
    subtypes = _check_family(family)
    setting = _check_setting(setting)
    if subtype is None:
        subtype = choose_subtype(family, "apply_distortion", seed)
    if subtype not in subtypes:
        raise ConfigError(
            f"unknown sub-type {subtype!r} for distortion family {family!r}; choose one of {subtypes}"
        )
    if family == "compression":
        return _compress(img, subtype, setting)
    name, lo, hi = _LADDERS[(family, subtype)]
    value = _ladder_value(lo, hi, setting)
    # The draws do not depend on the setting (common random numbers): one image and seed gets the
    # same noise pattern / motion angle / cast direction at every strength, so ladders are monotone.
    rng = _rng(family, subtype, int(seed), img.shape)
    out, params = _OPS[(family, subtype)](img, value, rng)
    return DistortionResult(out, family, subtype, setting, params, None, ".png")


def choose_subtype(family: str, key: str, seed: int = 0) -> str:
    """A sub-type of ``family`` chosen deterministically (and uniformly over keys) from ``key`` and ``seed``."""
    subtypes = _check_family(family)
    digest = hashlib.sha256(f"{family}|{key}|{int(seed)}".encode()).digest()
    return subtypes[int.from_bytes(digest[:8], "little") % len(subtypes)]


def setting_ladder(n: int) -> list[int]:
    """``n`` settings spread evenly over 1..NUM_SETTINGS, strongest included (n=5 -> [4, 8, 12, 16, 20])."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= NUM_SETTINGS:
        raise ConfigError(f"number of settings must be an integer in 1..{NUM_SETTINGS}, got {n!r}")
    return [int(math.floor(NUM_SETTINGS * k / n + 0.5)) for k in range(1, int(n) + 1)]


def apply_in_mask(
    reference: np.ndarray, distorted: np.ndarray, mask: np.ndarray, feather: float = 0.0
) -> np.ndarray:
    """The reference with the distorted pixels pasted inside ``mask`` only.

    ``feather`` > 0 ramps the blend from 0 at the mask border to 1 at ``feather`` pixels inside it,
    so the seam is soft while every pixel outside the mask stays exactly the reference's.
    """
    ref = _check_image(reference, "reference")
    dist = _check_image(distorted, "distorted")
    if ref.shape != dist.shape:
        raise ImageLoadError(f"reference {ref.shape} and distorted {dist.shape} images differ in size")
    m = np.asarray(mask)
    if m.shape != ref.shape[:2]:
        raise RoiError(f"mask shape {m.shape} does not match the image size {ref.shape[:2]} (HxW)")
    m = m.astype(bool)
    if not math.isfinite(feather) or feather < 0:
        raise ConfigError(f"feather must be a finite number >= 0 (pixels), got {feather!r}")
    if feather == 0:
        out = ref.copy()
        out[m] = dist[m]
        return out
    # Distance (in pixels) of each mask pixel to the nearest pixel outside; padding counts the
    # image border as inside so masks touching the border are not faded there.
    padded = np.pad(m, 1, mode="edge").astype(np.uint8)
    d = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    alpha = np.clip(d / float(feather), 0.0, 1.0)[..., None].astype(np.float32)
    out = ref.astype(np.float32) + alpha * (dist.astype(np.float32) - ref.astype(np.float32))
    return _to_uint8(out)
