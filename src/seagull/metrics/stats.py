"""Statistics shared by evaluation and training validation: rank and linear correlations, and
sample-average precision / recall / F1 of label sets, with bootstrap intervals.

Conventions:

* Correlations drop pairs where either value is NaN/None and report how many pairs were used.
  A constant prediction has no rank order: its SRCC/PLCC/KRCC are NaN, not 0.
* PLCC is reported raw and after the usual 4-parameter logistic map
  ``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2`` fitted by least squares (VQEG).
* Sample-average precision / recall / F1 (the paper's multi-label protocol): for each sample
  ``P_i = |Y_i & Z_i| / |Z_i|``, ``R_i = |Y_i & Z_i| / |Y_i|``, ``F1_i = 2 |Y_i & Z_i| / (|Y_i| + |Z_i|)``
  with Y the label set and Z the predicted set, then the plain mean over samples.
  Empty sets: by default (``empty="clean"``) a region with no distortion has the set
  ``{"clean"}`` on either side, as the paper's Table 2 treats "clean" as a class, so no set is
  ever empty. With ``empty="strict"`` the sets stay empty and: both empty -> P = R = F1 = 1;
  empty prediction, non-empty label -> P = R = F1 = 0; non-empty prediction, empty label ->
  P = R = F1 = 0.
* Agreement with a MOS (:func:`mos_agreement`, the field's protocol): SRCC and KRCC on the raw
  predictions; PLCC and RMSE after the logistic above is fitted on the evaluated set (a linear fit
  when the logistic does not converge, and the result says which was used); bootstrap intervals
  refit the map on every resample.
* Severity items are (type, severity word) pairs, e.g. ``"blur:moderate"``, so a severity only
  counts when it is attached to the right type; ``"clean"`` stays ``"clean"``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize, stats

from ..errors import SchemaError

CLEAN = "clean"


# --------------------------------------------------------------------------- correlations
def _pairs(pred: Sequence[float | None], label: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    if len(pred) != len(label):
        raise SchemaError(f"{len(pred)} predictions but {len(label)} labels; they must pair up one to one")
    p = np.array([np.nan if v is None else float(v) for v in pred], dtype=np.float64)
    y = np.array([np.nan if v is None else float(v) for v in label], dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(y)
    return p[ok], y[ok]


def _degenerate(p: np.ndarray, y: np.ndarray) -> bool:
    return p.size < 3 or np.ptp(p) == 0 or np.ptp(y) == 0


def srcc(pred: Sequence[float | None], label: Sequence[float | None]) -> float:
    p, y = _pairs(pred, label)
    return float("nan") if _degenerate(p, y) else float(stats.spearmanr(p, y).statistic)


def krcc(pred: Sequence[float | None], label: Sequence[float | None]) -> float:
    p, y = _pairs(pred, label)
    return float("nan") if _degenerate(p, y) else float(stats.kendalltau(p, y).statistic)


def plcc(pred: Sequence[float | None], label: Sequence[float | None]) -> float:
    p, y = _pairs(pred, label)
    return float("nan") if _degenerate(p, y) else float(stats.pearsonr(p, y).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    z = np.clip(-(x - b3) / (abs(b4) + 1e-12), -500, 500)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic4(pred: np.ndarray, label: np.ndarray) -> tuple[float, float, float, float] | None:
    """Least-squares 4-parameter logistic from predictions to labels; None if it does not converge."""
    p, y = np.asarray(pred, float), np.asarray(label, float)
    # Start as a rising curve if the rank correlation is positive, else falling.
    rising = stats.spearmanr(p, y).statistic >= 0
    hi, lo = (y.max(), y.min()) if rising else (y.min(), y.max())
    sd = float(np.std(p)) or 1.0
    best, best_sse = None, np.inf
    # A few slopes as starting points: the least-squares surface has local minima.
    for scale in (1.0, 0.25, 4.0):
        p0 = [hi, lo, float(np.mean(p)), sd * scale]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = optimize.curve_fit(logistic4, p, y, p0=p0, method="trf", max_nfev=20000)
        except (RuntimeError, ValueError, optimize.OptimizeWarning):
            continue
        if not np.all(np.isfinite(params)):
            continue
        sse = float(((logistic4(p, *params) - y) ** 2).sum())
        if sse < best_sse:
            best, best_sse = params, sse
    if best is None:
        return None
    params = best
    return tuple(float(v) for v in params)  # type: ignore[return-value]


def plcc_logistic(pred: Sequence[float | None], label: Sequence[float | None]) -> float:
    """PLCC after the 4-parameter logistic fit (NaN when the fit fails or the input is degenerate)."""
    p, y = _pairs(pred, label)
    if _degenerate(p, y):
        return float("nan")
    params = fit_logistic4(p, y)
    if params is None:
        return float("nan")
    fitted = logistic4(p, *params)
    if np.ptp(fitted) == 0:
        return float("nan")
    return float(stats.pearsonr(fitted, y).statistic)


@dataclass
class CorrelationResult:
    n: int
    srcc: float
    plcc: float
    plcc_logistic: float
    krcc: float
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def correlations(
    pred: Sequence[float | None],
    label: Sequence[float | None],
    bootstrap: int = 0,
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> CorrelationResult:
    """SRCC, PLCC (raw and logistic), KRCC, with optional bootstrap 95% intervals."""
    p, y = _pairs(pred, label)
    res = CorrelationResult(
        int(p.size), srcc(pred, label), plcc(pred, label), plcc_logistic(pred, label), krcc(pred, label)
    )
    if bootstrap:
        fns: dict[str, Callable[[Sequence, Sequence], float]] = {"srcc": srcc, "plcc": plcc, "krcc": krcc}
        for name, fn in fns.items():
            res.ci[name] = bootstrap_ci(fn, list(pred), list(label), n=bootstrap, groups=groups, seed=seed)
    return res


# --------------------------------------------------------------------------- agreement with a MOS
@dataclass
class MosMap:
    """The map fitted from predictions to MOS: ``method`` is ``"logistic"``, ``"linear"`` (the
    fallback, with the reason in ``note``) or ``"none"`` (degenerate input: nothing to fit)."""

    method: str
    params: tuple[float, ...] = ()
    note: str = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        if self.method == "logistic":
            return logistic4(x, *self.params)
        if self.method == "linear":
            return self.params[0] * x + self.params[1]
        return np.full_like(x, np.nan)


# Smallest logistic slope |b4| in standard deviations of the predictions: a steeper curve is a step
# fitted to a few outlying predictions, not a monotone map of the whole scale.
MIN_SLOPE_SD = 0.05


def _logistic4_jac(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """d logistic4 / d(b1, b2, b3, b4) at ``x`` (for ``b4 > 0``, as the bounded fit keeps it)."""
    u = np.clip((x - b3) / b4, -500, 500)
    s = 1.0 / (1.0 + np.exp(-u))
    ds = (b1 - b2) * s * (1.0 - s)
    return np.stack([s, 1.0 - s, -ds / b4, -ds * u / b4], axis=1)


def fit_logistic4_scaled(
    pred: np.ndarray, label: np.ndarray, start: Sequence[float] | None = None
) -> tuple[float, float, float, float] | None:
    """:func:`logistic4` from ``pred`` to ``label`` by least squares, fitted on the standardised
    predictions (so that metrics on any scale, e.g. the Laplacian's variance in the thousands, are fitted
    alike) with ``|b4|`` at least :data:`MIN_SLOPE_SD` standard deviations; the best of three starting
    slopes (1/3, 1 and 3 SD) from b1, b2 = the label's range in the direction of the rank correlation and
    b3 = the mean prediction. ``start`` (parameters on the predictions' scale, e.g. the fit on the whole
    set when refitting a bootstrap resample) is tried alone first. The parameters are returned on the
    predictions' own scale; None when no start converges."""
    p, y = np.asarray(pred, float), np.asarray(label, float)
    mu, sd = float(np.mean(p)), float(np.std(p))
    if sd == 0:
        return None
    z = (p - mu) / sd
    rising = stats.spearmanr(p, y).statistic >= 0
    hi, lo = (y.max(), y.min()) if rising else (y.min(), y.max())
    starts = [[hi, lo, 0.0, slope] for slope in (1.0, 1 / 3, 3.0)]
    if start is not None:
        b1, b2, b3, b4 = start
        starts = [[b1, b2, (b3 - mu) / sd, max(abs(b4) / sd, MIN_SLOPE_SD)]]
    best = _best_fit(z, y, starts)
    if best is None and start is not None:
        best = _best_fit(z, y, [[hi, lo, 0.0, slope] for slope in (1.0, 1 / 3, 3.0)])
    if best is None:
        return None
    b1, b2, b3, b4 = (float(v) for v in best)
    return b1, b2, mu + sd * b3, sd * abs(b4)


