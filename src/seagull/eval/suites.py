"""External suites on real data, read from a data root given on the command line.

* ``cuhk``: CUHK blur regions with PaQ-2-PiQ MOS (``<root>/labels.csv``, images, masks: 255 = blurred).
  Per photo two ROIs, the blurred mask and its sharp complement.
* ``konstanz``: Konstanz SRC31 ladders (7 distortions x levels 0-12) and paste-a-distorted-patch
  compositions.
* ``tid2013``: four TID2013 fragments with MOS: sanity checks.

Each suite returns a :class:`SuiteResult`: one row per predictor with named columns, plus notes.
Predictors follow :class:`seagull.eval.baselines.RoiPredictor`; their per-ROI quality is taken
from ``quality`` (a calibrated model answer) or else the oriented raw ``score`` (baselines; only
ranks matter here, so no calibration is needed).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SeagullError
from ..imageio import load_image
from ..roi import load_mask_file
from . import metrics as M
from .baselines import BASELINE_NAMES, RoiPredictor, make_baseline
from .journal import RunJournal, file_digest, predictor_identity, progress_bar

# The suites score image content; the geometry-only importance baselines have their own rows there.
SUITE_BASELINES: tuple[str, ...] = tuple(n for n in BASELINE_NAMES if n not in ("roi_area", "roi_center"))


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


def quality_of(out: dict[str, Any]) -> float:
    v = out.get("quality")
    if v is None:
        v = out.get("score")
    return float("nan") if v is None else float(v)


def blur_said(out: dict[str, Any]) -> bool | None:
    """Whether a predictor that names distortions said "blur"; None for score-only predictors."""
    d = out.get("distortions")
    if d is None:
        return None
    return any((x["type"] if isinstance(x, dict) else x.type) == "blur" for x in d)


def _nan_to_none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def suite_fingerprint(suite: str, root: Path, predictors: Sequence[RoiPredictor]) -> dict[str, Any]:
    """What a suite run's saved outputs depend on: the suite, its data and the predictors."""
    root = Path(root)
    return {
        "suite": suite,
        "data": str(root.resolve()),
        "index": {name: file_digest(root / name) for name in ("labels.csv", "mos.csv")},
        "predictors": [predictor_identity(p) for p in predictors],
    }


def default_predictors(
    model: RoiPredictor | None, names: Sequence[str] = SUITE_BASELINES
) -> list[RoiPredictor]:
    preds: list[RoiPredictor] = [make_baseline(n) for n in names]
    return ([model] if model is not None else []) + preds


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


def _region_stat(fn: str):
    def predict(image: np.ndarray, masks: list[np.ndarray]) -> list[dict[str, Any]]:
        out = []
        for m in masks:
            if fn == "size":
                v = float(m.mean())
            else:
                ys, xs = np.nonzero(m)
                h, w = m.shape
                d = np.hypot((ys.mean() + 0.5) / h - 0.5, (xs.mean() + 0.5) / w - 0.5)
                v = round(1.0 - float(d / np.hypot(0.5, 0.5)), 6)  # rounding: the whole image is exactly 1
            out.append({"score": v, "raw": {fn: v}})
        return out

    return predict


@dataclass
class _FnPredictor:
    name: str
    fn: Any

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[dict[str, Any]]:
        return self.fn(image, masks)


CUHK_COLUMNS = ["predictor", "n", "pair_acc", "auc", "blur_in_blurred", "blur_in_sharp", "mos_srcc"]


