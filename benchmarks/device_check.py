"""The Assessor on an accelerator against the CPU: the same scores, and how much faster.

Loads the model twice (CPU and ``--device``), assesses the same photos and ROIs on both, and reports
the largest score difference and the time per image of a batch, with and without the image cache.
Without a CUDA device it runs the CPU part alone (the cached path against the plain one, CPU times)
and says so. Prints a table; ``--save`` writes benchmarks/results/device_check.json.

    python benchmarks/device_check.py [--model FOLDER] [--device cuda] [--batch 10] [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch

from common import EXAMPLES, add_common_options, save_result
from seagull.assess import Assessor
from seagull.imageio import load_image
from seagull.roi import Roi, box_to_mask


def photos(batch: int) -> list[np.ndarray]:
    """The example photo rolled by different offsets: distinct pixels, the same size."""
    base = load_image(EXAMPLES / "coffee.jpg")
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
    add_common_options(p, "device_check")
    args = p.parse_args(argv)
    if args.smoke:
        args.batch, args.repeats = 1, 1
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"no CUDA device here: the CPU part only (run on a machine with one to compare {device})")
        device = "cpu"
    images = photos(args.batch)
    rois = [rois_for(im, i) for i, im in enumerate(images)]
    cpu = Assessor(args.model, device="cpu")
    want = scores(cpu.assess_batch(images, rois))
    cached = Assessor(args.model, device=device, image_cache_mb=256)
    cached.assess_batch(images, rois)
    again = scores(cached.assess_batch(images, rois))
    report = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "batch": args.batch,
        "rois": int(want.shape[0]),
        "max_abs_score_diff_cached_vs_cpu": float(np.abs(again - want).max()),
        "cache_hits": cached.image_cache.hits,
        "cpu_ms_per_image": 1000 * seconds_per_image(cpu, images, rois, "cpu", args.repeats),
        "device_cached_ms_per_image": 1000 * seconds_per_image(cached, images, rois, device, args.repeats),
        "cpu_threads": torch.get_num_threads(),
    }
    if device != "cpu":
        dev = Assessor(args.model, device=device)
        report["max_abs_score_diff_vs_cpu"] = float(
            np.abs(scores(dev.assess_batch(images, rois)) - want).max()
        )
        report["device_ms_per_image"] = 1000 * seconds_per_image(dev, images, rois, device, args.repeats)
    width = max(map(len, report))
    print(f"seagull Assessor: {device} vs CPU ({args.batch} photos, 2 ROIs each, all three tasks)")
    for k, v in report.items():
        print(f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
    save_result(args, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
