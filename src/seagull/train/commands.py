"""``seagull train --config CONFIG.yaml [--resume] [--output DIR] [key=value ...]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .trainer import train

    cfg = load_config(args.config, overrides=args.overrides, output_dir=args.output)
    if args.precompute_features:
        from .precompute import precompute_features

        precompute_features(cfg, workers=args.workers)
        return 0
    result = train(cfg, resume=args.resume)
    if not result.is_main:
        return 0
    print(
        f"trained {result.steps} steps in {result.seconds:.1f} s ({result.steps_per_s:.2f} steps/s); "
        f"final model in {result.final_dir}"
    )
    if result.last_val:
        print("validation: " + json.dumps({k: round(v, 4) for k, v in result.last_val.items()}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a SEAGULL model (stage 1 synthetic pre-training / stage 2 fine-tuning) from a YAML config",
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
    p.add_argument("--workers", type=int, default=2, help="processes for --precompute-features")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides anywhere among the options, e.g. max_steps=50 optim.lr=1e-4",
    )
    p.set_defaults(func=_cmd_train)
