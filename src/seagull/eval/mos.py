"""``seagull eval --suite mos``: whole-photo quality against people's scores, on a folder written by
``seagull data mos`` (any human-rated set: BIQ2021, the CUHK photos' PaQ-2-PiQ MOS, ...).

Every predictor (the model(s), NIQE, BRISQUE, PIQE, the sharpness heuristics) is given the whole photo
as its one ROI, as ``--suite cuhk`` does for its MOS column. Its quality number (the model's calibrated
answer; a baseline's raw score oriented by its metric's direction, higher = better) is compared with
the normalised MOS (higher = better, so a lower-is-better scale keeps the sign) by
:func:`seagull.metrics.stats.mos_agreement`: SRCC and KRCC on the raw numbers, PLCC and RMSE after the
4-parameter logistic fitted on the evaluated photos (a linear fit where it does not converge, named in
the ``fit`` column), with percentile bootstrap 95 % intervals over photos. RMSE is in the set's own MOS
units. ``coverage`` is the share of the evaluated photos the predictor gave a number for (NIQE has none
on a flat photo). Per group (BIQ2021's subsets, CUHK's blur types) a second table gives SRCC and PLCC.

``--split`` (default test) picks the records, ``--limit N`` a fixed pseudo-random subset of them
(nested: a larger limit extends a smaller one). Saved outputs are keyed by record id, so a run resumes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..authentic import MOS_CONVERTER, mos_of
from ..errors import ImageLoadError, SchemaError, SeagullError
from ..imageio import load_image
from ..metrics.stats import MosAgreement, mos_agreement
from ..records import SampleRecord, iter_records, read_card
from ..splits import SPLITS, item_seed
from .baselines import BASELINES, RoiPredictor
from .journal import RunJournal, progress_bar
from .predictors import AssessorPredictor
from .suites import SuiteResult, quality_of

MOS_COLUMNS = [
    "predictor",
    "n",
    "coverage",
    "srcc",
    "srcc_ci95",
    "krcc",
    "plcc",
    "plcc_ci95",
    "rmse",
    "rmse_ci95",
    "fit",
]
GROUP_COLUMNS = ["predictor", "group", "n", "srcc", "plcc"]
SPLIT_CHOICES = (*SPLITS, "all")


def read_mos_folder(root: Path, split: str = "test") -> tuple[dict[str, Any], list[SampleRecord]]:
    """The card and the records of ``split`` ("all": every record) of a ``seagull data mos`` folder."""
    root = Path(root)
    card = read_card(root)
    if card.get("sources", {}).get("converter") != MOS_CONVERTER:
        raise SchemaError(
            f"{root} was not written by `{MOS_CONVERTER}` (its card names no MOS import); import the set "
            "with `seagull data mos` first (docs/labels.md, section 11)"
        )
    if split not in SPLIT_CHOICES:
        raise SchemaError(f"--split {split!r} is not one of {', '.join(SPLIT_CHOICES)}")
    records = list(iter_records(root, None if split == "all" else split))
    if not records:
        have = card.get("counts", {}).get("per_split", {})
        raise SchemaError(
            f"{root}: no records in split {split!r}; its records are in splits "
            f"{', '.join(f'{k} {v}' for k, v in have.items()) or 'none'}: choose one with --split"
        )
    return card, records


def limited(records: Sequence[SampleRecord], limit: int | None) -> list[SampleRecord]:
    """``limit`` records spread over the set (ordered by a hash of their id), or all of them."""
    if not limit:
        return list(records)
    return sorted(records, key=lambda r: item_seed(0, "mos-limit", r.id))[:limit]


def _quality_only(p: RoiPredictor) -> RoiPredictor:
    """The model asked the quality question only (the suite reads nothing else; the answer is the same)."""
    if isinstance(p, AssessorPredictor) and tuple(p.tasks) != ("quality",):
        return dataclasses.replace(p, tasks=("quality",))
    return p


def _ci(a: MosAgreement, key: str, digits: int = 3) -> str | None:
    lo, hi = a.ci.get(key, (math.nan, math.nan))
    return None if math.isnan(lo) else f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def _none_if_nan(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def _orientation(name: str) -> str:
    info = BASELINES.get(name) if name in BASELINES else None
    if info is None or info.higher_is_better is None:
        return "model quality answer (higher = better)"
    return f"raw number {'higher' if info.higher_is_better else 'lower'} = better, oriented before scoring"


def _row(name: str, a: MosAgreement, evaluated: int, units: float) -> dict[str, Any]:
    fit = a.fit.method + (f" ({a.fit.note})" if a.fit.note else "")
    rmse_ci = a.ci.get("rmse", (math.nan, math.nan))
    return {
        "predictor": name,
        "n": a.n,
        "coverage": a.n / evaluated if evaluated else None,
        "srcc": _none_if_nan(a.srcc),
        "srcc_ci95": _ci(a, "srcc"),
        "krcc": _none_if_nan(a.krcc),
        "krcc_ci95": _ci(a, "krcc"),
        "plcc": _none_if_nan(a.plcc),
        "plcc_ci95": _ci(a, "plcc"),
        "rmse": _none_if_nan(a.rmse * units),
        "rmse_ci95": None
        if math.isnan(rmse_ci[0])
        else f"[{rmse_ci[0] * units:.3f}, {rmse_ci[1] * units:.3f}]",
        "rmse_normalised": _none_if_nan(a.rmse),
        "fit": fit,
        "fit_params": list(a.fit.params),
        "bootstrap_linear_fallbacks": a.refit_fallbacks,
        "orientation": _orientation(name),
    }


def run_mos(
    root: Path,
    predictors: Sequence[RoiPredictor],
    limit: int | None = None,
    journal: RunJournal | None = None,
    progress: bool = False,
    bootstrap: int | None = 200,
    margin: float | None = None,  # ignored: the suite has no within-photo pairs
    split: str = "test",
) -> SuiteResult:
    """Each predictor's whole-photo quality against the MOS of ``split``'s photos (see the module)."""
    root = Path(root)
    journal = journal if journal is not None else RunJournal(None, {})
    card, in_split = read_mos_folder(root, split)
    records = limited(in_split, limit)
    preds = [_quality_only(p) for p in predictors]
    mos = [mos_of(r) for r in records]
    scores: dict[str, list[float]] = {p.name: [math.nan] * len(records) for p in preds}
    unreadable: list[str] = []
    for i, rec in enumerate(progress_bar(len(records), "mos", progress, records)):
        todo = [p for p in preds if journal.get(p.name, rec.id) is None]
        img = None
        if todo:
            try:
                img = load_image(root / rec.image, name=rec.image)
            except ImageLoadError as e:
                unreadable.append(str(e))
                continue
        whole = [] if img is None else [np.ones(img.shape[:2], dtype=bool)]  # none needed: all saved
        for p in preds:
            try:
                out = journal.predict(p, rec.id, img, whole)
            except SeagullError as e:
                unreadable.append(f"{p.name} on {rec.id}: {e}")
                continue
            scores[p.name][i] = quality_of(out[0])
    scale = card.get("mos", {}).get("scale", {})
    units = float(scale.get("hi", 1.0)) - float(scale.get("lo", 0.0))
    target = [m["normalised"] for m in mos]
    rows, group_rows, agreements = [], [], {}
    groups = sorted({m.get("group") for m in mos if m.get("group")})
    for p in preds:
        a = mos_agreement(scores[p.name], target, bootstrap=bootstrap or 0)
        agreements[p.name] = a
        rows.append(_row(p.name, a, len(records), units))
        for g in groups:
            idx = [k for k, m in enumerate(mos) if m.get("group") == g]
            ga = mos_agreement([scores[p.name][k] for k in idx], [target[k] for k in idx])
            group_rows.append(
                {
                    "predictor": p.name,
                    "group": g,
                    "n": ga.n,
                    "srcc": _none_if_nan(ga.srcc),
                    "plcc": _none_if_nan(ga.plcc),
                }
            )
    fallbacks = [f"{n}: {a.fit.note}" for n, a in agreements.items() if a.fit.method == "linear"]
    res = SuiteResult(
        "mos",
        MOS_COLUMNS,
        rows,
        notes=[
            "Whole photo as the ROI. srcc / krcc: Spearman / Kendall of the predictor's quality (baselines: "
            "their raw number oriented so that higher = better) against the MOS normalised to [0, 1], higher = "
            "better; plcc / rmse: Pearson and root-mean-square error after the 4-parameter logistic "
            "f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2 fitted by least squares on the evaluated "
            "photos (fit: 'logistic', or 'linear' with the reason where it did not converge). RMSE is in the "
            f"set's MOS units (range {units:g}).",
            f"95% intervals: percentile bootstrap over photos ({bootstrap or 0} resamples), the map refitted "
            "on every resample.",
            "coverage: share of the evaluated photos the predictor gave a number for; its correlations use "
            "those photos only.",
            *(f"linear fallback: {f}" for f in fallbacks),
        ],
        info={
            "data": str(root),
            "dataset": card.get("name"),
            "split": split,
            "photos_in_split": len(in_split),
            "photos": len(records),
            "limit": limit,
            "mos_scale": scale,
            "bootstrap": bootstrap or 0,
            "unreadable": len(unreadable),
            **({"failures": unreadable[:50]} if unreadable else {}),
        },
    )
    if group_rows:
        res.extra_tables["groups"] = (GROUP_COLUMNS, group_rows)
    return res
