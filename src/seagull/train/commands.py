"""``seagull train --config CONFIG.yaml [--resume] [--output DIR] [key=value ...]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..display import printable
from ..options import positive_float, positive_int
from ..paths import refuse_overwrite


def _check_output(args: argparse.Namespace, cfg) -> None:
    """The run folder must not be the config file or a folder (or file) the run reads."""
    data = getattr(cfg, "data", cfg)  # stages 1-2 name their folders data.train; stage 0 train
    prefix = "data." if data is not cfg else ""
    inputs = [("--config", args.config)]
    inputs += [(f"{prefix}train", d) for d in data.train] + [(f"{prefix}val", d) for d in data.val or []]
    for key in ("model", "tower", "deepspeed"):
        value = getattr(cfg, key, None)
        if isinstance(value, (str, Path)) and Path(value).exists():
            inputs.append((key, value))
    refuse_overwrite("--output" if args.output else "output_dir", cfg.output_dir, inputs)


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .tower.config import is_tower_config

    refuse_overwrite("--output", args.output, [("--config", args.config)])  # before the config is read
    if is_tower_config(_read_yaml(args.config)):
        return _train_tower(args)
    from .trainer import train

    cfg = load_config(args.config, overrides=args.overrides, output_dir=args.output)
    _check_output(args, cfg)
    if args.precompute_features:
        from .precompute import precompute_features

        precompute_features(cfg, workers=args.workers)
        return 0
    result = train(cfg, resume=args.resume)
    if not result.is_main:
        return 0
    print(
        f"trained {result.steps} steps in {result.seconds:.1f} s ({result.steps_per_s:.2f} steps/s); "
        f"final model in {printable(result.final_dir)}"
    )
    if result.last_val:
        print("validation: " + json.dumps({k: round(v, 4) for k, v in result.last_val.items()}))
    return 0


def _read_yaml(path: Path) -> object:
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # load_config reports it with the fix


def _train_tower(args: argparse.Namespace) -> int:
    from .tower.config import load_tower_config
    from .tower.trainer import train_tower

    if args.precompute_features:
        print("--precompute-features is for stages 1 and 2; a tower config (stage: tower) has no cache")
        return 2
    cfg = load_tower_config(args.config, overrides=args.overrides, output_dir=args.output)
    _check_output(args, cfg)
    result = train_tower(cfg, resume=args.resume)
    print(
        f"trained the tower {result.steps} steps in {result.seconds:.1f} s; final tower in {printable(result.final_dir)}"
    )
    if result.last_val:
        print("validation: " + json.dumps({k: round(v, 4) for k, v in result.last_val.items()}))
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    from .tower.probe import format_table, run_probe, write_results

    inputs = [("--tower", t) for t in args.tower if t != "imagenet"] + [("--data", d) for d in args.data]
    refuse_overwrite("--out", args.out, inputs)
    results = run_probe(
        args.tower, args.data, args.train_photos, args.test_photos, args.train_split, args.test_split
    )
    print(format_table(results))
    if args.out:
        write_results(results, args.out)
        print(f"results written to {printable(args.out)}")
    return 0


def _cmd_average(args: argparse.Namespace) -> int:
    from .average import average_models

    refuse_overwrite("--out", args.out, [("--model", m) for m in args.model])
    res = average_models(args.model, args.out, args.weights)
    print(
        f"averaged {res.differing} of {res.tensors} tensors (the rest are equal in every model); "
        f"model in {printable(res.out)}"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model

    refuse_overwrite("--out", args.out, [("--model", args.model)])
    res = export_model(args.model, args.out, args.dtype)
    print(
        f"stored {res.tensors} tensors as {args.dtype}: {res.bytes_before / 1e6:.1f} MB -> "
        f"{res.bytes_after / 1e6:.1f} MB; model in {printable(res.out)}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-model",
        help="store a trained model for shipping, its weights in fp16 (half the file)",
        description="Copy a model folder with its floating-point weights stored as --dtype; it loads and "
        "computes as before (in the dtype it is loaded in), only the stored weights are rounded.",
    )
    p.add_argument("--model", type=Path, required=True, help="the model folder to export")
    p.add_argument("--out", type=Path, required=True, help="new folder for the exported model")
    p.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser(
        "average-models",
        help="average the weights of fine-tunes of one model (a model soup)",
        description="Write the weighted average of the weights of two or more fine-tunes of one model "
        "(same config, tokenizer and tensors) as a new model folder, with average.json naming the inputs.",
    )
    p.add_argument("--model", type=Path, nargs="+", required=True, help="model folders to average")
    p.add_argument(
        "--weights",
        type=positive_float,
        nargs="+",
        default=None,
        help="one positive weight per model (default: equal)",
    )
    p.add_argument("--out", type=Path, required=True, help="new folder for the averaged model")
    p.set_defaults(func=_cmd_average)

    p = subparsers.add_parser(
        "tower-probe",
        help="linear probe: how well a vision tower's frozen region features see quality (stage 0 check)",
        description="Fit one ridge probe per tower on the train split's regions (quality, distortion types) "
        "and score it on the test split's: quality SRCC, type F1, within-photo pair accuracy.",
    )
    p.add_argument(
        "--tower",
        nargs="+",
        default=["imagenet"],
        help="'imagenet' (the package weights) and/or stage-0 tower.safetensors files",
    )
    p.add_argument(
        "--data", type=Path, nargs="+", required=True, help="dataset folders written by `seagull synth`"
    )
    p.add_argument(
        "--train-photos", type=positive_int, default=150, help="photos of the train split the probe fits on"
    )
    p.add_argument(
        "--test-photos", type=positive_int, default=60, help="photos of the test split it is scored on"
    )
    p.add_argument("--train-split", default="train")
    p.add_argument("--test-split", default="test")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.set_defaults(func=_cmd_probe)

    p = subparsers.add_parser(
        "train",
        help="train from a YAML config: stage 0 (quality-aware tower, `stage: tower`), stage 1 synthetic "
        "pre-training or stage 2 fine-tuning",
        description="Train from a YAML config. Launch several processes with `accelerate launch -m seagull train ...`.",
    )
    p.add_argument(
        "--config", type=Path, required=True, help="training config YAML (see src/seagull/train/configs)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in the output folder"
    )
    p.add_argument("--output", type=Path, default=None, help="output folder (overrides output_dir)")
    p.add_argument(
        "--precompute-features",
        action="store_true",
        help="only fill the disk feature cache (frozen tower) with --workers processes, then exit",
    )
    p.add_argument("--workers", type=positive_int, default=2, help="processes for --precompute-features")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides anywhere among the options, e.g. max_steps=50 optim.lr=1e-4",
    )
    p.set_defaults(func=_cmd_train)
