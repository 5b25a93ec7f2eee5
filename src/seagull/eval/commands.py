"""``seagull eval`` and ``seagull bench``: ``register(subparsers)`` adds both to the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..display import printable
from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..options import fraction, nonnegative_int, positive_int
from ..paths import refuse_overwrite
from .suite_registry import SYNTHETIC, get_suite, list_suites


def _model_dirs(value: str | list[str] | None) -> list[Path]:
    """``--model`` values: the shipped default model when not given; none for ``none``."""
    values = [value] if isinstance(value, str) else list(value or [])
    if not values:
        from .predictors import shipped_model_dir

        return [shipped_model_dir()]
    if "none" in values:
        if len(values) > 1:
            raise ConfigError("--model none means baselines only; do not list model folders with it")
        return []
    return [Path(v) for v in values]


def _models(args: argparse.Namespace) -> list:
    """One predictor per ``--model`` folder (several are compared in one run), named by folder."""
    from .predictors import load_model_predictor

    models = [load_model_predictor(p) for p in _model_dirs(args.model)]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"--model folders {[str(p) for p in _model_dirs(args.model)]} share a name ({names}); "
            "compare models whose folders have different names"
        )
    return models


def _announce(args: argparse.Namespace, models: list, names: list[str]) -> None:
    """Say which predictors run: the models (and which folders) first, then the baselines."""
    if not models:
        head = "no model (--model none)"
    else:
        shipped = " (the shipped default; --model none for baselines only)" if args.model is None else ""
        head = ", ".join(
            f"{printable(m.name)} from {printable(p)}"
            for m, p in zip(models, _model_dirs(args.model), strict=True)
        )
        head += shipped
    print(f"predictors: {head}; baselines: {printable(', '.join(names)) or 'none'}", flush=True)


def _baselines(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text in ("", "none"):
        return []
    return [b.strip() for b in text.split(",") if b.strip()]


def cmd_eval(args: argparse.Namespace) -> int:
    out = Path(args.out)
    # The report folder is filled with predictions/ and raw_outputs/: nothing it reads may lie in it.
    from .synthetic import as_dirs  # one folder (the Python API's str) or several

    inputs = [("--data", d) for d in as_dirs(args.data)] + [("--predictions", args.predictions)]
    inputs += [("--model", m) for m in _model_dirs(args.model)]
    refuse_overwrite("--out", out, inputs, inside_output=True)
    if args.predictions:
        return _eval_predictions(args, out)
    models = _models(args)
    try:
        return _run_eval(args, out, models)
    except KeyboardInterrupt:
        print(
            f"the outputs made so far are saved in {out}/raw_outputs: run the same command again to resume",
            file=sys.stderr,
        )
        raise


def _run_eval(args: argparse.Namespace, out: Path, models: list) -> int:
    from . import report
    from .journal import open_journal
    from .pairs import DEFAULT_MARGIN

    margin = getattr(args, "pair_margin", DEFAULT_MARGIN)
    if args.suite == SYNTHETIC:
        from .pairs import SYNTHETIC_KEYS, pair_tables
        from .protocol import text_table
        from .synthetic import DEFAULT_SYNTH_BASELINES, as_dirs, evaluate_synthetic

        names = list(_baselines(args.baselines) if args.baselines is not None else DEFAULT_SYNTH_BASELINES)
        _announce(args, models, names + ([] if args.no_fr else ["fr_label"]))
        res = evaluate_synthetic(
            as_dirs(args.data),
            out,
            model_predictor=models,
            baselines=names,
            split=args.split,
            calibration_split=args.calibration_split,
            limit=args.limit,
            bootstrap=args.bootstrap,
            include_fr=not args.no_fr,
            restart=getattr(args, "restart", False),
            progress=True,
            pair_margin=margin,
        )
        report.write_protocol_report(out, res.scores, res.labels, res.predictions, res.info, res.pairs)
        main, types = report.protocol_tables(res.scores)
        print(
            f"{res.info['records']} images, {res.info['rois']} ROIs from {printable(res.info['dataset'])}; "
            f"calibration: {printable(res.info['calibration'])}"
        )
        print(main)
        print()
        print("per-type F1 (%)")
        print(types)
        print(f"\nwithin-photo pair accuracy (label margin {res.info['pair_margin']:g}; 95% CI over photos)")
        print(pair_tables(res.pairs, SYNTHETIC_KEYS, text_table))
        for f in res.info["failures"][:10]:
            print(f"  failed: {printable(f)}")
    else:
        from .suites import SUITE_BASELINES, default_predictors, suite_fingerprint
        from .synthetic import as_dirs

        suite = get_suite(args.suite)
        split = args.split or suite.default_split
        if split != "all" and not suite.splits:
            raise ConfigError(
                f"--split {split}: suite {args.suite} has no photo split; leave --split out or use a suite "
                f"with one ({', '.join(s for s in list_suites() if s == SYNTHETIC or get_suite(s).splits)})"
            )
        run_suite = suite.load()
        data = as_dirs(args.data)
        if len(data) != 1:
            raise ConfigError(f"--suite {args.suite} reads one data folder; got {len(data)}")
        names = _baselines(args.baselines)
        names = list((suite.baselines or SUITE_BASELINES) if names is None else names)
        _announce(args, models, names)
        preds = default_predictors(models, names)
        fingerprint = suite_fingerprint(args.suite, data[0], preds)
        with open_journal(out, fingerprint, getattr(args, "restart", False), verbose=True) as journal:
            res = run_suite(
                data[0],
                preds,
                limit=args.limit,
                journal=journal,
                progress=True,
                bootstrap=args.bootstrap,
                margin=margin,
                **({"split": split} if suite.splits else {}),
            )
        report.write_suite_report(out, res)
        print(f"suite {args.suite} on {printable(data[0])}: {json.dumps(res.info, default=str)}")
        print(report.suite_tables(res))
    print(f"report written to {printable(out)}/report.md")
    return 0


def _eval_predictions(args: argparse.Namespace, out: Path) -> int:
    """Score a prediction file or folder written earlier against a synthetic dataset's labels."""
    from . import report
    from .predictions import load_prediction_dir, load_prediction_file
    from .protocol import labels_from_record, score_predictor
    from .synthetic import as_dirs, load_folders

    if args.suite != SYNTHETIC:
        raise ConfigError(
            "--predictions is scored against a synthetic dataset's labels; use --suite synthetic"
        )
    p = Path(args.predictions)
    preds = load_prediction_dir(p) if p.is_dir() else dict([load_prediction_file(p)])
    data = as_dirs(args.data)
    records = load_folders(data, args.split, args.limit)
    labels = [lab for rec in records for lab in labels_from_record(rec)]
    scores = [score_predictor(name, labels, pr, args.bootstrap) for name, pr in preds.items()]
    info = {
        "suite": "synthetic (saved predictions)",
        "dataset": ", ".join(str(d) for d in data),
        "predictions": str(p),
        "rois": len(labels),
    }
    report.write_protocol_report(out, scores, labels, preds, info)
    main, types = report.protocol_tables(scores)
    print(main)
    print()
    print(types)
    print(f"report written to {printable(out)}/report.md")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .baselines import list_baselines
    from .bench import BENCH_COLUMNS, bench_table_rows, run_bench
    from .protocol import markdown_table, text_table

    names = _baselines(args.baselines)
    model_dirs = _model_dirs(args.model)
    refuse_overwrite("--out", args.out, [("--images", args.images)] + [("--model", m) for m in model_dirs])
    res = run_bench(
        Path(args.images),
        limit=args.limit,
        n_rois=args.rois,
        baselines=list_baselines() if names is None else names,
        model=next(iter(_models(args)), None),
        max_side=args.max_side or None,
    )
    rows = bench_table_rows(res)
    print(f"{len(res['images'])} images, {res['rois_per_image']} ROIs each; machine: {res['machine']}")
    print(text_table(BENCH_COLUMNS, rows))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "bench.json", json.dumps(res, indent=2))
        atomic_write_text(out / "bench.md", markdown_table(BENCH_COLUMNS, rows) + "\n")
        print(f"written to {printable(out)}/bench.json and bench.md")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    e = subparsers.add_parser(
        "eval",
        help="evaluate a model and baselines (SRCC/PLCC, sample-average P/R/F1, external suites)",
        description="Evaluate on a synthetic dataset (the paper's protocol) or an external suite.",
    )
    e.add_argument(
        "--model",
        nargs="+",
        default=None,
        metavar="MODEL",
        help="model folder(s) for the Assessor, several compared in one run (default: the shipped "
        "model), or 'none' for baselines only",
    )
    e.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="dataset folder(s) (synthetic; several are pooled, ids prefixed by folder name) or the suite's data folder",
    )
    e.add_argument(
        "--suite",
        default=SYNTHETIC,
        choices=list_suites(),
        help="; ".join(f"{s.name}: {s.description}" for s in map(get_suite, list_suites())),
    )
    e.add_argument(
        "--out",
        required=True,
        help="report folder (report.json, report.md, plots, predictions/, raw_outputs/ to resume from)",
    )
    e.add_argument(
        "--predictions", help="score this prediction JSONL file or folder instead of running predictors"
    )
    e.add_argument("--limit", type=positive_int, help="only the first N images (suites: a balanced subset)")
    e.add_argument(
        "--split",
        default=None,
        help="synthetic, cuhk and mos: evaluate only this split (train, val or test; cuhk's photo split is "
        "fixed), or 'all' records (default: all; mos: test)",
    )
    e.add_argument("--calibration-split", help="synthetic: fit the baselines' level maps on this split")
    e.add_argument("--baselines", help="comma-separated baselines (default: all; 'none' for none)")
    e.add_argument(
        "--bootstrap",
        type=nonnegative_int,
        default=200,
        help="bootstrap resamples for 95%% intervals (0 = off)",
    )
    e.add_argument(
        "--pair-margin",
        type=fraction,
        default=0.05,
        help="within-photo pairs: least quality difference between two ROIs that makes a pair (default 0.05)",
    )
    e.add_argument("--no-fr", action="store_true", help="synthetic: skip the full-reference upper bound")
    e.add_argument(
        "--restart",
        action="store_true",
        help="discard the outputs saved in OUT/raw_outputs by an earlier run (by default a rerun resumes)",
    )
    e.set_defaults(func=cmd_eval)

    b = subparsers.add_parser("bench", help="efficiency table: seconds per image and per ROI, peak memory")
    b.add_argument("--images", required=True, help="folder of images (searched recursively) or one image")
    b.add_argument("--model", default="none", help="model folder for the Assessor, or 'none'")
    b.add_argument("--limit", type=positive_int, default=8, help="number of images")
    b.add_argument("--rois", type=positive_int, default=4, help="ROIs per image (boxes on a fixed grid)")
    b.add_argument(
        "--max-side",
        type=nonnegative_int,
        default=512,
        help="downscale images to this longer side (0 = keep)",
    )
    b.add_argument("--baselines", help="comma-separated baselines (default: all)")
    b.add_argument("--out", help="folder for bench.json and bench.md")
    b.set_defaults(func=cmd_bench)
