"""``seagull data cuhk``: the CUHK blur suite as a dataset folder for stage-2 fine-tuning on authentic
blur, as SEAGULL fine-tunes on its human-labelled SEAGULL-3k (docs/training.md, "Stage 2: authentic
blur (CUHK)").

One record per photo (id = the photo's file stem), its photo copied byte for byte to
``images/<file name>``, its split the fixed photo split (:func:`seagull.authentic.cuhk_split`; all three
splits are written, training takes ``train``), two ROIs: ``r0`` the blurred region (mask 255) and
``r1`` its sharp complement. A photo is skipped, with a counted reason, when either region is under
2 % of the photo or its photo or mask cannot be read.

Labels, from the whole-photo PaQ-2-PiQ MOS (0-100) and s = the ROI's share of the photo's pixels:

* sharp ROI: no distortion; quality q_s = clip(0.8 + 0.2 * MOS / 100, 0, 1): the photo's MOS includes
  its blur, the sharp region is rated above it (MOS 74, the defocus mean, gives 0.95: good).
* blurred ROI: distortion blur (sub-type ``defocus`` or ``motion``); quality
  q_b = clip(q_s - drop, 0, 1) with drop 0.2 (defocus) or 0.3 (motion) by default (``--defocus-drop``,
  ``--motion-drop``; the card records them): clearly visible blur, fair or worse at the defaults;
  severity = q_s - q_b, cut by the severity cut points (so at the defaults every blurred ROI is
  "moderate" under label scheme v2). The record's
  ``distortion`` names the blur as region 0 of ``r0`` only (``roi_types`` gives ``r1`` no type).
* importance: (1 - q) * s for both ROIs, the damage the ROI brings to the whole photo, which is what
  the synthetic corpus's importance measures (the full-reference change of the whole image when the
  ROI is distorted), so the words match its scale.
* levels: cut with label scheme v2's :data:`seagull.synth.pipeline.VISIBILITY_THRESHOLDS` by
  :func:`seagull.synth.pipeline.level_fields`, the function that cuts the synthetic corpus's levels,
  so that the words mean the same in both.
* conversations: :func:`seagull.templates.label_conversations`, seeded as synthesis seeds them.

``seagull data relabel`` recomputes severities as 1 - quality (the synthetic rule), not as the drop.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..authentic import (
    CUHK_SPLIT_FRACTIONS,
    CUHK_SPLIT_SEED,
    CuhkPhoto,
    load_blur_mask,
    read_cuhk_index,
    select_photos,
    tiny_region,
)
from ..errors import ConfigError, ImageLoadError, RoiError
from ..fileio import atomic_write_text
from ..imageio import load_image
from ..labels import DistortionLabel, severity_level
from ..records import SCHEMA_VERSION, RoiRecord, SampleRecord, read_card, shard_paths, write_shard
from ..roi import mask_bbox, mask_to_rle
from ..templates import label_conversations
from ..version import __version__
from .pipeline import VISIBILITY_THRESHOLDS, conversation_seed, level_fields
from .runner import prepare_out, write_histograms

BLUR_DROP = {"defocus": 0.2, "motion": 0.3}
CONVERTER = "seagull data cuhk"
SEED = 0  # the card's seed; conversations are seeded from it and the record id, as synthesis seeds them
LICENCE_NOTES = [
    "CUHK blur detection dataset (Shi, Xu, Jia, CVPR 2014): academic research only, no redistribution.",
    "PaQ-2-PiQ labels (Ying et al., CVPR 2020): CC BY-NC(-SA) 4.0, non-commercial.",
]


@dataclass
class Conversion:
    out: Path
    records: int = 0
    per_split: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (photo, reason)

    @property
    def skip_counts(self) -> dict[str, int]:
        return dict(Counter(reason.split(":")[0] for _, reason in self.skipped))


def sharp_quality(mos: float) -> float:
    return float(np.clip(0.8 + 0.2 * mos / 100.0, 0.0, 1.0))


def check_drops(drops: Mapping[str, float]) -> dict[str, float]:
    """``drops`` with a value in (0, 1) for each blur type, or a ConfigError that names the fix."""
    missing = [t for t in BLUR_DROP if t not in drops]
    if missing:
        raise ConfigError(f"blur drops lack {missing}; give one for each of {list(BLUR_DROP)}")
    for kind, drop in drops.items():
        if not 0.0 < float(drop) < 1.0:
            raise ConfigError(f"the {kind} blur drop {drop} is not in (0, 1): it is a quality difference")
    return {t: float(drops[t]) for t in BLUR_DROP}


def roi_scores(
    photo: CuhkPhoto, blurred_share: float, drops: Mapping[str, float] = BLUR_DROP
) -> dict[str, dict[str, float]]:
    """Quality and importance scores of the ``blurred`` and ``sharp`` ROIs (the rule of the docstring)."""
    q_s = sharp_quality(photo.mos)
    q_b = float(np.clip(q_s - drops[photo.blur_type], 0.0, 1.0))
    imp_b, imp_s = (1.0 - q_b) * blurred_share, (1.0 - q_s) * (1.0 - blurred_share)
    # rounded as records store them, so the levels cut here are the levels a reader re-cuts
    q_b, q_s, imp_b, imp_s = (round(x, 6) for x in (q_b, q_s, imp_b, imp_s))
    return {"blurred": {"quality": q_b, "importance": imp_b}, "sharp": {"quality": q_s, "importance": imp_s}}


def _roi(roi_id: str, mask: np.ndarray, source: str, fields: dict[str, Any]) -> RoiRecord:
    return RoiRecord(
        id=roi_id,
        rle=mask_to_rle(mask),
        bbox=list(mask_bbox(mask)),
        area=int(mask.sum()),
        source=source,
        **fields,
    )


def photo_record(
    photo: CuhkPhoto,
    blurred: np.ndarray,
    image_rel: str,
    reference: str,
    drops: Mapping[str, float] = BLUR_DROP,
) -> SampleRecord:
    """The labelled record of one photo whose regions are both large enough."""
    th = VISIBILITY_THRESHOLDS
    scores = roi_scores(photo, float(blurred.mean()), drops)
    sharp = level_fields(scores["sharp"]["quality"], scores["sharp"]["importance"], None, None, th)
    blur = level_fields(scores["blurred"]["quality"], scores["blurred"]["importance"], None, None, th)
    drop = round(scores["sharp"]["quality"] - scores["blurred"]["quality"], 6)
    if drop >= th.visible:
        blur["distortions"] = [DistortionLabel("blur", drop, severity_level(drop, th), photo.blur_type)]
    rois = [
        _roi("r0", blurred, f"cuhk:mask:{photo.blur_type}", blur),
        _roi("r1", ~blurred, "cuhk:mask:sharp", sharp),
    ]
    region = {"roi": 0, "family": "blur", "subtype": photo.blur_type, "setting": 0, "params": {}}
    distortion = {
        "family": "blur",
        "subtype": photo.blur_type,
        "setting": 0,  # authentic: no synthetic strength
        "num_settings": 0,
        "params": {"mos_paq2piq": photo.mos},
        "scope": "authentic",
        "local_roi": 0,
        "regions": [region],
        "roi_regions": [0, None],
    }
    h, w = blurred.shape
    convs = label_conversations(rois, conversation_seed(SEED, photo.stem))
    return SampleRecord(photo.stem, image_rel, reference, w, h, distortion, rois, convs, photo.split)


def _clear_earlier_conversion(out: Path) -> None:
    """Remove the shards of an earlier conversion into ``out``; refuse any other dataset folder."""
    if not (out / "dataset.json").is_file():
        if shard_paths(out):
            raise ConfigError(f"--out {out} holds shards but no dataset.json; choose a new --out folder")
        return
    if read_card(out).get("sources", {}).get("converter") != CONVERTER:
        raise ConfigError(f"--out {out} holds another dataset; choose a new --out folder")
    for p in shard_paths(out):
        p.unlink()


def convert_cuhk(
    refs: Path, out: Path, limit: int | None = None, drops: Mapping[str, float] = BLUR_DROP
) -> Conversion:
    """Write the CUHK blur folder ``refs`` as a dataset folder ``out`` (every split; with ``limit`` a
    subset with both blur types; ``drops``: the blurred ROI's quality drop per blur type)."""
    refs, out = Path(refs), Path(out)
    drops = check_drops(drops)
    photos = select_photos(read_cuhk_index(refs), "all", limit)
    prepare_out(out)
    _clear_earlier_conversion(out)
    res = Conversion(out)
    records: list[SampleRecord] = []
    for photo in photos:
        try:
            image = load_image(refs / photo.image)
            blurred = load_blur_mask(refs, photo, image.shape[:2])
        except (ImageLoadError, RoiError) as e:
            res.skipped.append((photo.image, f"unreadable: {e}"))
            continue
        reason = tiny_region(blurred)
        if reason:
            res.skipped.append((photo.image, reason))
            continue
        rel = f"images/{PurePosixPath(photo.image).name}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(refs / photo.image, out / rel)
        rec = photo_record(photo, blurred, rel, str(refs / photo.image), drops)
        write_shard(out / "shards" / f"{photo.stem}.jsonl", [rec])
        records.append(rec)
    res.records = len(records)
    res.per_split.update(rec.split for rec in records)
    _write_card(res, records, refs, len(photos), drops)
    return res


def _write_card(
    res: Conversion, records: list[SampleRecord], refs: Path, n_photos: int, drops: dict[str, float]
) -> None:
    """``dataset.json`` with the keys ``seagull synth`` writes, and the skipped photos."""
    levels: dict[str, Counter] = {"quality": Counter(), "importance": Counter(), "severity": Counter()}
    for roi in (roi for rec in records for roi in rec.rois):
        levels["quality"][roi.quality_level] += 1
        levels["importance"][roi.importance_level] += 1
        levels["severity"].update(d.severity_level for d in roi.distortions)
    counts = {
        "references": len(records),
        "records": len(records),
        "rois": sum(len(rec.rois) for rec in records),
        "per_family": {"blur": len(records)},
        "per_split": dict(res.per_split),
    }
    card = {
        "name": res.out.name,
        "schema_version": SCHEMA_VERSION,
        "seagull_version": __version__,
        "counts": counts,
        "level_counts": levels,
        "roi_sources": {"cuhk:mask": counts["rois"]},
        "thresholds": VISIBILITY_THRESHOLDS.to_dict(),
        "label_metric": "",  # human labels (MOS and masks), no full-reference metric
        "labels": {
            "quality": "sharp ROI 0.8 + 0.2 MOS/100; blurred ROI that minus the blur drop of its type",
            "blur_drop": drops,
            "importance": "(1 - quality) x area share s, the damage the ROI brings to the photo",
            "severity": "blurred ROI: the quality drop from the sharp ROI, cut by thresholds.severity",
            "distortion_present": "the blurred ROI (blur, sub-type = blur_type); the sharp ROI has none",
        },
        "settings": [],
        "seed": SEED,
        "split": {"by": "photo file stem", "fractions": list(CUHK_SPLIT_FRACTIONS), "seed": CUHK_SPLIT_SEED},
        "sources": {
            "converter": CONVERTER,
            "refs": str(refs),
            "n_refs_found": n_photos,
            "skipped": res.skip_counts,
            "skipped_photos": [{"photo": p, "reason": r} for p, r in res.skipped],
        },
        "licence_notes": LICENCE_NOTES,
    }
    atomic_write_text(res.out / "dataset.json", json.dumps(card, indent=2, default=dict))
    if records:
        write_histograms(res.out, {k: dict(v) for k, v in levels.items()})
