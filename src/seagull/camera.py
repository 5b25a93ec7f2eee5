"""Camera-like degradations: blur and noise the way a camera makes them, in linear light.

The plain families of :mod:`seagull.distortions` filter the sRGB values. A camera blurs light: a
defocused highlight blooms into a bright disc instead of a grey smudge, and sensor noise grows with
the signal. Each variant here converts sRGB to linear light, lifts blown-out white pixels above 1 (the
scene was brighter than the sensor's white, as in RSBlur's saturation model), degrades, clips and
converts back:

* ``lens_defocus``: the lens aperture's disc, edge softened, of a given radius.
* ``shake``: camera shake, a non-straight kernel traced by a random walk with inertia, scaled to a
  given extent (the walk's shape comes from the seed and is the same at every strength).
* ``soft_downscale``: the photo rendered at 2x, blurred by a Gaussian lens/AA point spread, then
  downscaled by area, as a camera makes its output from a finer sensor.
* ``sensor``: Poisson-Gaussian noise, signal-dependent variance ``x / peak + read**2`` in linear
  light (the heteroscedastic Gaussian form of shot plus read noise), slightly correlated between
  neighbours as demosaicking leaves it; ``peak`` photons make white.

``apply(family, strength, image, rng)`` renders one of them (and optionally a JPEG after the rest,
as cameras do); :func:`apply_camera` is the data engine's entry, seeded like
:func:`seagull.distortions.apply_distortion`. Strengths are settings 1..NUM_SETTINGS whose
parameters rise (fall, for ``peak``) monotonically; the ladders are calibrated like the plain
families' (docs/labels.md). Only numpy and OpenCV are used.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .distortions import (
    NUM_SETTINGS,
    DistortionResult,
    _check_image,
    _check_setting,
    _disk_kernel,
    _encode,
)
from .errors import ConfigError
from .imageio import seeded_rng

CAMERA_FAMILIES: dict[str, tuple[str, ...]] = {
    "blur": ("lens_defocus", "shake", "soft_downscale"),
    "noise": ("sensor",),
}
CAMERA_SUBTYPES: dict[str, str] = {s: f for f, subs in CAMERA_FAMILIES.items() for s in subs}

HIGHLIGHT_GAIN = 4.0  # linear light of a blown-out white pixel before blurring (white = 1)
# Optics soften every kernel: a Gaussian of sigma hypot(SOFT_PX, fraction * size). Without it a hard
# disc's or a thin path's ringing spectrum lets some larger kernels pass more fine detail than smaller
# ones, and the blur ladders would not be monotone in sharpness.
SOFT_PX, LENS_SOFT_FRACTION, SHAKE_SOFT_FRACTION = 0.4, 0.3, 0.05
UPSCALE = 2  # render factor of soft_downscale
READ_NOISE_E = 3.0  # read noise in photo-electrons (its share of white grows as peak falls)
SHAKE_STEPS = 48

# (parameter, values at settings 1..NUM_SETTINGS), in working-size pixels (photons at white for
# ``peak``). Read off measured parameter -> mean whole-image HaarPSI curves on the 8 Kodak photos the
# plain ladders were calibrated on (half size), so that mean quality falls evenly from 0.95 to 0.33.
# fmt: off
LADDERS: dict[str, tuple[str, tuple[float, ...]]] = {
    "lens_defocus": (
        "radius",
        (0.71, 0.858, 1.11, 1.36, 1.63, 1.82, 2.04, 2.36, 2.67, 2.98,
         3.39, 3.83, 4.34, 4.93, 5.62, 6.37, 7.23, 8.29, 9.62, 11.4),
    ),
    "shake": (
        "extent",
        (1.2, 1.95, 2.64, 3.27, 3.89, 4.5, 5.15, 5.85, 6.62, 7.49,
         8.5, 9.69, 11.0, 12.6, 14.4, 16.5, 19.1, 22.3, 26.5, 32.4),
    ),
    "soft_downscale": (
        "sigma",
        (0.47, 0.648, 0.801, 0.945, 1.09, 1.23, 1.38, 1.56, 1.75, 1.98,
         2.23, 2.53, 2.88, 3.27, 3.72, 4.23, 4.81, 5.51, 6.38, 7.5),
    ),
    "sensor": (
        "peak",
        (742.0, 470.0, 341.0, 265.0, 215.0, 176.0, 148.0, 125.0, 106.0, 90.3,
         77.2, 66.2, 56.8, 48.6, 41.5, 35.2, 29.7, 24.7, 20.3, 16.2),
    ),
}
# fmt: on
assert all(len(v) == NUM_SETTINGS for _, v in LADDERS.values())


# --------------------------------------------------------------------------- light
_DECODE = np.where(
    (np.arange(256) / 255.0) <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> float32 linear light in [0, 1] (the exact sRGB curve)."""
    return _DECODE[image]


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear light (clipped to [0, 1]) -> uint8 sRGB."""
    x = np.clip(lin, 0.0, 1.0)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.clip(np.rint(s * 255.0), 0, 255).astype(np.uint8)


def _expand_highlights(lin: np.ndarray) -> np.ndarray:
    """Blown-out white pixels (all channels at sRGB 255: lights, sun glints) get back the light the
    sensor cut off, HIGHLIGHT_GAIN x white. Clipping after the degradation undoes this exactly where
    nothing else changed. A colour clipped in one channel is left alone (boosting that channel alone
    would bleed its hue into the surroundings)."""
    return np.where(lin.min(axis=2, keepdims=True) >= 1.0, np.float32(HIGHLIGHT_GAIN), lin)


def _convolve_light(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    hdr = _expand_highlights(srgb_to_linear(image))
    out = cv2.filter2D(hdr, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    return linear_to_srgb(out)


# --------------------------------------------------------------------------- kernels
def lens_kernel(radius: float) -> np.ndarray:
    """A lens's out-of-focus point spread: the aperture disc softened by a Gaussian of sigma
    ``hypot(SOFT_PX, LENS_SOFT_FRACTION * radius)`` (aberrations, diffraction). A hard disc's
    ringing spectrum makes some larger discs pass more fine detail than smaller ones."""
    return _soften(_disk_kernel(radius), math.hypot(SOFT_PX, LENS_SOFT_FRACTION * radius))


def _soften(kernel: np.ndarray, sigma: float) -> np.ndarray:
    k = cv2.GaussianBlur(np.pad(kernel, int(math.ceil(3 * sigma))), (0, 0), sigma)
    return (k / k.sum()).astype(np.float32)


def shake_trajectory(rng: np.random.Generator, steps: int = SHAKE_STEPS) -> np.ndarray:
    """``[steps, 2]`` points of a camera-shake path with extent 1: a random walk with inertia and a
    weak pull back to the start, so it curves and turns like a hand-held exposure."""
    v = rng.standard_normal(2)
    pos = np.zeros(2)
    path = [pos.copy()]
    for _ in range(steps - 1):
        v = 0.8 * v + 0.6 * rng.standard_normal(2) - 0.05 * pos
        pos = pos + v
        path.append(pos.copy())
    p = np.asarray(path)
    p -= p.mean(axis=0)
    extent = float(np.ptp(p, axis=0).max())
    return p / max(extent, 1e-9)


def shake_kernel(extent: float, trajectory: np.ndarray) -> np.ndarray:
    """The trajectory scaled to ``extent`` pixels, sampled densely, splatted bilinearly and softened
    like every lens kernel (sigma ``hypot(SOFT_PX, SHAKE_SOFT_FRACTION * extent)``)."""
    pts = trajectory * float(extent)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    n = max(2, int(math.ceil(seg.sum() * 8)))
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, arc[-1], n)
    xs, ys = np.interp(t, arc, pts[:, 0]), np.interp(t, arc, pts[:, 1])
    half = int(math.ceil(max(np.abs(xs).max(), np.abs(ys).max()))) + 1
    k = np.zeros((2 * half + 1, 2 * half + 1), np.float64)
    x, y = xs + half, ys + half
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dx, dy, w in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(k, (y0 + dy, x0 + dx), w)
    return _soften(k / k.sum(), math.hypot(SOFT_PX, SHAKE_SOFT_FRACTION * extent))


# --------------------------------------------------------------------------- the variants
Params = dict[str, "float | int | str"]


def _lens_defocus(image: np.ndarray, radius: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    return _convolve_light(image, lens_kernel(radius)), {"radius": radius}


def _shake(image: np.ndarray, extent: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    return _convolve_light(image, shake_kernel(extent, shake_trajectory(rng))), {"extent": extent}


def _soft_downscale(image: np.ndarray, sigma: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    h, w = image.shape[:2]
    hdr = _expand_highlights(srgb_to_linear(image))
    big = np.clip(cv2.resize(hdr, (w * UPSCALE, h * UPSCALE), interpolation=cv2.INTER_CUBIC), 0.0, None)
    s = sigma * UPSCALE
    big = cv2.GaussianBlur(big, (0, 0), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT_101)
    return linear_to_srgb(cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)), {"sigma": sigma}


def _sensor_noise(image: np.ndarray, peak: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    lin = srgb_to_linear(image)
    z = rng.standard_normal(image.shape, dtype=np.float32)
    # Demosaicking correlates neighbouring pixels: a light blur, renormalised to unit variance.
    z = cv2.GaussianBlur(z, (3, 3), sigmaX=0.6) / np.float32(0.64)
    read = READ_NOISE_E / peak
    sd = np.sqrt(lin / np.float32(peak) + np.float32(read * read))
    return linear_to_srgb(lin + sd * z), {"peak": peak, "read_noise": round(read, 6)}


_OPS = {
    "lens_defocus": _lens_defocus,
    "shake": _shake,
    "soft_downscale": _soft_downscale,
    "sensor": _sensor_noise,
}
assert set(_OPS) == set(CAMERA_SUBTYPES) == set(LADDERS)


# --------------------------------------------------------------------------- public API
def ladder_value(subtype: str, setting: int) -> float:
    """The strength parameter of ``subtype`` at ``setting`` (1 mildest .. NUM_SETTINGS strongest)."""
    return float(LADDERS[_check_subtype(subtype)][1][_check_setting(setting) - 1])


def _check_subtype(subtype: str) -> str:
    if subtype not in CAMERA_SUBTYPES:
        raise ConfigError(f"unknown camera degradation {subtype!r}; choose one of {tuple(CAMERA_SUBTYPES)}")
    return subtype


def camera_jpeg(image: np.ndarray, quality: int) -> tuple[np.ndarray, bytes]:
    """The camera's last step: JPEG at ``quality`` (4:2:0), decoded pixels and the file's bytes."""
    if not 1 <= int(quality) <= 100:
        raise ConfigError(f"JPEG quality must be in 1..100, got {quality!r}")
    return _encode(_check_image(image), "JPEG", quality=int(quality), subsampling=2, optimize=False)


def render(
    image: np.ndarray, subtype: str, setting: int, rng: np.random.Generator
) -> tuple[np.ndarray, Params]:
    """``image`` degraded by camera variant ``subtype`` at ``setting``; random draws from ``rng``."""
    img = _check_image(image)
    value = ladder_value(subtype, setting)
    return _OPS[subtype](img, value, rng)


def apply_camera(
    image: np.ndarray, family: str, setting: int, subtype: str, seed: int = 0
) -> DistortionResult:
    """The data engine's entry: like :func:`seagull.distortions.apply_distortion`, with the draws seeded
    by (family, sub-type, seed, image size), the same at every setting (monotone ladders per image)."""
    if CAMERA_SUBTYPES.get(subtype) != family:
        raise ConfigError(f"{subtype!r} is not a camera variant of family {family!r}; see CAMERA_FAMILIES")
    rng = seeded_rng("camera", family, subtype, int(seed), image.shape)
    out, params = render(image, subtype, setting, rng)
    return DistortionResult(out, family, subtype, int(setting), params, None, ".png")


def apply(
    family: str,
    strength: int,
    image: np.ndarray,
    rng: np.random.Generator,
    jpeg_quality: int | None = None,
) -> np.ndarray:
    """One camera-like degradation of ``image`` (HxWx3 uint8) at ``strength`` (1..NUM_SETTINGS).

    ``family`` is a variant (``lens_defocus``, ``shake``, ``soft_downscale``, ``sensor``) or a family
    (``blur``: a variant drawn from ``rng``; ``noise``: ``sensor``). ``jpeg_quality`` adds the camera's
    JPEG after the rest. The same ``rng`` state gives the same output; a generator seeded the same way
    gives the same draws at every strength, so a ladder is monotone per image.
    """
    if family in CAMERA_FAMILIES:
        subs = CAMERA_FAMILIES[family]
        family = subs[int(rng.integers(len(subs)))] if len(subs) > 1 else subs[0]
    out, _ = render(image, family, strength, rng)
    return out if jpeg_quality is None else camera_jpeg(out, jpeg_quality)[0]
