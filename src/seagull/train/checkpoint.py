"""Resumable training checkpoints without pickle: safetensors tensors and JSON.

``OUTPUT/checkpoints/step-N/`` holds exactly:

- ``model.safetensors``: every parameter and buffer of the training module (model + region heads);
- ``optimizer.safetensors``: the optimizer's per-parameter tensors (AdamW moments and step counts);
- ``optimizer.json``: the rest of the optimizer state (parameter groups, non-tensor entries);
- ``trainer_state.json``: step, epoch, seeds and data position, config fingerprint, world size, the
  learning-rate schedule and the fp16 loss scale; written last, it marks the checkpoint complete.

Resume reads only these files, so nothing is ever unpickled; any other file in the folder (e.g. the
``*.pkl`` / ``*.bin`` of older, accelerate-written checkpoints) is never opened.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import ConfigError

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
MODEL_FILE = "model.safetensors"
OPTIM_TENSORS = "optimizer.safetensors"
OPTIM_META = "optimizer.json"
FORMAT = 2  # format 1 was accelerate's save_state (pickles); it is refused, never loaded
_STEP_DIR = re.compile(r"step-(\d+)")


class CheckpointError(ConfigError):
    """A checkpoint folder cannot be resumed from (damaged, foreign or in the old pickle format)."""


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints (with their state file), oldest first."""
    root = Path(out) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.fullmatch(p.name))]
    return [p for _, p in sorted(found) if (p / STATE_FILE).is_file()]


# --------------------------------------------------------------------------- writing


def module_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters (a tied weight once) and buffers under their module names."""
    named = dict(module.named_parameters())
    named.update(module.named_buffers())
    return named


def split_optimizer_state(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` -> (tensors named ``"<param index>.<name>"``, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    rest: dict[str, dict[str, Any]] = {}
    for index, entries in sd["state"].items():
        rest[str(index)] = {}
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().contiguous()
            else:
                rest[str(index)][name] = value
    return tensors, {"state": rest, "param_groups": sd["param_groups"]}


def join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`split_optimizer_state` (JSON lists of ``betas`` become tuples again)."""
    state: dict[int, dict[str, Any]] = {int(i): dict(entries) for i, entries in meta["state"].items()}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def write_checkpoint(
    folder: Path,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    scaler: Any = None,
) -> None:
    """Write the four files of a checkpoint into ``folder``, the state file last."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in module_tensors(module).items()}, str(folder / MODEL_FILE)
    )
    tensors, meta = split_optimizer_state(optimizer.state_dict())
    save_file(tensors, str(folder / OPTIM_TENSORS))
    (folder / OPTIM_META).write_text(json.dumps(meta))
    full = {
        **state,
        "format": FORMAT,
        "scheduler": scheduler.state_dict(),
        "grad_scaler": None if scaler is None else scaler.state_dict(),
    }
    (folder / STATE_FILE).write_text(json.dumps(full, indent=2))


def commit_checkpoint(tmp: Path, final: Path, out: Path, keep: int) -> None:
    """Move a written checkpoint into place and drop all but the newest ``keep``."""
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)
    for old in checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- resuming


def find_resume_checkpoint(out: Path, fingerprint: str, world: int) -> tuple[Path, dict[str, Any]]:
    """The newest complete checkpoint and its state; refuses one this run cannot continue."""
    ckpts = checkpoint_dirs(out)
    if not ckpts:
        raise CheckpointError(
            f"--resume: {Path(out) / CHECKPOINTS} holds no complete checkpoint; start without --resume"
        )
    last = ckpts[-1]
    try:
        state = json.loads((last / STATE_FILE).read_text())
    except (OSError, ValueError) as e:
        raise damaged(last, ckpts, e) from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{last} is not in the current checkpoint format (older checkpoints were pickles, which can run "
            "code when loaded, so they are never read); start a new run in another --output"
        )
    if state.get("config_hash") != fingerprint or state.get("world_size") != world:
        raise CheckpointError(
            f"{last} was written by a different configuration or process count "
            f"(hash {state.get('config_hash')} vs {fingerprint}, world {state.get('world_size')} vs {world}); "
            "resume with the same config and launch command"
        )
    return last, state


def damaged(folder: Path, ckpts: list[Path], err: Exception) -> CheckpointError:
    """The error for an unreadable checkpoint, naming the previous complete one when there is one."""
    earlier = [p for p in ckpts if p != folder and int(p.name.split("-")[1]) < int(folder.name.split("-")[1])]
    fix = (
        f"delete {folder} and run --resume again to continue from the previous checkpoint {earlier[-1]}"
        if earlier
        else "no earlier checkpoint exists: start again without --resume in a new --output"
    )
    return CheckpointError(f"checkpoint {folder} is damaged ({type(err).__name__}: {err}); {fix}")


def load_checkpoint(
    folder: Path,
    state: dict[str, Any],
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any = None,
) -> None:
    """Put the weights, optimizer, schedule and loss scale of ``folder`` into the training objects."""
    try:
        weights = load_file(str(folder / MODEL_FILE))
        optim = join_optimizer_state(
            load_file(str(folder / OPTIM_TENSORS)), json.loads((folder / OPTIM_META).read_text())
        )
    except (SafetensorError, OSError, ValueError, KeyError) as e:  # truncated, missing or malformed
        raise damaged(folder, checkpoint_dirs(folder.parent.parent), e) from e
    named = module_tensors(module)
    wrong = sorted(k for k in named.keys() | weights.keys() if k not in named or k not in weights)
    wrong += sorted(k for k in named.keys() & weights.keys() if named[k].shape != weights[k].shape)
    if wrong:
        raise CheckpointError(
            f"{folder / MODEL_FILE} does not match the model (tensors {wrong[:5]} are missing, extra or of "
            "another shape); resume with the model and config that wrote it"
        )
    with torch.no_grad():
        for name, tensor in named.items():
            tensor.copy_(weights[name])
    try:
        optimizer.load_state_dict(optim)
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{folder / OPTIM_META} does not fit this run's optimizer: {e}") from e
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("grad_scaler"):
        scaler.load_state_dict(state["grad_scaler"])
