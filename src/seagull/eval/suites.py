"""External suites on real data, read from a data root given on the command line.

* ``cuhk``: CUHK blur regions with PaQ-2-PiQ MOS (``<root>/labels.csv``, images, masks: 255 = blurred).
  Per photo two ROIs, the blurred mask and its sharp complement; ``split`` picks the photos of one part
  of the fixed photo split (:func:`seagull.authentic.cuhk_split`), by default all of them.
* ``konstanz``: Konstanz SRC31 ladders (7 distortions x levels 0-12) and paste-a-distorted-patch
  compositions.
* ``tid2013``: four TID2013 fragments with MOS: sanity checks.

Each suite returns a :class:`SuiteResult`: one row per predictor with named columns, plus notes.
Predictors follow :class:`seagull.eval.baselines.RoiPredictor`; their per-ROI quality is taken
from ``quality`` (a calibrated model answer) or else the oriented ``quality_uncalibrated``
(baselines; only ranks matter here, so no calibration is needed).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..authentic import MIN_REGION_FRACTION, load_blur_mask, read_cuhk_index, select_photos, tiny_region
from ..errors import ImageLoadError, RoiError, SeagullError
from ..imageio import load_image
from ..records import shard_paths
from ..region_prediction import RegionPrediction
from . import agreement as M
from .baselines import (
    RoiPredictor,
    ScoreBaseline,
    list_baselines,
    make_baseline,
    model_list,
    roi_area_share,
    roi_centre_closeness,
)
from .journal import RunJournal, digest, file_digest, predictor_identity, progress_bar

# The suites score image content; the geometry-only importance baselines have their own rows there.
SUITE_BASELINES: tuple[str, ...] = list_baselines(reads_pixels=True)


@dataclass
class SuiteResult:
    suite: str
    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    extra_tables: dict[str, tuple[list[str], list[dict[str, Any]]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "columns": self.columns,
            "rows": self.rows,
            "notes": self.notes,
            "info": self.info,
            "extra_tables": {k: {"columns": c, "rows": r} for k, (c, r) in self.extra_tables.items()},
        }


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise SeagullError(f"{path} does not exist: pass the suite's data folder with --data")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def quality_of(out: RegionPrediction) -> float:
    """The calibrated quality, or else the uncalibrated score (only ranks matter here)."""
    v = out.quality if out.quality is not None else out.quality_uncalibrated
    return float("nan") if v is None else float(v)


def blur_said(out: RegionPrediction) -> bool | None:
    """Whether a predictor that names distortions said "blur"; None for score-only predictors."""
    return None if out.type_set is None else "blur" in out.type_set


def _nan_to_none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def suite_fingerprint(suite: str, root: Path, predictors: Sequence[RoiPredictor]) -> dict[str, Any]:
    """What a suite run's saved outputs depend on: the suite, its data and the predictors."""
    root = Path(root)
    index = {name: file_digest(root / name) for name in ("labels.csv", "mos.csv")}
    shards = shard_paths(root)
    if shards:  # a dataset folder (the mos suite): its records, not where its photos are
        index["shards"] = digest(f"{p.name}\t{file_digest(p)}" for p in shards)
    return {
        "suite": suite,
        "data": str(root.resolve()),
        "index": index,
        "predictors": [predictor_identity(p) for p in predictors],
    }


def default_predictors(
    models: RoiPredictor | Sequence[RoiPredictor] | None, names: Sequence[str] = SUITE_BASELINES
) -> list[RoiPredictor]:
    """The model(s) first, then the named baselines."""
    return model_list(models) + [make_baseline(n) for n in names]


# --------------------------------------------------------------------------- CUHK
@dataclass
class _CuhkItem:
    name: str
    blur_type: str
    mos: float
    blurred_fraction: float
    q_blur: float
    q_sharp: float
    q_whole: float
    said_blur: bool | None
    said_sharp: bool | None


def _cross_fit_threshold(items: list[_CuhkItem]) -> list[tuple[bool, bool]]:
    """For score-only predictors: "blur found" = quality below a threshold fitted on the other half
    of the photos (2-fold by index), maximising accuracy of blurred-vs-sharp ROI calls."""
    out: list[tuple[bool, bool]] = [(False, False)] * len(items)
    folds = [list(range(0, len(items), 2)), list(range(1, len(items), 2))]
    for k in (0, 1):
        fit, apply = folds[1 - k], folds[k]
        vals = [(items[i].q_blur, 1) for i in fit] + [(items[i].q_sharp, 0) for i in fit]
        vals = [(v, y) for v, y in vals if np.isfinite(v)]
        if not vals:
            th = float("nan")
        else:
            cands = sorted({v for v, _ in vals})
            mids = (
                [cands[0] - 1]
                + [(a + b) / 2 for a, b in zip(cands, cands[1:], strict=False)]
                + [cands[-1] + 1]
            )
            best = max(mids, key=lambda t: sum((v < t) == bool(y) for v, y in vals))
            th = best
        for i in apply:
            out[i] = (bool(items[i].q_blur < th), bool(items[i].q_sharp < th))
    return out


