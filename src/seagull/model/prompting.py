"""Conversations -> token ids and training labels (only the assistant's answers are supervised).

Used by the model, the assessor and the training collator. ``<image>`` may be a vocabulary token
(the project tokenizer) or a placeholder id outside the vocabulary (LLaVA's -200 for SEAGULL-7B):
the text is split at ``<image>`` and the id is put in between, so both work the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import templates as T
from ..errors import RoiError, SchemaError
from ..records import SampleRecord
from ..roi import rle_to_mask

IGNORE_INDEX = -100


@dataclass
class EncodedConversation:
    """Token ids, labels (IGNORE_INDEX outside answers) and the ROI indices of the ``<global><local>`` pairs."""

    input_ids: list[int]
    labels: list[int]
    rois: list[int] = field(default_factory=list)


def tokenize_spans(tokenizer: Any, text: str, image_token_id: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Ids and character spans of ``text``; each ``<image>`` becomes ``image_token_id`` with an empty span."""
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for k, chunk in enumerate(text.split(T.IMAGE_TOKEN)):
        if k:
            ids.append(image_token_id)
            spans.append((pos - len(T.IMAGE_TOKEN), pos - len(T.IMAGE_TOKEN)))
        if chunk:
            enc = tokenizer(chunk, add_special_tokens=False, return_offsets_mapping=True)
            ids += enc["input_ids"]
            spans += [(pos + a, pos + b) for a, b in enc["offset_mapping"]]
        pos += len(chunk) + len(T.IMAGE_TOKEN)
    return ids, spans


def tokenize_prompt(tokenizer: Any, text: str, image_token_id: int, add_bos: bool = True) -> list[int]:
    ids, _ = tokenize_spans(tokenizer, text, image_token_id)
    return ([tokenizer.bos_token_id] if add_bos and tokenizer.bos_token_id is not None else []) + ids


def conversation_turns(conv: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[T.Turn]:
    """``{"rois": [...], "turns": [{"from": "human"|"gpt", "value": str}, ...]}`` (or a bare turn list)."""
    turns = conv["turns"] if isinstance(conv, Mapping) else conv
    out = []
    for t in turns:
        role = t.get("from", t.get("role"))
        text = t.get("value", t.get("text"))
        if role not in ("human", "gpt") or not isinstance(text, str):
            raise SchemaError(f"conversation turn {t!r} needs 'from' in (human, gpt) and a 'value' string")
        out.append(T.Turn(role, text))
    return out


def encode_conversation(
    tokenizer: Any,
    conv: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    image_token_id: int,
    max_length: int | None = None,
) -> EncodedConversation:
    """Vicuna-v1 rendering of a whole conversation with labels on the answers (and their ``</s>``)."""
    turns = conversation_turns(conv)
    rois = list(conv.get("rois", [])) if isinstance(conv, Mapping) else []
    n_regions = sum(T.count_regions(t.text) for t in turns if t.role == "human")
    if isinstance(conv, Mapping) and n_regions != len(rois):
        raise RoiError(
            f"conversation has {n_regions} <global><local> pairs but names {len(rois)} ROIs {rois}"
        )
    # Character spans of the supervised answers in the rendered text.
    text = T.SYSTEM + T.SEP
    answer_spans: list[tuple[int, int]] = []
    for t in turns:
        if t.role == "human":
            text += f"{T.ROLES[0]}: {t.text}{T.SEP}"
        else:
            text += f"{T.ROLES[1]}:"
            start = len(text)
            text += f" {t.text}{T.SEP2}"
            answer_spans.append((start, len(text)))
    ids, spans = tokenize_spans(tokenizer, text, image_token_id)
    labels = [
        tid if a < b and any(s <= a and b <= e for s, e in answer_spans) else IGNORE_INDEX
        for tid, (a, b) in zip(ids, spans, strict=True)
    ]
    if tokenizer.bos_token_id is not None:
        ids, labels = [tokenizer.bos_token_id] + ids, [IGNORE_INDEX] + labels
    if max_length is not None and len(ids) > max_length:
        kept_out = set(ids[max_length:])
        region_ids = {
            tokenizer.convert_tokens_to_ids(T.GLOBAL_TOKEN),
            tokenizer.convert_tokens_to_ids(T.LOCAL_TOKEN),
        }
        if image_token_id in kept_out or kept_out & region_ids:
            raise SchemaError(f"max_length {max_length} cuts off <image> or a region token; raise max_length")
        ids, labels = ids[:max_length], labels[:max_length]
    return EncodedConversation(ids, labels, rois)


def pad_batch(
    seqs: Sequence[Sequence[int]], pad_value: int, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to ``[B, L]`` and return ``(tensor, attention_mask)``."""
    n = max((len(s) for s in seqs), default=0)
    out = torch.full((len(seqs), n), pad_value, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        if not s:
            continue
        if side == "right":
            out[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        else:
            out[i, n - len(s) :] = torch.tensor(s)
            mask[i, n - len(s) :] = 1
    return out, mask


def collate_conversations(encoded: Sequence[EncodedConversation], pad_id: int) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` and ``labels`` tensors for a batch (right padding)."""
    ids, mask = pad_batch([e.input_ids for e in encoded], pad_id)
    labels, _ = pad_batch([e.labels for e in encoded], IGNORE_INDEX)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def conversation_masks(record: SampleRecord, conv: Mapping[str, Any]) -> np.ndarray:
    """``[R, H, W]`` bool masks of the ROIs a conversation names, in the order of its region pairs."""
    idx = list(conv.get("rois", []))
    bad = [i for i in idx if not 0 <= i < len(record.rois)]
    if bad:
        raise SchemaError(
            f"record {record.id!r}: conversation names ROI indices {bad} beyond its {len(record.rois)} ROIs"
        )
    if not idx:
        return np.zeros((0, record.height, record.width), dtype=bool)
    return np.stack([rle_to_mask(record.rois[i].rle, name=record.rois[i].id) for i in idx])


def record_corpus(records: Any) -> list[str]:
    """Rendered Vicuna-v1 text of every conversation of ``records`` (for tokenizer training)."""
    texts = []
    for rec in records:
        for conv in rec.conversations:
            texts.append(T.render_prompt(conversation_turns(conv), add_generation_prompt=False))
    return texts
