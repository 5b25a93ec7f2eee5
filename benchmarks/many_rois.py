"""Peak memory and time of ``seagull assess`` on one photo with many ROIs (the CLI's ROI cap).

Each case runs the CLI in a child process (``python -m seagull assess PHOTO --rois FILE --json``) and
reads that child's own peak resident memory from ``os.wait4``. ROIs are seeded random boxes and
triangles (polygons) of 16 to 160 pixels a side. Cases: N ROIs with the default cap (3,000 is
refused before the model loads), then N ROIs with ``--max-rois N`` for each N. For comparison, the
smallest N once more the way every ROI was assessed before the cap (full-size masks, all ROIs in one
MFE and LM pass: ``Assessor(roi_chunk=N)`` on a plain list); the largest N is not run that way (its
masks alone would be N x the photo's pixels). A last check assesses the first few ROIs alone and
compares their scores with the same ROIs inside the largest run (the chunked path must give what a
small call gives). Prints a table; ``--save`` writes benchmarks/results/many_rois.json.

    python benchmarks/many_rois.py [--photo examples/coffee.jpg] [--rois 300 3000] [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import EXAMPLES, REPO, add_common_options, save_result
from seagull.assess.commands import DEFAULT_MAX_ROIS

ALONE = 8  # ROIs assessed alone for the consistency check

# One pass over every ROI, full-size masks in a list (the Assessor before it worked in chunks).
ONE_PASS = r"""
import json, sys
from seagull import Assessor
from seagull.imageio import load_image
from seagull.roi import load_roi_file
image = load_image(sys.argv[1])
rois = [s.resolve(image) for s in load_roi_file(sys.argv[2])]
out = Assessor(roi_chunk=len(rois)).assess(image, rois)
print(json.dumps({"image": sys.argv[1], "rois": [r.to_dict() for r in out]}))
"""


def roi_file(path: Path, n: int, width: int, height: int, seed: int = 0) -> Path:
    """``n`` named ROIs inside a ``width`` x ``height`` photo: every fourth a triangle, the rest boxes."""
    rng = np.random.default_rng(seed)
    rois = []
    for i in range(n):
        w, h = (int(v) for v in rng.integers(16, min(160, width, height) + 1, 2))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        if i % 4 == 3:
            rois.append({"polygon": [[x, y, x + w, y, x, y + h]], "name": f"tri{i}"})
        else:
            rois.append({"box": [x, y, w, h], "name": f"box{i}"})
    path.write_text(json.dumps(rois))
    return path


def run_cli(photo: Path, rois: Path, out: Path, max_rois: int | None, one_pass: bool = False) -> dict:
    """One ``seagull assess`` child (or, ``one_pass``, the Assessor in one pass): exit code, wall time,
    its own peak RSS, stderr's last line."""
    cmd = [sys.executable, "-m", "seagull", "assess", str(photo), "--rois", str(rois), "--json"]
    if max_rois is not None:
        cmd += ["--max-rois", str(max_rois)]
    if one_pass:
        cmd = [sys.executable, "-c", ONE_PASS, str(photo), str(rois)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    err = out.with_suffix(".err")
    t0 = time.perf_counter()
    with open(out, "wb") as so, open(err, "wb") as se:
        child = subprocess.Popen(cmd, stdout=so, stderr=se, env=env, cwd=REPO)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in err.read_text(errors="replace").splitlines() if ln.strip()]
    return {
        "exit": child.returncode,
        "seconds": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "stderr": lines[-1] if lines else "",
    }


def scores(path: Path) -> dict[str, list[float]]:
    """ROI name -> quality, importance and each distortion confidence, from ``--json`` output."""
    item = json.loads(path.read_text())
    return {
        r["name"]: [r["quality"], r["importance"], *(d["confidence"] for d in r["distortions"])]
        for r in item["rois"]
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=EXAMPLES / "coffee.jpg")
    ap.add_argument("--rois", type=int, nargs="+", default=[300, 3000], help="ROI counts to run")
    add_common_options(ap, "many_rois")
    args = ap.parse_args()
    counts = [12] if args.smoke else sorted(args.rois)
    from PIL import Image

    with Image.open(args.photo) as im:
        width, height = im.size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        largest = max(counts)
        # The default cap refuses a count above it before the model loads (smoke: a cap of 8 for 12).
        refuse_n, cap = (largest, 8) if args.smoke else (max(largest, DEFAULT_MAX_ROIS + 1), None)
        refused = run_cli(
            args.photo, roi_file(t / "refuse.json", refuse_n, width, height), t / "cap.json", cap
        )
        case = "default cap" if cap is None else f"--max-rois {cap}"
        rows.append({"case": case, "rois": refuse_n, **refused})
        for n in counts:
            res = run_cli(args.photo, roi_file(t / f"r{n}.json", n, width, height), t / f"out{n}.json", n)
            if res["exit"] == 0:
                res["assessed"] = len(scores(t / f"out{n}.json"))
                res["ms_per_roi"] = 1e3 * res["seconds"] / n
            rows.append({"case": f"--max-rois {n}", "rois": n, **res})
        small = min(counts)
        res = run_cli(args.photo, t / f"r{small}.json", t / "one_pass.json", None, one_pass=True)
        if res["exit"] == 0:
            res["assessed"] = len(scores(t / "one_pass.json"))
            res["ms_per_roi"] = 1e3 * res["seconds"] / small
        rows.append({"case": "one pass (before)", "rois": small, **res})
        # The first ROIs alone against the same ROIs inside the largest run.
        alone_file = t / "alone.json"
        alone_file.write_text(json.dumps(json.loads((t / f"r{largest}.json").read_text())[:ALONE]))
        alone = run_cli(args.photo, alone_file, t / "alone_out.json", None)
        diff = None
        if alone["exit"] == 0 and (t / f"out{largest}.json").stat().st_size:
            a, b = scores(t / "alone_out.json"), scores(t / f"out{largest}.json")
            alone["assessed"] = len(a)
            diff = max(abs(x - y) for name in a for x, y in zip(a[name], b[name], strict=True))
        rows.append({"case": f"first {ALONE} alone", "rois": ALONE, **alone})
    print(
        f"seagull assess on {args.photo.name} ({width}x{height}), one child process per case; full-size "
        f"masks take {width * height / 2**20:.2f} MB per ROI"
    )
    print(f"{'case':<18}{'ROIs':>6}{'exit':>6}{'seconds':>10}{'ms/ROI':>9}{'peak RSS MB':>13}  note")
    for r in rows:
        per = f"{r['ms_per_roi']:.0f}" if "ms_per_roi" in r else "-"
        note = r["stderr"][:90] if r["exit"] else f"{r.get('assessed', 0)} ROIs in the JSON"
        print(
            f"{r['case']:<18}{r['rois']:>6}{r['exit']:>6}{r['seconds']:>10.1f}{per:>9}{r['peak_rss_mb']:>13.0f}  {note}"
        )
    print(f"first {ALONE} ROIs alone vs inside the {largest}-ROI run: max score difference {diff}")
    result = {
        "benchmark": "many_rois",
        "photo": str(args.photo.relative_to(REPO) if args.photo.is_relative_to(REPO) else args.photo),
        "size": [width, height],
        "rows": rows,
        "alone_vs_many_max_diff": diff,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "smoke": args.smoke,
    }
    save_result(args, result)
    ok = all(r["exit"] == 0 for r in rows[1:]) and rows[0]["exit"] == 2 and diff is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
