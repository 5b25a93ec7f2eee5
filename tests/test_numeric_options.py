"""Every numeric command-line option of assess, map, eval, bench, synth, data and the training commands
is checked by one shared argparse type (seagull.options): an out-of-range value is a usage error
(exit 2, one message naming the option and the allowed range) before any work starts."""

from __future__ import annotations

import pytest

from seagull.cli import build_parser

EVAL = ["eval", "--data", "d", "--out", "o"]
BENCH = ["bench", "--images", "x"]
SYNTH = ["synth", "--refs", "r", "--out", "o"]
CUHK = ["data", "cuhk", "--refs", "r", "--out", "o"]
MAP = ["map", "photo.jpg", "--out", "map.png"]
ASSESS = ["assess", "photo.jpg"]
AVERAGE = ["average-models", "--model", "a", "b", "--out", "o"]
TRAIN = ["train", "--config", "c.yaml"]

# (command line, option, bad value): each was accepted before and ran with an odd result.
BAD = [
    (BENCH, "--limit", "0"),
    (BENCH, "--max-side", "-5"),
    (BENCH, "--rois", "-1"),
    (BENCH, "--rois", "0"),
    (EVAL, "--limit", "-1"),
    (EVAL, "--limit", "0"),
    (EVAL, "--bootstrap", "-5"),
    (EVAL, "--pair-margin", "-0.1"),
    (EVAL, "--pair-margin", "nan"),
    (SYNTH, "--workers", "-1"),
    (SYNTH, "--workers", "0"),
    (SYNTH, "--settings", "0"),
    (SYNTH, "--strongest-setting", "-3"),
    (SYNTH, "--seed", "1.5"),
    (SYNTH, "--max-rois", "0"),
    (SYNTH, "--max-side", "-512"),
    (SYNTH, "--settings-per-ref", "0"),
    (SYNTH, "--importance-max-side", "0"),
    (SYNTH, "--local-fraction", "1.5"),
    (SYNTH, "--background-fraction", "-0.1"),
    (SYNTH, "--multi-fraction", "inf"),
    (SYNTH, "--regions-per-image", "0"),
    (SYNTH, "--limit", "0"),
    (SYNTH, "--skip", "-1"),
    (["data", "relabel", "d"], "--visible", "-1"),
    (["data", "relabel", "d"], "--visible", "1.5"),
    (["data", "validate", "d"], "--max-problems", "-1"),
    (CUHK, "--limit", "0"),
    (CUHK, "--defocus-drop", "1"),
    (CUHK, "--motion-drop", "0"),
    (MAP, "--max-regions", "0"),
    (MAP, "--top", "0"),
    (MAP, "--tile", "3"),
    (MAP, "--max-pixels", "0"),
    (ASSESS, "--max-pixels", "-1"),
    (ASSESS, "--max-rois", "0"),
    (ASSESS, "--max-rois", "ten"),
    (AVERAGE, "--weights", "0"),
    (TRAIN, "--workers", "0"),
]

# Boundary values that mean something and must stay accepted: (command line, option, value, parsed).
GOOD = [
    (BENCH, "--max-side", "0", 0),  # 0 = keep the size
    (BENCH, "--rois", "1", 1),
    (EVAL, "--bootstrap", "0", 0),  # 0 = no intervals
    (EVAL, "--pair-margin", "0", 0.0),
    (EVAL, "--limit", "1", 1),
    (SYNTH, "--skip", "0", 0),
    (SYNTH, "--seed", "-7", -7),  # seeds are hashed: any whole number
    (SYNTH, "--local-fraction", "1", 1.0),
    (SYNTH, "--max-side", "0", 0),
    (["data", "relabel", "d"], "--visible", "0", 0.0),
    (["data", "validate", "d"], "--max-problems", "0", 0),
    (CUHK, "--defocus-drop", "0.5", 0.5),
    (MAP, "--tile", "4", 4),
    (ASSESS, "--max-rois", "3000", 3000),
]


@pytest.mark.parametrize(("argv", "option", "value"), BAD, ids=[f"{a[0]} {o} {v}" for a, o, v in BAD])
def test_out_of_range_numbers_are_usage_errors(capsys, argv, option, value):
    parser = build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*argv, option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {option}" in err, err
    assert "allowed range" in err or "not a" in err, err


@pytest.mark.parametrize(
    ("argv", "option", "value", "parsed"), GOOD, ids=[f"{a[0]} {o} {v}" for a, o, v, _ in GOOD]
)
def test_boundary_values_are_accepted(argv, option, value, parsed):
    args = build_parser().parse_args([*argv, option, value])
    assert getattr(args, option.lstrip("-").replace("-", "_")) == parsed


def test_max_rois_default_is_documented():
    from seagull.assess.commands import DEFAULT_MAX_ROIS

    assert build_parser().parse_args(ASSESS).max_rois == DEFAULT_MAX_ROIS == 1000
