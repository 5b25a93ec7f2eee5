"""Frozen-tower features, computed once per image and reused every step (the training hot path).

The vision tower is frozen, so everything it produces for an image and its ROIs is a constant of the
run. For MFEs in ``adaptive`` mode with the ``native`` local branch (``seagull-tiny``, ``seagull-test``)
this module splits the model's image/ROI encoding into

* a frozen part, :func:`encode_frozen`: per image the channel-grid pools of the four tower levels
  and the projector's input level; per ROI the mask-pooled level means and the local-window
  statistics, and
* a trainable part, :func:`trainable_tokens`: projector, the MFE's linear layers and attention
  block, the local MLP,

which together compute exactly what ``model.encode_images`` + ``model.encode_regions`` compute
(checked by ``tests/test_train_features.py``). Other configurations train through the model's
public encoders (no cache).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..imageio import load_image
from ..model.mfe import MaskFeatureExtractor, RegionBatch, mask_weights, masked_mean
from ..model.processor import ImageConfig, normalize_image, preprocess_images, to_mask_tensor
from ..model.seagull import SeagullForCausalLM
from ..roi import rle_to_mask
from .data import ImageRef

LEVELS = MaskFeatureExtractor.LEVELS


@dataclass
class FrozenFeatures:
    """Constant inputs of the trainable parts for one image and all of its ROIs."""

    grids: list[torch.Tensor]  # four [C_l, g, g]
    proj_in: torch.Tensor  # [T, C] projector input tokens
    pooled: list[torch.Tensor]  # four [R, C_l] mask-pooled means
    local_stats: torch.Tensor  # [R, 2 * sum C_l]
    lowlevel: torch.Tensor | None = None  # [R, 32] or [R, 48] (MFEs with ``lowlevel``, ``lowlevel_rest``)

    def to_dict(self) -> dict[str, torch.Tensor]:
        d = {f"grid{i}": g for i, g in enumerate(self.grids)}
        d.update({f"pooled{i}": p for i, p in enumerate(self.pooled)})
        d["proj_in"] = self.proj_in
        d["local_stats"] = self.local_stats
        if self.lowlevel is not None:
            d["lowlevel"] = self.lowlevel
        return {k: v.contiguous() for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, torch.Tensor]) -> FrozenFeatures:
        return cls(
            [d[f"grid{i}"] for i in range(4)],
            d["proj_in"],
            [d[f"pooled{i}"] for i in range(4)],
            d["local_stats"],
            d.get("lowlevel"),
        )

    def select(self, rois: list[int]) -> FrozenFeatures:
        idx = torch.as_tensor(rois, dtype=torch.long)
        low = None if self.lowlevel is None else self.lowlevel[idx]
        return FrozenFeatures(
            self.grids, self.proj_in, [p[idx] for p in self.pooled], self.local_stats[idx], low
        )


def supports_split(model: SeagullForCausalLM) -> bool:
    """True when the frozen/trainable split of this module reproduces the model's encoders exactly."""
    mfe = model.mask_extractor
    return mfe.mode == "adaptive" and mfe.local_mode == "native" and model.vision_tower.frozen


def preprocessing_fingerprint(model: SeagullForCausalLM) -> str:
    c = model.config
    # The low-level statistics are added to an existing entry on demand (FeatureStore.get), so turning
    # them on does not invalidate the cached tower features.
    mfe = {k: v for k, v in c.mfe.items() if k not in ("lowlevel", "lowlevel_rest")}
    # A tower from its package has no digest; leaving the empty key out keeps older caches valid.
    vision = {k: v for k, v in c.vision.items() if not (k == "digest" and v is None)}
    d = {"vision": vision, "mfe": mfe, "projector": c.projector}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


@torch.no_grad()
def encode_frozen(model: SeagullForCausalLM, image: Any, masks: Any) -> FrozenFeatures:
    """The frozen part of the encoders for one image and its ``[R, H, W]`` masks (no gradients)."""
    tower, mfe = model.vision_tower, model.mask_extractor
    dev = model.device
    inputs = preprocess_images([image], ImageConfig.of_model(model.config), dev)
    native = inputs.native[0]
    feats = tower(inputs.pixel_values)
    level = feats[model.config.projector["level"]]
    if model.config.projector["token_grid"]:
        level = F.adaptive_avg_pool2d(level, model.config.projector["token_grid"])
    proj_in = level[0].flatten(1).transpose(0, 1)
    grids = [F.adaptive_avg_pool2d(f, mfe.grid)[0] for f in feats]
    m = to_mask_tensor(masks).to(dev)
    pooled = [
        masked_mean(f.expand(m.shape[0], -1, -1, -1), mask_weights(m, (f.shape[2], f.shape[3])).to(f.dtype))
        for f in feats
    ]
    local_stats, lowlevel = mfe.local_inputs([native], RegionBatch([m]), tower)
    return FrozenFeatures(grids, proj_in, pooled, local_stats, lowlevel)


