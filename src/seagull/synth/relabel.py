"""`seagull data relabel`: re-cut levels and rebuild conversations from the stored scores.

Scores are the expensive part of synthesis; levels are a cheap function of scores and thresholds.
Relabelling lets a dataset adopt new thresholds without rendering or scoring anything again.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..schema import (
    SampleRecord,
    Thresholds,
    atomic_write_text,
    read_card,
    read_shard,
    shard_paths,
    write_shard,
)
from ..templates import label_conversations
from .layouts import roi_types
from .pipeline import conversation_seed, level_fields


def relabel_dataset(root: Path, thresholds: Thresholds) -> int:
    """Rewrite every shard of ``root`` with ``thresholds``; returns the number of records."""
    root = Path(root)
    card = read_card(root)
    seed = int(card["seed"])
    n = 0
    counts: dict[str, dict[str, int]] = {"quality": {}, "importance": {}, "severity": {}}
    for shard in shard_paths(root):
        records = []
        for d in read_shard(shard):
            rec = SampleRecord.from_dict(d)
            for roi, (fam, sub) in zip(rec.rois, roi_types(rec.distortion, len(rec.rois)), strict=True):
                for k, v in level_fields(roi.quality, roi.importance, fam, sub, thresholds).items():
                    setattr(roi, k, v)
                counts["quality"][roi.quality_level] = counts["quality"].get(roi.quality_level, 0) + 1
                counts["importance"][roi.importance_level] = (
                    counts["importance"].get(roi.importance_level, 0) + 1
                )
                for dl in roi.distortions:
                    counts["severity"][dl.severity_level] = counts["severity"].get(dl.severity_level, 0) + 1
            rec.conversations = label_conversations(rec.rois, conversation_seed(seed, rec.id))
            records.append(rec)
            n += 1
        write_shard(shard, records)
    card["thresholds"] = thresholds.to_dict()
    card["level_counts"] = counts
    atomic_write_text(root / "dataset.json", json.dumps(card, indent=2))
    config = root / "synth_config.json"
    if config.is_file():  # keep resuming consistent with the new labels
        fp = json.loads(config.read_text(encoding="utf-8"))
        fp["thresholds"] = thresholds.to_dict()
        atomic_write_text(config, json.dumps(fp, indent=2))
    from .runner import write_histograms

    write_histograms(root, counts)
    return n


def thresholds_from_args(
    base: Thresholds, quality: str | None, importance: str | None, severity: str | None, visible: float | None
) -> Thresholds:
    def cuts(text: str | None, default: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(float(v) for v in text.split(",")) if text else default

    d = asdict(base)
    return Thresholds(
        quality=cuts(quality, d["quality"]),
        importance=cuts(importance, d["importance"]),
        severity=cuts(severity, d["severity"]),
        visible=d["visible"] if visible is None else visible,
    )
