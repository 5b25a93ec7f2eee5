"""Validation pass: level-logit scores on held-out ROIs -> quality / importance SRCC and type F1.

Scores follow the Q-Align method the project uses everywhere: after the fixed answer prefix
(``templates.ANSWER_PREFIX``) the next-token probabilities of the five level words give an
expectation in [0, 1]; a distortion type is predicted present when the distortion answer names it
with probability above 0.5 (``scoring.type_confidences``, as the Assessor scores it). No text is
generated or parsed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from .. import templates as T
from ..errors import ModelError
from ..eval.metrics import sample_average_prf, srcc, type_set
from ..model.prompting import IGNORE_INDEX, pad_batch, tokenize_prompt
from ..model.scoring import answer_word_ids, type_confidences
from ..model.seagull import SeagullForCausalLM
from ..schema import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS
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


def word_id(tokenizer: Any, word: str) -> int:
    pieces = tokenizer.tokenize(" " + word)
    if len(pieces) != 1:
        raise ModelError(
            f"tokenizer splits ' {word}' into {pieces}; level-logit scoring needs one token per word"
        )
    return int(tokenizer.convert_tokens_to_ids(pieces[0]))


class PromptSet:
    """Token ids of the scoring prompts (one ROI each) and the answer-word ids they read."""

    def __init__(self, tokenizer: Any, image_token_id: int) -> None:
        def prompt(question: str, prefix: str = "") -> list[int]:
            text = T.render_prompt([T.Turn("human", T.PREAMBLE + question)], add_generation_prompt=True)
            return tokenize_prompt(tokenizer, text + (f" {prefix}" if prefix else ""), image_token_id)

        # quality, importance, "... ASSISTANT: With", then "... ASSISTANT: With <severity>" for each.
        self.prompts: list[list[int]] = [
            prompt(T.QUESTIONS["quality"], T.ANSWER_PREFIX["quality"]),
            prompt(T.QUESTIONS["importance"], T.ANSWER_PREFIX["importance"]),
            prompt(T.QUESTIONS["distortion"], "With"),
            *[prompt(T.QUESTIONS["distortion"], f"With {s}") for s in SEVERITY_LEVELS],
        ]
        self.quality_ids = [word_id(tokenizer, w) for w in QUALITY_LEVELS]
        self.importance_ids = [word_id(tokenizer, w) for w in IMPORTANCE_LEVELS]
        tail = "ASSISTANT:"
        self.with_clean_ids = answer_word_ids(tokenizer, tail, ["With", "No"])
        self.severity_ids = answer_word_ids(tokenizer, f"{tail} With", SEVERITY_LEVELS)
        self.type_ids = [
            answer_word_ids(tokenizer, f"{tail} With {s}", DISTORTION_TYPES) for s in SEVERITY_LEVELS
        ]


def expectation(logits: torch.Tensor, ids: list[int]) -> torch.Tensor:
    p = torch.softmax(logits[:, ids].float(), dim=-1)
    return p @ torch.linspace(0, 1, len(ids), device=p.device)


@torch.no_grad()
def score_image(
    model: SeagullForCausalLM,
    ref: ImageRef,
    rois: list[int],
    prompts: PromptSet,
    pad_id: int,
    store: FeatureStore | None,
) -> dict[str, torch.Tensor]:
    """Quality and importance expectations ``[R]`` and type confidences ``[R, 6]`` for ROIs of one image."""
    seqs = [p for _ in rois for p in prompts.prompts]
    ids, mask = pad_batch(seqs, pad_id)
    k = len(prompts.prompts)
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
    last = inputs["attention_mask"].sum(dim=1) - 1
    rows = torch.arange(logits.shape[0])
    final = logits[rows, last].view(len(rois), k, -1)
    before_last = logits[rows, last - 1].view(len(rois), k, -1)  # prompt 2: the answer's first word
    types = torch.stack(
        [
            type_confidences(
                before_last[j, 2],
                final[j, 2],
                final[j, 3:],
                prompts.with_clean_ids,
                prompts.severity_ids,
                prompts.type_ids,
            )
            for j in range(len(rois))
        ]
    )
    return {
        "quality": expectation(final[:, 0], prompts.quality_ids),
        "importance": expectation(final[:, 1], prompts.importance_ids),
        "types": types,
    }


@torch.no_grad()
def validate(
    model: SeagullForCausalLM,
    tokenizer: Any,
    images: list[ImageRef],
    store: FeatureStore | None,
    max_rois: int = 64,
) -> ValResult:
    """Score up to ``max_rois`` labelled ROIs of ``images`` (in order) and compute the metrics."""
    was_training = model.training
    model.eval()
    prompts = PromptSet(tokenizer, int(model.config.image_token_id))
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
        s = score_image(model, ref, rois, prompts, int(tokenizer.pad_token_id), store)
        for j, r in enumerate(rois):
            roi = ref.record.rois[r]
            q_pred.append(float(s["quality"][j]))
            q_true.append(roi.quality)
            q_hit.append(round(float(s["quality"][j]) * 4) == QUALITY_LEVELS.index(roi.quality_level))
            i_pred.append(float(s["importance"][j]))
            i_true.append(roi.importance)
            t_pred.append(
                type_set(
                    [t for t, p in zip(DISTORTION_TYPES, s["types"][j].tolist(), strict=True) if p > 0.5]
                )
            )
            t_true.append(type_set([d.type for d in roi.distortions]))
    model.train(was_training)
    return ValResult(
        n_rois=len(q_pred),
        quality_srcc=srcc(q_pred, q_true),
        importance_srcc=srcc(i_pred, i_true),
        type_f1=sample_average_prf(t_true, t_pred).f1,
        quality_acc=sum(q_hit) / max(1, len(q_hit)),
    )