def _cuhk_metrics(items: list[_CuhkItem]) -> dict[str, Any]:
    if not items:
        return {}
    pair = []
    for it in items:
        if not (np.isfinite(it.q_blur) and np.isfinite(it.q_sharp)):
            continue
        pair.append(1.0 if it.q_blur < it.q_sharp else 0.5 if it.q_blur == it.q_sharp else 0.0)
    said = [(it.said_blur, it.said_sharp) for it in items]
    return {
        "n": len(items),
        "pair_acc": float(np.mean(pair)) if pair else float("nan"),
        "auc": M.auc([it.q_sharp for it in items], [it.q_blur for it in items]),
        "blur_in_blurred": float(np.mean([s[0] for s in said])),
        "blur_in_sharp": float(np.mean([s[1] for s in said])),
        "mos_srcc": M.srcc([it.q_whole for it in items], [it.mos for it in items]),
    }


CUHK_COLUMNS = ["predictor", "n", "pair_acc", "auc", "blur_in_blurred", "blur_in_sharp", "mos_srcc"]


def run_cuhk(
    root: Path,
    predictors: Sequence[RoiPredictor],
    limit: int | None = None,
    min_fraction: float = MIN_REGION_FRACTION,
    journal: RunJournal | None = None,
    progress: bool = False,
    bootstrap: int | None = None,  # ignored: the suite has no intervals
    margin: float | None = None,  # ignored: the suite has no within-photo pairs
    split: str = "all",
) -> SuiteResult:
    """Blurred-mask ROI vs its sharp complement, per photo; whole image vs MOS. ``split`` (train, val,
    test or all) picks the photos, then ``limit`` a subset with both blur types. A photo that cannot be
    read is skipped and counted. Outputs already in ``journal`` are reused, new ones are saved to it as
    they are made."""
    root = Path(root)
    journal = journal if journal is not None else RunJournal(None, {})
    in_split = select_photos(read_cuhk_index(root), split)
    photos = select_photos(in_split, "all", limit)
    preds = list(predictors) + [
        # The registered geometry baselines, read as quality: how far ROI size or position alone goes.
        ScoreBaseline("size_only", roi_area_share, True),
        ScoreBaseline("position_only", roi_centre_closeness, True),
    ]
    per: dict[str, list[_CuhkItem]] = {p.name: [] for p in preds}
    skipped = 0
    unreadable: list[str] = []
    bar = progress_bar(len(photos), "cuhk", progress, photos)
    for photo in bar:
        try:
            img = load_image(root / photo.image)
            blurred = load_blur_mask(root, photo, img.shape[:2])
        except (ImageLoadError, RoiError) as e:
            unreadable.append(str(e))
            continue
        if tiny_region(blurred, min_fraction):
            skipped += 1
            continue
        frac = float(blurred.mean())
        whole = np.ones_like(blurred)
        masks = [blurred, ~blurred, whole]
        for p in preds:
            o = journal.predict(p, photo.image, img, masks)
            per[p.name].append(
                _CuhkItem(
                    photo.image,
                    photo.blur_type,
                    photo.mos,
                    frac,
                    quality_of(o[0]),
                    quality_of(o[1]),
                    quality_of(o[2]),
                    blur_said(o[0]),
                    blur_said(o[1]),
                )
            )
    for items in per.values():
        # Score-only predictors: blur calls from the cross-fitted threshold, fitted once on all photos.
        if items and any(it.said_blur is None for it in items):
            for it, (b, s) in zip(items, _cross_fit_threshold(items), strict=True):
                it.said_blur, it.said_sharp = b, s
    bar.close()
    out_rows = []
    split_rows: dict[str, list[dict[str, Any]]] = {"motion": [], "defocus": []}
    for name, items in per.items():
        row = {"predictor": name, **_cuhk_metrics(items)}
        out_rows.append({k: _nan_to_none(v) if isinstance(v, float) else v for k, v in row.items()})
        for bt in split_rows:
            sub = [it for it in items if it.blur_type == bt]
            srow = {"predictor": name, **_cuhk_metrics(sub)}
            split_rows[bt].append(
                {k: _nan_to_none(v) if isinstance(v, float) else v for k, v in srow.items()}
            )
    n_photos = len(next(iter(per.values()))) if per else 0
    res = SuiteResult(
        "cuhk",
        CUHK_COLUMNS,
        out_rows,
        notes=[
            "pair_acc: share of photos whose blurred ROI is rated lower than its sharp complement (ties 1/2).",
            "auc: P(sharp ROI rated above blurred ROI) over all ROIs of all photos.",
            "blur_in_blurred / blur_in_sharp: share of blurred / sharp ROIs called blurred. Predictors "
            "that name distortions use their answer; score-only baselines call blur below a threshold "
            "fitted on the other half of the photos (2-fold).",
            "mos_srcc: whole image as the ROI, predicted quality vs PaQ-2-PiQ MOS (Spearman).",
            "size_only: ROI quality = its area share; position_only: closeness of its centroid to the "
            "image centre. Both ignore pixels: they show how much the masks alone give away. Their "
            "orientation is fixed in advance (larger / more central = better); a value v below 0.5 means "
            "the reverse rule would score 1 - v.",
            "whole_brisque gives both ROIs the same score (pair_acc 0.5 by construction); constant has no ranking.",
        ],
        info={
            "data": str(root),
            "split": split,
            "photos_in_split": len(in_split),
            "photos": n_photos,
            "skipped_tiny_masks": skipped,
            "skipped_unreadable": len(unreadable),
            **({"unreadable": unreadable} if unreadable else {}),
        },
    )
    for bt, srows in split_rows.items():
        res.extra_tables[bt] = (CUHK_COLUMNS, srows)
    return res


