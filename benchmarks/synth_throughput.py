"""Synthesis throughput: labelled ROIs per second with 1 worker, 2 workers and Ray with 2 CPUs.

Same references, same configuration, one run each into a fresh folder. Prints a table; ``--save``
writes benchmarks/results/synth_throughput.json. ``--smoke``: the repository's example photos, small,
without Ray.

    python benchmarks/synth_throughput.py --refs ../shared/data/kodak/images --n-refs 8 [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from common import EXAMPLES, add_common_options, save_result
from seagull.synth import SynthConfig, run_synthesis


def run_mode(name: str, refs: Path, n_refs: int, settings: int, max_side: int, **kw) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"synth-bench-{name}-"))
    try:
        cfg = SynthConfig(refs, out, settings=settings, max_side=max_side, max_rois=6)
        t = time.perf_counter()
        s = run_synthesis(cfg, limit=n_refs, progress=False, **kw)
        wall = time.perf_counter() - t
        if s.failed:
            raise RuntimeError(f"{name}: {len(s.failed)} references failed: {s.failed[:2]}")
        return {
            "mode": name,
            "wall_s": round(wall, 2),
            "images": s.records,
            "rois": s.rois,
            "rois_per_s": round(s.rois / wall, 2),
            "stage_cpu_s": {k: round(v, 2) for k, v in s.seconds.items()},
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", type=Path, default=Path("../shared/data/kodak/images"))
    ap.add_argument("--n-refs", type=int, default=8)
    ap.add_argument("--settings", type=int, default=3)
    ap.add_argument("--max-side", type=int, default=384)
    ap.add_argument("--skip-ray", action="store_true")
    add_common_options(ap, "synth_throughput")
    a = ap.parse_args()
    if a.smoke:
        a.refs, a.n_refs, a.settings, a.max_side, a.skip_ray = EXAMPLES, 1, 1, 96, True
    common = dict(refs=a.refs, n_refs=a.n_refs, settings=a.settings, max_side=a.max_side)
    # Warm-up: imports and metric set-up happen once here, not inside the first timed mode (forked
    # workers inherit them, so every mode starts warm).
    run_mode("warm-up", workers=1, **{**common, "n_refs": 1})
    rows = [run_mode("1 worker", workers=1, **common), run_mode("2 workers", workers=2, **common)]
    if not a.skip_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            rows.append(run_mode("ray, 2 CPUs", use_ray=True, **common))
        finally:
            ray.shutdown()
    base = rows[0]["rois_per_s"]
    for r in rows:
        r["speedup_vs_1_worker"] = round(r["rois_per_s"] / base, 2)
    print(
        f"synthesis throughput on {a.n_refs} references from {a.refs}, {a.settings} settings x 6 families, max side {a.max_side}"
    )
    print(
        f"{'mode':<13}{'wall s':>8}{'images':>8}{'ROIs':>7}{'ROIs/s':>9}{'speedup':>9}   CPU s per stage (propose/distort/label/write)"
    )
    for r in rows:
        st = r["stage_cpu_s"]
        print(
            f"{r['mode']:<13}{r['wall_s']:>8}{r['images']:>8}{r['rois']:>7}{r['rois_per_s']:>9}{r['speedup_vs_1_worker']:>9}   "
            f"{st.get('propose', 0)}/{st.get('distort', 0)}/{st.get('label', 0)}/{st.get('write', 0)}"
        )
    target = 1.7
    ok = rows[1]["speedup_vs_1_worker"] >= target
    print(f"target: 2 workers >= {target}x one worker -> {'met' if ok else 'NOT met'}")
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "config": {k: str(v) for k, v in common.items()},
        "rows": rows,
        "target_2_workers_speedup": target,
        "target_met": ok,
    }
    save_result(a, result)


if __name__ == "__main__":
    main()
