"""The training forward: one batch (several images, several conversations each) -> LM loss.

Each image is encoded once per step however many conversations talk about it; with a feature store
the frozen tower is not run at all after the first time an image is seen. Wrapped as an
``nn.Module`` so that DDP / DeepSpeed (through accelerate) see the forward and synchronise gradients.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..imageio import load_image
from ..labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS
from ..model.processor import QUALITY, SeagullProcessor
from ..model.prompting import IGNORE_INDEX
from ..model.scoring import expected_scores
from ..model.seagull import ImageEncoding, SeagullForCausalLM
from .data import Batch, TrainItem
from .features import FeatureStore, record_masks, trainable_tokens
from .ranking import pairwise_rank_loss, rankable
from .region_heads import GROUPS, RegionHeads, region_loss, region_targets

MAX_RANKED_ROIS = 4  # per image in the LM ranking pass (bounds its cost)


def encode_batch(
    model: SeagullForCausalLM, batch: Batch, store: FeatureStore | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image tokens ``[B, T, h]``, global and local tokens ``[sum used ROIs, h]``) for the batch's images."""
    if store is not None:
        frozen = [store.get(it.ref).select(it.rois) for it in batch.items]
        return trainable_tokens(model, frozen)
    images = [load_image(it.ref.image_path) for it in batch.items]
    masks = [record_masks(it.ref)[it.rois] for it in batch.items]
    enc = model.encode_images(images)
    glob, local = model.encode_regions(enc, masks)
    return enc.image_tokens, glob, local


def lm_inputs(
    model: SeagullForCausalLM,
    batch: Batch,
    tokens: torch.Tensor,
    glob: torch.Tensor,
    local: torch.Tensor,
    image_dropout: float = 0.0,
) -> dict[str, torch.Tensor | None]:
    """Splice each sequence's image tokens and its ROIs' tokens (in pair order) into its embeddings.

    ``image_dropout``: the share of sequences whose image tokens are zeroed (modality dropout), so the
    answer has to come from the region tokens; without it a small LM trained from scratch learns to
    answer from the image tokens alone and ignores the region (docs/default_model.md).
    """
    offsets = [0]
    for it in batch.items:
        offsets.append(offsets[-1] + len(it.rois))
    order = [offsets[i] + r for i, rois in zip(batch.seq_image, batch.seq_rois, strict=True) for r in rois]
    idx = torch.as_tensor(order, dtype=torch.long, device=glob.device)
    seq_tokens = tokens[torch.as_tensor(batch.seq_image, device=tokens.device)]
    if image_dropout > 0:
        keep = torch.rand(seq_tokens.shape[0]) >= image_dropout
        seq_tokens = seq_tokens * keep.to(seq_tokens)[:, None, None]
    return model.build_inputs(
        batch.input_ids.to(model.device),
        batch.attention_mask.to(model.device),
        batch.labels.to(model.device),
        ImageEncoding([], seq_tokens, []),
        (glob[idx], local[idx]),
        [len(r) for r in batch.seq_rois],
    )


def answer_word_weights(tokenizer: Any, vocab_size: int, weight: float) -> torch.Tensor:
    """``[vocab]`` loss weights: ``weight`` for the tokens of level, severity and type words and Yes/No.

    These few tokens carry the answer; the rest of an answer is template text that the LM learns in
    the first hundred steps, after which it only dilutes the gradient of the words that matter.
    """
    words = [*QUALITY_LEVELS, *IMPORTANCE_LEVELS, *SEVERITY_LEVELS, *DISTORTION_TYPES, "Yes", "No"]
    w = torch.ones(vocab_size)
    for word in words:
        for text in (word, " " + word):
            w[tokenizer(text, add_special_tokens=False)["input_ids"]] = weight
    return w