# --------------------------------------------------------------------------- Konstanz
KONSTANZ_COLUMNS = [
    "predictor",
    "srcc_quality_vs_level",
    "srcc_severity_vs_level",
    "type_acc",
    "paste_pair_acc",
    "paste_srcc_inside",
]
KONSTANZ_NOTES = [
    "Whole image as the ROI. srcc_*_vs_level: Spearman of predicted quality (expected negative) and "
    "predicted severity (expected positive) against the distortion level 0-12, averaged over the 7 "
    "distortions (per-distortion values in the second table).",
    "type_acc: share of distorted images (level > 0, with a SEAGULL category) whose predicted types "
    "include labels.csv's seagull_category; only for predictors that name distortions.",
    "paste: the level-L image's box in the left half pasted into the level-0 reference; "
    "paste_pair_acc = share of compositions where the pasted ROI is rated below the mirrored "
    "untouched ROI; paste_srcc_inside = Spearman of the pasted ROI's quality vs level.",
    "Severity of score-only baselines is minus their oriented score.",
]
PER_DISTORTION_COLUMNS = ["predictor", "distortion", "srcc_quality_vs_level", "srcc_severity_vs_level"]


def _paste_boxes(h: int, w: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Inside: a box in the left half; outside: the mirrored box in the right half (disjoint)."""
    bh, bw = h // 2, w // 3
    y0, x0 = h // 4, w // 12
    inside = (slice(y0, y0 + bh), slice(x0, x0 + bw))
    outside = (slice(y0, y0 + bh), slice(w - x0 - bw, w - x0))
    return inside, outside


@dataclass(frozen=True)
class _PasteScene:
    """A reference photo into which a box of another image is pasted; the ROIs are the pasted box
    and the mirrored untouched box."""

    reference: np.ndarray
    inside: tuple[slice, slice]
    masks: list[np.ndarray]  # [pasted box, mirrored untouched box]

    @classmethod
    def of(cls, reference: np.ndarray) -> _PasteScene:
        h, w = reference.shape[:2]
        boxes = _paste_boxes(h, w)
        masks = []
        for box in boxes:
            m = np.zeros((h, w), bool)
            m[box] = True
            masks.append(m)
        return cls(reference, boxes[0], masks)

    def compose(self, image: np.ndarray) -> np.ndarray:
        comp = self.reference.copy()
        comp[self.inside] = image[self.inside]
        return comp


def _ladder_levels(limit: int | None) -> list[int] | None:
    """With ``limit``, a subset of the 0-12 ladder spread over its range (keeps the Spearman
    meaningful); None = every level."""
    if not limit:
        return None
    n = max(3, min(13, limit))
    return sorted({round(i * 12 / (n - 1)) for i in range(n)})


def _ladders(rows: list[dict[str, str]], levels: list[int] | None) -> dict[str, list[dict[str, str]]]:
    """The rows of each distortion (sorted by name) in level order, only ``levels`` if given."""
    by_dist: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_dist.setdefault(r["distortion"], []).append(r)
    return {
        d: [
            r
            for r in sorted(by_dist[d], key=lambda r: int(r["level"]))
            if levels is None or int(r["level"]) in levels
        ]
        for d in sorted(by_dist)
    }


@dataclass
class _LadderScores:
    """One predictor on one distortion's ladder."""

    levels: list[int] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    severity: list[float] = field(default_factory=list)
    paste_levels: list[int] = field(default_factory=list)
    paste_quality: list[float] = field(default_factory=list)
    paste_pairs: list[float] = field(default_factory=list)  # 1 pasted ROI rated lower, 1/2 tie, 0 higher
    type_hits: int = 0
    type_n: int = 0

    def add_whole(self, level: int, out: RegionPrediction, category: str) -> None:
        self.levels.append(level)
        self.quality.append(quality_of(out))
        self.severity.append(_severity_of(out))
        if out.type_set is not None and level > 0 and category:
            self.type_n += 1
            self.type_hits += category in out.type_set

    def add_paste(self, level: int, pasted: RegionPrediction, untouched: RegionPrediction) -> None:
        a, b = quality_of(pasted), quality_of(untouched)
        if np.isfinite(a) and np.isfinite(b):
            self.paste_pairs.append(1.0 if a < b else 0.5 if a == b else 0.0)
        self.paste_levels.append(level)
        self.paste_quality.append(a)


def _score_ladder(
    p: RoiPredictor,
    root: Path,
    ladder: list[dict[str, str]],
    scene: _PasteScene,
    paste_levels: Sequence[int],
    journal: RunJournal,
    bar: Any,
) -> _LadderScores:
    whole = np.ones(scene.reference.shape[:2], bool)
    s = _LadderScores()
    for r in ladder:
        img = load_image(root / r["image"])
        level = int(r["level"])
        s.add_whole(level, journal.predict(p, r["image"], img, [whole])[0], r.get("seagull_category", ""))
        if level in paste_levels:
            o_in, o_out = journal.predict(p, f"paste:{r['image']}", scene.compose(img), scene.masks)
            s.add_paste(level, o_in, o_out)
        bar.update()
    return s


def _konstanz_rows(
    name: str, ladders: dict[str, _LadderScores]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the predictor's row, its per-distortion rows)."""
    srcc_q = {d: M.srcc(s.quality, s.levels) for d, s in ladders.items()}
    srcc_s = {d: M.srcc(s.severity, s.levels) for d, s in ladders.items()}
    paste_srcc = [M.srcc(s.paste_quality, s.paste_levels) for s in ladders.values()]
    paste_pairs = [v for s in ladders.values() for v in s.paste_pairs]
    type_n = sum(s.type_n for s in ladders.values())
    row = {
        "predictor": name,
        "srcc_quality_vs_level": _nan_to_none(_nanmean(list(srcc_q.values()))),
        "srcc_severity_vs_level": _nan_to_none(_nanmean(list(srcc_s.values()))),
        "type_acc": sum(s.type_hits for s in ladders.values()) / type_n if type_n else None,
        "paste_pair_acc": float(np.mean(paste_pairs)) if paste_pairs else None,
        "paste_srcc_inside": _nan_to_none(_nanmean(paste_srcc)),
    }
    per_distortion = [
        {
            "predictor": name,
            "distortion": d,
            "srcc_quality_vs_level": _nan_to_none(srcc_q[d]),
            "srcc_severity_vs_level": _nan_to_none(srcc_s[d]),
        }
        for d in ladders
    ]
    return row, per_distortion


def run_konstanz(
    root: Path,
    predictors: Sequence[RoiPredictor],
    limit: int | None = None,
    paste_levels: Sequence[int] = (3, 6, 9, 12),
    journal: RunJournal | None = None,
    progress: bool = False,
    bootstrap: int | None = None,  # ignored: the suite has no intervals
    margin: float | None = None,  # ignored: the suite has no within-photo pairs
) -> SuiteResult:
    """Quality and severity along each distortion's level ladder (whole image as the ROI), and the
    level-L image's box pasted into the reference. With ``limit`` a spread subset of the levels is
    used, and they replace ``paste_levels``."""
    root = Path(root)
    journal = journal if journal is not None else RunJournal(None, {})
    rows = _read_csv(root / "labels.csv")
    levels_wanted = _ladder_levels(limit)
    if levels_wanted is not None:
        paste_levels = [lv for lv in levels_wanted if lv > 0]
    ladders = _ladders(rows, levels_wanted)
    ref_row = next(r for r in rows if r["is_reference"] == "1")
    scene = _PasteScene.of(load_image(root / ref_row["image"]))
    out_rows: list[dict[str, Any]] = []
    per_dist_rows: list[dict[str, Any]] = []
    bar = progress_bar(len(predictors) * sum(map(len, ladders.values())), "konstanz", progress)
    for p in predictors:
        scores = {
            d: _score_ladder(p, root, ladder, scene, paste_levels, journal, bar)
            for d, ladder in ladders.items()
        }
        row, per_distortion = _konstanz_rows(p.name, scores)
        out_rows.append(row)
        per_dist_rows += per_distortion
    bar.close()
    res = SuiteResult(
        "konstanz",
        KONSTANZ_COLUMNS,
        out_rows,
        notes=list(KONSTANZ_NOTES),
        info={
            "data": str(root),
            "distortions": list(ladders),
            "levels": levels_wanted or list(range(13)),
            "paste_levels": list(paste_levels),
        },
    )
    res.extra_tables["per_distortion"] = (PER_DISTORTION_COLUMNS, per_dist_rows)
    return res


def _nanmean(xs: Sequence[float]) -> float:
    v = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _severity_of(o: RegionPrediction) -> float:
    d = o.present_distortions
    if d:
        vals = [x.severity for x in d if x.severity is not None]
        if vals:
            return float(max(vals))
    if d is not None and not d:
        return 0.0
    q = quality_of(o)
    return -q if np.isfinite(q) else float("nan")


# --------------------------------------------------------------------------- TID2013
TID_COLUMNS = ["predictor", "blur4_above_blur5", "mos_srcc", "noise_type", "blur_type", "noisy_patch_lower"]


def run_tid2013(
    root: Path,
    predictors: Sequence[RoiPredictor],
    limit: int | None = None,
    journal: RunJournal | None = None,
    progress: bool = False,
    bootstrap: int | None = None,  # ignored: the suite has no intervals
    margin: float | None = None,  # ignored: the suite has no within-photo pairs
) -> SuiteResult:
    """Sanity checks on four TID2013 fragments (``limit`` has no effect: the suite is tiny)."""
    root = Path(root)
    journal = journal if journal is not None else RunJournal(None, {})
    rows = _read_csv(root / "mos.csv")
    imgs = {r["dist_name"]: load_image(root / "distorted_images" / r["dist_name"]) for r in rows}
    mos = {r["dist_name"]: float(r["mos"]) for r in rows}
    scene = _PasteScene.of(load_image(root / "reference_images" / "I01.BMP"))
    out_rows = []
    bar = progress_bar(len(predictors), "tid2013", progress)
    for p in predictors:
        q, said = {}, {}
        for name, img in imgs.items():
            o = journal.predict(p, name, img, [np.ones(img.shape[:2], bool)])[0]
            q[name] = quality_of(o)
            said[name] = None if o.type_set is None else set(o.type_set)
        o_in, o_out = journal.predict(p, "paste", scene.compose(imgs["i01_01_5.bmp"]), scene.masks)
        names = sorted(imgs)
        row = {
            "predictor": p.name,
            "blur4_above_blur5": _cmp(q.get("i07_08_4.bmp"), q.get("i07_08_5.bmp")),
            "mos_srcc": _nan_to_none(M.srcc([q[n] for n in names], [mos[n] for n in names])),
            "noise_type": None if said["i01_01_5.bmp"] is None else "noise" in said["i01_01_5.bmp"],
            "blur_type": None if said["i07_08_4.bmp"] is None else "blur" in said["i07_08_4.bmp"],
            "noisy_patch_lower": _cmp(quality_of(o_out), quality_of(o_in)),
        }
        out_rows.append(row)
        bar.update()
    bar.close()
    return SuiteResult(
        "tid2013",
        TID_COLUMNS,
        out_rows,
        notes=[
            "Sanity checks on 3 TID2013 images (4 files): blur level 4 rated above level 5; Spearman with MOS "
            "over the 3 images; noise / blur named (only predictors that name distortions); a box of the "
            "noisy i01_01_5 pasted into the I01 reference rated below the mirrored clean box.",
        ],
        info={"data": str(root), "images": sorted(imgs)},
    )


def _cmp(a: float | None, b: float | None) -> bool | None:
    if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)):
        return None
    return bool(a > b)
