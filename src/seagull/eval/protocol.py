"""Score predictions against ROI labels with the paper's protocol and lay out the table.

Both the synthetic evaluation and a folder of earlier predictions come through
:func:`score_predictor`: labels and predictions are paired by (sample id, ROI id).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..display import printable
from ..errors import SchemaError
from ..labels import IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS
from ..records import RoiRecord, SampleRecord
from ..region_prediction import RegionPrediction
from . import agreement as M
from .predictions import SamplePrediction


@dataclass(frozen=True)
class RoiLabel:
    sample_id: str
    roi_id: str
    group: str  # resampling unit for the bootstrap (the reference photo)
    quality: float | None
    quality_level: str | None
    importance: float | None
    importance_level: str | None
    types: tuple[str, ...]
    severities: tuple[tuple[str, str], ...]


def labels_from_record(rec: SampleRecord) -> list[RoiLabel]:
    return [label_from_roi(rec, r) for r in rec.rois]


def label_from_roi(rec: SampleRecord, r: RoiRecord) -> RoiLabel:
    return RoiLabel(
        rec.id,
        r.id,
        rec.reference,
        r.quality,
        r.quality_level,
        r.importance,
        r.importance_level,
        tuple(sorted({d.type for d in r.distortions})),
        tuple(sorted({(d.type, d.severity_level) for d in r.distortions})),
    )


def pair_up(
    labels: Sequence[RoiLabel], preds: dict[str, SamplePrediction]
) -> tuple[list[RoiLabel], list[RegionPrediction | None]]:
    """Each label with its prediction (None when the predictor has no answer for that ROI)."""
    out: list[RegionPrediction | None] = []
    for lab in labels:
        sp = preds.get(lab.sample_id)
        match = None
        if sp is not None:
            match = next((r for r in sp.rois if r.name == lab.roi_id), None)
        out.append(match)
    return list(labels), out


# A predictor that gives a usable (finite) answer for fewer than this share of the labelled ROIs of a
# task it answers (NIQE on flat regions, NaN in a prediction file) is marked in the tables and the
# report: its numbers describe only the ROIs it answered, which are not the set the others are scored on.
COVERAGE_WARN = 0.9


@dataclass
class PredictorScores:
    name: str
    n_rois: int  # labelled ROIs
    # Share of the labelled ROIs with a usable answer, in the task the predictor covers worst (the
    # minimum of ``coverage_by_task``); 0 when it answers no task.
    coverage: float
    quality: M.CorrelationResult | None = None
    importance: M.CorrelationResult | None = None
    quality_levels: dict[str, float] = field(default_factory=dict)
    importance_levels: dict[str, float] = field(default_factory=dict)
    type_prf: M.PrfResult | None = None
    severity_prf: M.PrfResult | None = None
    # severity level of each labelled distortion the predictor names: exact / within one level, n
    severity_levels: dict[str, float] = field(default_factory=dict)
    type_f1: dict[str, float] = field(default_factory=dict)
    confusion: dict[str, Any] = field(default_factory=dict)
    # Per task the predictor answers (quality, importance, distortion): labelled ROIs its numbers use,
    # and their share of the ROIs labelled for that task.
    n_used: dict[str, int] = field(default_factory=dict)
    n_labelled: dict[str, int] = field(default_factory=dict)
    coverage_by_task: dict[str, float] = field(default_factory=dict)

    @property
    def low_coverage(self) -> bool:
        return self.coverage < COVERAGE_WARN

    @property
    def n_main(self) -> int:
        """ROIs the main table's quality columns use (the distortion columns' for a predictor without
        a quality answer)."""
        return self.n_used.get("quality", self.n_used.get("distortion", 0))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "n_rois": self.n_rois,
            "coverage": self.coverage,
            "coverage_by_task": self.coverage_by_task,
            "n_used": self.n_used,
            "n_labelled": self.n_labelled,
            "low_coverage": self.low_coverage,
        }
        for k in ("quality", "importance", "type_prf", "severity_prf"):
            v = getattr(self, k)
            d[k] = None if v is None else v.to_dict()
        d["quality_levels"] = self.quality_levels
        d["importance_levels"] = self.importance_levels
        d["severity_levels"] = self.severity_levels
        d["type_f1"] = self.type_f1
        d["confusion"] = self.confusion
        return d


def _any(xs: Sequence[Any]) -> bool:
    return any(x is not None for x in xs)


def score_predictor(
    name: str,
    labels: Sequence[RoiLabel],
    preds: dict[str, SamplePrediction],
    bootstrap: int = 0,
    seed: int = 0,
) -> PredictorScores:
    """All protocol numbers for one predictor; tasks it never answers stay None."""
    if not labels:
        raise SchemaError("no labelled ROIs to evaluate against")
    labs, ps = pair_up(labels, preds)
    groups = [lab.group for lab in labs]
    res = PredictorScores(name, len(labs), 0.0)

    q_pred = [p.quality if p else None for p in ps]
    if _any(q_pred):
        res.quality = M.correlations(q_pred, [lab.quality for lab in labs], bootstrap, groups, seed)
    i_pred = [p.importance if p else None for p in ps]
    if _any(i_pred):
        res.importance = M.correlations(i_pred, [lab.importance for lab in labs], bootstrap, groups, seed)

    ql_pred = [p.quality_level if p else None for p in ps]
    if _any(ql_pred):
        ql_lab = [lab.quality_level for lab in labs]
        res.quality_levels = M.level_accuracy(ql_lab, ql_pred, QUALITY_LEVELS)
        res.confusion["quality"] = M.confusion_matrix(ql_lab, ql_pred, QUALITY_LEVELS).tolist()
    il_pred = [p.importance_level if p else None for p in ps]
    if _any(il_pred):
        il_lab = [lab.importance_level for lab in labs]
        res.importance_levels = M.level_accuracy(il_lab, il_pred, IMPORTANCE_LEVELS)
        res.confusion["importance"] = M.confusion_matrix(il_lab, il_pred, IMPORTANCE_LEVELS).tolist()

    t_pred = [None if (p is None or p.type_set is None) else M.type_set(p.type_set) for p in ps]
    if _any(t_pred):
        t_lab = [M.type_set(lab.types) for lab in labs]
        res.type_prf = M.sample_average_prf(t_lab, t_pred, bootstrap, groups, seed)
        res.type_f1 = M.per_class_f1(t_lab, t_pred)
        res.confusion["type_primary"] = _primary_confusion(t_lab, t_pred)
        s_pred = [
            None if (p is None or p.severity_pairs is None) else M.severity_set(p.severity_pairs) for p in ps
        ]
        s_lab = [M.severity_set(lab.severities) for lab in labs]
        res.severity_prf = M.sample_average_prf(s_lab, s_pred, bootstrap, groups, seed)
        res.severity_levels = named_severity_accuracy(labs, ps)
    _set_coverage(res, labs)
    return res


def _set_coverage(res: PredictorScores, labels: Sequence[RoiLabel]) -> None:
    """``n_used`` and ``coverage_by_task`` from the numbers each task's metrics were computed on (a
    null, NaN or infinite answer is no answer: the correlations drop it), and ``coverage``."""
    labelled = {
        "quality": sum(1 for lab in labels if _finite(lab.quality)),
        "importance": sum(1 for lab in labels if _finite(lab.importance)),
        "distortion": len(labels),
    }
    used = {
        "quality": res.quality.n if res.quality else None,
        "importance": res.importance.n if res.importance else None,
        "distortion": res.type_prf.n if res.type_prf else None,
    }
    res.n_used = {task: n for task, n in used.items() if n is not None}
    res.n_labelled = {task: labelled[task] for task in res.n_used}
    res.coverage_by_task = {
        task: n / labelled[task] if labelled[task] else 0.0 for task, n in res.n_used.items()
    }
    res.coverage = min(res.coverage_by_task.values(), default=0.0)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def named_severity_accuracy(
    labels: Sequence[RoiLabel], preds: Sequence[SamplePrediction | None]
) -> dict[str, float]:
    """Exact and within-one-level accuracy of the severity the predictor gives each labelled distortion
    it names (a distortion it does not name has no severity to compare; type F1 counts those)."""
    truth, given = [], []
    for lab, p in zip(labels, preds, strict=True):
        named = dict(p.severity_pairs) if p is not None and p.severity_pairs else {}
        for t, sev in lab.severities:
            if t in named:
                truth.append(sev)
                given.append(named[t])
    return M.level_accuracy(truth, given, SEVERITY_LEVELS)


def _primary_confusion(
    labels: Sequence[frozenset[str]], preds: Sequence[frozenset[str] | None]
) -> dict[str, Any]:
    """Confusion of single-type samples: rows the labelled type (or clean), columns the predicted set
    when it holds one type (or clean), else "multi"."""
    cols = [*M.TYPE_CLASSES, "multi"]
    mat = [[0] * len(cols) for _ in M.TYPE_CLASSES]
    for y, p in zip(labels, preds, strict=True):
        if p is None or len(y) != 1:
            continue
        r = M.TYPE_CLASSES.index(next(iter(y)))
        c = cols.index(next(iter(p))) if len(p) == 1 else cols.index("multi")
        mat[r][c] += 1
    return {"rows": list(M.TYPE_CLASSES), "cols": cols, "counts": mat}


# --------------------------------------------------------------------------- tables
def _f(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.2f}"


MAIN_COLUMNS = (
    "predictor",
    "n",
    "cov %",
    "Q SRCC",
    "Q PLCC",
    "Q PLCC(log)",
    "Q KRCC",
    "I SRCC",
    "I PLCC",
    "Q lvl acc",
    "Sev P",
    "Sev R",
    "Sev F1",
    "Type P",
    "Type R",
    "Type F1",
)


def main_row(s: PredictorScores) -> list[str]:
    q, i = s.quality, s.importance
    sp, tp = s.severity_prf, s.type_prf
    return [
        s.name,
        str(s.n_main),
        coverage_cell(s),
        _f(q.srcc if q else None),
        _f(q.plcc if q else None),
        _f(q.plcc_logistic if q else None),
        _f(q.krcc if q else None),
        _f(i.srcc if i else None),
        _f(i.plcc if i else None),
        _pct(s.quality_levels.get("exact")),
        _pct(sp.precision if sp else None),
        _pct(sp.recall if sp else None),
        _pct(sp.f1 if sp else None),
        _pct(tp.precision if tp else None),
        _pct(tp.recall if tp else None),
        _pct(tp.f1 if tp else None),
    ]


def coverage_cell(s: PredictorScores) -> str:
    """The share of labelled ROIs a predictor's numbers use, marked ``*`` under :data:`COVERAGE_WARN`."""
    return f"{100 * s.coverage:.1f}" + ("*" if s.low_coverage else "")


def coverage_notes(scores: Sequence[PredictorScores]) -> list[str]:
    """One line per predictor under :data:`COVERAGE_WARN` saying what its numbers cover (none: [])."""
    notes = []
    for s in scores:
        if not s.low_coverage:
            continue
        tasks = ", ".join(
            f"{task} {s.n_used[task]} of {s.n_labelled[task]} ({100 * c:.1f} %)"
            for task, c in s.coverage_by_task.items()
        )
        notes.append(
            f"* {printable(s.name)}: usable answers for under {100 * COVERAGE_WARN:.0f} % of the labelled ROIs "
            f"({tasks or 'no task answered'}); its numbers use only those ROIs and are not comparable "
            "with the others'"
        )
    return notes


def type_row(s: PredictorScores) -> list[str]:
    return [s.name] + [_pct(s.type_f1.get(c)) for c in (*M.TYPE_CLASSES, "average")]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    rows = [[printable(x) for x in r] for r in rows]  # predictor and photo names come from files
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if k == 0 else f"{{:>{w}}}" for k, w in enumerate(widths))
    return "\n".join(
        [fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in rows]
    )
