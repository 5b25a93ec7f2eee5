"""Argument types for every command-line option that takes a number, in one place.

Each factory returns a callable for ``argparse``'s ``type=``: it parses the text, checks the range and
raises ``argparse.ArgumentTypeError`` with a message that names the allowed range, so a bad value is a
usage error (exit 2) before any work starts, never a silently odd result.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """A whole number in [lo, hi] (either bound may be open)."""

    def parse(text: str) -> int:
        value = _int(text)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is outside {_range_text(lo, hi)}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in its own messages
    return parse


def float_range(
    lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """A finite number in [lo, hi]; ``lo_open`` / ``hi_open`` exclude the bound itself."""

    def parse(text: str) -> float:
        value = _float(text)
        below = lo is not None and (value <= lo if lo_open else value < lo)
        above = hi is not None and (value >= hi if hi_open else value > hi)
        if below or above:
            raise argparse.ArgumentTypeError(f"{value:g} is outside {_range_text(lo, hi, lo_open, hi_open)}")
        return value

    parse.__name__ = "number"
    return parse


def _range_text(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f"the allowed range {left}{lo_s}, {hi_s}{right}"


# The shapes most options need.
positive_int = int_range(1)
nonnegative_int = int_range(0)
port = int_range(0, 65535)
positive_float = float_range(0.0, lo_open=True)
nonnegative_float = float_range(0.0)
fraction = float_range(0.0, 1.0)  # a share in [0, 1]
