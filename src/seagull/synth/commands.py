"""``seagull synth`` and ``seagull data``: ``register(subparsers)`` adds both to the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..display import printable
from ..options import add_config_options, config_kwargs, float_range, fraction, nonnegative_int, positive_int
from ..paths import refuse_overwrite
from .config import SynthConfig


def cmd_synth(args: argparse.Namespace) -> int:
    from . import run_synthesis
    from .runner import family_setting_table, format_family_table

    refuse_overwrite(
        "--out", args.out, [("--refs", args.refs), ("--annotations", args.annotations)], inside_output=True
    )
    cfg = SynthConfig(**config_kwargs(SynthConfig, args))
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
    from .dataset_check import validate_dataset

    n, problems = validate_dataset(args.dir, check_images=not args.skip_images)
    for p in problems[: args.max_problems]:
        print(printable(p), file=sys.stderr)
    if len(problems) > args.max_problems:
        print(f"... and {len(problems) - args.max_problems} more", file=sys.stderr)
    print(f"{printable(args.dir)}: {n} records checked, {len(problems)} problems")
    return 1 if problems else 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..records import read_card

    card = read_card(args.dir)
    print(
        json.dumps(
            {k: card[k] for k in ("counts", "thresholds", "label_metric", "settings") if k in card}, indent=2
        )
    )
    return 0


def cmd_relabel(args: argparse.Namespace) -> int:
    from ..records import dataset_thresholds
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


def cmd_mos(args: argparse.Namespace) -> int:
    from ..labels import QUALITY_LEVELS
    from ..splits import SPLITS
    from .mos import config_from_options, import_mos

    tables = [f for k in ("scores", "train", "val", "test") for f in (getattr(args, k) or [])]
    refuse_overwrite(
        "--out",
        args.out,
        [("--photos", args.photos), ("--source", args.source)] + [("a score file", f) for f in tables],
        inside_output=True,
    )
    cfg = config_from_options(
        preset=args.preset,
        source=args.source,
        photos=args.photos,
        scores=args.scores,
        train=args.train,
        val=args.val,
        test=args.test,
        name_column=args.name_column,
        mos_column=args.mos_column,
        std_column=args.std_column,
        split_column=args.split_column,
        group_column=args.group_column,
        group_pattern=args.group_pattern,
        scale=args.scale,
        lower_better=args.lower_better,
        levels=args.levels,
        split_from=args.split_from,
        split_fractions=args.split_fractions,
        val_fraction=args.val_fraction,
        seed=args.seed,
        licence_notes=args.licence_note,
    )
    # the preset's photos and score files too
    tables = [("a score file", f) for table in cfg.scores for f in table.paths]
    refuse_overwrite("--out", args.out, [("--photos", cfg.photos), *tables], inside_output=True)
    res = import_mos(cfg, args.out, progress=not args.quiet)
    splits = ", ".join(f"{s} {res.per_split.get(s, 0)}" for s in SPLITS)
    print(
        f"{res.records} photos in {printable(res.out)} ({splits}; {res.new} written now, {res.reused} already there); "
        f"levels {cfg.scale.levels} on the scale {cfg.scale.lo:g}-{cfg.scale.hi:g}"
        + (" (lower = better)" if cfg.scale.lower_better else "")
    )
    for s in SPLITS:
        if s in res.per_level:
            print(f"  {s:<5} " + "  ".join(f"{w} {res.per_level[s].get(w, 0)}" for w in QUALITY_LEVELS))
    if res.relinked:
        print(f"  {printable(res.out)}/photos now points to {printable(cfg.photos)}")
    for m in res.case_only:
        print(
            printable(
                f"  {m['row']}: {m['name']!r} matched {m['file']!r} ignoring case (recorded in the card)"
            )
        )
    if res.without_mos:
        print(
            printable(
                f"  {len(res.without_mos)} rows without a MOS left out: {', '.join(res.without_mos[:5])}"
            )
        )
    for photo, why in res.skipped[:10]:
        print(f"  skipped {printable(photo)}: {printable(why)}", file=sys.stderr)
    return 1 if res.skipped else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_synth(subparsers)
    _add_data(subparsers)


def _add_synth(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser(
        "synth", help="synthesise a SEAGULL-100w-style labelled ROI dataset from reference photos"
    )
    add_config_options(s, SynthConfig)
    s.add_argument("--workers", type=positive_int, default=1, help="local worker processes")
    s.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray (local runtime or ADDRESS)",
    )
    s.add_argument("--limit", type=positive_int, default=None, help="only the first N references")
    s.add_argument(
        "--skip",
        type=nonnegative_int,
        default=0,
        help="leave out the first N references (with --limit: a slice)",
    )
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_synth)


def _add_data(subparsers: argparse._SubParsersAction) -> None:
    d = subparsers.add_parser("data", help="inspect, validate, relabel and convert dataset folders")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    v = dsub.add_parser("validate", help="check a dataset folder against the schema and its files")
    v.add_argument("dir", type=Path)
    v.add_argument("--skip-images", action="store_true", help="do not open the images")
    v.add_argument("--max-problems", type=nonnegative_int, default=50, help="problems to list (default 50)")
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
    r.add_argument("--visible", type=fraction, help="smallest damage that counts as a distortion")
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
        "--limit",
        type=positive_int,
        default=None,
        help="only N photos, motion and defocus alike (smoke runs)",
    )
    for kind, default in (("defocus", 0.2), ("motion", 0.3)):  # cuhk.BLUR_DROP, kept out of CLI start-up
        c.add_argument(
            f"--{kind}-drop",
            type=float_range(0.0, 1.0, lo_open=True, hi_open=True),
            default=default,
            help=f"quality of a {kind}-blurred region below its sharp rest (default %(default)s)",
        )
    c.set_defaults(func=cmd_cuhk)
    _add_mos(dsub)


def _scale(text: str) -> tuple[float, float]:
    from ..options import float_range

    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO,HI (e.g. 1,5 or 0,100)")
    lo, hi = (float_range()(x) for x in parts)
    if hi <= lo:
        raise argparse.ArgumentTypeError(f"{text!r}: LO must be below HI")
    return lo, hi


def _shares(text: str) -> tuple[float, float, float]:
    from ..options import fraction

    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not TRAIN,VAL,TEST (e.g. 0.8,0.1,0.1)")
    shares = tuple(fraction(x) for x in parts)
    if abs(sum(shares) - 1.0) > 1e-6:
        raise argparse.ArgumentTypeError(f"{text!r}: the three shares must sum to 1")
    return shares  # type: ignore[return-value]


def _add_mos(dsub: argparse._SubParsersAction) -> None:
    from ..options import fraction, nonnegative_int

    m = dsub.add_parser(
        "mos",
        help="import a human-rated image quality set (photos + MOS file) as a dataset folder",
        description="One record per photo, the whole photo as the ROI, its quality the MOS normalised to "
        "[0, 1] and cut into the five level words; photos are referenced in place, not copied "
        "(docs/labels.md, section 11). Resumable: photos already written are kept.",
    )
    m.add_argument("--out", type=Path, required=True, help="dataset folder to write (resumed if it exists)")
    m.add_argument(
        "--preset", choices=("biq2021", "cuhk"), help="fill in the files, columns, scale and split"
    )
    m.add_argument(
        "--source", type=Path, help="with --preset: the set's folder (a BIQ2021 clone, the CUHK folder)"
    )
    m.add_argument("--photos", type=Path, help="folder of the photos; score-file names are relative to it")
    m.add_argument("--scores", nargs="+", type=Path, metavar="FILE", help="score table: CSV, or MAT file(s)")
    for split in ("train", "val", "test"):
        m.add_argument(
            f"--{split}", nargs="+", type=Path, metavar="FILE", help=f"the official {split} split's scores"
        )
    m.add_argument("--name-column", help="column (MAT: variable) of the photo file names")
    m.add_argument("--mos-column", help="column (MAT: variable) of the MOS")
    m.add_argument("--std-column", help="column (MAT: variable) of the MOS standard deviation (optional)")
    m.add_argument("--split-column", help="column holding each photo's official split (train/val/test)")
    m.add_argument("--group-column", help="column naming each photo's subset, reported per group by eval")
    m.add_argument("--group-pattern", help="regex on the name whose first group names the subset")
    m.add_argument("--scale", type=_scale, metavar="LO,HI", help="range of the MOS scale, e.g. 1,5 or 0,100")
    m.add_argument("--lower-better", action="store_true", help="the scale's low end is the best (DMOS)")
    m.add_argument(
        "--levels",
        choices=("auto", "acr", "equal"),
        default="auto",
        help="MOS -> level words: ACR 1-5 anchors, or equal intervals of the scale (auto: acr for 1,5)",
    )
    m.add_argument(
        "--split-from",
        choices=("photo", "cuhk"),
        help="without an official split: assign_split by photo (default) or the CUHK photo split",
    )
    m.add_argument(
        "--split-fractions", type=_shares, metavar="TR,VA,TE", help="split by photo (default 0.8,0.1,0.1)"
    )
    m.add_argument(
        "--val-fraction",
        type=fraction,
        default=0.1,
        help="share of the official train split made the validation split when there is none (default 0.1)",
    )
    m.add_argument(
        "--seed", type=nonnegative_int, default=0, help="seed of the photo splits and conversations"
    )
    m.add_argument("--licence-note", action="append", help="a licence note for the card (repeatable)")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=cmd_mos)
