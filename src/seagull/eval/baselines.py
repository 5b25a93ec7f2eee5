"""Baselines that answer the ROI tasks without the model, computed on the same ROIs in the same run.

A predictor is anything with a ``name`` and ``predict(image, masks) -> list[dict]`` (one dict per
mask, see :class:`RoiPredictor`). Baselines return an *oriented* raw score per ROI (``score``:
higher = better quality, or for importance baselines higher = more important), plus their own
number under ``raw``. :class:`QuantileCalibration` then maps those scores onto the label scale
and the dataset's level words (quantile matching, see its docstring), so that every baseline
fills every column of the table it can.

Baselines:

* ``brisque``, ``niqe``, ``piqe``: classical NR metrics on the ROI's bounding-box crop.
* ``laplacian_var``, ``blur_effect``, ``hf_ratio``: sharpness heuristics inside the ROI mask shrunk
  by a few pixels (they detect blur; their distortion type is "blur").
* ``whole_brisque``: BRISQUE of the whole image, given to every ROI.
* ``fr_label``: the full-reference label metric itself (sees the reference; an upper bound).
* ``constant``: the floor. No ranking (correlations NaN); its levels and distortion sets are the
  most frequent ones of the labels.
* ``roi_area`` (importance): the ROI's share of the image; ``roi_center`` (importance): closeness
  of the ROI's centroid to the image centre. They show how much the labels follow size or position.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError
from ..metrics import nr
from ..schema import (
    DEFAULT_THRESHOLDS,
    Thresholds,
    importance_level,
    quality_level,
    severity_level,
)
from .predictions import PredictedDistortion, RoiPrediction

log = logging.getLogger(__name__)


@runtime_checkable
class RoiPredictor(Protocol):
    """What the evaluator calls: one dict per mask with any of the keys of :class:`RoiPrediction`
    (``quality``, ``quality_level``, ``importance``, ``importance_level``, ``distortions``, ``raw``)
    or, for uncalibrated baselines, ``score`` / ``importance_score``."""

    name: str

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[dict[str, Any]]: ...


RoiScore = Callable[[np.ndarray, np.ndarray], float]


def _crop_metric(metric: Callable[[np.ndarray], float]) -> RoiScore:
    def fn(image: np.ndarray, mask: np.ndarray) -> float:
        return metric(nr.bbox_crop(image, mask))

    return fn


def _masked_metric(metric: Callable[[np.ndarray, np.ndarray], float], shrink: int) -> RoiScore:
    def fn(image: np.ndarray, mask: np.ndarray) -> float:
        return metric(image, nr.shrink_mask(mask, shrink))

    return fn


@dataclass
class ScoreBaseline:
    """A per-ROI quality score; ``higher_is_better`` orients it, ``detects`` names the type it sees."""

    name: str
    fn: RoiScore
    higher_is_better: bool
    detects: str | None = None
    kind: str = "quality"  # or "importance"

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[dict[str, Any]]:
        out = []
        for m in masks:
            raw = float(self.fn(image, m))
            oriented = raw if self.higher_is_better else -raw
            key = "score" if self.kind == "quality" else "importance_score"
            out.append({key: oriented, "raw": {self.name: raw}})
        return out


@dataclass
class WholeImageBaseline:
    """A whole-image NR score given to every ROI of the image."""

    name: str
    metric: Callable[[np.ndarray], float]
    higher_is_better: bool

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[dict[str, Any]]:
        raw = float(self.metric(image))
        oriented = raw if self.higher_is_better else -raw
        return [{"score": oriented, "raw": {self.name: raw}} for _ in masks]


@dataclass
class ConstantBaseline:
    """The floor: the same answer for every ROI (filled in by the calibration's majority labels)."""

    name: str = "constant"

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[dict[str, Any]]:
        return [{"constant": True, "raw": {}} for _ in masks]


def _area_fraction(image: np.ndarray, mask: np.ndarray) -> float:
    return float(mask.sum() / mask.size)


def _centre_closeness(image: np.ndarray, mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    d = np.hypot((ys.mean() + 0.5) / h - 0.5, (xs.mean() + 0.5) / w - 0.5)
    return float(1.0 - d / np.hypot(0.5, 0.5))


@dataclass
class FullReferenceBaseline:
    """The label metric itself on (distorted, reference): an upper bound, it sees the reference."""

    metric: str | None = None
    name: str = "fr_label"

    def __post_init__(self) -> None:
        from ..metrics import fr  # owned by the data engine; checked by available_fr_baseline()

        self._fr = fr

    def predict_with_reference(
        self, image: np.ndarray, reference: np.ndarray, masks: list[np.ndarray]
    ) -> list[dict[str, Any]]:
        q = self._fr.roi_quality(reference, image, masks, metric=self.metric)
        imp = self._fr.roi_importance(reference, image, masks, metric=self.metric)
        return [
            {
                "quality": float(a),
                "importance": float(b),
                "raw": {"fr_quality": float(a), "fr_importance": float(b)},
            }
            for a, b in zip(q, imp, strict=True)
        ]


def available_fr_baseline(metric: str | None = None) -> FullReferenceBaseline | None:
    """The FR upper bound if ``seagull.metrics.fr`` is importable, else None (reason logged)."""
    try:
        return FullReferenceBaseline(metric)
    except ImportError as e:
        log.warning("fr_label baseline skipped: seagull.metrics.fr is not available (%s)", e)
        return None


BASELINE_NAMES: tuple[str, ...] = (
    "brisque",
    "niqe",
    "piqe",
    "laplacian_var",
    "blur_effect",
    "hf_ratio",
    "whole_brisque",
    "constant",
    "roi_area",
    "roi_center",
)


def make_baseline(name: str, shrink: int = nr.DEFAULT_SHRINK) -> RoiPredictor:
    """One baseline by name (see :data:`BASELINE_NAMES`; ``fr_label`` needs :func:`available_fr_baseline`)."""
    table: dict[str, Callable[[], RoiPredictor]] = {
        "brisque": lambda: ScoreBaseline("brisque", _crop_metric(nr.brisque), False),
        "niqe": lambda: ScoreBaseline("niqe", _crop_metric(nr.niqe), False),
        "piqe": lambda: ScoreBaseline("piqe", _crop_metric(nr.piqe), False),
        "laplacian_var": lambda: ScoreBaseline(
            "laplacian_var", _masked_metric(nr.laplacian_variance, shrink), True, "blur"
        ),
        "blur_effect": lambda: ScoreBaseline(
            "blur_effect", _masked_metric(nr.masked_blur_effect, shrink), False, "blur"
        ),
        "hf_ratio": lambda: ScoreBaseline(
            "hf_ratio", _masked_metric(nr.hf_energy_ratio, shrink), True, "blur"
        ),
        "whole_brisque": lambda: WholeImageBaseline("whole_brisque", nr.brisque, False),
        "constant": lambda: ConstantBaseline(),
        "roi_area": lambda: ScoreBaseline("roi_area", _area_fraction, True, kind="importance"),
        "roi_center": lambda: ScoreBaseline("roi_center", _centre_closeness, True, kind="importance"),
    }
    if name not in table:
        raise ConfigError(f"unknown baseline {name!r}; choose from {BASELINE_NAMES + ('fr_label',)}")
    return table[name]()


def detects(predictor: Any) -> str | None:
    return getattr(predictor, "detects", None)


# --------------------------------------------------------------------------- calibration
def quantile_map(scores: Sequence[float], targets: Sequence[float]) -> Callable[[float], float]:
    """Monotone map sending a score's rank among ``scores`` to the same quantile of ``targets``."""
    s = np.sort(np.asarray([v for v in scores if v is not None and np.isfinite(v)], float))
    t = np.sort(np.asarray([v for v in targets if v is not None and np.isfinite(v)], float))
    if s.size == 0 or t.size == 0:
        raise ConfigError("quantile calibration needs at least one finite score and one label")

    def f(x: float) -> float:
        if x is None or not np.isfinite(x):
            return float("nan")
        # rank of x among the calibration scores scaled to [0, 1] (ties: their mean rank; the lowest
        # score goes to the lowest label, the highest to the highest)
        lo, hi = np.searchsorted(s, x, "left"), np.searchsorted(s, x, "right")
        u = ((lo + hi - 1) / 2) / max(1, s.size - 1)
        return float(np.quantile(t, min(1.0, max(0.0, u))))

    return f


@dataclass
class QuantileCalibration:
    """Maps baseline scores onto labels by quantile matching, then onto the dataset's level words.

    Fitted on a calibration set of ROIs: their labels (quality, importance, distortion sets) and
    each baseline's scores on them. Quantile matching uses only the two marginal distributions,
    never the pairing of a score with its label, so it cannot change any rank correlation; it only
    decides where the level cut points fall. ``source`` says which ROIs were used (a held-out split,
    or the evaluated set's own label marginal when the dataset has no other split).
    Distortion sets: an ROI whose mapped damage ``1 - quality`` reaches ``thresholds.visible`` is
    predicted distorted, with the baseline's own type (``detects``) or else the most frequent
    labelled type, and severity ``severity_level(damage)``; otherwise clean.
    """

    quality_labels: list[float]
    importance_labels: list[float]
    type_sets: list[tuple[str, ...]]
    severity_sets: list[tuple[tuple[str, str], ...]]
    quality_levels: list[str]
    importance_levels: list[str]
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    source: str = "evaluated set (label marginal)"
    _maps: dict[str, Callable[[float], float]] = field(default_factory=dict)

    @property
    def majority_type(self) -> str | None:
        c = Counter(t for s in self.type_sets for t in s)
        return c.most_common(1)[0][0] if c else None

    def fit(self, name: str, scores: Sequence[float], kind: str = "quality") -> None:
        targets = self.quality_labels if kind == "quality" else self.importance_labels
        self._maps[f"{kind}:{name}"] = quantile_map(scores, targets)

    def apply(
        self, name: str, out: dict[str, Any], roi_id: str, detected: str | None = None
    ) -> RoiPrediction:
        """One predictor output dict -> a :class:`RoiPrediction` with levels and distortions."""
        th = self.thresholds
        raw = dict(out.get("raw", {}))
        if out.get("constant"):
            return self._constant(roi_id)
        pred = RoiPrediction(roi=roi_id, raw=raw)
        if "quality" in out and out["quality"] is not None:
            pred.quality = float(out["quality"])
        elif "score" in out:
            pred.quality = self._maps[f"quality:{name}"](out["score"])
        if "importance" in out and out["importance"] is not None:
            pred.importance = float(out["importance"])
        elif "importance_score" in out:
            pred.importance = self._maps[f"importance:{name}"](out["importance_score"])
        if pred.quality is not None and np.isfinite(pred.quality):
            pred.quality_level = out.get("quality_level") or quality_level(pred.quality, th)
        else:
            pred.quality = None
            pred.quality_level = out.get("quality_level")
        if "distortions" in out:
            # the predictor's own answer (None = not asked)
            d = out["distortions"]
            pred.distortions = (
                None
                if d is None
                else [x if isinstance(x, PredictedDistortion) else PredictedDistortion(**x) for x in d]
            )
        elif pred.quality is not None:
            damage = 1.0 - pred.quality
            t = detected or self.majority_type
            if damage >= th.visible and t is not None:
                pred.distortions = [PredictedDistortion(t, None, severity_level(damage, th), damage)]
            else:
                pred.distortions = []
        if pred.importance is not None and np.isfinite(pred.importance):
            pred.importance_level = out.get("importance_level") or importance_level(pred.importance, th)
        else:
            pred.importance = None
            pred.importance_level = out.get("importance_level")
        return pred

    def _constant(self, roi_id: str) -> RoiPrediction:
        def mode(xs: Sequence[Any]) -> Any:
            return Counter(xs).most_common(1)[0][0] if xs else None

        types = mode(self.type_sets) or ()
        sev = dict(mode(self.severity_sets) or ())
        dists = [PredictedDistortion(t, None, sev.get(t)) for t in types]
        return RoiPrediction(
            roi=roi_id,
            quality_level=mode(self.quality_levels),
            importance_level=mode(self.importance_levels),
            distortions=dists,
            raw={},
        )
