"""Within-photo pair accuracy: of two regions of one photo whose quality differs, is the worse one
rated lower?

This is the question users ask first ("which region of this photo looks worse?"). A pair is two ROIs
of the same image whose quality labels differ by at least ``margin``; the predictor orders it right
when it rates the worse-labelled ROI lower (a tie counts half). Pairs where the predictor has no
number for either ROI are left out. Accuracy is reported pooled and per stratum (distortion family,
strength band, layout, ...), with percentile bootstrap intervals that resample whole photos
(:func:`seagull.eval.agreement.bootstrap_ci`), since pairs of one photo are not independent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..distortions import NUM_SETTINGS
from ..errors import ConfigError
from ..records import SampleRecord
from ..region_prediction import RegionPrediction
from . import agreement as M
from .suites import quality_of

DEFAULT_MARGIN = 0.05
STRENGTH_BANDS: tuple[str, ...] = ("weak", "medium", "strong")


def strength_band(setting: int, num_settings: int) -> str:
    """The third of the strength ladder a setting falls in (of 20: 1-7 weak, 8-14 medium, 15-20 strong)."""
    if not 1 <= setting <= num_settings:
        raise ConfigError(f"setting {setting} is outside 1..{num_settings}")
    return STRENGTH_BANDS[min(len(STRENGTH_BANDS) - 1, (setting - 1) * len(STRENGTH_BANDS) // num_settings)]


def order_outcome(worse: float | None, better: float | None) -> float | None:
    """1 if the worse region is rated lower, 0.5 for a tie, 0 if rated higher; None without both numbers."""
    if worse is None or better is None or not (math.isfinite(worse) and math.isfinite(better)):
        return None
    return 1.0 if worse < better else 0.5 if worse == better else 0.0


def labelled_pairs(labels: Sequence[float | None], margin: float = DEFAULT_MARGIN) -> list[tuple[int, int]]:
    """(worse, better) index pairs of one image's ROIs whose labels differ by at least ``margin``."""
    if not margin >= 0:
        raise ConfigError(f"pair margin must be a number >= 0, got {margin!r}")
    out = []
    for i, a in enumerate(labels):
        for j in range(i + 1, len(labels)):
            b = labels[j]
            if a is None or b is None or abs(a - b) < margin or a == b:
                continue
            out.append((i, j) if a < b else (j, i))
    return out


@dataclass(frozen=True)
class PairOutcome:
    """One judged pair: the photo it comes from (the bootstrap unit), its strata and its outcome."""

    group: str
    outcome: float
    strata: tuple[tuple[str, str], ...] = ()

    def stratum(self, key: str) -> str | None:
        return dict(self.strata).get(key)


@dataclass
class PairAccuracy:
    n_pairs: int
    n_photos: int
    accuracy: float
    ci: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_pairs": self.n_pairs,
            "n_photos": self.n_photos,
            "accuracy": self.accuracy,
            "ci95": None if self.ci is None else list(self.ci),
        }


def pair_accuracy(outcomes: Sequence[PairOutcome], bootstrap: int = 0, seed: int = 0) -> PairAccuracy:
    """Mean outcome over pairs (NaN for none) with a bootstrap interval over photos when asked."""
    vals = [o.outcome for o in outcomes]
    groups = [o.group for o in outcomes]
    acc = float(np.mean(vals)) if vals else float("nan")
    ci = None
    if bootstrap and vals:
        ci = M.bootstrap_ci(
            lambda a, _b: float(np.mean(a)), vals, vals, n=bootstrap, groups=groups, seed=seed
        )
    return PairAccuracy(len(vals), len(set(groups)), acc, ci)


@dataclass
class PairSummary:
    """Pair accuracy pooled and per value of each stratum key."""

    margin: float
    pooled: PairAccuracy
    by: dict[str, dict[str, PairAccuracy]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "margin": self.margin,
            "pooled": self.pooled.to_dict(),
            "by": {k: {v: a.to_dict() for v, a in d.items()} for k, d in self.by.items()},
        }