def trainable_tokens(
    model: SeagullForCausalLM, frozen: list[FrozenFeatures]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images' frozen features -> (image tokens ``[B, T, hidden]``, global ``[sum R, hidden]``, local ``[sum R, hidden]``)."""
    mfe = model.mask_extractor
    dtype = mfe.feat_linear.weight.dtype
    dev = model.device
    proj_dtype = model.mm_projector[0].weight.dtype
    tokens = model.mm_projector(torch.stack([f.proj_in for f in frozen]).to(dev, proj_dtype))
    counts = [int(f.local_stats.shape[0]) for f in frozen]
    roi_image = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(counts)]).to(dev)
    pooled_sum, cross_sum = None, None
    for lvl, name in enumerate(LEVELS):
        pooled = torch.cat([f.pooled[lvl] for f in frozen]).to(dev, dtype)
        grid = torch.stack([f.grids[lvl] for f in frozen]).to(dev, dtype)
        basic = getattr(mfe, name)(pooled)
        channel = getattr(mfe, "g_" + name)(grid.flatten(2))
        crossed = mfe.cross_att_res(basic, channel, roi_image, mfe.joint)
        pooled_sum = basic if pooled_sum is None else pooled_sum + basic
        cross_sum = crossed if cross_sum is None else cross_sum + crossed
    glob = mfe.final_mlp(torch.cat([mfe.cross_feat_linear(cross_sum), mfe.feat_linear(pooled_sum)], dim=-1))
    lowlevel = None
    if all(f.lowlevel is not None for f in frozen):
        lowlevel = torch.cat([f.lowlevel for f in frozen]).to(dev, dtype)
    local = mfe.project_local(torch.cat([f.local_stats for f in frozen]).to(dev, dtype), lowlevel)
    return tokens, glob, local


def lowlevel_frozen(model: SeagullForCausalLM, image: Any, masks: Any) -> torch.Tensor:
    """Only the low-level statistics of :func:`encode_frozen` (to complete an older cache entry)."""
    tower = model.vision_tower
    native = normalize_image(image, ImageConfig.of_model(model.config), model.device)
    m = to_mask_tensor(masks).to(model.device)
    return model.mask_extractor.lowlevel_inputs([native], RegionBatch([m]), tower)


def record_masks(ref: ImageRef) -> np.ndarray:
    return np.stack([rle_to_mask(r.rle) for r in ref.record.rois])


class FeatureStore:
    """Frozen features per image, keyed by image path, record and preprocessing; in memory or on disk."""

    def __init__(
        self, model: SeagullForCausalLM, mode: str = "memory", cache_dir: Path | None = None
    ) -> None:
        self.model = model
        self.mode = mode
        self.fingerprint = preprocessing_fingerprint(model)
        self.cache_dir = Path(cache_dir) / self.fingerprint if cache_dir else None
        self.memory: dict[str, FrozenFeatures] = {}
        self.hits = 0
        self.misses = 0

    def _path(self, ref: ImageRef) -> Path:
        assert self.cache_dir is not None
        h = hashlib.sha1(f"{ref.key}::{ref.image_path.resolve()}".encode()).hexdigest()
        return self.cache_dir / h[:2] / f"{h}.safetensors"

    def _save(self, ref: ImageRef, feats: FrozenFeatures) -> None:
        if self.mode == "disk":
            p = self._path(ref)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(".tmp")
            save_file(feats.to_dict(), str(tmp))
            tmp.replace(p)

    def _lowlevel_stale(self, feats: FrozenFeatures) -> bool:
        """True when the entry lacks the low-level statistics this model reads, or has another set."""
        width = self.model.mask_extractor.lowlevel_width
        have = 0 if feats.lowlevel is None else int(feats.lowlevel.shape[1])
        return width > 0 and have != width

    def get(self, ref: ImageRef) -> FrozenFeatures:
        if ref.key in self.memory:
            self.hits += 1
            return self.memory[ref.key]
        feats = None
        if self.mode == "disk":
            p = self._path(ref)
            if p.is_file():
                feats = FrozenFeatures.from_dict(load_file(str(p)))
                if feats.local_stats.shape[0] != len(ref.record.rois):
                    feats = None  # written for another ROI set of this image (a re-made folder): stale
                else:
                    self.hits += 1
        if feats is None:
            self.misses += 1
            feats = encode_frozen(self.model, load_image(ref.image_path), record_masks(ref))
            feats = FrozenFeatures.from_dict({k: v.cpu() for k, v in feats.to_dict().items()})
            self._save(ref, feats)
        elif self._lowlevel_stale(feats):
            feats.lowlevel = lowlevel_frozen(self.model, load_image(ref.image_path), record_masks(ref)).cpu()
            self._save(ref, feats)
        if self.mode in ("memory", "disk"):
            self.memory[ref.key] = feats
        return feats
