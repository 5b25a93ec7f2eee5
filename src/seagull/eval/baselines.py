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

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError
from ..labels import DEFAULT_THRESHOLDS, Thresholds, importance_level, quality_level, severity_level
from ..metrics import nr
from ..region_prediction import DistortionPrediction, RegionPrediction
from ..registry import Registry

log = logging.getLogger(__name__)


@runtime_checkable
class RoiPredictor(Protocol):
    """What the evaluator calls: one :class:`RegionPrediction` per mask (named ``r0``, ``r1``, ...);
    uncalibrated baselines give ``quality_uncalibrated`` / ``importance_uncalibrated``."""

    name: str

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[RegionPrediction]: ...


def model_list(models: RoiPredictor | Sequence[RoiPredictor] | None) -> list[RoiPredictor]:
    """None, one predictor or several -> a list (the evaluators take any of the three)."""
    if models is None:
        return []
    if isinstance(models, RoiPredictor):
        return [models]
    return list(models)


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
    """A per-ROI quality score; ``higher_is_better`` orients it, ``distortion_type`` names the type it
    sees."""

    name: str
    fn: RoiScore
    higher_is_better: bool
    distortion_type: str | None = None
    kind: str = "quality"  # or "importance"

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[RegionPrediction]:
        out = []
        for i, m in enumerate(masks):
            raw = float(self.fn(image, m))
            oriented = raw if self.higher_is_better else -raw
            out.append(
                RegionPrediction(f"r{i}", raw={self.name: raw}, **{f"{self.kind}_uncalibrated": oriented})
            )
        return out


@dataclass
class WholeImageBaseline:
    """A whole-image NR score given to every ROI of the image."""

    name: str
    metric: Callable[[np.ndarray], float]
    higher_is_better: bool

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[RegionPrediction]:
        raw = float(self.metric(image))
        oriented = raw if self.higher_is_better else -raw
        return [
            RegionPrediction(f"r{i}", quality_uncalibrated=oriented, raw={self.name: raw})
            for i in range(len(masks))
        ]


@dataclass
class ConstantBaseline:
    """The floor: the same answer for every ROI (filled in by the calibration's majority labels)."""

    name: str = "constant"

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[RegionPrediction]:
        return [RegionPrediction(f"r{i}") for i in range(len(masks))]


def roi_area_share(image: np.ndarray, mask: np.ndarray) -> float:
    """The ROI's share of the image's pixels."""
    return float(mask.sum() / mask.size)


def roi_centre_closeness(image: np.ndarray, mask: np.ndarray) -> float:
    """1 at the image centre, 0 at a corner: how close the ROI's centroid is to the centre."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    d = np.hypot((ys.mean() + 0.5) / h - 0.5, (xs.mean() + 0.5) / w - 0.5)
    return round(1.0 - float(d / np.hypot(0.5, 0.5)), 6)  # rounded: the whole image is exactly 1


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
    ) -> list[RegionPrediction]:
        q = self._fr.roi_quality(reference, image, masks, metric=self.metric)
        imp = self._fr.roi_importance(reference, image, masks, metric=self.metric)
        return [
            RegionPrediction(
                f"r{i}",
                quality=float(a),
                importance=float(b),
                raw={"fr_quality": float(a), "fr_importance": float(b)},
            )
            for i, (a, b) in enumerate(zip(q, imp, strict=True))
        ]


def available_fr_baseline(metric: str | None = None) -> FullReferenceBaseline | None:
    """The FR upper bound if ``seagull.metrics.fr`` is importable, else None (reason logged)."""
    try:
        return FullReferenceBaseline(metric)
    except ImportError as e:
        log.warning("fr_label baseline skipped: seagull.metrics.fr is not available (%s)", e)
        return None


@dataclass(frozen=True)
class BaselineInfo:
    """A registered baseline: how to build it and how to read its raw number."""

    name: str
    build: Callable[[int], RoiPredictor]  # pixels the ROI mask is shrunk by -> the predictor
    task: str  # "quality", "importance", or "levels" (the constant floor)
    description: str
    higher_is_better: bool | None = None  # orientation of the raw number; None: it gives none
    value_range: tuple[float, float | None] | None = None  # nominal; None as the top = unbounded
    distortion_type: str | None = None  # the distortion type it is specific to (None: general quality)
    reads_pixels: bool = True  # False: it sees the mask's geometry only


BASELINES: Registry[BaselineInfo] = Registry("baseline")


def _metric_baseline(name: str, metric: str, description: str, whole_image: bool = False) -> BaselineInfo:
    """A quality baseline from a registered NR metric: on the ROI's crop or inside its shrunk mask
    (as the metric takes), or on the whole image; orientation, range and type are the metric's."""
    m = nr.get_nr_metric(metric)

    def build(shrink: int) -> RoiPredictor:
        if whole_image:
            return WholeImageBaseline(name, m.fn, m.higher_is_better)
        roi_fn = _masked_metric(m.fn, shrink) if m.takes == "mask" else _crop_metric(m.fn)
        return ScoreBaseline(name, roi_fn, m.higher_is_better, m.distortion_type)

    return BaselineInfo(
        name, build, "quality", description, m.higher_is_better, m.value_range, m.distortion_type
    )


def _geometry_baseline(name: str, fn: RoiScore, description: str) -> BaselineInfo:
    """An importance baseline from the mask alone; higher = more important, in [0, 1]."""

    def build(shrink: int) -> RoiPredictor:
        return ScoreBaseline(name, fn, True, kind="importance")

    return BaselineInfo(name, build, "importance", description, True, (0.0, 1.0), reads_pixels=False)


