"""Training data: dataset folders -> items (one image, several conversations about its ROIs) -> batches.

Conversations are either the stored ones of the records or drawn from the labels by
:func:`seagull.templates.drawn_conversation` under the configured task mix (quality / importance / distortion /
judgment). Everything random about an item is drawn from ``(seed, epoch, index)``, so the data order
and content of any step can be rebuilt after a restart without saving iterator state.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import templates as T
from ..errors import ConfigError
from ..model.prompting import EncodedConversation, collate_conversations, encode_conversation
from ..records import (
    ALL_LABEL_TASKS,
    SampleRecord,
    card_label_tasks,
    card_shares_scale,
    iter_records,
    read_card,
)


@dataclass(frozen=True)
class ImageRef:
    """One training image: its dataset folder and record; ``ranked``: its ROIs take part in the
    ranking loss (:mod:`.ranking`); ``labelled``: the tasks its folder labels (the card's
    ``label_tasks``); ``scale``: set where the folder's quality labels share one scale across photos
    (human opinion scores), the key under which photos of the batch are ranked against each other."""

    dataset: Path
    record: SampleRecord
    ranked: bool = True
    labelled: tuple[str, ...] = ALL_LABEL_TASKS
    scale: str | None = None

    @property
    def image_path(self) -> Path:
        return self.dataset / self.record.image

    @property
    def key(self) -> str:
        return f"{self.dataset.resolve()}::{self.record.id}"


def load_images(
    folders: Sequence[Path],
    split: str | None,
    limit: int | None = None,
    repeat: Sequence[int] = (),
    ranked: Sequence[bool] = (),
) -> list[ImageRef]:
    """Every labelled record of ``folders`` in ``split`` (records without a labelled ROI are skipped);
    with ``repeat``, folder ``i``'s records are listed ``repeat[i]`` times; with ``ranked``, folder
    ``i``'s images take part in the ranking loss only when ``ranked[i]``. Each folder's card gives
    what its ROIs are labelled for and whether its labels share a scale across photos."""
    out: list[ImageRef] = []
    for i, folder in enumerate(folders):
        rank = ranked[i] if ranked else True
        card = read_card(Path(folder))
        labelled = card_label_tasks(card)
        scale = str(Path(folder).resolve()) if card_shares_scale(card) else None
        refs = [
            ImageRef(Path(folder), rec, rank, labelled, scale) for rec in iter_records(Path(folder), split)
        ]
        refs = [ref for ref in refs if any(r.quality_level is not None for r in ref.record.rois)]
        out += refs * (repeat[i] if repeat else 1)
    if limit:
        out = out[:limit]
    return out


# --------------------------------------------------------------------------- dataset


@dataclass
class TrainItem:
    """One image with the conversations drawn for it; ``rois`` are the record's ROI indices used."""

    ref: ImageRef
    rois: list[int]
    conversations: list[EncodedConversation]  # their ``rois`` index into ``rois`` (local numbering)


@dataclass
class ConversationDataset:
    """Deterministic per ``(seed, epoch, index)``: item ``i`` of epoch ``e`` is the same in every run."""

    images: list[ImageRef]
    tokenizer: Any
    image_token_id: int
    mode: str = "regenerate"
    task_mix: dict[str, float] = field(default_factory=lambda: {t: 1.0 for t in ("quality", "importance")})
    convs_per_image: int = 4
    turns_per_conversation: int = 1
    max_length: int = 512
    seed: int = 0
    every_roi: bool = False  # items carry every labelled ROI of the image, not only the talked-about ones

    def __post_init__(self) -> None:
        # a folder none of whose labels the task mix asks about would fail mid-run: refuse it now
        first: dict[Path, ImageRef] = {}
        for ref in self.images:
            first.setdefault(ref.dataset, ref)
        for folder, ref in first.items():
            roi = next(r for r in ref.record.rois if r.quality_level is not None)
            if self.mode == "regenerate" and not T.usable_tasks(roi, self.task_mix, ref.labelled):
                raise ConfigError(
                    f"data.task_mix {self.task_mix} asks nothing that {folder} labels "
                    f"({list(ref.labelled)}, its card's label_tasks); add one of them to the mix"
                )

    def __len__(self) -> int:
        return len(self.images)

    def rng(self, epoch: int, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{epoch}:{index}")

    def conversations(self, ref: ImageRef, rng: random.Random) -> list[dict[str, Any]]:
        labelled = [i for i, r in enumerate(ref.record.rois) if r.quality_level is not None]
        if self.mode == "stored":
            convs = [c for c in ref.record.conversations if all(i in labelled for i in c.get("rois", []))]
            if not convs:
                raise ConfigError(
                    f"record {ref.record.id!r} in {ref.dataset} has no stored conversations; "
                    "use data.conversations: regenerate"
                )
            return rng.sample(convs, k=min(self.convs_per_image, len(convs)))
        picked = [rng.choice(labelled) for _ in range(self.convs_per_image)]
        return [
            T.drawn_conversation(
                i, ref.record.rois[i], self.task_mix, self.turns_per_conversation, rng, ref.labelled
            )
            for i in picked
        ]

    def item(self, index: int, epoch: int) -> TrainItem:
        ref = self.images[index]
        convs = self.conversations(ref, self.rng(epoch, index))
        used = sorted({i for c in convs for i in c["rois"]})
        if self.every_roi:
            used = [i for i, r in enumerate(ref.record.rois) if r.quality_level is not None]
        local = {g: k for k, g in enumerate(used)}
        encoded = []
        for c in convs:
            e = encode_conversation(self.tokenizer, c, self.image_token_id, self.max_length)
            encoded.append(EncodedConversation(e.input_ids, e.labels, [local[i] for i in c["rois"]]))
        return TrainItem(ref, used, encoded)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def step_indices(n: int, seed: int, step: int, global_batch: int) -> tuple[int, list[int]]:
    """(epoch, image indices) of global ``step``: epochs are reshuffled; a step never spans two epochs."""
    per_epoch = max(1, n // global_batch)
    epoch, k = divmod(step, per_epoch)
    order = epoch_order(n, seed, epoch)
    if n < global_batch:  # tiny sets: wrap around inside the epoch's order
        return epoch, [order[(k * global_batch + j) % n] for j in range(global_batch)]
    return epoch, order[k * global_batch : (k + 1) * global_batch]


@dataclass
class Batch:
    """Images of a step with their used ROIs, and the padded sequences that talk about them."""

    items: list[TrainItem]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    seq_image: list[int]  # image position in ``items`` of each sequence
    seq_rois: list[list[int]]  # per sequence: positions in the item's ``rois`` (order of the pairs)

    @property
    def num_sequences(self) -> int:
        return int(self.input_ids.shape[0])


def collate(items: Sequence[TrainItem], pad_id: int) -> Batch:
    seqs, seq_image, seq_rois = [], [], []
    for k, it in enumerate(items):
        for c in it.conversations:
            seqs.append(c)
            seq_image.append(k)
            seq_rois.append(list(c.rois))
    t = collate_conversations(seqs, pad_id)
    return Batch(list(items), t["input_ids"], t["attention_mask"], t["labels"], seq_image, seq_rois)
