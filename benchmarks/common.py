"""Options every benchmark shares: ``--smoke`` (a few seconds, the same table) and ``--save``/``--out``
(results go to ``benchmarks/results/`` only when asked)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def add_common_options(ap: argparse.ArgumentParser, name: str) -> None:
    ap.add_argument(
        "--smoke", action="store_true", help="a tiny run that checks the benchmark works (a few seconds)"
    )
    ap.add_argument("--save", action="store_true", help="write the result as JSON to --out")
    ap.add_argument("--out", type=Path, default=RESULTS / f"{name}.json", help="where --save writes")


def save_result(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Write ``result`` to ``args.out`` when ``--save`` was given."""
    if not args.save:
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
