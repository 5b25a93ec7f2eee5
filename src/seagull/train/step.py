"""The training forward: one batch (several images, several conversations each) -> LM loss.

Each image is encoded once per step however many conversations talk about it; with a feature store
the frozen tower is not run at all after the first time an image is seen. Wrapped as an
``nn.Module`` so that DDP / DeepSpeed (through accelerate) see the forward and synchronise gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from ..imageio import load_image
from ..model.seagull import ImageEncoding, SeagullForCausalLM
from .data import Batch
from .features import FeatureStore, record_masks, trainable_tokens


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
    model: SeagullForCausalLM, batch: Batch, tokens: torch.Tensor, glob: torch.Tensor, local: torch.Tensor
) -> dict[str, torch.Tensor | None]:
    """Splice each sequence's image tokens and its ROIs' tokens (in pair order) into its embeddings."""
    offsets = [0]
    for it in batch.items:
        offsets.append(offsets[-1] + len(it.rois))
    order = [offsets[i] + r for i, rois in zip(batch.seq_image, batch.seq_rois, strict=True) for r in rois]
    idx = torch.as_tensor(order, dtype=torch.long, device=glob.device)
    seq_tokens = tokens[torch.as_tensor(batch.seq_image, device=tokens.device)]
    return model.build_inputs(
        batch.input_ids.to(model.device),
        batch.attention_mask.to(model.device),
        batch.labels.to(model.device),
        ImageEncoding([], seq_tokens, []),
        (glob[idx], local[idx]),
        [len(r) for r in batch.seq_rois],
    )


class TrainStep(nn.Module):
    """``forward(batch) -> loss``; holds the model so its parameters are this module's parameters."""

    def __init__(self, model: SeagullForCausalLM, store: FeatureStore | None = None) -> None:
        super().__init__()
        self.model = model
        self.store = store

    def forward(self, batch: Batch) -> torch.Tensor:
        tokens, glob, local = encode_batch(self.model, batch, self.store)
        inputs = lm_inputs(self.model, batch, tokens, glob, local)
        out = self.model.language_model(
            inputs_embeds=inputs["inputs_embeds"],
            attention_mask=inputs["attention_mask"],
            position_ids=inputs["position_ids"],
            labels=inputs["labels"],
            use_cache=False,
        )
        return out.loss
