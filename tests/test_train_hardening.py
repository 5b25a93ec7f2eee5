"""Checkpoints hold no pickle, damaged or foreign ones are refused by name, bad overrides are clear errors."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from seagull.cli import main
from seagull.errors import ConfigError
from seagull.train.checkpoint import (
    CheckpointError,
    find_resume_checkpoint,
    load_checkpoint,
    write_checkpoint,
)


class RunsCode:
    """A pickle that creates ``path`` when it is unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def plant_pickles(folder: Path, marker: Path) -> None:
    """What an attacker would leave in a checkpoint folder: the files accelerate's load_state unpickles."""
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl"):
        torch.save(RunsCode(marker), folder / name)


# --------------------------------------------------------------------------- unit: checkpoint files


def tiny_run(steps: int, seed: int = 0):
    """A module with a buffer, AdamW and a schedule, after ``steps`` updates."""
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    opt = torch.optim.AdamW(module.parameters(), lr=0.1, betas=(0.8, 0.9))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (s + 1))
    for i in range(steps):
        update(module, opt, sched, i)
    return module, opt, sched


def update(module, opt, sched, i: int) -> None:
    torch.manual_seed(100 + i)
    module(torch.randn(8, 3)).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
    sched.step()


def save(out: Path, step: int, run, **state) -> Path:
    folder = out / "checkpoints" / f"step-{step}"
    state = {"step": step, "config_hash": "abc", "world_size": 1, **state}
    write_checkpoint(folder, *run, state)
    return folder


def test_checkpoint_round_trip_continues_bit_identically(tmp_path: Path) -> None:
    straight = tiny_run(3)
    update(*straight, 3)
    folder = save(tmp_path, 3, tiny_run(3))
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "trainer_state.json",
    ]
    resumed = tiny_run(0, seed=1)  # other initial weights: everything must come from the files
    found, state = find_resume_checkpoint(tmp_path, "abc", 1)
    load_checkpoint(found, state, *resumed)
    assert resumed[2].last_epoch == 3 and resumed[1].param_groups[0]["betas"] == (0.8, 0.9)
    update(*resumed, 3)
    a, b = straight[0].state_dict(), resumed[0].state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_resume_picks_the_latest_complete_checkpoint(tmp_path: Path) -> None:
    save(tmp_path, 2, tiny_run(2))
    save(tmp_path, 10, tiny_run(2))  # 10 sorts after 2 as a number, not as text
    unfinished = save(tmp_path, 11, tiny_run(2))
    (unfinished / "trainer_state.json").unlink()
    shutil.copytree(unfinished, tmp_path / "checkpoints" / ".tmp-step-12")
    assert find_resume_checkpoint(tmp_path, "abc", 1)[0].name == "step-10"


@pytest.mark.parametrize(("fingerprint", "world"), [("other", 1), ("abc", 2)])
def test_resume_refuses_another_config_or_world(tmp_path: Path, fingerprint: str, world: int) -> None:
    save(tmp_path, 2, tiny_run(2))
    with pytest.raises(CheckpointError, match="different configuration or process count"):
        find_resume_checkpoint(tmp_path, fingerprint, world)


def test_damaged_weights_name_the_checkpoint_and_the_previous_one(tmp_path: Path) -> None:
    save(tmp_path, 1, tiny_run(1))
    last = save(tmp_path, 2, tiny_run(2))
    model_file = last / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:-20])  # truncated
    found, state = find_resume_checkpoint(tmp_path, "abc", 1)
    with pytest.raises(CheckpointError, match="step-2 is damaged") as e:
        load_checkpoint(found, state, *tiny_run(0))
    assert f"previous checkpoint {tmp_path / 'checkpoints' / 'step-1'}" in str(e.value)
    shutil.rmtree(tmp_path / "checkpoints" / "step-1")
    with pytest.raises(CheckpointError, match="no earlier checkpoint exists"):
        load_checkpoint(found, state, *tiny_run(0))


def test_pickles_in_a_checkpoint_are_never_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folder = save(tmp_path, 2, tiny_run(2))
    plant_pickles(folder, marker)
    found, state = find_resume_checkpoint(tmp_path, "abc", 1)
    load_checkpoint(found, state, *tiny_run(0))
    # An accelerate-written (pickle) checkpoint is refused without opening its files.
    (folder / "trainer_state.json").write_text(json.dumps({"step": 2, "config_hash": "abc", "world_size": 1}))
    with pytest.raises(CheckpointError, match="never read"):
        find_resume_checkpoint(tmp_path, "abc", 1)
    assert not marker.exists()


# --------------------------------------------------------------------------- end to end: a tiny run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_train_config) -> tuple[Path, Path]:
    """(config, output) of a finished 2-step run with a checkpoint after each step."""
    from seagull.train.config import load_config
    from seagull.train.trainer import train

    tmp = tmp_path_factory.mktemp("run")
    cfg_file = tiny_train_config(
        tmp,
        "two",
        max_steps=2,
        save_every=1,
        keep_checkpoints=5,
        val_at_start=False,
        data__val_max_rois=4,
        parts__lm="lora",
        lora={"r": 2, "alpha": 4, "targets": ["q_proj", "v_proj"]},
    )
    train(load_config(cfg_file, output_dir=str(tmp / "out")))
    return cfg_file, tmp / "out"


