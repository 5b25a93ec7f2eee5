"""Mask-based feature extractor (MFE): one ``<global>`` and one ``<local>`` token per ROI.

Compat mode reproduces the released module's parameter names and shapes (``mask_extractor.*`` of
SEAGULL-7B, including the unused ``mask_linear``). What differs from the release, on purpose:
- masks are resized with area interpolation, so a one-pixel ROI still covers one feature cell;
- the bbox crop of the local branch is taken with ``roi_align`` on all ROIs at once (a one-pixel-wide
  box gives a one-pixel crop, not an empty one) and can keep its aspect ratio (``keep_aspect``);
- every ROI of a batch goes through the attention block together (no Python loop per ROI);
- ``adaptive`` mode pools the channel tokens to a fixed grid so any input size works;
- ``native`` local mode encodes a window at the image's native resolution with the tower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from ..errors import ConfigError, RoiError
from .lowlevel import NAMES as LOWLEVEL_NAMES
from .lowlevel import roi_context_statistics


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections (SAM-style names, optional downsampling)."""

    def __init__(self, dim: int, heads: int, downsample: int = 1) -> None:
        super().__init__()
        inner = dim // downsample
        if inner % heads:
            raise ConfigError(f"attention width {inner} is not divisible by {heads} heads")
        self.heads = heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Already projected ``q [B, Lq, inner]``, ``k, v [B, Lk, inner]``; ``mask`` True = may attend."""
        out = F.scaled_dot_product_attention(self.split(q), self.split(k), self.split(v), attn_mask=mask)
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.attend(self.q_proj(q), self.k_proj(k), self.v_proj(v), mask)


class MLPBlock(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.relu(self.lin1(x)))


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (``layers.{i}`` names)."""

    def __init__(self, d_in: int, hidden: int, d_out: int, num_layers: int) -> None:
        super().__init__()
        dims = [d_in] + [hidden] * (num_layers - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class RegionAttentionBlock(nn.Module):
    """Self-attention among ROI tokens, cross-attention to channel tokens, MLP (``cross_att_res``)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, cross_downsample: int) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads, downsample=cross_downsample)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim)

    def forward(
        self, queries: torch.Tensor, channel_tokens: torch.Tensor, roi_image: torch.Tensor, joint: bool
    ) -> torch.Tensor:
        """``queries [N, D]`` (all ROIs), ``channel_tokens [B, C, D]``, ``roi_image [N]`` image index per ROI."""
        if joint:  # ROIs of the same image attend to each other, as in released training
            mask = (roi_image[:, None] == roi_image[None, :])[None, None]
            q = queries[None]
            sa = self.self_attn(q, q, q, mask)[0]
        else:  # a length-1 sequence: softmax weight 1 on itself, so only the value path remains
            sa = self.self_attn.out_proj(self.self_attn.v_proj(queries))
        x = self.norm1(queries + sa)
        # Keys/values are projected once per image, then gathered for each ROI.
        k = self.cross_attn.k_proj(channel_tokens)[roi_image]
        v = self.cross_attn.v_proj(channel_tokens)[roi_image]
        ca = self.cross_attn.attend(self.cross_attn.q_proj(x)[:, None], k, v)[:, 0]
        x = self.norm2(x + ca)
        return x + self.mlp(x)


@dataclass
class RegionBatch:
    """ROIs of a batch of images, flattened: ``masks[i]`` is ``[R_i, H_i, W_i]`` bool at native size."""

    masks: list[torch.Tensor]

    @property
    def counts(self) -> list[int]:
        return [int(m.shape[0]) for m in self.masks]

    def image_index(self, device: torch.device) -> torch.Tensor:
        return torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(self.counts)]).to(
            device
        )


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """``[R, H, W]`` bool -> ``[R, 4]`` float (x0, y0, x1, y1) pixel-edge boxes; a one-pixel ROI is 1x1."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    if not bool(rows.any(dim=1).all()):
        bad = int((~rows.any(dim=1)).nonzero()[0])
        raise RoiError(f"ROI #{bad} has an empty mask; every ROI needs at least one pixel")
    h, w = masks.shape[1:]
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ar_h, h).min(dim=1).values
    y1 = torch.where(rows, ar_h, -1).max(dim=1).values + 1
    x0 = torch.where(cols, ar_w, w).min(dim=1).values
    x1 = torch.where(cols, ar_w, -1).max(dim=1).values + 1
    return torch.stack([x0, y0, x1, y1], dim=1).float()