for _info in (
    _metric_baseline("brisque", "brisque", "BRISQUE on the ROI's bounding-box crop"),
    _metric_baseline("niqe", "niqe", "NIQE on the ROI's bounding-box crop"),
    _metric_baseline("piqe", "piqe", "PIQE on the ROI's bounding-box crop"),
    _metric_baseline("laplacian_var", "laplacian_variance", "variance of the Laplacian in the shrunk mask"),
    _metric_baseline("blur_effect", "masked_blur_effect", "skimage's blur effect in the shrunk mask"),
    _metric_baseline("hf_ratio", "hf_energy_ratio", "high-frequency share of variance in the shrunk mask"),
    _metric_baseline("whole_brisque", "brisque", "BRISQUE of the whole image, given to every ROI", True),
    BaselineInfo(
        "constant",
        lambda shrink: ConstantBaseline(),
        "levels",
        "the floor: the labels' most frequent level words and distortion set",
    ),
    _geometry_baseline("roi_area", roi_area_share, "the ROI's share of the image"),
    _geometry_baseline(
        "roi_center", roi_centre_closeness, "closeness of the ROI's centroid to the image centre"
    ),
):
    BASELINES.add(_info)


def list_baselines(reads_pixels: bool | None = None) -> tuple[str, ...]:
    """Names of the registered baselines (only those that do or do not read pixels, if given).
    ``fr_label`` is not among them: it needs the reference (see :func:`available_fr_baseline`)."""
    return tuple(b.name for b in BASELINES.entries() if reads_pixels in (None, b.reads_pixels))


def get_baseline(name: str) -> BaselineInfo:
    """The registry entry of baseline ``name``."""
    return BASELINES.get(name)


def make_baseline(name: str, shrink: int = nr.DEFAULT_SHRINK) -> RoiPredictor:
    """One baseline by name (see :func:`list_baselines`; ``fr_label`` needs :func:`available_fr_baseline`)."""
    return get_baseline(name).build(shrink)


BASELINE_COLUMNS = ["baseline", "task", "raw number", "range", "type", "what it is"]


def _orientation(b: BaselineInfo) -> str:
    if b.higher_is_better is None:
        return "-"
    good = "more important" if b.task == "importance" else "better"
    return f"{'higher' if b.higher_is_better else 'lower'} = {good}"


def _range(value_range: tuple[float, float | None] | None) -> str:
    if value_range is None:
        return "-"
    lo, hi = value_range
    return f"{lo:g} .. {'inf' if hi is None else f'{hi:g}'}"


def baseline_rows(names: Sequence[str]) -> list[list[str]]:
    """Table rows (:data:`BASELINE_COLUMNS`) describing the registered baselines among ``names``."""
    return [
        [
            b.name,
            b.task,
            _orientation(b),
            _range(b.value_range),
            b.distortion_type or "-",
            b.description,
        ]
        for b in (BASELINES.get(n) for n in names if n in BASELINES)
    ]


def distortion_type_of(predictor: Any) -> str | None:
    return getattr(predictor, "distortion_type", None)


def is_constant(predictor: Any) -> bool:
    """Whether the calibration answers for ``predictor`` with the labels' most frequent answers."""
    return isinstance(predictor, ConstantBaseline)


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
    predicted distorted, with the baseline's own type (``distortion_type``) or else the most frequent
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
        self,
        name: str,
        out: RegionPrediction,
        roi_id: str,
        distortion_type: str | None = None,
        constant: bool = False,
    ) -> RegionPrediction:
        """One predictor's answer for ROI ``roi_id`` with levels and distortions filled in: uncalibrated
        scores mapped onto the labels, missing levels and (from the quality) distortions derived;
        ``constant``: the labels' most frequent answers."""
        if constant:
            return self._constant(roi_id)
        th = self.thresholds
        pred = dataclasses.replace(out, name=roi_id, raw=dict(out.raw))
        if pred.quality is None and out.quality_uncalibrated is not None:
            pred.quality = self._maps[f"quality:{name}"](out.quality_uncalibrated)
        if pred.importance is None and out.importance_uncalibrated is not None:
            pred.importance = self._maps[f"importance:{name}"](out.importance_uncalibrated)
        if pred.quality is not None and np.isfinite(pred.quality):
            pred.quality_level = pred.quality_level or quality_level(pred.quality, th)
        else:
            pred.quality = None
        if pred.distortions is None and pred.quality is not None:
            damage = 1.0 - pred.quality
            t = distortion_type or self.majority_type
            if damage >= th.visible and t is not None:
                level = severity_level(damage, th)
                pred.distortions = [DistortionPrediction(t, severity_level=level, severity=damage)]
            else:
                pred.distortions = []
        if pred.importance is not None and np.isfinite(pred.importance):
            pred.importance_level = pred.importance_level or importance_level(pred.importance, th)
        else:
            pred.importance = None
        return pred

    def _constant(self, roi_id: str) -> RegionPrediction:
        def mode(xs: Sequence[Any]) -> Any:
            return Counter(xs).most_common(1)[0][0] if xs else None

        types = mode(self.type_sets) or ()
        sev = dict(mode(self.severity_sets) or ())
        dists = [DistortionPrediction(t, severity_level=sev.get(t)) for t in types]
        return RegionPrediction(
            roi_id,
            quality_level=mode(self.quality_levels),
            importance_level=mode(self.importance_levels),
            distortions=dists,
            raw={},
        )
