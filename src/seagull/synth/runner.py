"""Run the per-reference function over many references: in-process, on N local workers or on a
Ray cluster; resume from the shards already written; write the dataset card and histograms."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fileio import atomic_write_text, changed_keys
from ..labels import IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS
from ..records import SCHEMA_VERSION, iter_records, shard_paths
from ..references import Reference, discover_references, find_annotations
from ..version import __version__
from ..workers import threads_per_worker, worker_pool
from .layouts import roi_settings
from .pipeline import ItemResult, SynthConfig, process_reference

LICENCE_NOTES = {
    "bsds500": "BSDS500: non-commercial research and education only (Berkeley); Corel photos. Do not redistribute.",
    "coco": "COCO: annotations CC BY 4.0; photos under their Flickr licences (see the COCO json).",
    "kodak": "Kodak Lossless True Color Image Suite: released for unrestricted usage.",
}


@dataclass
class SynthSummary:
    out: Path
    done: int = 0
    skipped: int = 0  # finished in an earlier run
    failed: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0
    rois: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    wall: float = 0.0
    annotations: Path | None = None  # the COCO annotation file the human ROIs came from


def prepare_out(out: Path) -> None:
    """Make the output folder and check that files can be written in it, before any work."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; choose a folder to write the dataset to")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise ConfigError(
            f"--out {out} cannot be created or written ({e.strerror or e}); choose a folder you can write to"
        ) from e


def _check_resume(cfg: SynthConfig) -> None:
    """An existing folder may only be resumed with the same configuration."""
    path = cfg.out / "synth_config.json"
    fp = cfg.fingerprint()
    diff = changed_keys(path, fp)
    if diff:
        raise ConfigError(
            f"{cfg.out} was synthesised with a different configuration ({', '.join(diff)} differ); "
            "use a new --out folder or the original options"
        )
    if diff is None:
        atomic_write_text(path, json.dumps(fp, indent=2))


def _run_local(todo: list[Reference], cfg: SynthConfig, workers: int) -> Iterator[ItemResult]:
    cfg = replace(cfg, threads=threads_per_worker(workers))  # workers x threads <= cores
    if workers <= 1:
        for ref in todo:
            yield process_reference(ref, cfg)
        return
    with worker_pool(workers) as pool:
        futures = [pool.submit(process_reference, ref, cfg) for ref in todo]
        for fut in as_completed(futures):
            yield fut.result()


def run_synthesis(
    cfg: SynthConfig,
    workers: int = 1,
    ray_address: str | None = None,
    use_ray: bool = False,
    limit: int | None = None,
    skip: int = 0,
    progress: bool = True,
    on_result: Callable[[ItemResult], None] | None = None,
) -> SynthSummary:
    t0 = time.perf_counter()
    annotations = find_annotations(cfg.refs, cfg.annotations) if cfg.rois != "auto" else None
    refs = discover_references(cfg.refs, annotations, coco=annotations is not None)[skip:][: limit or None]
    prepare_out(cfg.out)
    _check_resume(cfg)
    if annotations and progress:
        print(f"human ROIs from COCO annotations {annotations}", file=sys.stderr)
    finished = {p.stem for p in shard_paths(cfg.out)}
    todo = [r for r in refs if r.id not in finished]
    summary = SynthSummary(cfg.out, skipped=len(refs) - len(todo), annotations=annotations)
    if use_ray or ray_address:
        from .ray_backend import run_ray

        results = run_ray(todo, cfg, ray_address)
    else:
        results = _run_local(todo, cfg, workers)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="synth", unit="ref")
    failures_log = cfg.out / "failures.jsonl"
    for r in results:
        if r.error:
            summary.failed.append((r.ref_id, r.error))
            with failures_log.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"ref": r.ref_id, "error": r.error, "time": time.time()}) + "\n")
        else:
            summary.done += 1
        for k, v in r.seconds.items():
            summary.seconds[k] += v
        if on_result:
            on_result(r)
        if bar:
            bar.update(1)
            bar.set_postfix(failed=len(summary.failed))
    if bar:
        bar.close()
    card = write_card(cfg, refs, annotations)
    summary.records, summary.rois = card["counts"]["records"], card["counts"]["rois"]
    summary.wall = time.perf_counter() - t0
    return summary


# --------------------------------------------------------------------------- card, tables, plots


