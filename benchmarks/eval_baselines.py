"""Efficiency of the evaluation baselines (pyiqa-style table): seconds per image and per ROI, peak memory.

    python benchmarks/eval_baselines.py [--images DIR] [--limit 8] [--rois 4] [--smoke] [--save]

DIR defaults to the shared Kodak photos next to the repository (../shared/data/kodak/images) or
$SEAGULL_DATA/kodak/images; ``--smoke`` uses the repository's example photos, small. Prints a table;
``--save`` writes benchmarks/results/eval_baselines.json.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from common import EXAMPLES, add_common_options, save_result
from seagull.eval.bench import BENCH_COLUMNS, bench_table_rows, run_bench
from seagull.eval.protocol import text_table


def default_images() -> Path:
    env = os.environ.get("SEAGULL_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root / "kodak" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=default_images())
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--rois", type=int, default=4)
    ap.add_argument("--max-side", type=int, default=512)
    add_common_options(ap, "eval_baselines")
    args = ap.parse_args()
    if args.smoke:
        args.images, args.limit, args.rois, args.max_side = EXAMPLES, 2, 1, 128
    res = run_bench(args.images, limit=args.limit, n_rois=args.rois, max_side=args.max_side)
    print(f"{len(res['images'])} images from {args.images}, {args.rois} ROIs each; {res['machine']}")
    print(text_table(BENCH_COLUMNS, bench_table_rows(res)))
    save_result(args, res)


if __name__ == "__main__":
    main()
