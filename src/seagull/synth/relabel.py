"""`seagull data relabel`: re-cut levels and rebuild conversations from the stored scores.

Scores are the expensive part of synthesis; levels are a cheap function of scores and thresholds.
Relabelling lets a dataset adopt new thresholds without rendering or scoring anything again. Only
the thresholds asked for change (the others stay the dataset's own), and the files it rewrites are
first copied to ``relabel_backups/N`` inside the folder, so the previous labels are never lost.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError, SchemaError
from ..fileio import atomic_write_text
from ..labels import IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS, Thresholds
from ..records import SampleRecord, dataset_thresholds, read_card, read_shard, shard_paths, write_shard
from ..templates import label_conversations
from .layouts import roi_types
from .pipeline import conversation_seed, level_fields


@dataclass
class Relabelled:
    """What ``relabel_folder`` did: records rewritten, thresholds before and after, ROI counts per level
    before and after (severity counts distortion labels; ``none`` counts ROIs with none), and the folder
    that keeps the files as they were."""

    records: int
    before: Thresholds
    after: Thresholds
    counts_before: dict[str, dict[str, int]]
    counts_after: dict[str, dict[str, int]]
    backup: Path


BACKUPS = "relabel_backups"  # inside the dataset folder; shards are read from shards/*.jsonl only


def _count(counts: dict[str, dict[str, int]], rec: SampleRecord) -> None:
    for roi in rec.rois:
        for kind, level in (("quality", roi.quality_level), ("importance", roi.importance_level)):
            counts[kind][str(level)] = counts[kind].get(str(level), 0) + 1
        for dl in roi.distortions:
            counts["severity"][dl.severity_level] = counts["severity"].get(dl.severity_level, 0) + 1
        if not roi.distortions:
            counts["severity"]["none"] = counts["severity"].get("none", 0) + 1


def _new_counts() -> dict[str, dict[str, int]]:
    return {"quality": {}, "importance": {}, "severity": {}}


def _backup(root: Path, shards: list[Path]) -> Path:
    """Copy every file relabelling rewrites to a new numbered folder under ``root/relabel_backups``."""
    base = root / BACKUPS
    taken = [int(p.name) for p in base.glob("*") if p.name.isdigit()] if base.is_dir() else []
    folder = base / str(max(taken, default=0) + 1)
    (folder / "shards").mkdir(parents=True)
    for name in ("dataset.json", "synth_config.json", "level_histograms.png"):
        if (root / name).is_file():
            shutil.copy2(root / name, folder / name)
    for shard in shards:
        shutil.copy2(shard, folder / "shards" / shard.name)
    return folder


def relabel_folder(root: Path, thresholds: Thresholds) -> Relabelled:
    """Rewrite every shard of ``root`` with ``thresholds``, after copying what is rewritten (shards,
    card, synthesis config, histograms) to ``root/relabel_backups/N``."""
    root = Path(root)
    card = read_card(root)
    seed = int(card["seed"])
    before = dataset_thresholds(root)
    shards = shard_paths(root)
    counts_before, counts_after = _new_counts(), _new_counts()
    for shard in shards:  # a first pass reads everything, so a broken shard stops it before any write
        for d in read_shard(shard):
            _count(counts_before, SampleRecord.from_dict(d))
    backup = _backup(root, shards)
    n = 0
    for shard in shards:
        records = [SampleRecord.from_dict(d) for d in read_shard(shard)]
        for rec in records:
            for roi, (fam, sub) in zip(rec.rois, roi_types(rec.distortion, len(rec.rois)), strict=True):
                for k, v in level_fields(roi.quality, roi.importance, fam, sub, thresholds).items():
                    setattr(roi, k, v)
            _count(counts_after, rec)
            rec.conversations = label_conversations(rec.rois, conversation_seed(seed, rec.id))
            n += 1
        write_shard(shard, records)
    counts = {kind: {w: c for w, c in levels.items() if w != "none"} for kind, levels in counts_after.items()}
    card["thresholds"] = thresholds.to_dict()
    card["level_counts"] = counts
    atomic_write_text(root / "dataset.json", json.dumps(card, indent=2, allow_nan=False))
    config = root / "synth_config.json"
    if config.is_file():  # keep resuming consistent with the new labels
        fp = json.loads(config.read_text(encoding="utf-8"))
        fp["thresholds"] = thresholds.to_dict()
        atomic_write_text(config, json.dumps(fp, indent=2))
    from .runner import write_histograms

    write_histograms(root, counts)
    return Relabelled(n, before, thresholds, counts_before, counts_after, backup)


def relabel_dataset(root: Path, thresholds: Thresholds) -> int:
    """Rewrite every shard of ``root`` with ``thresholds``; returns the number of records."""
    return relabel_folder(root, thresholds).records


def format_changes(res: Relabelled) -> str:
    """The thresholds that changed and the ROI counts per level before and after, as text lines."""
    lines = []
    old, new = res.before.to_dict(), res.after.to_dict()
    changed = [k for k in new if old[k] != new[k]]
    for k in changed:
        lines.append(f"  thresholds.{k}: {old[k]} -> {new[k]}")
    if not changed:
        lines.append("  thresholds unchanged")
    words = {
        "quality": QUALITY_LEVELS,
        "importance": IMPORTANCE_LEVELS,
        "severity": (*SEVERITY_LEVELS, "none"),
    }
    lines.append(f"  {'level':<22}{'before':>8}{'after':>8}")
    for kind, levels in words.items():
        for w in levels:
            a, b = res.counts_before[kind].get(w, 0), res.counts_after[kind].get(w, 0)
            mark = "" if a == b else f"  ({b - a:+d})"
            lines.append(f"  {kind + ' ' + w:<22}{a:>8}{b:>8}{mark}")
    return "\n".join(lines)


def _cuts(option: str, text: str | None, default: tuple[float, ...]) -> tuple[float, ...]:
    if text is None or text == "":
        return default
    try:
        return tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: give four increasing numbers in [0, 1] separated by commas, "
            "e.g. 0.45,0.65,0.8,0.92"
        ) from None


def thresholds_from_args(
    base: Thresholds,
    quality: str | None,
    importance: str | None,
    severity: str | None,
    visible: float | str | None,
) -> Thresholds:
    """``base`` (the dataset's own thresholds) with only the options given replaced; ConfigError naming
    the option for a value that is not finite, not in [0, 1] or not increasing."""
    d = asdict(base)
    given = {
        "quality": _cuts("--quality", quality, d["quality"]),
        "importance": _cuts("--importance", importance, d["importance"]),
        "severity": _cuts("--severity", severity, d["severity"]),
    }
    try:
        vis = d["visible"] if visible is None else float(visible)
    except ValueError:
        raise ConfigError(
            f"--visible {visible!r} is not a number; give a damage in [0, 1], e.g. 0.025"
        ) from None
    for name, cuts in given.items():
        try:
            Thresholds(**{**d, name: cuts})
        except SchemaError:
            raise ConfigError(
                f"--{name} {','.join(f'{c:g}' for c in cuts)}: cut points must be four increasing finite "
                "numbers in [0, 1], e.g. 0.45,0.65,0.8,0.92"
            ) from None
    try:
        return Thresholds(**given, visible=vis)
    except SchemaError:
        raise ConfigError(
            f"--visible {visible}: the smallest visible damage must be a finite number in [0, 1], e.g. 0.025"
        ) from None
