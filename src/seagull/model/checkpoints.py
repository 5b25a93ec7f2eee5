"""Loading the released SEAGULL-7B folder and OpenCLIP file; key maps between naming schemes.

Released names (see the layout reference): ``model.layers.*``/``model.embed_tokens``/``model.norm``
and ``lm_head`` for LLaMA, ``model.mm_projector.*``, ``mask_extractor.*`` and optionally
``model.vision_tower.vision_tower.visual.trunk.*``. Ours: ``language_model.*``, ``mm_projector.*``,
``mask_extractor.*``, ``vision_tower.trunk.*``. Files are read by :mod:`.weights` (safetensors or
``torch.load(weights_only=True)``); the model is built on the meta device and filled with
``assign=True`` so a 7B checkpoint needs its own size in memory once, not twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import templates as T
from ..errors import ModelError
from .config import get_config
from .seagull import SeagullForCausalLM
from .vision import OPENCLIP_TRUNK_PREFIX, openclip_trunk_state
from .weights import fit_problems, load_state_file, shapes_of

RELEASED_GLOBAL_ID = 32000
RELEASED_LOCAL_ID = 32001
RELEASED_TOWER_PREFIX = "model.vision_tower.vision_tower." + OPENCLIP_TRUNK_PREFIX


def released_to_ours(key: str) -> str | None:
    """Map one released SEAGULL-7B key to this package's name (None: not part of the model)."""
    if key.startswith(RELEASED_TOWER_PREFIX):
        return "vision_tower.trunk." + key[len(RELEASED_TOWER_PREFIX) :]
    if key.startswith("model.vision_tower."):
        return None  # other tower parts (the OpenCLIP projection head) are unused
    if key.startswith("model.mm_projector."):
        return key[len("model.") :]
    if key.startswith("model.mask_extractor."):
        return key[len("model.") :]
    if key.startswith("mask_extractor."):
        return key
    if key.startswith("model."):
        return "language_model." + key
    if key.startswith("lm_head."):
        return "language_model." + key
    return None


def ours_to_released(key: str) -> str:
    if key.startswith("vision_tower.trunk."):
        return RELEASED_TOWER_PREFIX + key[len("vision_tower.trunk.") :]
    if key.startswith("mm_projector."):
        return "model." + key
    if key.startswith("language_model."):
        return key[len("language_model.") :]
    return key


def checkpoint_files(folder: str | Path) -> list[Path]:
    """The weight files of a HF folder: from its index json, else every shard / single file."""
    d = Path(folder)
    if not d.is_dir():
        raise ModelError(f"checkpoint folder {d} does not exist; pass the SEAGULL-7B folder")
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (d / index).is_file():
            weight_map = _read_json(d / index).get("weight_map")
            if not isinstance(weight_map, dict) or not all(isinstance(n, str) for n in weight_map.values()):
                raise ModelError(
                    f"{d / index} has no weight_map of tensor names to files; copy the file again"
                )
            return [d / n for n in sorted(set(weight_map.values()))]
    files = sorted(d.glob("*.safetensors")) or sorted(d.glob("pytorch_model*.bin"))
    if not files:
        raise ModelError(f"{d} holds no *.safetensors or pytorch_model*.bin files")
    return files


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(
            f"{path} is not readable JSON ({e}); copy it again from the SEAGULL-7B release"
        ) from e
    if not isinstance(raw, dict):
        raise ModelError(f"{path} holds a JSON {type(raw).__name__}, not an object; copy it again")
    return raw


def iter_released_tensors(folder: str | Path) -> Iterator[tuple[str, torch.Tensor]]:
    for f in checkpoint_files(folder):
        for k, v in load_state_file(f).items():
            ours = released_to_ours(k)
            if ours is not None:
                yield ours, v


def seagull7b_config_from_folder(
    folder: str | Path, openclip_path: str | Path | None, base_config: str | Path | Any = "seagull-7b"
) -> Any:
    """The ``seagull-7b`` config (or ``base_config``) with the LM dimensions of the folder's config.json."""
    d = Path(folder)
    text: dict[str, Any] = {}
    cj = d / "config.json"
    if cj.is_file():
        raw = _read_json(cj)
        for k in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
            "rms_norm_eps",
            "rope_theta",
        ):
            if k in raw:
                text[k] = raw[k]
    vision: dict[str, Any] = {}
    if openclip_path is not None:
        vision = {"weights": "file", "weights_path": str(openclip_path)}
    base = get_config(base_config)
    return get_config(base, text_config={**base.text_config, **text}, vision={**base.vision, **vision})


