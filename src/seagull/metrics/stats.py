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
