"""Argument types for every command-line option that takes a number, in one place.

Each factory returns a callable for ``argparse``'s ``type=``: it parses the text, checks the range and
raises ``argparse.ArgumentTypeError`` with a message that names the allowed range, so a bad value is a
usage error (exit 2) before any work starts, never a silently odd result.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


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


# --------------------------------------------------------------------------- options from dataclasses
# A config dataclass is the single source of its command-line options: a field that carries
# ``metadata=cli(...)`` becomes one option, with the field's default, and the parsed values build the
# dataclass again (:func:`config_kwargs`).


def cli(
    help: str, *, flag: str | None = None, type: Callable[[str], Any] | None = None, **kwargs: Any
) -> dict:
    """Field metadata for one option: ``--<field-name>`` unless ``flag`` says otherwise; ``type`` parses
    the text; other keywords (``choices``, ``metavar``) go to ``add_argument``. A bool field becomes a
    switch: ``--name`` when its default is False, ``--no-name`` (``flag``) when it is True."""
    return {"cli": {"help": help, "flag": flag, "type": type, **kwargs}}


def comma_list(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")`` (empty parts dropped)."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def add_config_options(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """One option per field of ``config_cls`` with ``cli`` metadata, defaults taken from the fields."""
    import dataclasses

    for f in dataclasses.fields(config_cls):
        spec = dict(f.metadata.get("cli") or {})
        if not spec:
            continue
        flag = spec.pop("flag") or "--" + f.name.replace("_", "-")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:  # a field without a default is a required option
            parser.add_argument(
                flag, dest=f.name, required=True, **{k: v for k, v in spec.items() if v is not None}
            )
            continue
        if isinstance(default, bool):
            spec.pop("type", None)
            action = "store_false" if default else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, help=spec["help"])
            continue
        if spec.get("type") is None:
            spec.pop("type")
        parser.add_argument(flag, dest=f.name, default=default, **spec)


def config_kwargs(config_cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed values of ``config_cls``'s options, by field name (to build the dataclass)."""
    import dataclasses

    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if f.metadata.get("cli")}
