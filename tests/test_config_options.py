"""A config dataclass is the single source of its command's options (seagull.options.add_config_options):
``seagull synth``'s options and defaults are SynthConfig's fields."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from seagull.cli import build_parser
from seagull.errors import ConfigError
from seagull.labels import DISTORTION_TYPES
from seagull.options import add_config_options, cli, config_kwargs, positive_int
from seagull.synth.config import SynthConfig


def synth_args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["synth", "--refs", "r", "--out", "o", *extra])


def test_defaults_on_the_command_line_are_the_config_defaults():
    cfg = SynthConfig(**config_kwargs(SynthConfig, synth_args()))
    assert cfg == SynthConfig(refs=Path("r"), out=Path("o"))


def test_every_option_field_is_an_option_and_builds_the_config():
    args = synth_args(
        "--families", "blur,noise", "--no-clean", "--camera", "--strongest-setting", "12",
        "--settings", "4", "--local-fraction", "0.25", "--labels", "v1", "--settings-per-ref", "2",
    )  # fmt: skip
    cfg = SynthConfig(**config_kwargs(SynthConfig, args))
    assert cfg.families == ("blur", "noise")
    assert (cfg.clean, cfg.camera, cfg.strongest, cfg.settings) == (False, True, 12, 4)
    assert (cfg.local_fraction, cfg.labels, cfg.settings_per_ref) == (0.25, "v1", 2)
    optioned = {f.name for f in dataclasses.fields(SynthConfig) if f.metadata.get("cli")}
    assert optioned == set(config_kwargs(SynthConfig, args))
    assert {"refs", "out", "families", "clean", "strongest"} <= optioned
    assert SynthConfig(refs=Path("r"), out=Path("o")).families == DISTORTION_TYPES


def test_bad_values_are_refused_by_the_parser_or_the_config():
    with pytest.raises(SystemExit):
        synth_args("--settings", "0")
    with pytest.raises(SystemExit):
        synth_args("--local-fraction", "nan")
    with pytest.raises(ConfigError, match="--families names no family"):
        SynthConfig(**config_kwargs(SynthConfig, synth_args("--families", ",")))


def test_required_fields_and_switches_of_any_dataclass():
    @dataclasses.dataclass
    class Demo:
        path: Path = dataclasses.field(metadata=cli("a path", type=Path))
        n: int = dataclasses.field(default=3, metadata=cli("a count", type=positive_int))
        on: bool = dataclasses.field(default=True, metadata=cli("turn it off", flag="--off"))
        hidden: float = 1.0

    p = argparse.ArgumentParser()
    add_config_options(p, Demo)
    assert Demo(**config_kwargs(Demo, p.parse_args(["--path", "x"]))) == Demo(Path("x"))
    assert Demo(**config_kwargs(Demo, p.parse_args(["--path", "x", "--n", "5", "--off"]))) == Demo(
        Path("x"), 5, False
    )
    with pytest.raises(SystemExit):
        p.parse_args([])  # --path is required
