"""Classical no-reference quality metrics, all offline, used as baselines for ROI quality.

* :func:`brisque`: BRISQUE features (Mittal et al. 2012) scored by a numpy RBF epsilon-SVR over
  brisque 0.2.0's LIVE-trained ``svm.txt`` and ``normalize.pickle`` (vendored in ``params/``).
  Lower is better (about 0-100).
* :func:`niqe`: NIQE (Mittal et al. 2013) with basicsr 1.4.2's pristine model
  ``niqe_pris_params.npz``. Lower is better.
* :func:`piqe`: PIQE (Venkatanath et al. 2015), parameter-free. Lower is better (0-100).
* Heuristics that work inside an ROI mask (shrunk by a few pixels so that the region's border and
  whatever lies outside it do not leak in): :func:`laplacian_variance` (higher = sharper),
  :func:`masked_blur_effect` (skimage's ``blur_effect`` restricted to the mask; 0 sharp .. 1 blurred)
  and :func:`hf_energy_ratio` (share of the signal variance above a Gaussian low-pass; higher = sharper).

Every function takes an HxWx3 uint8 RGB array (or an HxW grey array) and returns a float; NaN means
the metric is undefined on that input (for example a region too small for NIQE's blocks), never a
made-up value. :data:`NR_METRICS` registers each with its orientation, nominal range, what it responds to
and its minimum side (:func:`list_nr_metrics`, :func:`get_nr_metric`).
"""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage, optimize, special

from ..errors import ConfigError, ImageLoadError, RoiError
from ..registry import Registry

PARAMS_DIR = Path(__file__).resolve().parent / "params"
DEFAULT_SHRINK = 4  # pixels the ROI mask is eroded by before heuristics are computed inside it
MIN_MASK_PIXELS = 64  # below this the eroded mask is too small; the un-eroded mask is used instead


# --------------------------------------------------------------------------- inputs
def _check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 3 or a.ndim == 2:
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise ImageLoadError(f"{name}: empty image of shape {a.shape}")
        return a
    raise ImageLoadError(f"{name}: expected an HxWx3 RGB or HxW grey array, got shape {a.shape}")


def _grey_unit(image: np.ndarray) -> np.ndarray:
    """Luminance in [0, 1] with skimage's rgb2gray weights (BRISQUE's training convention)."""
    a = _check_image(image).astype(np.float64)
    if a.ndim == 2:
        return a / 255.0
    return (a[..., 0] * 0.2125 + a[..., 1] * 0.7154 + a[..., 2] * 0.0721) / 255.0


def _y_matlab(image: np.ndarray) -> np.ndarray:
    """MATLAB's rgb2ycbcr luma in [16, 235], rounded (NIQE's convention)."""
    a = _check_image(image).astype(np.float64)
    if a.ndim == 2:
        return np.round(a)
    y = 16.0 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0
    return np.round(y)


def _grey_255(image: np.ndarray) -> np.ndarray:
    """Luminance (0.299/0.587/0.114) in [0, 255]."""
    a = _check_image(image).astype(np.float64)
    if a.ndim == 2:
        return a
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def _gauss_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    r = np.arange(size) - size // 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def _mscn(img: np.ndarray, window: np.ndarray, c: float, mode: str) -> np.ndarray:
    """Mean-subtracted, contrast-normalised coefficients."""
    mu = ndimage.convolve(img, window, mode=mode, cval=0.0)
    var = ndimage.convolve(img * img, window, mode=mode, cval=0.0) - mu * mu
    return (img - mu) / (np.sqrt(np.abs(var)) + c)


# --------------------------------------------------------------------------- AGGD fits
def _log_rho(alpha: float) -> float:
    # rho(alpha) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)), monotone increasing in alpha.
    return 2 * special.gammaln(2 / alpha) - special.gammaln(1 / alpha) - special.gammaln(3 / alpha)


def _solve_alpha(r_norm: float, lo: float = 0.05, hi: float = 20.0) -> float:
    """Shape parameter alpha with rho(alpha) = r_norm, by bracketing root search."""
    if not np.isfinite(r_norm) or r_norm <= 0:
        return float("nan")
    target = np.log(r_norm)
    f_lo, f_hi = _log_rho(lo) - target, _log_rho(hi) - target
    if f_lo > 0:
        return lo
    if f_hi < 0:
        return hi
    return float(optimize.brentq(lambda a: _log_rho(a) - target, lo, hi, xtol=1e-12))


