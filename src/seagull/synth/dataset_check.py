"""`seagull data validate`: check a dataset folder against the schema and its files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import SeagullError
from ..labels import Thresholds, importance_level, quality_level, severity_level
from ..records import (
    ALL_LABEL_TASKS,
    SampleRecord,
    card_label_tasks,
    parse_shard_line,
    read_card,
    shard_paths,
)
from ..roi import mask_bbox, rle_to_mask
from ..templates import count_regions

REQUIRED_CARD_KEYS = (
    "schema_version",
    "counts",
    "thresholds",
    "label_metric",
    "settings",
    "seed",
    "licence_notes",
)


def validate_dataset(root: Path, check_images: bool = True) -> tuple[int, list[str]]:
    """Return (number of records checked, list of problems). An empty list means valid."""
    root = Path(root)
    problems: list[str] = []
    try:
        card = read_card(root)
    except SeagullError as e:
        return 0, [str(e)]
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        problems.append(f"dataset.json lacks {missing}")
    try:
        th = Thresholds.from_dict(card["thresholds"])
    except (KeyError, TypeError, ValueError) as e:
        return 0, problems + [f"dataset.json thresholds are invalid: {e}"]
    labelled = card_label_tasks(card)  # a human-rated folder labels quality only
    n = 0
    ids: set[str] = set()
    if not shard_paths(root):
        problems.append("no shards/*.jsonl")
    for shard in shard_paths(root):
        try:
            lines = shard.read_bytes().split(b"\n")  # as read_shard reads them
        except OSError as e:
            problems.append(f"{shard} cannot be read ({e.strerror or e})")
            continue
        for k, line in enumerate(lines, 1):
            where = f"{shard.name}:{k}"
            try:
                d = parse_shard_line(line, shard, k)  # not UTF-8, not JSON, NaN or Infinity anywhere
            except SeagullError as e:
                problems.append(str(e))
                continue
            if d is None:
                continue
            try:
                rec = SampleRecord.from_dict(d)
            except (SeagullError, TypeError, ValueError) as e:
                problems.append(f"{where}: {e}")
                continue
            n += 1
            if rec.id in ids:
                problems.append(f"{where}: duplicate record id {rec.id!r}")
            ids.add(rec.id)
            problems += [
                f"{where} ({rec.id}): {p}" for p in _check_record(root, rec, th, check_images, labelled)
            ]
    if card.get("counts", {}).get("records") not in (None, n):
        problems.append(f"dataset.json counts {card['counts']['records']} records, shards hold {n}")
    return n, problems


def _check_record(
    root: Path,
    rec: SampleRecord,
    th: Thresholds,
    check_images: bool,
    labelled: tuple[str, ...] = ALL_LABEL_TASKS,
) -> Iterator[str]:
    img = root / rec.image
    if not img.is_file():
        yield f"image {rec.image} is missing"
    elif check_images:
        try:
            with Image.open(img) as im:
                if im.size != (rec.width, rec.height):
                    yield f"image {rec.image} is {im.size}, record says {(rec.width, rec.height)}"
        except OSError as e:
            yield f"image {rec.image} is unreadable ({e})"
    if not rec.rois:
        yield "record has no ROI"
    for roi in rec.rois:
        try:
            m = rle_to_mask(roi.rle, roi.id)
        except SeagullError as e:
            yield str(e)
            continue
        if m.shape != (rec.height, rec.width):
            yield f"ROI {roi.id}: RLE size {m.shape} differs from the image"
        if int(m.sum()) != roi.area:
            yield f"ROI {roi.id}: area {roi.area} != mask pixels {int(m.sum())}"
        elif list(mask_bbox(m)) != list(roi.bbox):
            yield f"ROI {roi.id}: bbox {roi.bbox} != mask bbox {list(mask_bbox(m))}"
        for name, val in (("quality", roi.quality), ("importance", roi.importance)):
            if val is None and name not in labelled:
                continue  # a score the folder does not label (its card's label_tasks)
            if val is None or not (0.0 <= val <= 1.0) or not np.isfinite(val):
                yield f"ROI {roi.id}: {name} {val} is not in [0, 1]"
        if roi.quality is not None and roi.quality_level != quality_level(roi.quality, th):
            yield f"ROI {roi.id}: quality level {roi.quality_level!r} does not match score {roi.quality}"
        if roi.importance is not None and roi.importance_level != importance_level(roi.importance, th):
            yield f"ROI {roi.id}: importance level {roi.importance_level!r} does not match score {roi.importance}"
        for d in roi.distortions:
            if d.severity_level != severity_level(d.severity, th):
                yield f"ROI {roi.id}: severity level {d.severity_level!r} does not match damage {d.severity}"
    for c, conv in enumerate(rec.conversations):
        turns = conv.get("turns", [])
        if not turns or turns[0].get("from") != "human" or "<image>" not in turns[0].get("value", ""):
            yield f"conversation {c}: must start with a human turn holding <image>"
            continue
        try:
            n_regions = sum(count_regions(t["value"]) for t in turns if t["from"] == "human")
        except SeagullError as e:
            yield f"conversation {c}: {e}"
            continue
        if n_regions != len(conv.get("rois", [])):
            yield f"conversation {c}: {n_regions} <global><local> pairs for {len(conv.get('rois', []))} ROIs"
        if any(i >= len(rec.rois) for i in conv.get("rois", [])):
            yield f"conversation {c}: refers to a ROI index beyond the record's ROIs"
