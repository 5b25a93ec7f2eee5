"""The one safe weight loader: every weights file this package reads comes through here.

Two formats, and never an arbitrary pickle:

- ``.safetensors``: the header is checked before anything else (its 8-byte length must fit the file and
  stay under safetensors' own limit; it must be a JSON object whose tensor entries lie inside the file),
  then the file is memory-mapped and each tensor read when it is asked for, so shapes can be compared
  with a model (:func:`safetensors_shapes`, :func:`fit_problems`) before any weight is read;
- PyTorch files (``.bin``/``.pt``/``.pth``) that load with ``torch.load(weights_only=True)`` (memory-mapped
  when they are zip archives); a ``{"state_dict": {...}}`` wrapper is unwrapped.

A file named ``.safetensors`` must be one; other names are told apart by their first bytes. Every failure
is a :class:`ModelError` naming the file, what is wrong with it and what to do.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError

# safetensors refuses headers above 100 MB itself; a larger length is a damaged or foreign file.
MAX_HEADER_BYTES = 100_000_000
SAFE_FORMATS = (
    "a safetensors file or a PyTorch file of plain tensors (torch.save(model.state_dict(), path)) "
    "that loads with torch.load(weights_only=True)"
)
Shape = tuple[int, ...]


def read_safetensors_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked: size, JSON object, entries inside the file."""
    p = _existing(path)
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _not_safetensors(p, f"it has {size} bytes, fewer than the 8 of a header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise _not_safetensors(
                p,
                f"its header claims {n} bytes, but the file has {size} and a header is at most {MAX_HEADER_BYTES}",
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _not_safetensors(p, f"its header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise _not_safetensors(p, f"its header is a JSON {type(header).__name__}, not an object")
    data = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise _not_safetensors(p, "its __metadata__ is not a mapping of strings")
            continue
        ok = isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if ok else (None, None)
        ok = ok and isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
        ok = (
            ok
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
        )
        if not ok:
            raise _not_safetensors(p, f"its entry for tensor {name!r} lacks a dtype, shape or data offsets")
        if not 0 <= offsets[0] <= offsets[1] <= data:
            raise _not_safetensors(
                p,
                f"tensor {name!r} lies at bytes {offsets[0]}..{offsets[1]} but the file holds {data} (cut short?)",
            )
    return header


def safetensors_shapes(path: str | Path) -> dict[str, Shape]:
    """Each tensor's shape, from the header alone (no weight is read)."""
    header = read_safetensors_header(path)
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    return dict(read_safetensors_header(path).get("__metadata__") or {})


def load_safetensors(path: str | Path, keys: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (all, or ``keys``), read through a memory map."""
    from safetensors import safe_open

    p = Path(path)
    header = read_safetensors_header(p)
    names = [k for k in header if k != "__metadata__"] if keys is None else list(keys)
    absent = [k for k in names if k not in header or k == "__metadata__"]
    if absent:
        raise ModelError(f"{p} holds no tensor {absent[0]!r} ({len(absent)} asked for are absent)")
    try:
        with safe_open(str(p), framework="pt") as f:
            return {k: f.get_tensor(k) for k in names}
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error and others for bad data
        raise _not_safetensors(p, str(e)) from e


def load_torch_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A PyTorch state dict loaded with ``weights_only=True``; a pickle of anything else is refused."""
    p = _existing(path)
    mmap = zipfile.is_zipfile(p)  # only the zip format (torch >= 1.6) can be memory-mapped
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - torch raises several types for bad or unsafe pickles
        raise ModelError(
            f"{p} is not a safe weights file: weights-only loading refused it ({torch_load_reason(e)}); it holds pickled "
            f"Python objects besides tensors, or is no weights file at all. Pass {SAFE_FORMATS}"
        ) from e
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    return _tensors_only(p, sd)


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """One weights file, safetensors or a weights-only PyTorch file, as ``{name: tensor}``."""
    p = _existing(path)
    if p.suffix == ".safetensors" or _looks_like_safetensors(p):
        return load_safetensors(p)
    return load_torch_file(p)


def fit_problems(
    expected: Mapping[str, Shape], found: Mapping[str, Shape], may_miss: Iterable[str] = ()
) -> str | None:
    """How the tensors ``found`` (name -> shape) do not fit the ``expected`` ones, or None when they fit.

    Lists the first few of each kind (wrong shape with expected vs found, missing, unexpected) and counts.
    """
    skip = set(may_miss)
    wrong = sorted(k for k in set(expected) & set(found) if tuple(expected[k]) != tuple(found[k]))
    missing = sorted(k for k in set(expected) - set(found) if k not in skip)
    unexpected = sorted(set(found) - set(expected))
    parts = []
    if wrong:
        shown = "; ".join(f"{k}: expected {tuple(expected[k])}, found {tuple(found[k])}" for k in wrong[:3])
        parts.append(f"wrong shape in {_count(wrong)} ({shown}{'; ...' if len(wrong) > 3 else ''})")
    if missing:
        parts.append(f"missing {_count(missing)} ({_first(missing)})")
    if unexpected:
        parts.append(f"unexpected {_count(unexpected)} ({_first(unexpected)})")
    return ", ".join(parts) or None


def shapes_of(state: Mapping[str, torch.Tensor]) -> dict[str, Shape]:
    return {k: tuple(v.shape) for k, v in state.items()}


def torch_load_reason(e: Exception) -> str:
    """The line of a ``torch.load(weights_only=True)`` failure that says what was refused, without
    PyTorch's advice to retry with ``weights_only=False`` (which would run the file's code)."""
    noise = ("Weights only load failed", "Check the documentation", "Please file an issue")
    for line in str(e).splitlines():
        line = line.split("WeightsUnpickler error:")[-1].strip()
        if line and not line.startswith(noise):
            return f"{type(e).__name__}: {line}"
    return type(e).__name__


# ---------------------------------------------------------------------- helpers


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        raise ModelError(f"weights file {p} is a folder; pass the weights file itself")
    if not p.is_file():
        raise ModelError(f"weights file {p} does not exist")
    return p


def _looks_like_safetensors(p: Path) -> bool:
    with p.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _not_safetensors(p: Path, why: str) -> ModelError:
    return ModelError(
        f"{p} is not a valid safetensors file: {why}; it is damaged, cut short or of another kind: "
        "copy it again or pass the right file"
    )


def _tensors_only(p: Path, sd: Any) -> dict[str, torch.Tensor]:
    if not isinstance(sd, dict):
        raise ModelError(f"{p} holds a {type(sd).__name__}, not a state dict of tensors; pass {SAFE_FORMATS}")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(
            f"{p} is not a state dict of tensors: entry {bad[0]!r} is a {type(sd[bad[0]]).__name__} "
            f"({len(bad)} such); pass {SAFE_FORMATS}"
        )
    return sd


def _count(names: list[str]) -> str:
    return f"{len(names)} tensor{'s' if len(names) != 1 else ''}"


def _first(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")
