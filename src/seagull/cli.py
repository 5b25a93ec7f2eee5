"""The `seagull` command: one entry point, one subcommand per job.

Errors of the SeagullError family become one line on stderr and exit code 2; a batch that finished
with per-item failures exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from . import __version__
from .errors import SeagullError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Subcommand modules, each with register(subparsers). Import errors of optional parts are reported
# when the subcommand is used, not when the CLI starts.
COMMAND_MODULES = (
    "seagull.assess_cli",
    "seagull.eval.commands",
    "seagull.train.commands",
    "seagull.serve.commands",
)


def _cmd_synth(args: argparse.Namespace) -> int:
    from .schema import DISTORTION_TYPES
    from .synth import SynthConfig, run_synthesis
    from .synth.runner import family_setting_table, format_family_table

    families = tuple(args.families.split(",")) if args.families else DISTORTION_TYPES
    cfg = SynthConfig(
        refs=args.refs,
        out=args.out,
        rois=args.rois,
        settings=args.settings,
        families=families,
        seed=args.seed,
        max_rois=args.max_rois,
        max_side=args.max_side,
        clean=not args.no_clean,
        local_fraction=args.local_fraction,
        background_fraction=args.background_fraction,
        metric=args.metric or "",
        settings_per_ref=args.settings_per_ref,
        importance_max_side=args.importance_max_side,
    )
    summary = run_synthesis(
        cfg,
        workers=args.workers,
        ray_address=args.ray if args.ray not in (None, "local") else None,
        use_ray=args.ray is not None,
        limit=args.limit,
        skip=args.skip,
        progress=not args.quiet,
    )
    print(
        f"{summary.done} references synthesised, {summary.skipped} already done, {len(summary.failed)} failed; "
        f"{summary.records} images, {summary.rois} labelled ROIs in {summary.out} ({summary.wall:.1f} s)"
    )
    for ref_id, err in summary.failed:
        print(f"  failed: {ref_id}: {err}", file=sys.stderr)
    if summary.records:
        print(format_family_table(family_setting_table(cfg.out)))
    return 1 if summary.failed else 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .synth.validate import validate_dataset

    n, problems = validate_dataset(args.dir, check_images=not args.skip_images)
    for p in problems[: args.max_problems]:
        print(p, file=sys.stderr)
    if len(problems) > args.max_problems:
        print(f"... and {len(problems) - args.max_problems} more", file=sys.stderr)
    print(f"{args.dir}: {n} records checked, {len(problems)} problems")
    return 1 if problems else 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .schema import read_card

    card = read_card(args.dir)
    print(
        json.dumps(
            {k: card[k] for k in ("counts", "thresholds", "label_metric", "settings") if k in card}, indent=2
        )
    )
    return 0


def _cmd_relabel(args: argparse.Namespace) -> int:
    from .schema import DEFAULT_THRESHOLDS
    from .synth.relabel import relabel_dataset, thresholds_from_args

    th = thresholds_from_args(DEFAULT_THRESHOLDS, args.quality, args.importance, args.severity, args.visible)
    n = relabel_dataset(args.dir, th)
    print(f"{args.dir}: {n} records relabelled with thresholds {th.to_dict()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seagull",
        description="No-reference image quality assessment of regions of interest (SEAGULL).",
    )
    p.add_argument("--version", action="version", version=f"seagull {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser(
        "synth", help="synthesise a SEAGULL-100w-style labelled ROI dataset from reference photos"
    )
    s.add_argument(
        "--refs",
        type=Path,
        required=True,
        help="folder of reference photos (plain, BSDS500 or COCO layout) or one image",
    )
    s.add_argument("--out", type=Path, required=True, help="dataset folder to write (resumed if it exists)")
    s.add_argument(
        "--rois",
        choices=("auto", "gt", "both"),
        default="auto",
        help="automatic regions, human segmentations, or both",
    )
    s.add_argument(
        "--settings",
        type=int,
        default=10,
        help="settings per family, spread over the 20-step ladder (default 10)",
    )
    s.add_argument(
        "--families",
        default="",
        help="comma-separated subset of blur,colorfulness,compression,contrast,exposure,noise",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-rois", type=int, default=6, help="ROIs per reference (default 6)")
    s.add_argument(
        "--max-side", type=int, default=512, help="working size: longer side of the references (default 512)"
    )
    s.add_argument(
        "--settings-per-ref",
        type=int,
        default=None,
        help="render only K of the settings per reference and family (seeded)",
    )
    s.add_argument(
        "--importance-max-side",
        type=int,
        default=None,
        help="working size of the whole-image importance metric",
    )
    s.add_argument(
        "--no-clean", action="store_true", help="do not emit the undistorted reference as a sample"
    )
    s.add_argument(
        "--local-fraction", type=float, default=0.0, help="share of images distorted inside one ROI only"
    )
    s.add_argument(
        "--background-fraction",
        type=float,
        default=0.0,
        help="share of images distorted everywhere but one ROI (with blur: a defocused background)",
    )
    s.add_argument("--metric", default="", help="full-reference label metric (default: the project's choice)")
    s.add_argument("--workers", type=int, default=1, help="local worker processes")
    s.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray (local runtime or ADDRESS)",
    )
    s.add_argument("--limit", type=int, default=None, help="only the first N references")
    s.add_argument(
        "--skip", type=int, default=0, help="leave out the first N references (with --limit: a slice)"
    )
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_cmd_synth)

    d = sub.add_parser("data", help="inspect and validate dataset folders")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    v = dsub.add_parser("validate", help="check a dataset folder against the schema and its files")
    v.add_argument("dir", type=Path)
    v.add_argument("--skip-images", action="store_true", help="do not open the images")
    v.add_argument("--max-problems", type=int, default=50)
    v.set_defaults(func=_cmd_validate)
    r = dsub.add_parser(
        "relabel", help="re-cut levels and conversations from the stored scores with new thresholds"
    )
    r.add_argument("dir", type=Path)
    r.add_argument(
        "--quality", help="four increasing cut points, e.g. 0.45,0.65,0.8,0.92 (default: the package's)"
    )
    r.add_argument("--importance", help="four increasing cut points")
    r.add_argument("--severity", help="four increasing cut points on damage = 1 - quality")
    r.add_argument("--visible", type=float, help="smallest damage that counts as a distortion")
    r.set_defaults(func=_cmd_relabel)
    i = dsub.add_parser("info", help="print a dataset card's counts and thresholds")
    i.add_argument("dir", type=Path)
    i.set_defaults(func=_cmd_info)

    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name and mod_name.startswith(e.name):
                continue  # that part of the toolkit is not in this build
            raise
        mod.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except SeagullError as e:
        print(f"seagull {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seagull {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