def _best_fit(z: np.ndarray, y: np.ndarray, starts: Sequence[Sequence[float]]) -> np.ndarray | None:
    """The least-squares logistic on standardised ``z`` from the start with the smallest error."""
    best, best_sse = None, np.inf
    bounds = ([-np.inf, -np.inf, -np.inf, MIN_SLOPE_SD], [np.inf, np.inf, np.inf, np.inf])
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = optimize.curve_fit(
                    logistic4, z, y, p0=p0, jac=_logistic4_jac, bounds=bounds, method="trf", max_nfev=1000
                )
        except (RuntimeError, ValueError, optimize.OptimizeWarning):
            continue
        if not np.all(np.isfinite(params)):
            continue
        sse = float(((logistic4(z, *params) - y) ** 2).sum())
        if sse < best_sse:
            best, best_sse = params, sse
    return best


def fit_mos_map(
    pred: Sequence[float], label: Sequence[float], start: Sequence[float] | None = None
) -> MosMap:
    """The 4-parameter logistic from ``pred`` to ``label`` (:func:`fit_logistic4_scaled`, from ``start``
    if given); a straight line, with the reason, when it does not converge or is flat on the data."""
    p, y = np.asarray(pred, float), np.asarray(label, float)
    if _degenerate(p, y):
        return MosMap("none", note="fewer than 3 values or a constant prediction: no fit")
    params = fit_logistic4_scaled(p, y, start)
    if params is not None and np.ptp(logistic4(p, *params)) > 0:
        return MosMap("logistic", params)
    slope, intercept = np.polyfit(p, y, 1)
    why = "did not converge" if params is None else "is flat on the data"
    return MosMap("linear", (float(slope), float(intercept)), f"the logistic fit {why}; a linear fit is used")


