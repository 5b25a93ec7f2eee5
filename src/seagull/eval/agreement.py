"""The evaluation protocol's numbers: correlations, sample-average P/R/F1, per-type F1, confusion
matrices and bootstrap intervals. Correlations, set P/R/F1 and bootstrap intervals live in
:mod:`seagull.metrics.stats` (training validation uses them too; its docstring states the
conventions: NaN handling, the logistic PLCC, empty sets, severity items) and are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from ..errors import SchemaError
from ..labels import DISTORTION_TYPES
from ..metrics.stats import (
    CLEAN,
    CorrelationResult,
    PrfResult,
    bootstrap_ci,
    correlations,
    fit_logistic4,
    krcc,
    logistic4,
    plcc,
    plcc_logistic,
    sample_average_prf,
    sample_prf,
    severity_set,
    srcc,
    type_set,
)

__all__ = [
    "CLEAN",
    "TYPE_CLASSES",
    "CorrelationResult",
    "PrfResult",
    "auc",
    "bootstrap_ci",
    "confusion_matrix",
    "correlations",
    "fit_logistic4",
    "krcc",
    "level_accuracy",
    "logistic4",
    "per_class_f1",
    "plcc",
    "plcc_logistic",
    "sample_average_prf",
    "sample_prf",
    "severity_set",
    "srcc",
    "type_set",
]

TYPE_CLASSES: tuple[str, ...] = (*DISTORTION_TYPES, CLEAN)  # Table 2's columns


# --------------------------------------------------------------------------- sets
def per_class_f1(
    labels: Sequence[frozenset[str]],
    preds: Sequence[frozenset[str] | None],
    classes: Sequence[str] = TYPE_CLASSES,
) -> dict[str, float]:
    """One-vs-rest F1 of each class over samples (Table 2), plus their unweighted ``average``.

    A class that neither occurs in the labels nor is ever predicted has F1 NaN and is left out of
    the average.
    """
    out: dict[str, float] = {}
    pairs = [(y, p) for y, p in zip(labels, preds, strict=True) if p is not None]
    for c in classes:
        tp = sum(1 for y, p in pairs if c in y and c in p)
        fp = sum(1 for y, p in pairs if c not in y and c in p)
        fn = sum(1 for y, p in pairs if c in y and c not in p)
        out[c] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    vals = [v for v in out.values() if not math.isnan(v)]
    out["average"] = float(np.mean(vals)) if vals else float("nan")
    return out


# --------------------------------------------------------------------------- levels
def confusion_matrix(
    labels: Sequence[str | None], preds: Sequence[str | None], classes: Sequence[str]
) -> np.ndarray:
    """Counts with rows = label class, columns = predicted class; pairs with a None are skipped."""
    idx = {c: i for i, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for y, p in zip(labels, preds, strict=True):
        if y is None or p is None:
            continue
        if y not in idx or p not in idx:
            raise SchemaError(f"level {y if y not in idx else p!r} is not one of {tuple(classes)}")
        m[idx[y], idx[p]] += 1
    return m


def level_accuracy(
    labels: Sequence[str | None], preds: Sequence[str | None], classes: Sequence[str]
) -> dict[str, float]:
    """Exact and within-one-level accuracy of ordinal level words."""
    m = confusion_matrix(labels, preds, classes)
    n = int(m.sum())
    if n == 0:
        return {"n": 0, "exact": float("nan"), "within_one": float("nan")}
    i, j = np.indices(m.shape)
    return {"n": n, "exact": float(np.trace(m) / n), "within_one": float(m[np.abs(i - j) <= 1].sum() / n)}


# --------------------------------------------------------------------------- binary ranking
def auc(scores_pos: Sequence[float], scores_neg: Sequence[float]) -> float:
    """Probability that a positive scores higher than a negative (ties count half); Mann-Whitney AUC."""
    pos = np.asarray([v for v in scores_pos if v is not None and np.isfinite(v)], float)
    neg = np.asarray([v for v in scores_neg if v is not None and np.isfinite(v)], float)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    return float(u / (pos.size * neg.size))
