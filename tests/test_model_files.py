"""Damaged or foreign weight and model files are one clear ModelError naming the file, in the loader and in
every command that loads a model folder; never a traceback, never a pickle run."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from seagull.cli import main
from seagull.errors import ModelError
from seagull.model.weights import (
    MAX_HEADER_BYTES,
    fit_problems,
    load_state_file,
    safetensors_shapes,
)

WEIGHTS = "model.safetensors"


class RunsCode:
    """A pickle that creates ``path`` when it is unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def header_file(path: Path, header: bytes, data: bytes = b"", length: int | None = None) -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


# --------------------------------------------------------------------------- the loader


def test_safe_files_load_by_content_not_only_by_name(tmp_path: Path) -> None:
    state = {"a": torch.arange(6.0).view(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.bin")
    torch.save({"state_dict": state}, tmp_path / "wrapped.pt")
    shutil.copyfile(tmp_path / "w.safetensors", tmp_path / "renamed.bin")  # safetensors under another name
    for name in ("w.safetensors", "w.bin", "wrapped.pt", "renamed.bin"):
        got = load_state_file(tmp_path / name)
        assert set(got) == {"a", "b"} and torch.equal(got["a"], state["a"]), name
    assert safetensors_shapes(tmp_path / "w.safetensors") == {"a": (2, 3), "b": (2,)}


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        (
            "huge.safetensors",
            lambda p: header_file(p, b"{}", length=10**15),
            "header claims 1000000000000000 bytes",
        ),
        ("over.safetensors", lambda p: header_file(p, b"{}", length=MAX_HEADER_BYTES + 1), "header claims"),
        ("short.safetensors", lambda p: p.write_bytes(b"\x01\x02"), "fewer than the 8"),
        ("junk.safetensors", lambda p: p.write_bytes(os.urandom(64) + b"x" * 10_000), "header"),
        ("notjson.safetensors", lambda p: header_file(p, b"{not json"), "header is not JSON"),
        ("list.safetensors", lambda p: header_file(p, b"[]"), "header is a JSON list"),
        (
            "cut.safetensors",
            lambda p: header_file(p, b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', b"\0" * 8),
            "cut short",
        ),
        (
            "entry.safetensors",
            lambda p: header_file(p, b'{"a":{"dtype":"F32","shape":"big"}}'),
            "entry for tensor 'a'",
        ),
    ],
)
def test_broken_safetensors_files_are_named_model_errors(tmp_path: Path, name, make, message) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(ModelError, match="not a valid safetensors file") as e:
        load_state_file(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_a_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save({"w": RunsCode(marker)}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match="is not a safe weights file") as e:
        load_state_file(tmp_path / "evil.pth")
    assert str(tmp_path / "evil.pth") in str(e.value) and "weights_only=True" in str(e.value)
    assert "GLOBAL posix.system" in str(e.value)  # what was refused, not PyTorch's advice to load it unsafely
    assert "False" not in str(e.value) and not marker.exists()


def test_other_files_are_refused_by_name(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2), "step": 3}, tmp_path / "mixed.pt")  # weights_only allows the int
    with pytest.raises(ModelError, match="entry 'step' is a int"):
        load_state_file(tmp_path / "mixed.pt")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(ModelError, match="holds a list, not a state dict"):
        load_state_file(tmp_path / "list.pt")
    (tmp_path / "text.bin").write_text("hello, not weights")
    with pytest.raises(ModelError, match="text.bin is not a safe weights file"):
        load_state_file(tmp_path / "text.bin")
    with pytest.raises(ModelError, match="is a folder"):
        load_state_file(tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        load_state_file(tmp_path / "none.safetensors")


def test_fit_problems_name_the_first_tensors_expected_found_and_counts() -> None:
    expected = {f"t{i}": (4, i) for i in range(6)} | {"gone": (1,), "tied": (2,)}
    found = {f"t{i}": (4, i + 1) for i in range(5)} | {"t5": (4, 5), "extra": (3,)}
    text = fit_problems(expected, found, may_miss={"tied"})
    assert text.startswith("wrong shape in 5 tensors (t0: expected (4, 0), found (4, 1); t1:")
    assert "t3" not in text and "; ...)" in text
    assert "missing 1 tensor (gone)" in text and "unexpected 1 tensor (extra)" in text
    assert fit_problems({"a": (1,)}, {"a": (1,)}) is None


# --------------------------------------------------------------------------- model folders


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _wider_mlp(folder: Path) -> None:
    cfg = _config(folder)
    cfg["text_config"]["intermediate_size"] *= 2
    (folder / "config.json").write_text(json.dumps(cfg))


DAMAGE = {
    # name: (how the folder is damaged, the file the message names, what it says)
    "truncated config": (
        lambda d: (d / "config.json").write_text((d / "config.json").read_text()[:200]),
        "config.json",
        "is not valid JSON",
    ),
    "config is a list": (lambda d: (d / "config.json").write_text("[]"), "config.json", "holds a JSON list"),
    "garbage tokenizer": (
        lambda d: (d / "tokenizer.json").write_text("garbage {{"),
        "tokenizer",
        "does not load",
    ),
    "huge header": (
        lambda d: header_file(d / WEIGHTS, b"{}", length=10**15),
        WEIGHTS,
        "header claims 1000000000000000 bytes",
    ),
    "shapes from another config": (_wider_mlp, WEIGHTS, "does not fit"),
}


@pytest.fixture(scope="module")
def damaged(micro_model_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    out = {}
    for name, (damage, _, _) in DAMAGE.items():
        folder = root / name.replace(" ", "_")
        shutil.copytree(micro_model_dir, folder)
        damage(folder)
        out[name] = folder
    return out


def test_a_config_with_other_shapes_lists_the_tensors_expected_vs_found(damaged) -> None:
    from seagull.model import load_model

    folder = damaged["shapes from another config"]
    with pytest.raises(ModelError) as e:
        load_model(folder)
    text = str(e.value)
    layers = _config(folder)["text_config"]["num_hidden_layers"]
    assert (
        f"{folder / WEIGHTS} does not fit {folder / 'config.json'}: wrong shape in {3 * layers} tensors"
        in text
    )
    inter = _config(folder)["text_config"]["intermediate_size"]
    assert f"expected ({inter}, " in text and f"found ({inter // 2}, " in text
    assert len(text) < 800 and "size mismatch" not in text


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", ["assess", "serve", "eval", "export-model", "train"])
def test_every_command_names_the_damaged_file(
    damaged, command: str, damage: str, tmp_path: Path, capsys, tiny_train_config
) -> None:
    folder = damaged[damage]
    _, file, message = DAMAGE[damage]
    photo = Path(__file__).resolve().parents[1] / "examples" / "coffee.jpg"
    argv = {
        "assess": ["assess", str(photo), "--box", "0,0,100,100", "--model", str(folder)],
        "serve": ["serve", "--model", str(folder)],
        "eval": ["eval", "--model", str(folder), "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")],
        "export-model": ["export-model", "--model", str(folder), "--out", str(tmp_path / "o")],
        "train": ["train", "--config", str(tiny_train_config(tmp_path, "t", model=str(folder)))]
        + ["--output", str(tmp_path / "o"), "max_steps=1"],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()  # serve says it is loading the model first
    assert lines[-1].startswith(f"seagull {command}: error: ") and "Traceback" not in err, err
    err = lines[-1]
    assert f"{folder / file}" in err or (file == "tokenizer" and f"tokenizer in {folder}" in err), err
    assert message in err, err
    if command == "export-model":
        assert not (tmp_path / "o").exists()  # nothing written for a model that does not load


def test_export_refuses_an_output_that_is_a_file(micro_model_dir, tmp_path: Path, capsys) -> None:
    out = tmp_path / "taken.txt"
    out.write_text("keep me")
    assert main(["export-model", "--model", str(micro_model_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out} is a file" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "keep me"


def test_tower_probe_names_a_junk_tower_file(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(256))
    assert main(["tower-probe", "--tower", str(junk), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{junk} is not a valid safetensors file" in err and len(err.strip().splitlines()) == 1, err


def test_tower_probe_counts_are_checked_by_the_parser(tmp_path: Path, capsys) -> None:
    for option in ("--train-photos", "--test-photos"):
        with pytest.raises(SystemExit) as e:
            main(["tower-probe", "--data", str(tmp_path), option, "-1"])
        assert e.value.code == 2
        assert f"argument {option}: -1 is outside the allowed range [1, inf]" in capsys.readouterr().err


def test_a_tower_file_of_another_shape_lists_the_tensors(tmp_path: Path) -> None:
    from seagull.model import get_config
    from seagull.model.vision import build_vision_tower

    vision = {**get_config("seagull-test").vision, "weights": "none"}
    tower = build_vision_tower(vision)
    state = {k: torch.zeros(*v.shape, 2) if v.ndim else v for k, v in tower.trunk.state_dict().items()}
    save_file(state, str(tmp_path / "tower.safetensors"))
    with pytest.raises(ModelError, match=r"do not fit timm .*: wrong shape in \d+ tensors \(.*: expected"):
        tower.load_trunk_state(load_state_file(tmp_path / "tower.safetensors"), "tower.safetensors")