def family_setting_table(dataset_dir: Path) -> dict[str, dict[int, float]]:
    """Mean ROI quality per family per setting over every record of the folder (a multi-region item's
    ROIs count under their own region's family and setting; ROIs outside every region are left out)."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rec in iter_records(dataset_dir):
        for roi, (fam, setting) in zip(rec.rois, roi_settings(rec.distortion, len(rec.rois)), strict=True):
            if fam is not None:
                sums[fam][setting].append(roi.quality)
    return {f: {s: sum(v) / len(v) for s, v in sorted(d.items())} for f, d in sums.items()}


def format_family_table(table: dict[str, dict[int, float]]) -> str:
    settings = sorted({s for d in table.values() for s in d if s > 0})
    lines = ["mean ROI quality per setting (rows: family; 0 = clean reference)"]
    lines.append(f"{'family':<13}" + "".join(f"{s:>7}" for s in settings) + "  monotone")
    for fam, d in sorted(table.items()):
        if fam == "none":
            continue
        vals = [d.get(s) for s in settings]
        mono = all(a >= b for a, b in zip(vals, vals[1:], strict=False) if a is not None and b is not None)
        lines.append(
            f"{fam:<13}"
            + "".join(f"{v:7.3f}" if v is not None else "      -" for v in vals)
            + f"  {'yes' if mono else 'NO'}"
        )
    return "\n".join(lines)


def write_card(cfg: SynthConfig, refs: list[Reference], annotations: Path | None = None) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "references": 0,
        "records": 0,
        "rois": 0,
        "per_family": defaultdict(int),
        "per_split": defaultdict(int),
    }
    levels = {"quality": defaultdict(int), "importance": defaultdict(int), "severity": defaultdict(int)}
    sources: dict[str, int] = defaultdict(int)
    seen_refs = set()
    for rec in iter_records(cfg.out) if shard_paths(cfg.out) else []:
        seen_refs.add(rec.reference)
        counts["records"] += 1
        counts["rois"] += len(rec.rois)
        counts["per_family"][rec.distortion["family"]] += 1
        counts["per_split"][rec.split] += 1
        for roi in rec.rois:
            sources[roi.source] += 1
            levels["quality"][roi.quality_level] += 1
            levels["importance"][roi.importance_level] += 1
            for d in roi.distortions:
                levels["severity"][d.severity_level] += 1
    counts["references"] = len(seen_refs)
    from .. import distortions as D

    root = str(cfg.refs).lower()
    card = {
        "name": cfg.out.name,
        "schema_version": SCHEMA_VERSION,
        "seagull_version": __version__,
        "counts": counts,
        "level_counts": levels,
        "roi_sources": dict(sources),
        "thresholds": cfg.thresholds.to_dict(),
        "label_metric": cfg.metric,
        "labels": {
            "quality": "FR similarity of the distorted vs reference bbox crop (outside the mask identical), in [0,1]",
            "importance": "1 - FR similarity of the reference with only the ROI distorted vs the reference",
            "severity": "damage = 1 - quality of the region, cut by thresholds.severity",
            "distortion_present": "damage >= thresholds.visible",
        },
        "families": {f: list(D.FAMILIES[f]) for f in cfg.families},
        "settings": D.setting_ladder(cfg.settings, cfg.strongest),
        "num_settings": D.NUM_SETTINGS,
        "seed": cfg.seed,
        "config": cfg.fingerprint(),
        "sources": {
            "refs": str(cfg.refs),
            "n_refs_found": len(refs),
            "annotations": str(annotations) if annotations else None,
        },
        "licence_notes": [v for k, v in LICENCE_NOTES.items() if k in root]
        or ["The distorted images inherit the licence of their reference photos."],
    }
    atomic_write_text(cfg.out / "dataset.json", json.dumps(card, indent=2, default=dict))
    if counts["records"]:
        write_histograms(cfg.out, levels)
    return card


def write_histograms(out: Path, levels: dict[str, dict[str, int]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (name, words) in zip(
        axes,
        (("quality", QUALITY_LEVELS), ("importance", IMPORTANCE_LEVELS), ("severity", SEVERITY_LEVELS)),
        strict=True,
    ):
        ax.bar(words, [levels[name].get(w, 0) for w in words], color="#3b7dd8")
        ax.set_title(f"ROI {name} levels")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out / "level_histograms.png", dpi=90)
    plt.close(fig)
