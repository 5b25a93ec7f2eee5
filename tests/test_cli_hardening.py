"""What every command shares at its edges: no output may be one of the command's inputs (under any
name), control characters in names are escaped in what is printed, and a closed pipe ends a command
quietly."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from seagull.cli import build_parser, main
from seagull.display import printable
from seagull.errors import ConfigError
from seagull.paths import refuse_overwrite, refuse_same_outputs

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN_CONFIG = REPO / "src" / "seagull" / "train" / "configs" / "tiny_cpu.yaml"


def _photo(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Every kind of input a writing command reads, under one folder (nothing here may ever change)."""
    from seagull.synth import SynthConfig, run_synthesis

    root = tmp_path_factory.mktemp("inputs")
    run_synthesis(
        SynthConfig(
            REPO / "examples" / "chelsea.jpg", root / "ds", settings=1, families=("blur",), max_rois=2
        ),
        progress=False,
    )
    _photo(root / "p.png")
    _photo(root / "mask.png", 1)
    _write(root / "rois.json", json.dumps([{"box": [0, 0, 20, 20], "name": "a"}]))
    _photo(root / "photos" / "a.png")
    _photo(root / "photos" / "b.png", 2)
    _write(root / "list.txt", "photos/a.png\n")
    for name in ("model", "model2"):
        _write(root / name / "config.json", "{}")
        _write(root / name / "model.safetensors", "weights")
    _write(root / "tower.safetensors", "tower")
    _write(root / "annotations.json", "{}")
    _write(root / "predictions.jsonl", "")
    _write(root / "cuhk" / "labels.csv", "image,mos\n")
    _photo(root / "cuhk" / "images" / "x.png")
    _photo(root / "cuhk" / "masks" / "x.png")
    _write(root / "scores.csv", "name,mos\na.png,3\n")
    raw = yaml.safe_load(TINY_TRAIN_CONFIG.read_text())
    raw["data"]["train"], raw["data"]["train_split"] = [str(root / "ds")], None  # one photo: any split
    raw["output_dir"] = str(root.parent / "run-not-an-input")
    _write(root / "train.yaml", yaml.safe_dump(raw))
    return root


# (command words, output option) -> (arguments without the output, the inputs to give as the output)
Case = Callable[[Path], tuple[list[str], list[Path]]]
WRITERS: dict[tuple[tuple[str, ...], str], Case] = {
    (("assess",), "--out"): lambda r: (
        [
            str(r / "p.png"),
            "--mask",
            str(r / "mask.png"),
            "--rois",
            str(r / "rois.json"),
            "--model",
            str(r / "model"),
        ],
        [r / "p.png", r / "mask.png", r / "rois.json", r / "model", r / "model" / "config.json"],
    ),
    (("assess",), "--output"): lambda r: (
        [str(r / "photos"), str(r / "list.txt"), "--model", str(r / "model")],
        [r / "photos" / "a.png", r / "photos" / "b.png", r / "list.txt", r / "model" / "model.safetensors"],
    ),
    (("map",), "--out"): lambda r: (
        [str(r / "p.png"), "--model", str(r / "model")],
        [r / "p.png", r / "model"],
    ),
    (("map",), "--json"): lambda r: (
        [str(r / "p.png"), "--model", str(r / "model"), "--out", str(r.parent / "map-not-an-input.png")],
        [r / "p.png", r / "model" / "config.json"],
    ),
    (("synth",), "--out"): lambda r: (
        ["--refs", str(r / "photos"), "--annotations", str(r / "annotations.json"), "--quiet"],
        [r / "photos", r / "photos" / "sub", r / "annotations.json", r],
    ),
    (("data", "cuhk"), "--out"): lambda r: (
        ["--refs", str(r / "cuhk")],
        [r / "cuhk", r / "cuhk" / "labels.csv", r / "cuhk" / "images", r / "cuhk" / "masks" / "new"],
    ),
    (("data", "mos"), "--out"): lambda r: (
        ["--photos", str(r / "photos"), "--scores", str(r / "scores.csv"), "--name-column", "name"]
        + ["--mos-column", "mos", "--scale", "1,5"],
        [r / "photos", r / "photos" / "a.png", r / "scores.csv"],
    ),
    (("eval",), "--out"): lambda r: (
        ["--model", str(r / "model"), "--data", str(r / "ds"), "--predictions", str(r / "predictions.jsonl")],
        [r / "ds", r / "ds" / "report", r / "model", r / "predictions.jsonl", r],
    ),
    (("bench",), "--out"): lambda r: (
        ["--images", str(r / "photos"), "--model", str(r / "model")],
        [r / "photos", r / "model"],
    ),
    (("export-model",), "--out"): lambda r: (
        ["--model", str(r / "model")],
        [r / "model", r / "model" / "fp16"],
    ),
    (("average-models",), "--out"): lambda r: (
        ["--model", str(r / "model"), str(r / "model2")],
        [r / "model", r / "model2"],
    ),
    (("tower-probe",), "--out"): lambda r: (
        ["--tower", str(r / "tower.safetensors"), "--data", str(r / "ds")],
        [r / "tower.safetensors", r / "ds" / "dataset.json", r / "ds"],
    ),
    (("train",), "--output"): lambda r: (["--config", str(r / "train.yaml")], [r / "train.yaml", r / "ds"]),
}


