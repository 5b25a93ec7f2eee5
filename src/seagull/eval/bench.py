"""Efficiency table in the style of pyiqa's: seconds per image and per ROI, peak memory, for every
baseline and (optionally) the model, on the same images and ROIs on this machine.

ROIs: ``n_rois`` boxes per image on a fixed grid (deterministic), so every predictor sees the same
regions. Timing: wall clock around ``predict(image, masks)`` after one warm-up image; peak memory:
the peak of Python/numpy allocations traced by ``tracemalloc`` during the calls (torch's own CPU
allocator is not traced, so for the model it is a lower bound) and the process's peak RSS.
"""

from __future__ import annotations

import os
import platform
import resource
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SeagullError
from ..imageio import SUPPORTED_SUFFIXES, fit_longest_side, load_image
from .baselines import RoiPredictor, list_baselines, make_baseline


@dataclass
class BenchRow:
    predictor: str
    images: int
    rois: int
    sec_per_image: float
    sec_per_roi: float
    peak_traced_mib: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid_masks(h: int, w: int, n: int) -> list[np.ndarray]:
    """``n`` boxes, each a quarter of the image in area, on a 3x3 grid of anchors (deterministic)."""
    masks = []
    bh, bw = max(1, h // 2), max(1, w // 2)
    anchors = [(y, x) for y in (0, h // 4, h - bh) for x in (0, w // 4, w - bw)]
    for k in range(n):
        y, x = anchors[k % len(anchors)]
        m = np.zeros((h, w), bool)
        m[y : y + bh, x : x + bw] = True
        masks.append(m)
    return masks


def list_images(folder: Path, limit: int) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not paths:
        raise SeagullError(f"{folder} holds no images ({', '.join(SUPPORTED_SUFFIXES)})")
    return paths[:limit]


def bench_predictor(p: RoiPredictor, images: Sequence[np.ndarray], n_rois: int) -> BenchRow:
    masks = [grid_masks(im.shape[0], im.shape[1], n_rois) for im in images]
    p.predict(images[0], masks[0])  # warm-up: lazy imports, caches, parameter files
    tracemalloc.start()
    t = time.perf_counter()
    for im, ms in zip(images, masks, strict=True):
        p.predict(im, ms)
    wall = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_img, n_roi = len(images), len(images) * n_rois
    return BenchRow(p.name, n_img, n_roi, wall / n_img, wall / n_roi, peak / 2**20)


def machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def run_bench(
    image_dir: Path,
    limit: int = 8,
    n_rois: int = 4,
    baselines: Sequence[str] | None = None,
    model: RoiPredictor | None = None,
    max_side: int | None = 512,
) -> dict[str, Any]:

    paths = list_images(image_dir, limit)
    images = []
    for p in paths:
        images.append(fit_longest_side(load_image(p), max_side))
    names = list_baselines() if baselines is None else baselines
    preds: list[RoiPredictor] = ([model] if model is not None else []) + [make_baseline(b) for b in names]
    rows = [bench_predictor(p, images, n_rois) for p in preds]
    return {
        "images": [str(p) for p in paths],
        "image_sizes": [list(im.shape[:2]) for im in images],
        "rois_per_image": n_rois,
        "machine": machine(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": [r.to_dict() for r in rows],
    }


BENCH_COLUMNS = ["predictor", "images", "rois", "sec/image", "sec/ROI", "peak traced MiB"]


def bench_table_rows(result: dict[str, Any]) -> list[list[str]]:
    return [
        [
            r["predictor"],
            str(r["images"]),
            str(r["rois"]),
            f"{r['sec_per_image']:.4f}",
            f"{r['sec_per_roi']:.4f}",
            f"{r['peak_traced_mib']:.1f}",
        ]
        for r in result["rows"]
    ]
