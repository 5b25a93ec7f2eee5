"""Evaluate predictors on dataset folders written by ``seagull synth`` (or any folder in the schema).

Records come from :func:`seagull.records.iter_records`; the image of a record is
``dataset_dir / record.image`` (several folders are pooled by :func:`load_folders`); ROI masks are
decoded from ``roi.rle``; labels are the RoiRecord fields. Baselines are calibrated onto the label scale by :class:`QuantileCalibration` (on the
evaluated set's label marginal by default, or on a held-out split with ``calibration_split``).
Every predictor's answers are written to ``predictions/<name>.jsonl`` in the report folder; its raw
outputs are saved under ``raw_outputs/`` as they are made, so that an interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError, SeagullError
from ..imageio import load_image
from ..labels import DEFAULT_THRESHOLDS, Thresholds
from ..records import SampleRecord, iter_records, read_card
from ..region_prediction import RegionPrediction
from ..roi import rle_to_mask
from .baselines import (
    FullReferenceBaseline,
    QuantileCalibration,
    RoiPredictor,
    available_fr_baseline,
    distortion_type_of,
    is_constant,
    list_baselines,
    make_baseline,
    model_list,
)
from .journal import RunJournal, digest, open_journal, predictor_identity, progress_bar
from .pairs import DEFAULT_MARGIN, PairSummary, records_pair_summaries
from .predictions import SamplePrediction, write_predictions
from .protocol import PredictorScores, RoiLabel, labels_from_record, score_predictor

log = logging.getLogger(__name__)

DEFAULT_SYNTH_BASELINES: tuple[str, ...] = list_baselines()


@dataclass
class RawRun:
    """Uncalibrated outputs of each predictor: {name: {sample id: [per-ROI predictions]}} plus timings."""

    outputs: dict[str, dict[str, list[RegionPrediction]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def split_filter(split: str | None) -> str | None:
    """The split to keep, or None for every record (``split`` None or "all")."""
    return None if split in (None, "all") else split


def load_records(dataset_dir: Path, split: str | None = None, limit: int | None = None) -> list[SampleRecord]:
    split = split_filter(split)
    recs = []
    for rec in iter_records(Path(dataset_dir), split):
        recs.append(rec)
        if limit and len(recs) >= limit:
            break
    if not recs:
        raise SeagullError(no_records_message(Path(dataset_dir), split))
    return recs


def no_records_message(dataset_dir: Path, split: str | None) -> str:
    """Why a folder gave no records: for a split, how many records each split has, and what to do."""
    if split is None:
        return f"{dataset_dir}: no records"
    counts = Counter(rec.split for rec in iter_records(dataset_dir))
    if not counts:
        return f"{dataset_dir}: no records"
    have = ", ".join(f"{name or 'none'} {n}" for name, n in sorted(counts.items(), key=lambda x: str(x[0])))
    others = " or ".join(f"--split {name}" for name in sorted(n for n in counts if n))
    return (
        f"{dataset_dir}: no records in split {split!r}; its {sum(counts.values())} records are in splits: "
        f"{have} (a split is drawn per reference photo, so a folder made from a few photos can miss one). "
        f"Use --split all to evaluate every record" + (f", or {others}" if others else "")
    )


def as_dirs(data: str | Path | Sequence[str | Path]) -> list[Path]:
    """One folder or several, as a list of paths."""
    return [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]


def load_folders(
    dirs: Sequence[Path], split: str | None = None, limit: int | None = None
) -> list[SampleRecord]:
    """Records of one folder as they are, or of several pooled: each record's id is prefixed with its
    folder's name (ids repeat across folders made from the same photos) and its image and reference
    paths are made absolute, so every record is read without knowing its folder. ``limit`` applies
    per folder."""
    dirs = [Path(d) for d in dirs]
    if len(dirs) == 1:
        return load_records(dirs[0], split, limit)
    names = [d.name for d in dirs]
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset folders must have distinct names to pool them, got {names}")
    out: list[SampleRecord] = []
    for d in dirs:
        for rec in load_records(d, split, limit):
            ref = Path(rec.reference)
            if not (ref.is_absolute() or ref.exists()):
                ref = d / ref
            out.append(
                dataclasses.replace(
                    rec,
                    id=f"{d.name}/{rec.id}",
                    image=str((d / rec.image).resolve()),
                    reference=str(ref.resolve()),
                )
            )
    return out


def folders_thresholds(dirs: Sequence[Path]) -> tuple[dict[str, Any], Thresholds, str | None]:
    """The dataset card, level thresholds and label metric shared by ``dirs`` (defaults, with a
    warning, where a folder has no usable card); folders that disagree cannot be pooled."""
    seen: list[tuple[dict[str, Any], Thresholds, str | None]] = []
    for d in dirs:
        try:
            card = read_card(Path(d))
            seen.append((card, Thresholds.from_dict(card["thresholds"]), card.get("label_metric") or None))
        except (SeagullError, KeyError):
            log.warning("%s has no usable dataset.json; using the default thresholds", d)
            seen.append(({}, DEFAULT_THRESHOLDS, None))
    first = seen[0]
    for d, (_, th, metric) in zip(dirs, seen, strict=True):
        if th != first[1] or metric != first[2]:
            raise ConfigError(
                f"{d} uses other level thresholds or label metric than {dirs[0]}; evaluate them separately"
            )
    return first


def record_masks(rec: SampleRecord) -> list[np.ndarray]:
    return [rle_to_mask(r.rle, f"{rec.id}/{r.id}") for r in rec.rois]


class ReferenceCache:
    """The reference of a record at the record's size: the clean record's image if the dataset has
    one for the same reference, else the reference file resized (area) to the record's size."""

    def __init__(self, dataset_dir: Path, records: Sequence[SampleRecord]) -> None:
        self.dir = Path(dataset_dir)
        self.clean = {r.reference: r.image for r in records if r.distortion.get("family") in ("none", None)}
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}

    def get(self, rec: SampleRecord) -> np.ndarray:
        key = (rec.reference, rec.height, rec.width)  # pooled folders may hold one photo at two sizes
        if key not in self._cache:
            if rec.reference in self.clean:
                img = load_image(self.dir / self.clean[rec.reference])
            else:
                p = Path(rec.reference)
                img = load_image(p if p.is_absolute() or p.exists() else self.dir / p)
            if img.shape[:2] != (rec.height, rec.width):
                img = cv2.resize(img, (rec.width, rec.height), interpolation=cv2.INTER_AREA)
            self._cache = {key: img}  # one reference at a time keeps memory flat
        return self._cache[key]


