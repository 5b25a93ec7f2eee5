"""Speed and memory of the shipped default model on this CPU (the default-model targets).

Measures, in fresh subprocesses so nothing is shared: import + model load time; warm latency of all
three tasks for 1 ROI and for 10 ROIs of one image; peak resident memory. Prints a table; ``--save``
writes benchmarks/results/default_model_speed.json.

    python benchmarks/default_model_speed.py [--model FOLDER] [--repeats 5] [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from common import EXAMPLES, add_common_options, save_result

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np
from seagull import Assessor, Roi
from seagull.imageio import load_image
from seagull.roi import box_to_mask
model = sys.argv[1] or None
assessor = Assessor(model) if model else Assessor()
load_s = time.perf_counter() - t0
image = load_image(sys.argv[2])
h, w = image.shape[:2]
rng = np.random.default_rng(0)
def boxes(n):
    out = []
    for i in range(n):
        bw, bh = int(rng.integers(w // 8, w // 2)), int(rng.integers(h // 8, h // 2))
        x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        out.append(Roi(box_to_mask([x, y, bw, bh], h, w), name=f"r{i}"))
    return out
one, ten = boxes(1), boxes(10)
assessor.assess(image, one); assessor.assess(image, ten)  # warm-up
def best(rois, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); assessor.assess(image, rois); times.append(time.perf_counter() - t)
    return min(times), sorted(times)[len(times) // 2]
b1, m1 = best(one, int(sys.argv[3])); b10, m10 = best(ten, int(sys.argv[3]))
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import_and_load_s": load_s, "one_roi_ms_best": b1 * 1e3, "one_roi_ms_median": m1 * 1e3,
                  "ten_rois_ms_best": b10 * 1e3, "ten_rois_ms_median": m10 * 1e3, "peak_rss_mb": peak_mb}))
"""

TARGETS = {
    "one_roi_ms_median": 150.0,
    "ten_rois_ms_median": 600.0,
    "import_and_load_s": 5.0,
    "peak_rss_mb": 1536.0,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="model folder (default: the shipped one)")
    ap.add_argument("--image", default=str(EXAMPLES / "coffee.jpg"))
    ap.add_argument("--repeats", type=int, default=5)
    add_common_options(ap, "default_model_speed")
    a = ap.parse_args()
    if a.smoke:
        a.repeats = 1
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, a.model, a.image, str(a.repeats)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        sys.exit(out.stderr)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"default model speed on {platform.machine()} ({os.cpu_count()} CPUs), image {Path(a.image).name}, all three tasks"
    )
    print(f"{'measure':<22}{'value':>10}{'target':>10}  met")
    rows = {}
    for key, target in TARGETS.items():
        v = r[key]
        rows[key] = {"value": round(v, 1), "target": target, "met": v <= target}
        print(f"{key:<22}{v:>10.1f}{target:>10.0f}  {'yes' if v <= target else 'NO'}")
    print(
        f"(best of {a.repeats}: 1 ROI {r['one_roi_ms_best']:.0f} ms, 10 ROIs {r['ten_rois_ms_best']:.0f} ms)"
    )
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        "model": a.model or "shipped default",
        "image": Path(a.image).name,
        "raw": r,
        "rows": rows,
    }
    save_result(a, result)


if __name__ == "__main__":
    main()