@dataclass
class MosAgreement:
    """How well predictions follow a MOS: ``n`` pairs; SRCC and KRCC on the raw predictions; PLCC and
    RMSE (in the label's units) after ``fit``; 95 % bootstrap intervals in ``ci``."""

    n: int
    srcc: float
    krcc: float
    plcc: float
    rmse: float
    fit: MosMap
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    refit_fallbacks: int = 0  # bootstrap resamples whose map fell back to a line

    def to_dict(self) -> dict:
        return asdict(self)


def _agreement(
    p: np.ndarray, y: np.ndarray, start: Sequence[float] | None = None
) -> tuple[dict[str, float], MosMap]:
    fit = fit_mos_map(p, y, start)
    out = {"srcc": float("nan"), "krcc": float("nan"), "plcc": float("nan"), "rmse": float("nan")}
    if fit.method == "none":
        return out, fit
    fitted = fit(p)
    out["srcc"] = float(stats.spearmanr(p, y).statistic)
    out["krcc"] = float(stats.kendalltau(p, y).statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a map flat on most photos: its PLCC is what it is
        out["plcc"] = float(stats.pearsonr(fitted, y).statistic) if np.ptp(fitted) > 0 else float("nan")
    out["rmse"] = float(np.sqrt(np.mean((fitted - y) ** 2)))
    return out, fit


def mos_agreement(
    pred: Sequence[float | None], label: Sequence[float | None], bootstrap: int = 0, seed: int = 0
) -> MosAgreement:
    """SRCC, KRCC, PLCC and RMSE of predictions against a MOS (pairs with a missing value dropped),
    the map fitted on these pairs, and with ``bootstrap`` resamples of the pairs (one per photo)
    percentile 95 % intervals, the map refitted on each resample (starting from the whole set's)."""
    p, y = _pairs(pred, label)
    vals, fit = _agreement(p, y)
    res = MosAgreement(int(p.size), vals["srcc"], vals["krcc"], vals["plcc"], vals["rmse"], fit)
    if bootstrap and fit.method != "none":
        rng = np.random.default_rng(seed)
        draws: dict[str, list[float]] = {k: [] for k in vals}
        for _ in range(bootstrap):
            idx = rng.integers(0, p.size, p.size)
            v, f = _agreement(p[idx], y[idx], fit.params if fit.method == "logistic" else None)
            res.refit_fallbacks += f.method == "linear"
            for k, x in v.items():
                if not math.isnan(x):
                    draws[k].append(x)
        for k, xs in draws.items():
            lo, hi = np.quantile(xs, [0.025, 0.975]) if len(xs) >= 10 else (float("nan"), float("nan"))
            res.ci[k] = (float(lo), float(hi))
    return res


# --------------------------------------------------------------------------- sets
def type_set(distortions: Iterable[str], empty: str = "clean") -> frozenset[str]:
    s = frozenset(distortions)
    return frozenset({CLEAN}) if (not s and empty == "clean") else s


def severity_set(pairs: Iterable[tuple[str, str]], empty: str = "clean") -> frozenset[str]:
    s = frozenset(f"{t}:{sev}" for t, sev in pairs)
    return frozenset({CLEAN}) if (not s and empty == "clean") else s


def sample_prf(label: frozenset[str], pred: frozenset[str]) -> tuple[float, float, float]:
    """Precision, recall, F1 of one sample (the strict empty-set rules in the module docstring)."""
    if not label and not pred:
        return 1.0, 1.0, 1.0
    if not label or not pred:
        return 0.0, 0.0, 0.0
    inter = len(label & pred)
    return inter / len(pred), inter / len(label), 2 * inter / (len(label) + len(pred))


@dataclass
class PrfResult:
    n: int
    precision: float
    recall: float
    f1: float
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def sample_average_prf(
    labels: Sequence[frozenset[str]],
    preds: Sequence[frozenset[str] | None],
    bootstrap: int = 0,
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> PrfResult:
    """Mean over samples of per-sample P, R, F1. A ``None`` prediction (task not answered) is skipped."""
    if len(labels) != len(preds):
        raise SchemaError(f"{len(preds)} predictions but {len(labels)} labels")
    keep = [i for i, p in enumerate(preds) if p is not None]
    if not keep:
        return PrfResult(0, float("nan"), float("nan"), float("nan"))
    vals = np.array([sample_prf(labels[i], preds[i]) for i in keep])  # type: ignore[arg-type]
    res = PrfResult(len(keep), *(float(v) for v in vals.mean(axis=0)))
    if bootstrap:
        g = [groups[i] for i in keep] if groups is not None else None
        for k, name in enumerate(("precision", "recall", "f1")):
            col = vals[:, k].tolist()
            res.ci[name] = bootstrap_ci(
                lambda a, _b: float(np.mean(a)), col, col, n=bootstrap, groups=g, seed=seed
            )
    return res


# --------------------------------------------------------------------------- bootstrap
def bootstrap_ci(
    fn: Callable[[Sequence, Sequence], float],
    a: Sequence,
    b: Sequence,
    n: int = 1000,
    alpha: float = 0.05,
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``fn(a, b)``; resamples whole groups (e.g. images) if given.

    Resamples on which ``fn`` is NaN (e.g. a constant resample) are dropped; with fewer than 10
    valid resamples the interval is (NaN, NaN).
    """
    rng = np.random.default_rng(seed)
    a_arr, b_arr = list(a), list(b)
    if groups is None:
        units = [[i] for i in range(len(a_arr))]
    else:
        by: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            by.setdefault(g, []).append(i)
        units = list(by.values())
    if not units:
        return float("nan"), float("nan")
    vals = []
    for _ in range(n):
        pick = rng.integers(0, len(units), len(units))
        idx = [i for u in pick for i in units[u]]
        v = fn([a_arr[i] for i in idx], [b_arr[i] for i in idx])
        if not math.isnan(v):
            vals.append(v)
    if len(vals) < 10:
        return float("nan"), float("nan")
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