def weighted_lm_loss(logits: torch.Tensor, labels: torch.Tensor, token_weights: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy with a weight per target token id (weighted mean over labelled tokens)."""
    targets = labels[:, 1:]
    ce = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    w = token_weights.to(ce.device)[targets.clamp_min(0).reshape(-1)] * (targets.reshape(-1) != IGNORE_INDEX)
    return (ce * w).sum() / w.sum().clamp_min(1e-9)


def rank_key(item: TrainItem, position: int) -> tuple[str, Any]:
    """The group an item's ROIs are ranked in: the ROIs of one photo against each other, or, where the
    folder's labels share a scale across photos (human opinion scores, ``ImageRef.scale``), the photo
    against the batch's other photos of that folder."""
    return ("scale", item.ref.scale) if item.ref.scale is not None else ("photo", position)


def ranking_rows(batch: Batch, per_image: int | None = None) -> list[tuple[int, int, float, int]]:
    """(image position, ROI position in the item, quality label, group number) of each ranked ROI of
    the batch that has a partner in its group (:func:`rank_key`) at least a ranking margin away;
    ``per_image`` caps the rows of one image (in ROI order)."""
    groups: dict[tuple[str, Any], list[tuple[int, int, float]]] = {}
    for b, it in enumerate(batch.items):
        if not it.ref.ranked:
            continue
        members = groups.setdefault(rank_key(it, b), [])
        for k, i in enumerate(it.rois):
            q = it.ref.record.rois[i].quality
            if q is not None:
                members.append((b, k, float(q)))
    rows: list[tuple[int, int, float, int]] = []
    for g, members in enumerate(groups.values()):
        taken: dict[int, int] = {}
        for j in rankable([q for _, _, q in members]):
            b, k, q = members[j]
            if per_image is None or taken.get(b, 0) < per_image:
                taken[b] = taken.get(b, 0) + 1
                rows.append((b, k, q, g))
    return rows


def lm_quality_scores(
    model: SeagullForCausalLM,
    batch: Batch,
    encoded: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    processor: SeagullProcessor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Assessor's quality score, with gradients, for the batch's :func:`ranking_rows`.

    One sequence per ROI: the quality scoring prompt (``processor.prompts[QUALITY]``, the same
    tokens the Assessor scores), the expectation over the level words at its end. -> (scores ``[N]``,
    label quality ``[N]``, group number ``[N]``); empty when no group has two ROIs to order.
    """
    rows = ranking_rows(batch, MAX_RANKED_ROIS)
    dev = encoded[0].device
    if not rows:
        empty = torch.zeros(0, device=dev)
        return empty, empty, empty.long()
    seq_image = [b for b, _, _, _ in rows]
    prompt = torch.tensor(processor.prompts[QUALITY], dtype=torch.long)
    ids = prompt.repeat(len(rows), 1)
    ranked = Batch(
        batch.items,
        ids,
        torch.ones_like(ids),
        torch.full_like(ids, IGNORE_INDEX),
        seq_image,
        [[k] for _, k, _, _ in rows],
    )
    inputs = lm_inputs(model, ranked, *encoded)
    out = model.language_model(
        inputs_embeds=inputs["inputs_embeds"],
        attention_mask=inputs["attention_mask"],
        position_ids=inputs["position_ids"],
        use_cache=False,
    )
    logits = out.logits[:, -1, processor.answer_ids.quality_ids].float()
    scores = expected_scores(torch.softmax(logits, dim=-1))
    truth = torch.tensor([q for _, _, q, _ in rows], device=dev)
    return scores, truth, torch.tensor([g for _, _, _, g in rows], device=dev)


class TrainStep(nn.Module):
    """``forward(batch) -> loss``; holds the model so its parameters are this module's parameters.

    ``image_dropout`` zeroes the image tokens of that share of sequences (see :func:`lm_inputs`).
    With ``heads`` the loss adds ``aux_weight`` x the region-head loss (see :mod:`.region_heads`);
    ``forward(batch, lm=False)`` trains the heads and the MFE only (no LM pass: the warm-up steps).
    With ``rank_weight`` > 0 the loss adds that weight x the within-photo ranking loss
    (:mod:`.ranking`) on the heads' quality expectation and, in LM steps, on the LM's quality score as
    the Assessor reads it (``processor`` gives the prompt and level-word ids).
    ``last_parts`` keeps the loss terms of the last call for logging.
    """

    def __init__(
        self,
        model: SeagullForCausalLM,
        store: FeatureStore | None = None,
        heads: RegionHeads | None = None,
        aux_weight: float = 0.0,
        image_dropout: float = 0.0,
        token_weights: torch.Tensor | None = None,
        rank_weight: float = 0.0,
        processor: SeagullProcessor | None = None,
    ) -> None:
        super().__init__()
        self.rank_weight = rank_weight
        self.processor = processor
        self.model = model
        self.store = store
        self.heads = heads
        self.aux_weight = aux_weight
        self.image_dropout = image_dropout
        self.token_weights = token_weights
        self.last_parts: dict[str, float] = {}

    def forward(self, batch: Batch, lm: bool = True) -> torch.Tensor:
        tokens, glob, local = encode_batch(self.model, batch, self.store)
        loss = glob.new_zeros(())
        self.last_parts = {}
        if self.heads is not None:
            norm = self.model.token_norm
            g, loc = (norm.glob(glob), norm.local(local)) if norm is not None else (glob, local)
            rois = [it.ref.record.rois[i] for it in batch.items for i in it.rois]
            labelled = [it.ref.labelled for it in batch.items for _ in it.rois]
            logits = self.heads(g, loc)
            aux = region_loss(logits, region_targets(rois, labelled))
            loss = loss + self.aux_weight * aux
            self.last_parts["aux_loss"] = float(aux.detach())
            if self.rank_weight > 0:
                loss = loss + self._rank_heads(batch, logits)
        if lm:
            drop = self.image_dropout if self.training else 0.0
            inputs = lm_inputs(self.model, batch, tokens, glob, local, drop)
            out = self.model.language_model(
                inputs_embeds=inputs["inputs_embeds"],
                attention_mask=inputs["attention_mask"],
                position_ids=inputs["position_ids"],
                labels=None if self.token_weights is not None else inputs["labels"],
                use_cache=False,
            )
            lm_loss = out.loss
            if self.token_weights is not None:
                lm_loss = weighted_lm_loss(out.logits, inputs["labels"], self.token_weights)
            loss = loss + lm_loss
            self.last_parts["lm_loss"] = float(lm_loss.detach())
            if self.rank_weight > 0 and self.processor is not None:
                scores, truth, group = lm_quality_scores(
                    self.model, batch, (tokens, glob, local), self.processor
                )
                rank = pairwise_rank_loss(scores, truth, group)
                if rank is not None:
                    loss = loss + self.rank_weight * rank
                    self.last_parts["rank_lm_loss"] = float(rank.detach())
        return loss

    def _rank_heads(self, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        """``rank_weight`` x the ranking loss on the heads' quality expectation (0 without pairs)."""
        offsets = [0]
        for it in batch.items:
            offsets.append(offsets[-1] + len(it.rois))
        rows = ranking_rows(batch)
        if len(rows) < 2:
            return logits.new_zeros(())
        at = [offsets[b] + k for b, k, _, _ in rows]
        probs = torch.softmax(logits[at, : GROUPS[0]].float(), dim=-1)
        rank = pairwise_rank_loss(
            expected_scores(probs),
            torch.tensor([q for _, _, q, _ in rows]),
            torch.tensor([g for *_, g in rows]),
        )
        if rank is None:
            return logits.new_zeros(())
        self.last_parts["rank_heads_loss"] = float(rank.detach())
        return self.rank_weight * rank
