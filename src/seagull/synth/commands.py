"""``seagull synth`` and ``seagull data``: ``register(subparsers)`` adds both to the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..display import printable
from ..paths import refuse_overwrite


def cmd_synth(args: argparse.Namespace) -> int:
    from ..schema import DISTORTION_TYPES
    from . import SynthConfig, run_synthesis
    from .runner import family_setting_table, format_family_table

    refuse_overwrite(
        "--out", args.out, [("--refs", args.refs), ("--annotations", args.annotations)], inside_output=True
    )
    families = tuple(args.families.split(",")) if args.families else DISTORTION_TYPES
    cfg = SynthConfig(
        refs=args.refs,
        out=args.out,
        rois=args.rois,
        annotations=args.annotations,
        settings=args.settings,
        strongest=args.strongest_setting,
        families=families,
        seed=args.seed,
        max_rois=args.max_rois,
        max_side=args.max_side,
        clean=not args.no_clean,
        local_fraction=args.local_fraction,
        background_fraction=args.background_fraction,
        multi_fraction=args.multi_fraction,
        regions_per_image=args.regions_per_image,
        camera=args.camera,
        labels=args.labels,
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
        f"{summary.records} images, {summary.rois} labelled ROIs in {printable(summary.out)} ({summary.wall:.1f} s)"
    )
    if summary.annotations:
        print(f"human ROIs from COCO annotations {printable(summary.annotations)}")
    for ref_id, err in summary.failed:
        print(f"  failed: {printable(ref_id)}: {printable(err)}", file=sys.stderr)
    if summary.records:
        print(format_family_table(family_setting_table(cfg.out)))
    return 1 if summary.failed else 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .validate import validate_dataset

    n, problems = validate_dataset(args.dir, check_images=not args.skip_images)
    for p in problems[: args.max_problems]:
        print(printable(p), file=sys.stderr)
    if len(problems) > args.max_problems:
        print(f"... and {len(problems) - args.max_problems} more", file=sys.stderr)
    print(f"{printable(args.dir)}: {n} records checked, {len(problems)} problems")
    return 1 if problems else 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..schema import read_card

    card = read_card(args.dir)
    print(
        json.dumps(
            {k: card[k] for k in ("counts", "thresholds", "label_metric", "settings") if k in card}, indent=2
        )
    )
    return 0


def cmd_relabel(args: argparse.Namespace) -> int:
    from ..schema import dataset_thresholds
    from .relabel import format_changes, relabel_folder, thresholds_from_args

    # Only what is asked changes: the other thresholds stay the dataset's own (not the package's).
    base = dataset_thresholds(args.dir)
    th = thresholds_from_args(base, args.quality, args.importance, args.severity, args.visible)
    res = relabel_folder(args.dir, th)
    print(f"{printable(args.dir)}: {res.records} records relabelled; ROIs per level:")
    print(format_changes(res))
    print(f"the previous labels are kept in {printable(res.backup)}")
    return 0


def cmd_cuhk(args: argparse.Namespace) -> int:
    from ..authentic import LABELS_FILE
    from .cuhk import convert_cuhk

    # What the converter reads of --refs: its labels file and the photos and masks it names.
    read = [args.refs / LABELS_FILE, args.refs / "images", args.refs / "masks"]
    refuse_overwrite("--out", args.out, [("--refs", p) for p in read], inside_output=True)
    drops = {"defocus": args.defocus_drop, "motion": args.motion_drop}
    res = convert_cuhk(args.refs, args.out, limit=args.limit, drops=drops)
    splits = ", ".join(f"{s} {res.per_split.get(s, 0)}" for s in ("train", "val", "test"))
    print(f"{res.records} photos written to {printable(res.out)} ({splits}), 2 ROIs each")
    if res.skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(res.skip_counts.items()))
        print(
            f"skipped {len(res.skipped)} photos: {printable(reasons)} (listed in {printable(res.out)}/dataset.json)"
        )
        for photo, why in res.skipped[:10]:
            print(f"  skipped {printable(photo)}: {printable(why)}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_synth(subparsers)
    _add_data(subparsers)


def _add_synth(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser(
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
        "--annotations",
        type=Path,
        default=None,
        metavar="FILE",
        help="COCO instances JSON of the photos (default: the only annotations/*.json of --refs)",
    )
    s.add_argument(
        "--settings",
        type=int,
        default=10,
        help="settings per family, spread over the 20-step ladder (default 10)",
    )
    s.add_argument(
        "--strongest-setting",
        type=int,
        default=20,
        help="spread --settings over 1..S instead of the whole 20-step ladder (default 20)",
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
    s.add_argument(
        "--multi-fraction",
        type=float,
        default=0.0,
        help="share of images with several regions distorted, each its own way, the rest untouched",
    )
    s.add_argument(
        "--regions-per-image",
        type=int,
        default=2,
        help="distorted regions of a --multi-fraction image (disjoint ROIs; default 2)",
    )
    s.add_argument(
        "--camera",
        action="store_true",
        help="camera-like blur (lens defocus, shake, soft downscale) and sensor noise, in linear light",
    )
    s.add_argument(
        "--labels",
        choices=("v1", "v2"),
        default="v2",
        help="label scheme: v2 (default; fill- and visibility-corrected, visibility-anchored levels) or v1, "
        "the first calibration (the shipped seagull-tiny v1 corpus; docs/labels.md)",
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
    s.set_defaults(func=cmd_synth)


def _add_data(subparsers: argparse._SubParsersAction) -> None:
    d = subparsers.add_parser("data", help="inspect, validate, relabel and convert dataset folders")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    v = dsub.add_parser("validate", help="check a dataset folder against the schema and its files")
    v.add_argument("dir", type=Path)
    v.add_argument("--skip-images", action="store_true", help="do not open the images")
    v.add_argument("--max-problems", type=int, default=50)
    v.set_defaults(func=cmd_validate)
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
    r.set_defaults(func=cmd_relabel)
    i = dsub.add_parser("info", help="print a dataset card's counts and thresholds")
    i.add_argument("dir", type=Path)
    i.set_defaults(func=cmd_info)
    c = dsub.add_parser(
        "cuhk",
        help="write the CUHK blur suite as a dataset folder (stage-2 fine-tuning on authentic blur)",
        description="Two ROIs per photo (blurred region, sharp complement) labelled from the masks and "
        "the MOS; every record keeps its fixed photo split (docs/training.md, Stage 2).",
    )
    c.add_argument(
        "--refs", type=Path, required=True, help="the CUHK blur folder (labels.csv, images/, masks/)"
    )
    c.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    c.add_argument(
        "--limit", type=int, default=None, help="only N photos, motion and defocus alike (smoke runs)"
    )
    for kind, default in (("defocus", 0.2), ("motion", 0.3)):  # cuhk.BLUR_DROP, kept out of CLI start-up
        c.add_argument(
            f"--{kind}-drop",
            type=float,
            default=default,
            help=f"quality of a {kind}-blurred region below its sharp rest (default %(default)s)",
        )
    c.set_defaults(func=cmd_cuhk)