def mask_weights(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Binary ``[R, h, w]`` float: a cell is in the ROI when any ROI pixel falls in it (area resize)."""
    m = F.interpolate(masks[:, None].float(), size=size, mode="area")[:, 0]
    return (m > 0).float()


def masked_mean(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``[R, C, h, w]`` x ``[R, h, w]`` -> ``[R, C]``."""
    w = weights[:, None]
    return (features * w).sum(dim=(2, 3)) / w.sum(dim=(2, 3)).clamp_min(1e-6)


class MaskFeatureExtractor(nn.Module):
    """Global and local ROI tokens from multi-level tower features and the native-resolution image."""

    LEVELS = ("res2", "res3", "res4", "res5")

    def __init__(
        self,
        cfg: dict[str, Any],
        channels: list[int],
        feature_sizes: list[int],
        image_size: int,
        out_dim: int,
    ):
        super().__init__()
        self.cfg = dict(cfg)
        dim, heads = int(cfg["dim"]), int(cfg["heads"])
        self.mode, self.local_mode = cfg["mode"], cfg["local_mode"]
        self.image_size = image_size
        self.grid = int(cfg["channel_grid"]) if self.mode == "adaptive" else None
        self.feature_sizes = list(feature_sizes)
        self.joint = cfg["roi_interaction"] == "joint"
        self.keep_aspect = bool(cfg["keep_aspect"])
        self.local_window = int(cfg["local_window"])
        self.out_dim = out_dim

        self.feat_linear = nn.Linear(dim, out_dim)
        self.cross_feat_linear = nn.Linear(dim, out_dim)
        if cfg["mask_linear"]:  # unused by forward; kept so released weights load strictly
            self.mask_linear = MLP(int(cfg["mask_linear_in"]), dim, out_dim, 3)
        self.cross_att_res = RegionAttentionBlock(
            dim, heads, int(cfg["mlp_dim"]), int(cfg["cross_downsample"])
        )
        for name, c, s in zip(self.LEVELS, channels, feature_sizes, strict=True):
            setattr(self, name, nn.Linear(c, dim))
            tokens_in = self.grid * self.grid if self.grid else s * s
            setattr(self, "g_" + name, nn.Linear(tokens_in, dim))
        self.final_mlp = nn.Linear(2 * out_dim, out_dim)

        if self.local_mode == "released":
            # 1x1 conv 3->5, GELU, avgpool 4, 1x1 conv 5->1, GELU, avgpool 4: a (S/16)^2 vector.
            self.global_vit = nn.Sequential(
                nn.Conv2d(3, 5, 1), nn.GELU(), nn.AvgPool2d(4), nn.Conv2d(5, 1, 1), nn.GELU(), nn.AvgPool2d(4)
            )
            side = image_size // 16
            if self.mode == "adaptive":
                side = math.isqrt(dim)
                if side * side != dim:
                    raise ConfigError(
                        f"mfe.dim {dim} must be a square number for the released local branch in adaptive mode"
                    )
            elif side * side != dim:
                raise ConfigError(
                    f"compat local branch needs (image_size/16)^2 == mfe.dim, got {side}^2 != {dim}"
                )
            self.local_side = side
            self.sa = Attention(dim, heads)
            self.mlp = MLP(dim, int(cfg["local_hidden"]), out_dim, 3)
        else:
            # Mask-pooled mean and standard deviation of every tower level on the native window.
            self.local_proj = MLP(2 * sum(channels), int(cfg["local_hidden"]), out_dim, 2)
            if cfg.get("lowlevel"):
                self.lowlevel_proj = MLP(2 * len(LOWLEVEL_NAMES), int(cfg["local_hidden"]), out_dim, 2)
            if cfg.get("lowlevel_rest"):
                if not cfg.get("lowlevel"):
                    raise ConfigError("mfe.lowlevel_rest needs mfe.lowlevel: true")
                # The ROI's statistics relative to the rest of the photo; the output layer starts at
                # zero so a trained model extended with it computes exactly what it did before.
                self.rest_proj = MLP(len(LOWLEVEL_NAMES), int(cfg["local_hidden"]), out_dim, 2)
                nn.init.zeros_(self.rest_proj.layers[-1].weight)
                nn.init.zeros_(self.rest_proj.layers[-1].bias)

    @property
    def lowlevel_width(self) -> int:
        """Low-level statistics per ROI this MFE reads (0 without ``lowlevel``)."""
        if not self.cfg.get("lowlevel"):
            return 0
        return (3 if self.cfg.get("lowlevel_rest") else 2) * len(LOWLEVEL_NAMES)

    # ------------------------------------------------------------------ global branch

    def channel_tokens(self, level: int, feats: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w]`` -> ``[B, C, D]``: each channel is one token."""
        if self.grid:
            feats = F.adaptive_avg_pool2d(feats, self.grid)
        elif tuple(feats.shape[2:]) != (self.feature_sizes[level],) * 2:
            raise ConfigError(
                f"compat MFE expects {self.LEVELS[level]} maps of {self.feature_sizes[level]}^2 (input "
                f"{self.image_size} px), got {tuple(feats.shape[2:])}; use mfe.mode='adaptive' for other sizes"
            )
        return getattr(self, "g_" + self.LEVELS[level])(feats.flatten(2))

    def global_tokens(self, features: list[torch.Tensor], regions: RegionBatch) -> torch.Tensor:
        dtype = self.feat_linear.weight.dtype
        device = features[0].device
        roi_image = regions.image_index(device)
        pooled_sum, cross_sum = None, None
        for lvl, feats in enumerate(features):
            feats = feats.to(dtype)
            size = (feats.shape[2], feats.shape[3])
            # Masks of one image share its feature map; loop over images, never over ROIs.
            pooled = torch.cat(
                [
                    masked_mean(
                        feats[i : i + 1].expand(m.shape[0], -1, -1, -1),
                        mask_weights(m.to(device), size).to(dtype),
                    )
                    for i, m in enumerate(regions.masks)
                ]
            )
            basic = getattr(self, self.LEVELS[lvl])(pooled)
            crossed = self.cross_att_res(basic, self.channel_tokens(lvl, feats), roi_image, self.joint)
            pooled_sum = basic if pooled_sum is None else pooled_sum + basic
            cross_sum = crossed if cross_sum is None else cross_sum + crossed
        a = self.feat_linear(pooled_sum)
        b = self.cross_feat_linear(cross_sum)
        return self.final_mlp(torch.cat([b, a], dim=-1))

    # ------------------------------------------------------------------ local branch

    def crop_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """The boxes the local branch samples (pixel-edge x0, y0, x1, y1)."""
        if self.local_mode == "native":
            # A window of local_window native pixels centred on the bbox, on whole-pixel edges.
            half = self.local_window / 2
            cx = torch.floor((boxes[:, 0] + boxes[:, 2]) / 2)
            cy = torch.floor((boxes[:, 1] + boxes[:, 3]) / 2)
            x0, y0 = cx - math.floor(half), cy - math.floor(half)
            return torch.stack([x0, y0, x0 + self.local_window, y0 + self.local_window], dim=1)
        if self.keep_aspect:  # grow the short side to a square around the centre (padding = mean colour)
            cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
            side = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2
            return torch.stack([cx - side, cy - side, cx + side, cy + side], dim=1)
        return boxes

    def crops(self, images: list[torch.Tensor], regions: RegionBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised native images ``[3, H_i, W_i]`` -> crops ``[N, 3, S, S]`` and ROI masks ``[N, S, S]``."""
        size = self.local_window if self.local_mode == "native" else self.image_size
        ratio = 1 if self.local_mode == "native" else -1  # native: one sample at each pixel centre, exact
        out_img, out_mask = [], []
        for img, m in zip(images, regions.masks, strict=True):
            m = m.to(img.device)
            boxes = self.crop_boxes(boxes_from_masks(m))
            rois = torch.cat([torch.zeros(len(boxes), 1, device=img.device), boxes.to(img.device)], dim=1).to(
                img.dtype
            )
            out_img.append(roi_align(img[None], rois, size, 1.0, ratio, aligned=True))
            if self.local_mode == "native":
                # ROI j samples mask j with its own box: the masks are the batch, index j in column 0.
                own = torch.cat(
                    [torch.arange(len(boxes), device=img.device)[:, None].to(img.dtype), rois[:, 1:]], dim=1
                )
                out_mask.append(
                    roi_align(m[:, None].to(img.dtype), own, size, 1.0, ratio, aligned=True)[:, 0]
                )
        return torch.cat(out_img), (torch.cat(out_mask) if self.local_mode == "native" else torch.empty(0))

    def local_inputs(
        self, images: list[torch.Tensor], regions: RegionBatch, tower: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The native local branch up to its trainable MLPs (no MFE parameter is used: cacheable).

        -> (mask-pooled mean and std of every tower level on the native window ``[N, 2 sum C]``;
        with ``lowlevel``, each ROI's low-level statistics and their difference to its image's
        ``[N, 32]``, with ``lowlevel_rest`` also to the rest of its photo ``[N, 48]``, else None).
        """
        dtype = self.feat_linear.weight.dtype
        crops, crop_masks = self.crops(images, regions)
        feats = tower(crops)
        inside = (crop_masks > 0.5).float()
        # A ROI with no pixel in its window (a ring around the centre) falls back to the whole window.
        empty = inside.sum(dim=(1, 2)) == 0
        inside[empty] = 1.0
        stats = []
        for f in feats:
            f = f.to(dtype)
            w = mask_weights(inside > 0, (f.shape[2], f.shape[3])).to(dtype)
            mean = masked_mean(f, w)
            var = masked_mean((f - mean[:, :, None, None]) ** 2, w)
            stats += [mean, var.clamp_min(0).sqrt()]
        return torch.cat(stats, dim=1), self.lowlevel_inputs(images, regions, tower)

    def lowlevel_inputs(
        self, images: list[torch.Tensor], regions: RegionBatch, tower: nn.Module
    ) -> torch.Tensor | None:
        if not self.cfg.get("lowlevel"):
            return None
        mean, std = tower.mean[0], tower.std[0]  # the native images are tower-normalised; undo it
        return torch.cat(
            [
                roi_context_statistics(
                    img * std.to(img) + mean.to(img),
                    m.to(img.device),
                    rest=bool(self.cfg.get("lowlevel_rest")),
                )
                for img, m in zip(images, regions.masks, strict=True)
            ]
        ).to(self.feat_linear.weight.dtype)

    def project_local(self, deep: torch.Tensor, lowlevel: torch.Tensor | None) -> torch.Tensor:
        """The trainable part of the native local branch."""
        out = self.local_proj(deep)
        if self.cfg.get("lowlevel"):
            if lowlevel is None:
                raise ConfigError("this MFE adds low-level statistics to the local token; none were given")
            n = 2 * len(LOWLEVEL_NAMES)
            if lowlevel.shape[1] != self.lowlevel_width:
                raise ConfigError(
                    f"this MFE takes {self.lowlevel_width} low-level statistics per ROI, got {lowlevel.shape[1]}"
                )
            low = lowlevel.to(out.dtype)
            out = out + self.lowlevel_proj(low[:, :n])
            if self.cfg.get("lowlevel_rest"):
                out = out + self.rest_proj(low[:, n:])
        return out

    def local_tokens(
        self, images: list[torch.Tensor], regions: RegionBatch, tower: nn.Module | None
    ) -> torch.Tensor:
        if self.local_mode == "released":
            crops, _ = self.crops(images, regions)
            x = self.global_vit(crops.to(self.feat_linear.weight.dtype))
            if self.mode == "adaptive" or x.shape[-1] != self.local_side:
                x = F.adaptive_avg_pool2d(x, self.local_side)
            x = x.flatten(1)
            x = self.sa.out_proj(self.sa.v_proj(x))  # attention over a length-1 sequence
            return self.mlp(x)
        if tower is None:
            raise ConfigError("mfe.local_mode 'native' needs the vision tower")
        return self.project_local(*self.local_inputs(images, regions, tower))

    def forward(
        self,
        features: list[torch.Tensor],
        images: list[torch.Tensor],
        regions: RegionBatch,
        tower: nn.Module | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``(global [N, out], local [N, out])`` for all ROIs of the batch in order."""
        if sum(regions.counts) == 0:
            empty = features[0].new_zeros((0, self.out_dim), dtype=self.feat_linear.weight.dtype)
            return empty, empty
        return self.global_tokens(features, regions), self.local_tokens(images, regions, tower)