def run_cuhk(
    root: Path,
    predictors: Sequence[RoiPredictor],
    limit: int | None = None,
    min_fraction: float = 0.02,
    journal: RunJournal | None = None,
    progress: bool = False,
) -> SuiteResult:
    """Blurred-mask ROI vs its sharp complement, per photo; whole image vs MOS. Outputs already in
    ``journal`` are reused, new ones are saved to it as they are made."""
    root = Path(root)
    journal = journal if journal is not None else RunJournal(None, {})
    rows = _read_csv(root / "labels.csv")
    rows = [r for r in rows if r.get("mos_paq2piq")]
    if limit:
        # Take motion and defocus photos alike so that both splits exist in a small subset.
        motion = [r for r in rows if r["blur_type"] == "motion"]
        defocus = [r for r in rows if r["blur_type"] == "defocus"]
        rows = motion[: (limit + 1) // 2] + defocus[: limit // 2]
    preds = list(predictors) + [
        _FnPredictor("size_only", _region_stat("size")),
        _FnPredictor("position_only", _region_stat("position")),
    ]
    per: dict[str, list[_CuhkItem]] = {p.name: [] for p in preds}
    skipped = 0
    bar = progress_bar(len(rows), "cuhk", progress, rows)
    for r in bar:
        img = load_image(root / r["image"])
        blurred = load_mask_file(root / r["mask"])
        frac = float(blurred.mean())
        if frac < min_fraction or frac > 1 - min_fraction:
            skipped += 1
            continue
        whole = np.ones_like(blurred)
        masks = [blurred, ~blurred, whole]
        for p in preds:
            o = journal.predict(p, r["image"], img, masks)
            per[p.name].append(
                _CuhkItem(
                    r["image"],
                    r["blur_type"],
                    float(r["mos_paq2piq"]),
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
        info={"data": str(root), "photos": n_photos, "skipped_tiny_masks": skipped},
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


def _paste_boxes(h: int, w: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Inside: a box in the left half; outside: the mirrored box in the right half (disjoint)."""
    bh, bw = h // 2, w // 3
    y0, x0 = h // 4, w // 12
    inside = (slice(y0, y0 + bh), slice(x0, x0 + bw))
    outside = (slice(y0, y0 + bh), slice(w - x0 - bw, w - x0))
    return inside, outside


def run_konstanz(
    root: Path,
    predictors: Sequence[RoiPredictor],
    limit: int | None = None,
    paste_levels: Sequence[int] = (3, 6, 9, 12),
    journal: RunJournal | None = None,
    progress: bool = False,
) -> SuiteResult:
    root = Path(root)
    journal = journal if journal is not None else RunJournal(None, {})
    rows = _read_csv(root / "labels.csv")
    by_dist: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_dist.setdefault(r["distortion"], []).append(r)
    for v in by_dist.values():
        v.sort(key=lambda r: int(r["level"]))
    dists = sorted(by_dist)
    levels_wanted = None
    if limit:
        # a subset of the ladder, spread over its range: keeps the Spearman meaningful
        n = max(3, min(13, limit))
        levels_wanted = sorted({round(i * 12 / (n - 1)) for i in range(n)})
        paste_levels = [lv for lv in levels_wanted if lv > 0]
    ref_row = next(r for r in rows if r["is_reference"] == "1")
    reference = load_image(root / ref_row["image"])
    h, w = reference.shape[:2]
    inside, outside = _paste_boxes(h, w)
    m_in = np.zeros((h, w), bool)
    m_in[inside] = True
    m_out = np.zeros((h, w), bool)
    m_out[outside] = True
    whole = np.ones((h, w), bool)

    out_rows = []
    per_dist_rows: list[dict[str, Any]] = []
    n_images = sum(
        levels_wanted is None or int(r["level"]) in levels_wanted for d in dists for r in by_dist[d]
    )
    bar = progress_bar(len(predictors) * n_images, "konstanz", progress)
    for p in predictors:
        srcc_q, srcc_s, type_hits, type_n = [], [], 0, 0
        paste_pairs, paste_srcc = [], []
        for d in dists:
            ladder = [r for r in by_dist[d] if levels_wanted is None or int(r["level"]) in levels_wanted]
            lv, q, sev = [], [], []
            paste_lv, paste_q = [], []
            for r in ladder:
                img = load_image(root / r["image"])
                o = journal.predict(p, r["image"], img, [whole])[0]
                lv.append(int(r["level"]))
                q.append(quality_of(o))
                sev.append(_severity_of(o))
                cat = r.get("seagull_category", "")
                said = o.get("distortions")
                if said is not None and int(r["level"]) > 0 and cat:
                    type_n += 1
                    types = {(x["type"] if isinstance(x, dict) else x.type) for x in said}
                    type_hits += cat in types
                if int(r["level"]) in paste_levels:
                    comp = reference.copy()
                    comp[inside] = img[inside]
                    o_in, o_out = journal.predict(p, f"paste:{r['image']}", comp, [m_in, m_out])
                    a, b = quality_of(o_in), quality_of(o_out)
                    if np.isfinite(a) and np.isfinite(b):
                        paste_pairs.append(1.0 if a < b else 0.5 if a == b else 0.0)
                    paste_lv.append(int(r["level"]))
                    paste_q.append(a)
                bar.update()
            rq, rs, rp = M.srcc(q, lv), M.srcc(sev, lv), M.srcc(paste_q, paste_lv)
            srcc_q.append(rq)
            srcc_s.append(rs)
            paste_srcc.append(rp)
            per_dist_rows.append(
                {
                    "predictor": p.name,
                    "distortion": d,
                    "srcc_quality_vs_level": _nan_to_none(rq),
                    "srcc_severity_vs_level": _nan_to_none(rs),
                }
            )
        out_rows.append(
            {
                "predictor": p.name,
                "srcc_quality_vs_level": _nan_to_none(_nanmean(srcc_q)),
                "srcc_severity_vs_level": _nan_to_none(_nanmean(srcc_s)),
                "type_acc": type_hits / type_n if type_n else None,
                "paste_pair_acc": float(np.mean(paste_pairs)) if paste_pairs else None,
                "paste_srcc_inside": _nan_to_none(_nanmean(paste_srcc)),
            }
        )
    bar.close()
    res = SuiteResult(
        "konstanz",
        KONSTANZ_COLUMNS,
        out_rows,
        notes=[
            "Whole image as the ROI. srcc_*_vs_level: Spearman of predicted quality (expected negative) and "
            "predicted severity (expected positive) against the distortion level 0-12, averaged over the 7 "
            "distortions (per-distortion values in the second table).",
            "type_acc: share of distorted images (level > 0, with a SEAGULL category) whose predicted types "
            "include labels.csv's seagull_category; only for predictors that name distortions.",
            "paste: the level-L image's box in the left half pasted into the level-0 reference; "
            "paste_pair_acc = share of compositions where the pasted ROI is rated below the mirrored "
            "untouched ROI; paste_srcc_inside = Spearman of the pasted ROI's quality vs level.",
            "Severity of score-only baselines is minus their oriented score.",
        ],
        info={
            "data": str(root),
            "distortions": dists,
            "levels": levels_wanted or list(range(13)),
            "paste_levels": list(paste_levels),
        },
    )
    res.extra_tables["per_distortion"] = (
        ["predictor", "distortion", "srcc_quality_vs_level", "srcc_severity_vs_level"],
        per_dist_rows,
    )
    return res


def _nanmean(xs: Sequence[float]) -> float:
    v = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _severity_of(o: dict[str, Any]) -> float:
    d = o.get("distortions")
    if d:
        vals = [(x.get("severity") if isinstance(x, dict) else x.severity) for x in d]
        vals = [v for v in vals if v is not None]
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
) -> SuiteResult:
    """Sanity checks on four TID2013 fragments (``limit`` has no effect: the suite is tiny)."""
    root = Path(root)
    journal = journal if journal is not None else RunJournal(None, {})
    rows = _read_csv(root / "mos.csv")
    imgs = {r["dist_name"]: load_image(root / "distorted_images" / r["dist_name"]) for r in rows}
    mos = {r["dist_name"]: float(r["mos"]) for r in rows}
    ref = load_image(root / "reference_images" / "I01.BMP")
    h, w = ref.shape[:2]
    inside, outside = _paste_boxes(h, w)
    m_in = np.zeros((h, w), bool)
    m_in[inside] = True
    m_out = np.zeros((h, w), bool)
    m_out[outside] = True
    out_rows = []
    bar = progress_bar(len(predictors), "tid2013", progress)
    for p in predictors:
        q, said = {}, {}
        for name, img in imgs.items():
            o = journal.predict(p, name, img, [np.ones(img.shape[:2], bool)])[0]
            q[name] = quality_of(o)
            d = o.get("distortions")
            said[name] = None if d is None else {(x["type"] if isinstance(x, dict) else x.type) for x in d}
        comp = ref.copy()
        comp[inside] = imgs["i01_01_5.bmp"][inside]
        o_in, o_out = journal.predict(p, "paste", comp, [m_in, m_out])
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


SUITES = {"cuhk": run_cuhk, "konstanz": run_konstanz, "tid2013": run_tid2013}