def materialize_buffers(model: nn.Module, device: torch.device | str) -> None:
    """Non-persistent buffers (rotary frequencies, normalisation constants) left on meta: rebuild them."""
    for module in model.modules():
        if hasattr(module, "inv_freq") and module.inv_freq.is_meta and hasattr(module, "config"):
            fresh = type(module)(config=module.config)
            for name, buf in fresh.named_buffers(recurse=False):
                module.register_buffer(name, buf.to(device), persistent=False)
            for attr in ("attention_scaling", "original_inv_freq"):
                if hasattr(fresh, attr):
                    setattr(module, attr, getattr(fresh, attr))
    tower = getattr(model, "vision_tower", None)
    if tower is not None and tower.mean.is_meta:
        tower.register_buffer(
            "mean", torch.tensor(tower.cfg["mean"], device=device).view(1, 3, 1, 1), persistent=False
        )
        tower.register_buffer(
            "std", torch.tensor(tower.cfg["std"], device=device).view(1, 3, 1, 1), persistent=False
        )
    left = [n for n, b in model.named_buffers() if b.is_meta]
    if left:
        raise ModelError(f"buffers still on the meta device after loading: {left[:5]}")


def load_state_into_meta(
    model: SeagullForCausalLM, state: dict[str, torch.Tensor], device: str | torch.device
) -> None:
    """Strict ``assign=True`` load of a complete state dict into a model built on the meta device."""
    own = model.state_dict()
    embed = "language_model.model.embed_tokens.weight"
    if model.config.tie_word_embeddings and "language_model.lm_head.weight" not in state and embed in state:
        state = {**state, "language_model.lm_head.weight": state[embed]}
    problems = fit_problems(shapes_of(own), shapes_of(state))
    if problems:
        raise ModelError(f"checkpoint does not fit the seagull-7b layout: {problems}")
    model.load_state_dict(state, strict=True, assign=True)
    materialize_buffers(model, device)


def load_released(
    folder: str | Path,
    openclip_path: str | Path | None = None,
    tokenizer_path: str | Path | None = None,
    dtype: torch.dtype = torch.float16,
    device: str | torch.device = "cpu",
    base_config: str | Path | Any = "seagull-7b",
) -> tuple[SeagullForCausalLM, Any]:
    """Load released SEAGULL-7B (merged, sharded .bin or safetensors) plus the OpenCLIP tower file.

    Returns ``(model, tokenizer)``. The tokenizer comes from ``tokenizer_path`` (default: the
    checkpoint folder) and must map ``<global>`` to 32000 and ``<local>`` to 32001.
    """
    from transformers import AutoTokenizer

    cfg = seagull7b_config_from_folder(folder, None, base_config)
    with torch.device("meta"):
        model = SeagullForCausalLM(cfg)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in iter_released_tensors(folder)}
    if not any(k.startswith("vision_tower.") for k in state):
        if openclip_path is None:
            raise ModelError(
                f"{folder} holds no vision tower weights; pass openclip_path= the open_clip_pytorch_model.bin of "
                "laion/CLIP-convnext_large_d_320.laion2B-s29B-b131K-ft-soup"
            )
        trunk = openclip_trunk_state(load_state_file(openclip_path))
        own_tower = {k for k in model.state_dict() if k.startswith("vision_tower.trunk.")}
        for k, v in trunk.items():
            name = "vision_tower.trunk." + k
            if name in own_tower:
                state[name] = v.to(dtype) if v.is_floating_point() else v
    # The trunk's classifier norm is never used for features; OpenCLIP files may not carry it.
    for name, t in model.state_dict().items():
        if name.startswith("vision_tower.trunk.head.") and name not in state:
            fill = torch.ones if name.endswith("weight") else torch.zeros
            state[name] = fill(tuple(t.shape), dtype=dtype)
    load_state_into_meta(model, state, device)
    model.config.vision = {
        **model.config.vision,
        "weights": "file" if openclip_path else "none",
        "weights_path": str(openclip_path) if openclip_path else None,
    }
    tok_dir = Path(tokenizer_path or folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    except (OSError, ValueError) as e:
        raise ModelError(
            f"no tokenizer in {tok_dir} ({e}); pass tokenizer_path= the SEAGULL-7B tokenizer folder"
        ) from e
    check_released_tokens(tokenizer, (cfg.global_token_id, cfg.local_token_id))
    return model.to(device).eval(), tokenizer


def check_released_tokens(
    tokenizer: Any, expected: tuple[int, int] = (RELEASED_GLOBAL_ID, RELEASED_LOCAL_ID)
) -> None:
    got = (tokenizer.convert_tokens_to_ids(T.GLOBAL_TOKEN), tokenizer.convert_tokens_to_ids(T.LOCAL_TOKEN))
    if got != tuple(expected):
        raise ModelError(
            f"tokenizer maps <global>/<local> to {got}, the released model expects "
            f"{tuple(expected)}; use the tokenizer shipped with SEAGULL-7B"
        )