@dataclass(frozen=True)
class Aggd:
    alpha: float
    sigma_l: float  # root mean square of the negative side
    sigma_r: float  # root mean square of the non-negative side

    @property
    def scale_factor(self) -> float:
        return float(np.sqrt(special.gamma(1 / self.alpha) / special.gamma(3 / self.alpha)))

    @property
    def mean(self) -> float:
        # (beta_r - beta_l) * Gamma(2/a) / Gamma(1/a) with beta = sigma * sqrt(G(1/a)/G(3/a))
        k = special.gamma(2 / self.alpha) / special.gamma(1 / self.alpha)
        return float((self.sigma_r - self.sigma_l) * self.scale_factor * k)


def _aggd_fit_brisque(x: np.ndarray) -> Aggd:
    """AGGD moment fit as brisque 0.2.0 trained it: zeros count on the right side, exact root."""
    x = x.ravel()
    neg, pos = x[x < 0], x[x >= 0]
    if neg.size == 0 or pos.size == 0:
        return Aggd(float("nan"), float("nan"), float("nan"))
    sl, sr = np.sqrt(np.mean(neg**2)), np.sqrt(np.mean(pos**2))
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    g = sl / sr
    r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    return Aggd(_solve_alpha(float(r_norm)), float(sl), float(sr))


@functools.lru_cache(maxsize=1)
def _niqe_alpha_grid() -> tuple[np.ndarray, np.ndarray]:
    gam = np.arange(0.2, 10.001, 0.001)
    r = special.gamma(2 / gam) ** 2 / (special.gamma(1 / gam) * special.gamma(3 / gam))
    return gam, r


def _aggd_fit_niqe(x: np.ndarray) -> tuple[float, float, float]:
    """NIQE's AGGD fit (grid search over alpha, as the official release): alpha, beta_l, beta_r."""
    x = x.ravel()
    neg, pos = x[x < 0], x[x > 0]
    if neg.size == 0 or pos.size == 0:
        return float("nan"), float("nan"), float("nan")
    sl, sr = np.sqrt(np.mean(neg**2)), np.sqrt(np.mean(pos**2))
    g = sl / sr
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    gam, r = _niqe_alpha_grid()
    alpha = float(gam[np.argmin((r - r_norm) ** 2)])
    k = np.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    return alpha, float(sl * k), float(sr * k)


# --------------------------------------------------------------------------- BRISQUE
@dataclass(frozen=True)
class SvrModel:
    """An RBF epsilon-SVR read from a libsvm text model: f(x) = sum_i c_i exp(-g |s_i - x|^2) - rho."""

    gamma: float
    rho: float
    coef: np.ndarray  # (n_sv,)
    sv: np.ndarray  # (n_sv, n_features)
    feat_min: np.ndarray  # (n_features,) scaling to [-1, 1]
    feat_max: np.ndarray

    def __call__(self, features: np.ndarray) -> float:
        f = np.asarray(features, dtype=np.float64)
        if not np.isfinite(f).all():
            return float("nan")
        scaled = -1.0 + 2.0 * (f - self.feat_min) / (self.feat_max - self.feat_min)
        d2 = ((self.sv - scaled) ** 2).sum(axis=1)
        return float(self.coef @ np.exp(-self.gamma * d2) - self.rho)


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numbers only; any class or function reference is refused."""

    def find_class(self, module: str, name: str):  # noqa: ANN201
        raise ConfigError(f"refusing to load {module}.{name} from a parameter pickle (data only)")


def _read_libsvm_model(path: Path, n_features: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    header: dict[str, str] = {}
    coefs: list[float] = []
    rows: list[np.ndarray] = []
    in_sv = False
    for line in path.read_text(encoding="ascii").splitlines():
        if not line.strip():
            continue
        if not in_sv:
            if line.strip() == "SV":
                in_sv = True
                continue
            key, _, value = line.partition(" ")
            header[key] = value
            continue
        parts = line.split()
        coefs.append(float(parts[0]))
        row = np.zeros(n_features)
        for item in parts[1:]:
            idx, val = item.split(":")
            row[int(idx) - 1] = float(val)
        rows.append(row)
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ConfigError(f"{path}: expected a libsvm epsilon_svr model with an rbf kernel, got {header}")
    return float(header["gamma"]), float(header["rho"]), np.array(coefs), np.stack(rows)


@functools.lru_cache(maxsize=1)
def brisque_model(params_dir: Path = PARAMS_DIR) -> SvrModel:
    """The vendored LIVE-trained BRISQUE SVR (see ``params/NOTICE``)."""
    svm, norm = params_dir / "svm.txt", params_dir / "normalize.pickle"
    for p in (svm, norm):
        if not p.is_file():
            raise ConfigError(f"BRISQUE parameter file {p} is missing; reinstall seagull (see params/NOTICE)")
    scale = _DataOnlyUnpickler(io.BytesIO(norm.read_bytes())).load()
    lo, hi = np.asarray(scale["min_"], dtype=np.float64), np.asarray(scale["max_"], dtype=np.float64)
    gamma, rho, coef, sv = _read_libsvm_model(svm, lo.size)
    return SvrModel(gamma, rho, coef, sv, lo, hi)


def _brisque_scale_features(grey: np.ndarray) -> list[float]:
    # brisque 0.2.0 filters with zero padding ('same' convolution) and C = 1/255 on [0, 1] images.
    m = _mscn(grey, _gauss_window(7, 7 / 6), 1 / 255, "constant")
    a = _aggd_fit_brisque(m)
    feats = [a.alpha, (a.sigma_l**2 + a.sigma_r**2) / 2]
    pairs = (
        m[:, :-1] * m[:, 1:],  # horizontal
        m[:-1, :] * m[1:, :],  # vertical
        m[:-1, :-1] * m[1:, 1:],  # main diagonal
        m[1:, :-1] * m[:-1, 1:],  # secondary diagonal
    )
    for p in pairs:
        a = _aggd_fit_brisque(p)
        feats += [a.alpha, a.mean, a.sigma_l**2, a.sigma_r**2]
    return feats


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features: 18 at full and 18 at half resolution (bicubic)."""
    g = _grey_unit(image)
    half = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    return np.array(_brisque_scale_features(g) + _brisque_scale_features(half))