def _writing_options(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(command words, option) of every option that names a file or folder a command writes."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _writing_options(sub, (*words, name))
        elif words and action.option_strings and action.nargs != 0 and _names_output(words, action.dest):
            yield words, action.option_strings[0]


def _names_output(words: tuple[str, ...], dest: str) -> bool:
    return dest in ("out", "output") or (words == ("map",) and dest == "json")


def test_every_writing_command_is_in_the_table():
    assert set(_writing_options(build_parser())) <= set(WRITERS)


def _tree(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a digest of its bytes (folders: '')."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = "" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _aliases(target: Path, links: Path) -> list[Path]:
    """``target`` by its own name, through a symbolic link, through a linked parent folder and (for
    an existing file) through a hard link."""
    n = len(list(links.iterdir()))
    names = [target]
    sym = links / f"s{n}{target.suffix}"
    sym.symlink_to(target)
    names.append(sym)
    parent = links / f"d{n}"
    parent.symlink_to(target.parent)
    names.append(parent / target.name)
    if target.is_file():
        hard = links / f"h{n}{target.suffix}"
        os.link(target, hard)
        names.append(hard)
    return names


@pytest.mark.parametrize(
    "command,option", sorted(WRITERS), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v
)
def test_no_command_writes_to_one_of_its_inputs(command, option, inputs, tmp_path, capsys):
    """Property: for every writing command, every input given as the output (by its name, a
    symbolic link, a linked folder, a hard link, or a path inside an input folder) is refused with
    exit 2 and one line naming the option, and not one byte of any input changes."""
    if (command, option) not in set(_writing_options(build_parser())):
        pytest.skip(f"this build has no `seagull {' '.join(command)} {option}`")
    args, targets = WRITERS[command, option](inputs)
    before = _tree(inputs)
    links = tmp_path / "links"
    links.mkdir()
    tried = 0
    for target in targets:
        for out in _aliases(target, links):
            argv = [*command, *args, option, str(out)]
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip()
            assert err.startswith(f"seagull {command[0]}: error: {option} ") and "\n" not in err, (argv, err)
            assert "would overwrite what the command reads" in err, (argv, err)
            assert _tree(inputs) == before, argv
            tried += 1
    assert tried >= 3 * len(targets)


def test_the_output_check_allows_outputs_beside_the_inputs(tmp_path):
    photos = tmp_path / "photos"
    a = _photo(photos / "a.png")
    # a batch's results inside the folder of its photos: the folder was expanded to its images
    refuse_overwrite("--output", photos / "results.jsonl", [("image", a)])
    refuse_overwrite("--out", tmp_path / "a-map.png", [("image", a)])
    # a run folder that holds its own config (resuming) is fine where the command allows it
    refuse_overwrite("--output", tmp_path, [("--config", tmp_path / "train.yaml")])
    with pytest.raises(ConfigError, match="holds the input"):
        refuse_overwrite("--out", tmp_path, [("--refs", photos)], inside_output=True)
    refuse_same_outputs([("--out", tmp_path / "m.png"), ("--json", tmp_path / "m.json"), ("--x", None)])
    with pytest.raises(ConfigError, match="same file as --out"):
        refuse_same_outputs([("--out", tmp_path / "m.png"), ("--json", tmp_path / "." / "m.png")])


def test_assess_output_over_its_photo_keeps_the_photo(inputs, micro_model_dir, tmp_path, capsys):
    """The reported case: the one photo given as --output (batch JSONL) or --out (annotated picture),
    with a real model that would otherwise run and write."""
    photo = shutil.copy(inputs / "p.png", tmp_path / "p.png")
    data = Path(photo).read_bytes()
    for option in ("--output", "--out"):
        assert main(["assess", str(photo), option, str(photo), "--model", str(micro_model_dir)]) == 2
        assert f"{option} {photo} is the same file" in capsys.readouterr().err
        assert Path(photo).read_bytes() == data
    assert main(["map", str(photo), "--out", str(photo), "--model", str(micro_model_dir)]) == 2
    assert Path(photo).read_bytes() == data


# --------------------------------------------------------------------------- text for terminals


@pytest.mark.parametrize(
    "raw,shown",
    [
        ("plain name.png", "plain name.png"),
        ("caf\u00e9 \U0001f600.jpg", "caf\u00e9 \U0001f600.jpg"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("ok\rforged", "ok\\rforged"),
        ("two\nlines", "two\\nlines"),
        ("tab\there", "tab\\there"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("del\x7f", "del\\x7f"),
        ("bidi\u202eexe.png", "bidi\\u202eexe.png"),
        ("sep\u2028x", "sep\\u2028x"),
    ],
)
def test_printable_escapes_what_moves_the_terminal(raw, shown):
    assert printable(raw) == shown
    assert printable(Path(raw)) == shown


def test_error_lines_escape_control_characters(tmp_path, capsys):
    bad = tmp_path / "evil\x1b[2J\rname.png"
    assert main(["assess", str(bad), "--out", str(bad), "--model", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err and err.count("\n") == 1
    assert "evil\\x1b[2J\\rname.png" in err


# --------------------------------------------------------------------------- closed pipes


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    """`seagull ... | head -1`: the reader is gone before the command prints; no traceback, exit 141."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "seagull", "data", "validate", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # before the interpreter has even started importing
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    assert "has no dataset.json" in err  # the command ran; only its stdout had no reader
