"""``seagull export-model``: a trained model folder stored for shipping, its weights in a smaller dtype.

fp16 storage halves the weights file (the shipped default's tower, MFE, projector and LM: 43 MB fp32,
21 MB fp16). The model still computes in the dtype it is loaded in (fp32 on a CPU): ``load_model``
casts each stored tensor into its parameter, so only the rounding of the stored weights changes, which
the evaluation measures (docs/default_model.md). Integer tensors (counters) are kept as they are. The
output holds config.json, the tokenizer files, model.safetensors and ``export.json`` naming the source,
its SHA-256 and the dtype; training files (train_config.yaml, train_summary.json) are copied as the record
of how the weights were made.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..errors import ConfigError, ModelError
from ..fileio import atomic_write_text
from ..model.weights import load_state_file, safetensors_metadata
from ..version import __version__
from .average import WEIGHTS, sha256_file

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
COPIED = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    "train_config.yaml",
    "train_summary.json",
)


@dataclass
class Exported:
    out: Path
    tensors: int
    bytes_before: int
    bytes_after: int


def export_model(src: Path, out: Path, dtype: str = "float16") -> Exported:
    """Write ``src``'s model to ``out`` with its floating-point weights stored as ``dtype``."""
    src, out = Path(src), Path(out)
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    for name in (WEIGHTS, "config.json"):
        if not (src / name).is_file():
            raise ModelError(f"{src} has no {name}; pass a model folder written by `seagull train`")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; export-model writes a folder: choose a new folder name")
    if (out / WEIGHTS).exists():
        raise ConfigError(f"--out {out} already holds a model; choose a new folder")
    check_loads(src)  # nothing is written for a model folder that would not load
    metadata = safetensors_metadata(src / WEIGHTS)  # names the tied tensors; the loader needs it
    state = load_state_file(src / WEIGHTS)
    target = DTYPES[dtype]
    stored: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if t.is_floating_point():
            c = t.to(target)
            if bool(torch.isfinite(t).all()) and not bool(torch.isfinite(c).all()):
                raise ConfigError(
                    f"tensor {name} overflows {dtype} (max |x| {t.abs().max():.4g}); use float32"
                )
            t = c
        stored[name] = t.contiguous()
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    tmp = out / f".{WEIGHTS}.tmp"
    save_file(stored, str(tmp), metadata=metadata)
    tmp.replace(out / WEIGHTS)
    record = {
        "seagull": __version__,
        "source": str(src),
        "sha256": sha256_file(src / WEIGHTS),
        "dtype": dtype,
    }
    atomic_write_text(out / "export.json", json.dumps(record, indent=2) + "\n")
    return Exported(out, len(stored), (src / WEIGHTS).stat().st_size, (out / WEIGHTS).stat().st_size)


def check_loads(src: Path) -> None:
    """ModelError unless ``src`` loads as a model (config, weights) with its tokenizer, if it has one."""
    from ..model.seagull import load_model
    from ..model.tokenizer import load_tokenizer

    load_model(src)
    if any((src / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        load_tokenizer(src)
