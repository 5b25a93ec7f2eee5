"""The stage-0 module: a trainable vision tower and linear heads on each region's pooled features.

A region's feature is the mask-weighted mean of each of the tower's four levels, concatenated: what
the MFE pools for its global token, and what :mod:`.probe` fits its linear probe on. The heads are
linear on purpose, so what they learn has to be in the features.
"""

from __future__ import annotations

import torch
from torch import nn

from ...labels import DISTORTION_TYPES
from ...model.mfe import mask_weights, masked_mean
from ...model.vision import VisionTower


def region_features(tower: VisionTower, pixels01: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """``[B, 3, H, W]`` in [0, 1] and B x ``[R_i, H, W]`` masks -> ``[sum R_i, sum C_l]``."""
    levels = tower(tower.normalize(pixels01))
    out = []
    for i, m in enumerate(masks):
        pooled = [
            masked_mean(f[i : i + 1].expand(m.shape[0], -1, -1, -1), mask_weights(m, f.shape[2:]).to(f.dtype))
            for f in levels
        ]
        out.append(torch.cat(pooled, dim=1))
    return torch.cat(out)


class TowerWithHeads(nn.Module):
    """Tower (trainable, BatchNorm statistics kept) + quality, type and severity heads per region."""

    def __init__(self, tower: VisionTower) -> None:
        super().__init__()
        self.tower = tower
        dim = sum(tower.channels)
        n = len(DISTORTION_TYPES)
        self.norm = nn.LayerNorm(dim)
        self.quality = nn.Linear(dim, 1)
        self.types = nn.Linear(dim, n)
        self.severity = nn.Linear(dim, n)

    def train(self, mode: bool = True) -> TowerWithHeads:
        super().train(mode)
        # Batches of a few crops give poor BatchNorm statistics: keep ImageNet's (and no dropout).
        self.tower.trunk.eval()
        return self

    def forward(
        self, pixels01: torch.Tensor, masks: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> quality ``[R]``, type logits ``[R, 6]``, severity ``[R, 6]``."""
        x = self.norm(region_features(self.tower, pixels01, masks))
        return self.quality(x)[:, 0], self.types(x), self.severity(x)
