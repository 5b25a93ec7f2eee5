"""``seagull average-models``: the weighted average of the weights of fine-tunes of one model.

Fine-tunes that start from the same weights and differ in a few choices (learning rate, data mix) often
sit in one basin of the loss, so their average can keep much of what each learned ("model soups",
Wortsman et al., ICML 2022; WiSE-FT, Wortsman et al., CVPR 2022); whether it does is for the evaluation
to say (for seagull-tiny's stage-2 runs it did not: docs/default_model.md). The inputs must be
the same architecture: equal ``config.json``, equal tokenizer files, the same tensor names and shapes;
integer tensors (counters) must be equal too. The output folder is a model folder like the inputs',
with ``average.json`` naming each input, its weight and the SHA-256 of its weights file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..model.weights import load_state_file
from ..version import __version__

WEIGHTS = "model.safetensors"
# Equal in every input (the first two required); processor_config.json is absent from older folders.
COPIED = ("config.json", "tokenizer.json", "tokenizer_config.json", "processor_config.json")


@dataclass
class Averaged:
    out: Path
    tensors: int
    differing: int  # tensors not equal in every input: the ones the average changes


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def _check_inputs(folders: list[Path], weights: list[float]) -> None:
    if len(folders) < 2:
        raise ConfigError(f"--model needs at least two model folders to average, got {len(folders)}")
    if len(weights) != len(folders) or any(w <= 0 for w in weights):
        raise ConfigError(f"--weights needs one positive weight per model ({len(folders)}), got {weights}")
    for folder in folders:
        for name in (WEIGHTS, *COPIED[:2]):
            if not (folder / name).is_file():
                raise ConfigError(f"{folder} has no {name}; pass model folders written by `seagull train`")
    for name in COPIED:
        texts = {(f / name).read_bytes() if (f / name).is_file() else None for f in folders}
        if len(texts) > 1:
            raise ConfigError(
                f"the models' {name} differ; only fine-tunes of one model (same architecture and "
                "tokenizer) can be averaged"
            )


def average_models(folders: list[Path], out: Path, weights: list[float] | None = None) -> Averaged:
    """Write the weighted average of the models in ``folders`` (equal weights by default) to ``out``."""
    folders = [Path(f) for f in folders]
    weights = [1.0] * len(folders) if weights is None else [float(w) for w in weights]
    _check_inputs(folders, weights)
    out = Path(out)
    if (out / WEIGHTS).exists():
        raise ConfigError(f"--out {out} already holds a model; choose a new folder")
    # The weights file's metadata names tied tensors (saved once); it must be the same in every input.
    metadata = [_metadata(f / WEIGHTS) for f in folders]
    if any(m != metadata[0] for m in metadata[1:]):
        raise ConfigError("the models' weights files differ in their metadata (tied tensors); not one model")
    states = [load_state_file(f / WEIGHTS) for f in folders]
    names = set(states[0])
    for folder, state in zip(folders[1:], states[1:], strict=True):
        if set(state) != names:
            raise ConfigError(f"{folder} has other tensors than {folders[0]}; they are not the same model")
    total = sum(weights)
    averaged: dict[str, torch.Tensor] = {}
    differing = 0
    for name in sorted(names):
        tensors = [s[name] for s in states]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise ConfigError(
                f"tensor {name} has different shapes in the models; they are not the same model"
            )
        if all(torch.equal(t, tensors[0]) for t in tensors[1:]):
            averaged[name] = tensors[0]
            continue
        differing += 1
        if not tensors[0].is_floating_point():
            raise ConfigError(f"integer tensor {name} differs between the models; it cannot be averaged")
        mean = sum(w / total * t.double() for w, t in zip(weights, tensors, strict=True))
        averaged[name] = mean.to(tensors[0].dtype).contiguous()
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (folders[0] / name).is_file():
            shutil.copyfile(folders[0] / name, out / name)
    tmp = out / f".{WEIGHTS}.tmp"
    save_file(averaged, str(tmp), metadata=metadata[0])
    tmp.replace(out / WEIGHTS)
    record = {
        "seagull": __version__,
        "inputs": [
            {"model": str(f), "weight": w / total, "sha256": sha256_file(f / WEIGHTS)}
            for f, w in zip(folders, weights, strict=True)
        ],
        "tensors": len(names),
        "averaged_tensors": differing,
    }
    atomic_write_text(out / "average.json", json.dumps(record, indent=2) + "\n")
    return Averaged(out, len(names), differing)
