"""Auxiliary region heads: a direct gradient from each ROI's labels into its ``<global>``/``<local>`` tokens.

A language model trained from scratch first learns what the image tokens alone explain (which
distorted image it is) and can leave the region tokens unread: the first seagull-tiny runs gave every
ROI of an image the same answer, and replacing the region tokens by noise did not move the logits
(docs/default_model.md). Linear heads on the two region tokens, trained to predict the ROI's quality
level, importance level and the severity class of each distortion type, make the tokens carry the
answer linearly from the first steps, which is what the LM's attention can then pick up. The heads
exist only during training; the saved model is the plain SEAGULL architecture.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS
from ..records import RoiRecord

IGNORE = -100
# Output groups: quality level (5), importance level (5), per type "absent" + five severities (6 each).
GROUPS = (len(QUALITY_LEVELS), len(IMPORTANCE_LEVELS)) + (1 + len(SEVERITY_LEVELS),) * len(DISTORTION_TYPES)


class RegionHeads(nn.Module):
    """One linear map of ``[global, local]`` to the logits of every label group."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * hidden, sum(GROUPS))

    def forward(self, glob: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([glob, local], dim=-1).to(self.linear.weight.dtype))


def region_targets(
    rois: Sequence[RoiRecord], labelled: Sequence[Collection[str]] | None = None
) -> torch.Tensor:
    """``[R, len(GROUPS)]`` class indices (``IGNORE`` where a label is missing); ``labelled``: per ROI,
    the tasks its folder labels (default all): without "distortion" the severity groups are
    ``IGNORE``, not "absent", so a photo rated by people only for quality teaches no "clean"."""
    rows = []
    for k, r in enumerate(rois):
        sev = {d.type: 1 + SEVERITY_LEVELS.index(d.severity_level) for d in r.distortions}
        has_types = labelled is None or "distortion" in labelled[k]
        rows.append(
            [
                QUALITY_LEVELS.index(r.quality_level) if r.quality_level else IGNORE,
                IMPORTANCE_LEVELS.index(r.importance_level) if r.importance_level else IGNORE,
                *(sev.get(t, 0) if has_types else IGNORE for t in DISTORTION_TYPES),
            ]
        )
    return torch.tensor(rows, dtype=torch.long)


def region_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over label groups of the cross-entropy of each group (groups without labels are skipped)."""
    losses = []
    for g, chunk in enumerate(torch.split(logits, GROUPS, dim=-1)):
        t = targets[:, g].to(chunk.device)
        if bool((t != IGNORE).any()):
            losses.append(F.cross_entropy(chunk.float(), t, ignore_index=IGNORE))
    return torch.stack(losses).mean()
