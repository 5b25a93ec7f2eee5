"""Within-photo ranking: a pairwise loss that trains the numbers the Assessor reads to order the ROIs
of one photo the way their labels do (RankNet; RankIQA and UNIQUE train quality models this way).

The level cross-entropy teaches each ROI's level on its own; two regions of one photo whose labels
differ by less than a level get the same target word, and nothing asks that the worse one scores
lower. The loss here does, on any differentiable score in [0, 1]: the region heads' expectation over
the quality levels, and the LM's expectation after the quality answer prefix (step.py), which is the
score the Assessor returns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RANK_MARGIN = 0.05  # label difference below which a pair is not ranked (the eval's pair margin)
RANK_TEMPERATURE = 0.1  # score difference that costs log(1 + e^-1) on a pair ordered right


def ranked_pairs(truth: torch.Tensor, group: torch.Tensor, margin: float = RANK_MARGIN) -> torch.Tensor:
    """``[P, 2]`` index pairs (better, worse) of items in the same group whose truths differ by >= margin."""
    same = group[:, None] == group[None, :]
    better = truth[:, None] - truth[None, :] >= margin
    return torch.nonzero(same & better)


def pairwise_rank_loss(
    scores: torch.Tensor,
    truth: torch.Tensor,
    group: torch.Tensor,
    margin: float = RANK_MARGIN,
    temperature: float = RANK_TEMPERATURE,
) -> torch.Tensor | None:
    """Mean of ``softplus(-(s_better - s_worse) / temperature)`` over :func:`ranked_pairs`; None without pairs."""
    pairs = ranked_pairs(truth.to(scores.device), group.to(scores.device), margin)
    if pairs.numel() == 0:
        return None
    diff = scores[pairs[:, 0]] - scores[pairs[:, 1]]
    return F.softplus(-diff.float() / temperature).mean()


def rankable(truth: list[float], margin: float = RANK_MARGIN) -> list[int]:
    """Positions of one photo's ROIs that take part in at least one ranked pair."""
    return [i for i, t in enumerate(truth) if any(abs(t - u) >= margin for u in truth)]
