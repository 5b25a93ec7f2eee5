"""The six SEAGULL distortion families, each with sub-types and 20 settings ordered by strength.

Every sub-type has one strength parameter that moves monotonically from a mild but visible value
(setting 1) to a strong one (setting 20). The values are calibrated tables: consecutive settings
lower the mean full-reference quality of typical photos by about equal steps (docs/labels.md).
Everything is deterministic for ``(image, family, setting, subtype, seed)``: random draws (noise,
motion angle, colour-cast direction) come from a generator seeded by a hash of the family,
sub-type, seed and image size, the same at every setting, so one image gets the same noise
pattern, growing in strength, along the ladder.

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
from .imageio import seeded_rng
from .labels import DISTORTION_TYPES, NUM_SETTINGS

FAMILIES: dict[str, tuple[str, ...]] = {
    "blur": ("gaussian", "motion", "defocus"),
    "colorfulness": ("saturation_down", "saturation_up", "color_shift"),
    "compression": ("jpeg", "webp"),
    "contrast": ("contrast_down", "contrast_up"),
    "exposure": ("under", "over"),
    "noise": ("gaussian", "shot", "impulse"),
}
assert tuple(FAMILIES) == DISTORTION_TYPES  # seagull.labels owns the family names and their order

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
# (parameter name, its value at settings 1..NUM_SETTINGS). Calibrated on 8 Kodak photos at half
# size with the default label metric (HaarPSI, docs/labels.md): each ladder's values were read off
# a measured parameter -> mean quality curve so that the mean whole-image quality falls evenly from
# 0.95 at setting 1 to 0.33 at setting 20 (or to the weakest the sub-type can reach: full
# desaturation 0.42, WebP quality 0 about 0.60, colour cast 0.36).
_LADDERS: dict[tuple[str, str], tuple[str, tuple[float, ...]]] = {
    ("blur", "gaussian"): (
        "sigma",
        (
            0.637,
            0.789,
            0.933,
            1.07,
            1.2,
            1.35,
            1.51,
            1.69,
            1.9,
            2.15,
            2.43,
            2.75,
            3.12,
            3.55,
            4.01,
            4.5,
            5.07,
            5.81,
            6.64,
            7.74,
        ),
    ),  # mean quality 0.95->0.33
    ("blur", "motion"): (
        "length",
        (
            1.72,
            2.71,
            3.34,
            3.96,
            4.67,
            5.2,
            5.88,
            6.68,
            7.52,
            8.43,
            9.56,
            10.8,
            12.3,
            14.1,
            16.3,
            19.2,
            23.3,
            28.8,
            37,
            49.9,
        ),
    ),  # mean quality 0.95->0.33
    ("blur", "defocus"): (
        "radius",
        (
            1.01,
            1.29,
            1.67,
            1.9,
            2.11,
            2.35,
            2.62,
            2.92,
            3.21,
            3.62,
            4.04,
            4.5,
            5.05,
            5.67,
            6.38,
            7.17,
            8.08,
            9.23,
            10.7,
            12.7,
        ),
    ),  # mean quality 0.95->0.33
    ("colorfulness", "saturation_down"): (
        "amount",
        (
            0.397,
            0.473,
            0.529,
            0.578,
            0.617,
            0.652,
            0.684,
            0.714,
            0.741,
            0.766,
            0.791,
            0.815,
            0.838,
            0.861,
            0.883,
            0.906,
            0.929,
            0.952,
            0.975,
            1,
        ),
    ),  # mean quality 0.95->0.42
    ("colorfulness", "saturation_up"): (
        "amount",
        (
            0.578,
            0.77,
            0.946,
            1.11,
            1.28,
            1.44,
            1.61,
            1.79,
            1.98,
            2.19,
            2.42,
            2.67,
            2.95,
            3.28,
            3.65,
            4.11,
            4.7,
            5.47,
            6.53,
            8,
        ),
    ),  # mean quality 0.95->0.33
    ("colorfulness", "color_shift"): (
        "shift",
        (
            0.0861,
            0.119,
            0.163,
            0.205,
            0.25,
            0.302,
            0.35,
            0.395,
            0.442,
            0.49,
            0.543,
            0.603,
            0.673,
            0.775,
            0.916,
            1.08,
            1.26,
            1.45,
            1.68,
            2,
        ),
    ),  # mean quality 0.95->0.36
    ("contrast", "contrast_down"): (
        "amount",
        (
            0.245,
            0.308,
            0.357,
            0.399,
            0.436,
            0.469,
            0.5,
            0.528,
            0.554,
            0.58,
            0.604,
            0.627,
            0.65,
            0.672,
            0.694,
            0.715,
            0.737,
            0.758,
            0.779,
            0.801,
        ),
    ),  # mean quality 0.95->0.33
    ("contrast", "contrast_up"): (
        "amount",
        (
            0.286,
            0.388,
            0.48,
            0.569,
            0.658,
            0.753,
            0.855,
            0.963,
            1.08,
            1.21,
            1.35,
            1.51,
            1.7,
            1.92,
            2.18,
            2.51,
            2.93,
            3.51,
            4.35,
            5.78,
        ),
    ),  # mean quality 0.95->0.33
    ("exposure", "under"): (
        "ev",
        (
            0.859,
            1.13,
            1.35,
            1.55,
            1.74,
            1.92,
            2.1,
            2.27,
            2.45,
            2.62,
            2.8,
            2.97,
            3.16,
            3.35,
            3.55,
            3.76,
            3.99,
            4.23,
            4.48,
            4.78,
        ),
    ),  # mean quality 0.95->0.33
    ("exposure", "over"): (
        "ev",
        (
            0.638,
            0.821,
            0.976,
            1.12,
            1.26,
            1.4,
            1.53,
            1.66,
            1.8,
            1.94,
            2.09,
            2.23,
            2.39,
            2.54,
            2.7,
            2.86,
            3.03,
            3.22,
            3.51,
            3.86,
        ),
    ),  # mean quality 0.95->0.33
    ("noise", "gaussian"): (
        "sigma",
        (
            6.84,
            9.21,
            11.3,
            13.4,
            15.5,
            17.7,
            20,
            22.4,
            25.1,
            28,
            31.2,
            34.9,
            39,
            43.9,
            49.5,
            56.2,
            64.5,
            75.2,
            89.5,
            110,
        ),
    ),  # mean quality 0.95->0.33
    ("noise", "shot"): (
        "peak",
        (
            568,
            313,
            204,
            146,
            109,
            83.1,
            64.9,
            52.1,
            41.6,
            33.3,
            26.6,
            21.4,
            17.2,
            13.8,
            10.9,
            8.45,
            6.53,
            4.87,
            3.53,
            2.49,
        ),
    ),  # mean quality 0.95->0.33
    ("noise", "impulse"): (
        "prob",
        (
            0.00264,
            0.00481,
            0.0073,
            0.00998,
            0.0129,
            0.0163,
            0.0203,
            0.0252,
            0.0304,
            0.0367,
            0.0446,
            0.0535,
            0.0648,
            0.0787,
            0.0955,
            0.118,
            0.147,
            0.187,
            0.24,
            0.313,
        ),
    ),  # mean quality 0.95->0.33
    ("compression", "jpeg"): (
        "quality",
        (64, 43, 31, 24, 19, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3),
    ),  # mean quality 0.95->0.33
    ("compression", "webp"): (
        "quality",
        (75, 60, 47, 37, 30, 23, 18, 13, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
    ),  # mean quality 0.95->0.60
    # Used only when PIL lacks WebP: JPEG 2000 compression ratio, geometric (not calibrated).
    ("compression", "jpeg2000"): (
        "rate",
        tuple(round(30.0 * (500.0 / 30.0) ** (k / 19), 1) for k in range(20)),
    ),
}
assert all(len(v) == NUM_SETTINGS for _, v in _LADDERS.values())


def _ladder_value(family: str, subtype: str, setting: int) -> float:
    return float(_LADDERS[(family, subtype)][1][setting - 1])


def _webp_available() -> bool:
    return bool(features.check("webp"))


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
        q = int(_ladder_value("compression", "jpeg", setting))
        decoded, data = _encode(img, "JPEG", quality=q, subsampling=2, optimize=False)
        return DistortionResult(decoded, "compression", "jpeg", setting, {"quality": q}, data, ".jpg")
    if _webp_available():
        q = int(_ladder_value("compression", "webp", setting))
        decoded, data = _encode(img, "WEBP", quality=q, method=4, lossless=False)
        return DistortionResult(
            decoded, "compression", "webp", setting, {"quality": q, "codec": "webp"}, data, ".webp"
        )
    # PIL built without WebP: the second codec is JPEG 2000 at a fixed compression ratio.
    rate = _ladder_value("compression", "jpeg2000", setting)
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
    value = _ladder_value(family, subtype, setting)
    # The draws do not depend on the setting (common random numbers): one image and seed gets the
    # same noise pattern / motion angle / cast direction at every strength, so ladders are monotone.
    rng = seeded_rng(family, subtype, int(seed), img.shape)
    out, params = _OPS[(family, subtype)](img, value, rng)
    return DistortionResult(out, family, subtype, setting, params, None, ".png")


def choose_subtype(family: str, key: str, seed: int = 0, subtypes: tuple[str, ...] | None = None) -> str:
    """A sub-type of ``family`` chosen deterministically (and uniformly over keys) from ``key`` and ``seed``;
    among ``subtypes`` if given (e.g. the camera-like variants), else the family's own."""
    subtypes = subtypes or _check_family(family)
    digest = hashlib.sha256(f"{family}|{key}|{int(seed)}".encode()).digest()
    return subtypes[int.from_bytes(digest[:8], "little") % len(subtypes)]


def setting_ladder(n: int, strongest: int = NUM_SETTINGS) -> list[int]:
    """``n`` settings spread evenly over 1..``strongest``, strongest included (n=5 -> [4, 8, 12, 16, 20])."""
    strongest = _check_setting(strongest)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= strongest:
        raise ConfigError(f"number of settings must be an integer in 1..{strongest}, got {n!r}")
    return [int(math.floor(strongest * k / n + 0.5)) for k in range(1, int(n) + 1)]


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