def run_predictors(
    dataset_dir: Path,
    records: Sequence[SampleRecord],
    predictors: Sequence[RoiPredictor],
    fr_baseline: FullReferenceBaseline | None = None,
    all_records: Sequence[SampleRecord] | None = None,
    journal: RunJournal | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> RawRun:
    """Every predictor on every record. Results already in ``journal`` are reused (the image of a
    record is read only if some predictor has not answered it yet); new ones are saved to it at once."""
    run = RawRun()
    journal = journal if journal is not None else RunJournal(None, {})
    refs = ReferenceCache(dataset_dir, all_records or records)
    every = [*predictors, *([fr_baseline] if fr_baseline else [])]
    for p in every:
        run.outputs[p.name] = {}
        run.seconds[p.name] = 0.0
    with progress_bar(len(records), desc, progress) as bar:
        for rec in records:
            todo = [p for p in every if journal.get(p.name, rec.id) is None]
            if todo:
                try:
                    image = load_image(Path(dataset_dir) / rec.image)
                    masks = record_masks(rec)
                except SeagullError as e:  # one unreadable record is reported; the run goes on
                    run.failures.append(f"{rec.id}: {e}")
                    bar.update()
                    continue
                for p in todo:
                    t = time.perf_counter()
                    try:
                        out = _predict(p, image, masks, rec, refs)
                        journal.add(p.name, rec.id, outputs=out, seconds=time.perf_counter() - t)
                    except SeagullError as e:
                        journal.add(p.name, rec.id, error=str(e), seconds=time.perf_counter() - t)
            for p in every:
                e = journal.get(p.name, rec.id)
                run.seconds[p.name] += e["seconds"]
                if "error" in e:
                    run.failures.append(f"{p.name} on {rec.id}: {e['error']}")
                else:
                    run.outputs[p.name][rec.id] = e["outputs"]
            bar.update()
    return run


def _predict(
    p: RoiPredictor | FullReferenceBaseline,
    image: np.ndarray,
    masks: list[np.ndarray],
    rec: SampleRecord,
    refs: ReferenceCache,
) -> list[RegionPrediction]:
    if isinstance(p, FullReferenceBaseline):
        return p.predict_with_reference(image, refs.get(rec), masks)
    return p.predict(image, masks)


def calibration_from_labels(
    labels: Sequence[RoiLabel], thresholds: Thresholds, source: str
) -> QuantileCalibration:
    return QuantileCalibration(
        quality_labels=[lab.quality for lab in labels if lab.quality is not None],
        importance_labels=[lab.importance for lab in labels if lab.importance is not None],
        type_sets=[lab.types for lab in labels],
        severity_sets=[lab.severities for lab in labels],
        quality_levels=[lab.quality_level for lab in labels if lab.quality_level],
        importance_levels=[lab.importance_level for lab in labels if lab.importance_level],
        thresholds=thresholds,
        source=source,
    )


def _scores(outputs: dict[str, list[RegionPrediction]], key: str) -> list[float]:
    return [getattr(o, key) for outs in outputs.values() for o in outs if getattr(o, key) is not None]


def calibrate_run(
    run: RawRun,
    records: Sequence[SampleRecord],
    cal: QuantileCalibration,
    predictors: Sequence[Any],
    cal_run: RawRun | None = None,
) -> dict[str, dict[str, SamplePrediction]]:
    """Fit each baseline's quantile maps (on ``cal_run`` if given, else on ``run``) and apply them."""
    by_name = {p.name: p for p in predictors}
    out: dict[str, dict[str, SamplePrediction]] = {}
    for name, outputs in run.outputs.items():
        fit_src = (cal_run.outputs.get(name) if cal_run else None) or outputs
        for kind in ("quality", "importance"):
            s = _scores(fit_src, f"{kind}_uncalibrated")
            if s and (
                kind == "quality" and cal.quality_labels or kind == "importance" and cal.importance_labels
            ):
                cal.fit(name, s, kind)
        preds: dict[str, SamplePrediction] = {}
        for rec in records:
            if rec.id not in outputs:
                continue
            predictor = by_name.get(name)
            rois: list[RegionPrediction] = [
                cal.apply(name, o, r.id, distortion_type_of(predictor), is_constant(predictor))
                for r, o in zip(rec.rois, outputs[rec.id], strict=True)
            ]
            preds[rec.id] = SamplePrediction(rec.id, name, rois)
        out[name] = preds
    return out


@dataclass
class SyntheticResult:
    scores: list[PredictorScores]
    predictions: dict[str, dict[str, SamplePrediction]]
    labels: list[RoiLabel]
    info: dict[str, Any]
    pairs: dict[str, PairSummary] = field(default_factory=dict)  # within-photo pair accuracy


def evaluate_synthetic(
    dataset_dir: Path | Sequence[Path],
    out_dir: Path | None = None,
    model_predictor: RoiPredictor | Sequence[RoiPredictor] | None = None,
    baselines: Sequence[str] = DEFAULT_SYNTH_BASELINES,
    split: str | None = None,
    calibration_split: str | None = None,
    limit: int | None = None,
    bootstrap: int = 200,
    include_fr: bool = True,
    restart: bool = False,
    progress: bool = False,
    pair_margin: float = DEFAULT_MARGIN,
) -> SyntheticResult:
    """Run, calibrate and score. With ``out_dir`` every raw output is saved as it is made and a
    rerun with the same settings resumes (see :mod:`seagull.eval.journal`); ``restart`` discards
    the saved outputs; ``progress`` shows a bar on stderr."""
    dirs = as_dirs(dataset_dir)
    split = split_filter(split)
    card, thresholds, fr_metric = folders_thresholds(dirs)
    records = load_folders(dirs, split, limit)
    all_records = load_folders(dirs)
    dataset_dir = dirs[0]  # pooled records carry absolute paths; one folder's are relative to it
    models = model_list(model_predictor)
    predictors: list[RoiPredictor] = models + [make_baseline(b) for b in baselines]
    fr_b = available_fr_baseline(fr_metric) if include_fr else None
    fingerprint = {
        "suite": "synthetic",
        "data": [str(d.resolve()) for d in dirs],
        "dataset_records": digest(f"{r.id}\t{r.image}\t{r.width}x{r.height}" for r in all_records),
        "split": split,
        "calibration_split": calibration_split,
        "predictors": [predictor_identity(p) for p in predictors]
        + ([f"fr_label:{fr_metric}"] if fr_b else []),
    }
    with open_journal(out_dir, fingerprint, restart, verbose=progress) as journal:
        run = run_predictors(dataset_dir, records, predictors, fr_b, all_records, journal, progress)
        labels = [lab for rec in records for lab in labels_from_record(rec)]

        cal_run = None
        if calibration_split:
            cal_records = load_folders(dirs, calibration_split, limit)
            cal_labels = [lab for rec in cal_records for lab in labels_from_record(rec)]
            cal = calibration_from_labels(
                cal_labels, thresholds, f"split {calibration_split!r} ({len(cal_labels)} ROIs)"
            )
            baselines_only = [p for p in predictors if all(p is not m for m in models)]
            cal_run = run_predictors(
                dataset_dir, cal_records, baselines_only, None, None, journal, progress, "calibration"
            )
    if not calibration_split:
        cal = calibration_from_labels(
            labels, thresholds, f"evaluated set label marginal ({len(labels)} ROIs)"
        )
    preds = calibrate_run(run, records, cal, predictors + ([fr_b] if fr_b else []), cal_run)
    scores = [score_predictor(name, labels, p, bootstrap) for name, p in preds.items()]
    pairs = records_pair_summaries(records, run.outputs, pair_margin, bootstrap)
    if out_dir is not None:
        pdir = Path(out_dir) / "predictions"
        for name, p in preds.items():
            write_predictions(pdir / f"{name}.jsonl", p.values())
    n_img = len(records)
    info = {
        "suite": "synthetic",
        "dataset": ", ".join(str(d) for d in dirs),
        "dataset_name": card.get("name") if len(dirs) == 1 else None,
        "label_metric": fr_metric,
        "split": split,
        "records": n_img,
        "rois": len(labels),
        "calibration": cal.source,
        "thresholds": thresholds.to_dict(),
        "bootstrap": bootstrap,
        "pair_margin": pair_margin,
        "seconds_per_image": {k: v / max(1, n_img) for k, v in run.seconds.items()},
        "failures": run.failures,
        "fr_label": "included" if fr_b else "skipped (seagull.metrics.fr not importable or disabled)",
    }
    return SyntheticResult(scores, preds, labels, info, pairs)