def summarize(
    outcomes: Sequence[PairOutcome],
    keys: Sequence[str],
    margin: float = DEFAULT_MARGIN,
    bootstrap: int = 0,
    seed: int = 0,
) -> PairSummary:
    """Pooled accuracy and accuracy per value of each of ``keys`` (values in first-seen order)."""
    res = PairSummary(margin, pair_accuracy(outcomes, bootstrap, seed))
    for key in keys:
        values = list(dict.fromkeys(v for o in outcomes if (v := o.stratum(key)) is not None))
        res.by[key] = {
            v: pair_accuracy([o for o in outcomes if o.stratum(key) == v], bootstrap, seed) for v in values
        }
    return res


def image_pair_outcomes(
    group: str,
    labels: Sequence[float | None],
    predicted: Sequence[float | None],
    strata: Mapping[str, str],
    margin: float = DEFAULT_MARGIN,
) -> list[PairOutcome]:
    """Outcomes of every labelled pair of one image's ROIs (labels and predictions in ROI order)."""
    st = tuple(strata.items())
    out = []
    for w, b in labelled_pairs(labels, margin):
        r = order_outcome(predicted[w], predicted[b])
        if r is not None:
            out.append(PairOutcome(group, r, st))
    return out


# --------------------------------------------------------------------------- synthetic datasets
SYNTHETIC_KEYS: tuple[str, ...] = ("family", "band", "scope")


def record_strata(rec: SampleRecord) -> dict[str, str]:
    """A dataset record's strata: its distortion family, the strength band of its setting, its scope."""
    d = rec.distortion
    family = d.get("family") or "none"
    setting = d.get("setting") or 0
    band = strength_band(setting, d.get("num_settings") or NUM_SETTINGS) if setting else "none"
    return {"family": family, "band": band, "scope": d.get("scope") or "global"}


def records_pair_summaries(
    records: Sequence[SampleRecord],
    outputs: Mapping[str, Mapping[str, Sequence[RegionPrediction]]],
    margin: float = DEFAULT_MARGIN,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, PairSummary]:
    """Each predictor's pair accuracy over the records' labelled ROIs, from its raw outputs
    (``{predictor: {record id: [per-ROI predictions]}}``): a calibrated ``quality`` or else the
    oriented ``quality_uncalibrated``, so that a baseline's ranks are used as they are (a quantile map
    could tie them)."""
    res = {}
    for name, by_id in outputs.items():
        outcomes: list[PairOutcome] = []
        for rec in records:
            outs = by_id.get(rec.id)
            if outs is None:
                continue
            labels = [r.quality for r in rec.rois]
            predicted = [quality_of(o) for o in outs]
            outcomes += image_pair_outcomes(rec.reference, labels, predicted, record_strata(rec), margin)
        res[name] = summarize(outcomes, SYNTHETIC_KEYS, margin, bootstrap, seed)
    return res


# --------------------------------------------------------------------------- tables
def ci_cell(a: PairAccuracy | None) -> str | None:
    """The 95% interval as ``[lo, hi]``, or None without one."""
    if a is None or a.ci is None or math.isnan(a.ci[0]):
        return None
    return f"[{a.ci[0]:.2f}, {a.ci[1]:.2f}]"


def accuracy_cell(a: PairAccuracy | None) -> str:
    """The accuracy with its interval, e.g. ``0.631 [0.58, 0.69]``; "-" without pairs."""
    if a is None or a.n_pairs == 0 or math.isnan(a.accuracy):
        return "-"
    ci = ci_cell(a)
    return f"{a.accuracy:.3f}" + (f" {ci}" if ci else "")


def summary_table(
    summaries: Mapping[str, PairSummary], key: str, values: Iterable[str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per predictor, the pooled accuracy then one column per value of ``key``."""
    if values is None:
        values = list(dict.fromkeys(v for s in summaries.values() for v in s.by.get(key, {})))
    values = list(values)
    header = ["predictor", "pairs", "pooled", *values]
    rows = [
        [name, str(s.pooled.n_pairs), accuracy_cell(s.pooled)]
        + [accuracy_cell(s.by.get(key, {}).get(v)) for v in values]
        for name, s in summaries.items()
    ]
    return header, rows


def pair_tables(
    summaries: Mapping[str, PairSummary],
    keys: Sequence[str],
    render: Callable[[Sequence[str], Any], str],
    title: str = "[{}]",
) -> str:
    """One table per stratum key under the line ``title.format(key)``, rendered by ``render(header, rows)``."""
    parts = []
    for key in keys:
        header, rows = summary_table(summaries, key)
        parts += [title.format(key), "", render(header, rows), ""]
    return "\n".join(parts).rstrip()
