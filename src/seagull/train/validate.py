"""Validation pass: level-logit scores on held-out ROIs -> quality / importance SRCC, level accuracy
and type F1, scored by :class:`seagull.model.scoring.RegionScorer` exactly as the Assessor scores
them (the same processor's prompts and answer-word ids, level = most probable word, presence
threshold), from full prompts through the training forward. No text is generated or parsed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..metrics.stats import sample_average_prf, srcc, type_set
from ..model.processor import SCORING_PROMPTS, SeagullProcessor
from ..model.prompting import IGNORE_INDEX, pad_batch
from ..model.scoring import PRESENCE_THRESHOLD, RegionScorer, RegionScores
from ..model.seagull import SeagullForCausalLM
from .data import Batch, ImageRef, TrainItem
from .features import FeatureStore
from .step import encode_batch, lm_inputs


@dataclass
class ValResult:
    """Metrics of one pass; a correlation is NaN when it is undefined (fewer than 3 ROIs, constant scores)."""

    n_rois: int
    quality_srcc: float
    importance_srcc: float
    type_f1: float
    quality_acc: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@torch.no_grad()
def score_image(
    model: SeagullForCausalLM,
    ref: ImageRef,
    rois: list[int],
    processor: SeagullProcessor,
    store: FeatureStore | None,
    scorer: RegionScorer | None = None,
) -> list[RegionScores]:
    """Scores of ROIs ``rois`` of one image: every scoring prompt of every ROI in one batch."""
    scorer = scorer or RegionScorer.from_processor(processor)
    seqs = [processor.prompts[key] for _ in rois for key in SCORING_PROMPTS]
    ids, mask = pad_batch(seqs, int(processor.tokenizer.pad_token_id))
    k = len(SCORING_PROMPTS)
    batch = Batch(
        [TrainItem(ref, rois, [])],
        ids,
        mask,
        torch.full_like(ids, IGNORE_INDEX),
        [0] * len(seqs),
        [[r] for r in range(len(rois)) for _ in range(k)],
    )
    tokens, glob, local = encode_batch(model, batch, store)
    inputs = lm_inputs(model, batch, tokens, glob, local)
    logits, _ = model.run_lm(
        inputs["inputs_embeds"], inputs["attention_mask"], inputs["position_ids"], use_cache=False
    )
    last = inputs["attention_mask"].sum(dim=1) - 1  # right padding: each prompt's last token
    at = torch.arange(logits.shape[0])
    ends = torch.stack([logits[at, last - 1], logits[at, last]], 1).view(len(rois), k, 2, -1)
    return scorer.score_ends({key: ends[:, i] for i, key in enumerate(SCORING_PROMPTS)})


@torch.no_grad()
def validate(
    model: SeagullForCausalLM,
    processor: SeagullProcessor,
    images: list[ImageRef],
    store: FeatureStore | None,
    max_rois: int = 64,
    presence_threshold: float = PRESENCE_THRESHOLD,
) -> ValResult:
    """Score up to ``max_rois`` labelled ROIs of ``images`` (in order) and compute the metrics."""
    was_training = model.training
    model.eval()
    scorer = RegionScorer.from_processor(processor, presence_threshold)
    q_pred, q_true, i_pred, i_true, t_pred, t_true = [], [], [], [], [], []
    q_hit = []
    left = max_rois
    for ref in images:
        if left <= 0:
            break
        rois = [i for i, r in enumerate(ref.record.rois) if r.quality_level is not None][:left]
        if not rois:
            continue
        left -= len(rois)
        scores = score_image(model, ref, rois, processor, store, scorer)
        for r, got in zip(rois, scores, strict=True):
            roi = ref.record.rois[r]
            q_pred.append(got.quality.score)
            q_true.append(roi.quality)
            q_hit.append(got.quality.level == roi.quality_level)
            i_pred.append(got.importance.score)
            i_true.append(roi.importance)
            if "distortion" in ref.labelled:  # a photo rated for quality only has no type to match
                t_pred.append(type_set([d.type for d in got.distortions if d.present]))
                t_true.append(type_set([d.type for d in roi.distortions]))
    model.train(was_training)
    return ValResult(
        n_rois=len(q_pred),
        quality_srcc=srcc(q_pred, q_true),
        importance_srcc=srcc(i_pred, i_true),
        type_f1=sample_average_prf(t_true, t_pred).f1,
        quality_acc=sum(q_hit) / max(1, len(q_hit)),
    )
