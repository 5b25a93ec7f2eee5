"""The Assessor on an accelerator against the CPU: the same scores, and how much faster.

Loads the model twice (CPU and ``--device``), assesses the same photos and ROIs on both, and reports
the largest score difference and the time per image of a batch, with and without the image cache.
Prints a table and writes JSON (default: benchmarks/results/device_check.json).

    python benchmarks/device_check.py [--model FOLDER] [--device cuda] [--batch 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from seagull.assess import Assessor
from seagull.imageio import load_image
from seagull.roi import Roi, box_to_mask

REPO = Path(__file__).resolve().parents[1]


def photos(batch: int) -> list[np.ndarray]:
    """The example photo rolled by different offsets: distinct pixels, the same size."""
    base = load_image(REPO / "examples" / "coffee.jpg")
    return [np.roll(base, 37 * i, axis=1) for i in range(batch)]


def rois_for(image: np.ndarray, i: int) -> list[Roi]:
    h, w = image.shape[:2]
    bw, bh = w // 3, h // 3
    x, y = (17 * i) % (w - bw), (11 * i) % (h - bh)
    return [Roi(box_to_mask([x, y, bw, bh], h, w), name="box"), Roi(np.ones((h, w), bool), name="all")]


def scores(results: list[list]) -> np.ndarray:
    return np.array(
        [
            [
                r.quality,
                r.importance,
                *(d.confidence for d in r.distortions),
                *(d.severity for d in r.distortions),
            ]
            for rr in results
            for r in rr
        ]
    )


def seconds_per_image(assessor: Assessor, images, rois, device: str, repeats: int) -> float:
    assessor.assess_batch(images, rois)  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        assessor.assess_batch(images, rois)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / len(images)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: the shipped default model)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "device_check.json")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here; run this where one is", file=sys.stderr)
        return 2
    images = photos(args.batch)
    rois = [rois_for(im, i) for i, im in enumerate(images)]
    cpu = Assessor(args.model, device="cpu")
    dev = Assessor(args.model, device=args.device)
    want = scores(cpu.assess_batch(images, rois))
    got = scores(dev.assess_batch(images, rois))
    cached = Assessor(args.model, device=args.device, image_cache_mb=256)
    cached.assess_batch(images, rois)
    again = scores(cached.assess_batch(images, rois))
    report = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "batch": args.batch,
        "rois": int(want.shape[0]),
        "max_abs_score_diff_vs_cpu": float(np.abs(got - want).max()),
        "max_abs_score_diff_cached_vs_cpu": float(np.abs(again - want).max()),
        "cache_hits": cached.image_cache.hits,
        "cpu_ms_per_image": 1000 * seconds_per_image(cpu, images, rois, "cpu", args.repeats),
        "device_ms_per_image": 1000 * seconds_per_image(dev, images, rois, args.device, args.repeats),
        "device_cached_ms_per_image": 1000
        * seconds_per_image(cached, images, rois, args.device, args.repeats),
        "cpu_threads": torch.get_num_threads(),
    }
    width = max(map(len, report))
    print(f"seagull Assessor: {args.device} vs CPU ({args.batch} photos, 2 ROIs each, all three tasks)")
    for k, v in report.items():
        print(f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"  -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