def resumable_copy(trained: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the run as if killed after step 1."""
    cfg_file, out = trained
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "final")
    shutil.rmtree(copy / "checkpoints" / "step-2")
    return cfg_file, copy


def test_resume_of_a_run_never_runs_a_planted_pickle(trained, tmp_path: Path) -> None:
    from seagull.train.config import load_config
    from seagull.train.trainer import train

    cfg_file, out = resumable_copy(trained, tmp_path)
    marker = tmp_path / "pwned"
    plant_pickles(out / "checkpoints" / "step-1", marker)
    train(load_config(cfg_file, output_dir=str(out)), resume=True)
    assert not marker.exists()
    summary = json.loads((out / "final" / "train_summary.json").read_text())
    assert summary["resumed_from"] == 1 and summary["steps"] == 2


def test_resume_from_damaged_weights_is_a_clear_error(trained, tmp_path: Path) -> None:
    from seagull.train.config import load_config
    from seagull.train.trainer import train

    cfg_file, out = trained
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "final")
    model_file = copy / "checkpoints" / "step-2" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    with pytest.raises(ConfigError, match="step-2 is damaged") as e:
        train(load_config(cfg_file, output_dir=str(copy)), resume=True)
    assert str(copy / "checkpoints" / "step-1") in str(e.value)


def test_trainer_resume_check_needs_no_compute(trained, tmp_path: Path) -> None:
    from seagull.train.config import load_config
    from seagull.train.trainer import Trainer

    cfg_file, out = resumable_copy(trained, tmp_path)
    trainer = Trainer(load_config(cfg_file, output_dir=str(out), seed=7), resume=True)
    with pytest.raises(ConfigError, match="different configuration"):
        trainer.check_output(world=1)
    trainer = Trainer(load_config(cfg_file, output_dir=str(out)), resume=True)
    trainer.check_output(world=1)
    assert trainer.resume_from is not None and trainer.resume_from[0].name == "step-1"
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        Trainer(load_config(cfg_file, output_dir=str(out))).check_output(world=1)


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("max_steps=abc", "max_steps='abc' is not valid: expected an integer or null"),
        ("optim.lr=fast", "optim.lr='fast' is not valid: expected a finite number"),
        ("optim.lr=nan", "optim.lr='nan' is not valid: expected a finite number"),
        ("optim.lr=.inf", "optim.lr=inf is not valid: expected a finite number"),
        ("optim.weight_decay=-1", r"optim.weight_decay .* must be >= 0 .* got -1.0"),
        ("optim.betas=[0.9, 1.5]", r"optim.betas must both be in \[0, 1\), got \[0.9, 1.5\]"),
        ("data.task_mix.quality=[1]", r"data.task_mix.quality=\[1\] is not valid: expected a finite number"),
        ("data.task_mix.quality=nan", "data.task_mix.quality='nan' is not valid: expected a finite number"),
        ("epochs=-.inf", "epochs=-inf is not valid: expected a finite number"),
        ("lora.targets=[q_proj, 3]", r"lora.targets\[1\]=3 is not valid: expected a string"),
        ("optim.betas=[0.9]", r"optim.betas=\[0.9\] is not valid: expected a list of 2 finite numbers"),
        ("val_at_start=perhaps", "val_at_start='perhaps' is not valid: expected true or false"),
        ("max_steps=[1", "override 'max_steps=\\[1': the value is not valid YAML"),
    ],
)
def test_bad_overrides_after_options_are_one_line_errors(
    tmp_path: Path, capsys, tiny_train_config, override: str, message: str
) -> None:
    cfg = tiny_train_config(tmp_path, "cli")
    argv = ["train", "--config", str(cfg), "seed=1", "--output", str(tmp_path / "out"), override]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("seagull train: error: ") and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_overrides_are_taken_anywhere_among_the_options(tmp_path: Path, monkeypatch) -> None:
    import seagull.train.config as config

    seen = {}

    def fake_load(path, overrides=None, **fields):
        seen["overrides"] = overrides
        raise ConfigError("stop here")

    monkeypatch.setattr(config, "load_config", fake_load)
    argv = ["train", "a=1", "--config", "c.yaml", "b=2", "--resume", "c=3", "--output", "o", "d=4"]
    assert main(argv) == 2
    assert seen["overrides"] == ["a=1", "b=2", "c=3", "d=4"]
    with pytest.raises(SystemExit):
        main(["train", "--config", "c.yaml", "--resume", "--no-such-option"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=nan", "lr='nan' is not valid: expected a finite number"),
        ("head_lr=.inf", "head_lr=inf is not valid: expected a finite number"),
        ("loss.rank=.nan", "loss.rank=nan is not valid: expected a finite number"),
        ("weight_decay=-0.1", "weight_decay must be >= 0 and max_grad_norm positive, got -0.1, 1.0"),
        ("max_grad_norm=0", "weight_decay must be >= 0 and max_grad_norm positive, got 0.01, 0.0"),
    ],
)
def test_a_tower_config_refuses_numbers_that_are_no_setting(
    tmp_path: Path, capsys, override: str, message: str
) -> None:
    cfg = tmp_path / "tower.yaml"
    cfg.write_text(f"stage: tower\ntrain: [{tmp_path / 'data'}]\n")
    assert main(["train", "--config", str(cfg), "--output", str(tmp_path / "out"), override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seagull train: error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert not (tmp_path / "out").exists()


def test_a_config_folder_is_named_as_a_folder(tmp_path: Path, capsys) -> None:
    assert main(["train", "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"training config {tmp_path} is a folder; pass a YAML file" in err, err