MIN_SIDE_BRISQUE = 16


def brisque(image: np.ndarray) -> float:
    """BRISQUE score (lower is better); NaN for images with a side under 16 px or no texture at all."""
    a = _check_image(image)
    if min(a.shape[:2]) < MIN_SIDE_BRISQUE:
        return float("nan")
    return brisque_model()(brisque_features(a))


# --------------------------------------------------------------------------- NIQE
@functools.lru_cache(maxsize=1)
def niqe_params(params_dir: Path = PARAMS_DIR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = params_dir / "niqe_pris_params.npz"
    if not p.is_file():
        raise ConfigError(f"NIQE parameter file {p} is missing; reinstall seagull (see params/NOTICE)")
    with np.load(p, allow_pickle=False) as z:
        return z["mu_pris_param"].reshape(-1), z["cov_pris_param"], z["gaussian_window"]


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _matlab_resize_matrix(n_in: int, scale: float) -> np.ndarray:
    """Weights of MATLAB's imresize (bicubic, antialiasing) along one axis, as an (n_out, n_in) matrix."""
    n_out = int(np.ceil(n_in * scale))
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if scale < 1 else _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # Symmetric boundary: indices 1..n, then n..1, repeating.
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
    mat = np.zeros((n_out, n_in))
    np.add.at(mat, (np.repeat(np.arange(n_out), taps), cols.ravel()), w.ravel())
    return mat


def _niqe_block_features(block: np.ndarray) -> list[float]:
    alpha, bl, br = _aggd_fit_niqe(block)
    feats = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a, l_, r_ = _aggd_fit_niqe(block * np.roll(block, shift, axis=(0, 1)))
        mean = (r_ - l_) * special.gamma(2 / a) / special.gamma(1 / a)
        feats += [a, mean, l_, r_]
    return feats


NIQE_BLOCK_SIZES = (96, 64, 48, 32)


def niqe(image: np.ndarray, block_size: int | None = None) -> float:
    """NIQE score (lower is better) with the official 96x96 blocks.

    NIQE needs at least two blocks to fit its Gaussian. For a smaller image (an ROI crop) the
    largest block size in ``NIQE_BLOCK_SIZES`` that gives two blocks is used; below two 32x32
    blocks the score is NaN. It is NaN too when fewer than two blocks have texture (flat or
    clipped crops, e.g. an over-exposed sky). ``block_size`` forces one size.
    """
    img = _y_matlab(image)
    mu_p, cov_p, window = niqe_params()
    h, w = img.shape
    sizes = (block_size,) if block_size else NIQE_BLOCK_SIZES
    bs = next((b for b in sizes if (h // b) * (w // b) >= 2), None)
    if bs is None:
        return float("nan")
    nh, nw = h // bs, w // bs
    img = img[: nh * bs, : nw * bs]
    per_scale = []
    for scale in (1, 2):
        m = _mscn(img, window, 1.0, "nearest")
        b = bs // scale
        feats = [
            _niqe_block_features(m[i * b : (i + 1) * b, j * b : (j + 1) * b])
            for j in range(nw)
            for i in range(nh)
        ]
        per_scale.append(np.array(feats))
        if scale == 1:
            rh = _matlab_resize_matrix(img.shape[0], 0.5)
            rw = _matlab_resize_matrix(img.shape[1], 0.5)
            img = (rh @ (img / 255.0) @ rw.T) * 255.0
    f = np.concatenate(per_scale, axis=1)
    # A block whose MSCN coefficients (or their neighbour products) are not both negative and
    # positive somewhere, e.g. a flat or clipped (over-exposed) block, has NaN AGGD features. With
    # fewer than two complete blocks the crop's Gaussian cannot be fitted: NIQE is undefined (NaN).
    ok = f[~np.isnan(f).any(axis=1)]
    if ok.shape[0] < 2:
        return float("nan")
    mu_d = np.nanmean(f, axis=0)  # every column has the >= 2 values of the complete rows
    cov_d = np.cov(ok, rowvar=False)
    d = mu_p - mu_d
    q = d @ np.linalg.pinv((cov_p + cov_d) / 2) @ d
    return float(np.sqrt(q))


# --------------------------------------------------------------------------- PIQE
def piqe(
    image: np.ndarray,
    block_size: int = 16,
    activity_threshold: float = 0.1,
    impaired_threshold: float = 0.1,
    segment: int = 6,
) -> float:
    """PIQE score in [0, 100] (lower is better).

    Blocks of 16x16 MSCN coefficients with variance above ``activity_threshold`` are "active";
    an active block counts as distorted with weight ``1 - var`` if one of its edges has a flat
    6-pixel segment (std below ``impaired_threshold``: blockiness, blur) and with weight ``var``
    if its centre/surround deviation says noise. Score = 100 (sum + 1) / (active + 1).
    """
    g = _grey_255(image)
    peak = g.max()
    if peak <= 0:
        return float("nan")
    g = np.round(255.0 * g / peak)
    h, w = g.shape
    ph, pw = (-h) % block_size, (-w) % block_size
    if ph or pw:
        g = np.pad(g, ((0, ph), (0, pw)), mode="symmetric")
    m = _mscn(g, _gauss_window(7, 7 / 6), 1.0, "nearest")
    hb, wb = g.shape[0] // block_size, g.shape[1] // block_size
    blocks = (
        m.reshape(hb, block_size, wb, block_size).transpose(0, 2, 1, 3).reshape(-1, block_size, block_size)
    )
    var = blocks.var(axis=(1, 2), ddof=1)
    active = var > activity_threshold

    # Noticeable artefacts: a flat segment on one of the four block edges.
    edges = np.stack([blocks[:, 0, :], blocks[:, -1, :], blocks[:, :, 0], blocks[:, :, -1]], axis=1)
    segs = np.lib.stride_tricks.sliding_window_view(edges, segment, axis=2)
    impaired = (segs.std(axis=-1, ddof=1) < impaired_threshold).any(axis=(1, 2))

    # Noise: the two centre columns against the rest of the block.
    c0 = (block_size - 1 + 1) // 2 - 1
    centre = blocks[:, :, c0 : c0 + 2]
    surround = np.concatenate([blocks[:, :, :c0], blocks[:, :, c0 + 2 :]], axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.nan_to_num(centre.std(axis=(1, 2), ddof=1) / surround.std(axis=(1, 2), ddof=1))
        sigma = np.sqrt(var)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
    noisy = sigma > 2 * np.nan_to_num(beta, nan=np.inf)

    dist = active * impaired * (1 - var) + active * noisy * var
    return float((dist.sum() + 1.0) / (active.sum() + 1.0) * 100.0)


# --------------------------------------------------------------------------- masks and heuristics
def shrink_mask(mask: np.ndarray, pixels: int = DEFAULT_SHRINK) -> np.ndarray:
    """The mask eroded by ``pixels`` (a disc); falls back to the mask itself if too little is left."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise RoiError("shrink_mask: the ROI mask must be a non-empty 2-D boolean array")
    if pixels <= 0:
        return m
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    # Pad with "outside" so that the image border counts as a region border too.
    e = cv2.erode(m.astype(np.uint8), k, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    return e if e.sum() >= MIN_MASK_PIXELS else m


def _mask_or_all(grey: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return np.ones(grey.shape, dtype=bool)
    m = np.asarray(mask, dtype=bool)
    if m.shape != grey.shape:
        raise RoiError(f"mask shape {m.shape} does not match the image {grey.shape} (HxW)")
    return m


def laplacian_variance(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the 3x3 Laplacian of the luminance (in [0, 1]) over the mask; higher = sharper."""
    g = _grey_unit(image)
    m = _mask_or_all(g, mask)
    lap = cv2.Laplacian(g, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT)
    return float(lap[m].var())


def masked_blur_effect(image: np.ndarray, mask: np.ndarray | None = None, h_size: int = 11) -> float:
    """Crete-Roffet blur effect (skimage ``measure.blur_effect``) with its sums taken over the mask only.

    0 = sharp, 1 = maximally blurred. With no mask it equals ``skimage.measure.blur_effect`` on the
    luminance (same Sobel gradients, uniform re-blur of ``h_size`` and border margin).
    """
    from skimage.filters import sobel

    g = _grey_unit(image)
    m = _mask_or_all(g, mask).copy()
    # skimage ignores two rows/columns at the start and one at the end of every axis.
    margin = np.zeros_like(m)
    margin[2 : g.shape[0] - 1, 2 : g.shape[1] - 1] = True
    m &= margin
    if not m.any():
        return float("nan")
    worst = 0.0
    for ax in (0, 1):
        sharp = np.maximum(1e-10, np.abs(sobel(g, axis=ax)))
        blur = np.maximum(1e-10, np.abs(sobel(ndimage.uniform_filter1d(g, h_size, axis=ax), axis=ax)))
        m1 = sharp[m].sum()
        m2 = np.maximum(0.0, sharp - blur)[m].sum()
        worst = max(worst, float(abs(m1 - m2) / m1))
    return worst


def hf_energy_ratio(image: np.ndarray, mask: np.ndarray | None = None, sigma: float = 2.0) -> float:
    """Share of the luminance variance in the mask that lies above a Gaussian low-pass; higher = sharper."""
    g = _grey_unit(image)
    m = _mask_or_all(g, mask)
    high = g - ndimage.gaussian_filter(g, sigma, mode="reflect")
    vals = g[m]
    total = float(((vals - vals.mean()) ** 2).sum())
    if total <= 0:
        return float("nan")
    return float((high[m] ** 2).sum() / total)


def bbox_crop(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image cut to the tight bounding box of ``mask``."""
    m = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        raise RoiError("bbox_crop: the ROI mask is empty")
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class NRMetric:
    """A registered no-reference metric and how to read its number."""

    name: str
    fn: Callable[..., float]
    # "image": fn(image) on a whole image or an ROI's crop; "mask": fn(image, mask) inside an ROI mask.
    takes: str
    higher_is_better: bool
    value_range: tuple[float, float | None]  # nominal range; None = unbounded
    description: str  # what it responds to, in words
    distortion_type: str | None  # the one distortion type it is specific to (None: general quality)
    min_side: int  # shorter side (pixels) below which the number is NaN or meaningless


NR_METRICS: Registry[NRMetric] = Registry("no-reference metric")
for _metric in (
    NRMetric(
        "brisque",
        brisque,
        "image",
        False,
        (0.0, 100.0),
        "loss of natural scene statistics (LIVE: blur, noise, JPEG, JPEG 2000)",
        None,
        MIN_SIDE_BRISQUE,
    ),
    NRMetric(
        "niqe",
        niqe,
        "image",
        False,
        (0.0, None),
        "distance from pristine natural scene statistics",
        None,
        min(NIQE_BLOCK_SIZES),  # two blocks of the smallest size
    ),
    NRMetric(
        "piqe", piqe, "image", False, (0.0, 100.0), "blockiness, flat (blurred) edges and noise", None, 16
    ),
    NRMetric(
        "laplacian_variance",
        laplacian_variance,
        "mask",
        True,
        (0.0, None),
        "sharpness (variance of the Laplacian)",
        "blur",
        3,
    ),
    NRMetric(
        "masked_blur_effect",
        masked_blur_effect,
        "mask",
        False,
        (0.0, 1.0),
        "blur (Crete-Roffet re-blur)",
        "blur",
        4,
    ),
    NRMetric(
        "hf_energy_ratio",
        hf_energy_ratio,
        "mask",
        True,
        (0.0, 1.0),
        "sharpness (share of variance above a Gaussian low-pass)",
        "blur",
        3,
    ),
):
    NR_METRICS.add(_metric)


def list_nr_metrics() -> tuple[str, ...]:
    """Names of the registered no-reference metrics."""
    return NR_METRICS.names()


def get_nr_metric(name: str) -> NRMetric:
    """The registered no-reference metric ``name`` (its function and metadata)."""
    return NR_METRICS.get(name)
