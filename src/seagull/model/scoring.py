"""Numbers from logits (Q-Align), per-type distortion confidences, severities, greedy text, parsing.

The math only: which prompts are scored and which token ids are read is
:class:`seagull.model.processor.ScoringProcessor`'s business.

- Quality / importance: after the fixed answer prefix ``templates.ANSWER_PREFIX[task]``, a softmax
  over the next-token logits of the five level words; score = expectation with the weights
  :data:`LEVEL_WEIGHTS` 0, .25, .5, .75, 1 (bad..excellent, unimportant..essential; for severities
  slight..extreme); level = the most probable word.
- Distortion type: the distortion answer "With <severity> <type>" or "No obvious distortion.";
  confidence of type t = P("With" vs "No" at the first answer token) x P(t | "With"), summed over
  the severity words (:func:`type_confidences`).
- Severity of type t: constrained scoring of the answer ``With <severity> <t>``:
  P(s | t) proportional to P(s | "With") * P(t | "With s"), for the five severity words.
- Text: greedy decoding; answers parse with the templates' strict parsers, else AnswerParseError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .. import templates as T
from ..errors import AnswerParseError

# The value of each of the five level words, in the order of labels.QUALITY_LEVELS, IMPORTANCE_LEVELS and
# SEVERITY_LEVELS (bad, unimportant, slight = 0 .. excellent, essential, extreme = 1): a score or a severity
# is the expectation of these values under the words' probabilities.
LEVEL_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class LevelScore:
    """A level-word distribution: expectation score in [0, 1], the most likely word, its probabilities."""

    score: float
    level: str
    probs: dict[str, float]


def level_distribution(logits: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
    """``[N, vocab]`` -> ``[N, 5]`` softmax over the given word ids only."""
    return torch.softmax(logits[:, list(ids)].float(), dim=-1)


def expected_scores(probs: torch.Tensor) -> torch.Tensor:
    """``[N, 5]`` probabilities -> ``[N]`` expectation with weights 0, .25, .5, .75, 1."""
    w = torch.tensor(LEVEL_WEIGHTS, dtype=probs.dtype, device=probs.device)
    return probs @ w


def level_scores(logits: torch.Tensor, ids: Sequence[int], words: Sequence[str]) -> list[LevelScore]:
    probs = level_distribution(logits, ids)
    scores = expected_scores(probs)
    out = []
    for p, s in zip(probs.tolist(), scores.tolist(), strict=True):
        out.append(
            LevelScore(
                float(s), words[max(range(len(p)), key=p.__getitem__)], dict(zip(words, p, strict=True))
            )
        )
    return out


def yes_confidence(logits: torch.Tensor, yes_id: int, no_id: int) -> torch.Tensor:
    """``[N, vocab]`` -> ``[N]`` P(Yes) renormalised over {Yes, No}."""
    return torch.softmax(logits[:, [yes_id, no_id]].float(), dim=-1)[:, 0]


def type_confidences(
    first: torch.Tensor,
    after_with: torch.Tensor,
    after_severity: torch.Tensor,
    with_clean_ids: Sequence[int],
    severity_ids: Sequence[int],
    type_ids: Sequence[Sequence[int]],
) -> torch.Tensor:
    """``[T]`` P(the distortion answer names each type), from the answer "With <severity> <type>" or
    "No obvious distortion.": P("With" vs "No") x sum over severities s of P(s | "With") P(type | "With s"),
    the type words renormalised among themselves.

    ``first [vocab]``: logits of the answer's first word; ``after_with [vocab]``: after "With";
    ``after_severity [S, vocab]``: row k after "With <severity_k>", where the type words are
    ``type_ids[k]`` (a word's first token can depend on the word before it).
    """
    p_with = yes_confidence(first[None], *with_clean_ids)[0]
    p_sev = torch.softmax(after_with[list(severity_ids)].float(), dim=-1)
    p_type = sum(
        p_sev[k] * torch.softmax(after_severity[k, list(ids)].float(), dim=-1)
        for k, ids in enumerate(type_ids)
    )
    return p_with * p_type


def severity_posterior(
    sev_logits: torch.Tensor, type_logits: torch.Tensor, sev_ids: Sequence[int], type_ids: Sequence[int]
) -> torch.Tensor:
    """Severity distribution ``[5]`` for one distortion type.

    ``sev_logits [5, vocab]``: logits after "With" (row 0 is used); ``type_logits [5, vocab]``: row k
    after "With <severity_k>", scored at ``type_ids[k]`` (the type's first token after that word).
    P(s | t) is proportional to P(s | "With") * P(t | "With s").
    """
    log_sev = torch.log_softmax(sev_logits[0, list(sev_ids)].float(), dim=-1)
    log_all = torch.log_softmax(type_logits.float(), dim=-1)
    log_type = log_all[torch.arange(len(type_ids)), torch.tensor(list(type_ids))]
    return torch.softmax(log_sev + log_type, dim=-1)


def parse_answer(task: str, text: str) -> Any:
    """Strict parse of a generated answer: level word, or ``[(type, severity), ...]``."""
    if task == "quality":
        return T.parse_quality(text)
    if task == "importance":
        return T.parse_importance(text)
    if task == "distortion":
        return T.parse_distortion(text)
    raise AnswerParseError(f"unknown task {task!r}; expected quality, importance or distortion")


@torch.no_grad()
def greedy_generate(
    model: Any,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    cache: Any,
    max_new_tokens: int,
    eos_id: int,
) -> list[list[int]]:
    """Greedy decoding for a left-padded batch (optionally after a cached prefix). No sampling."""
    logits, cache = model.run_lm(inputs_embeds, attention_mask, position_ids, cache)
    n = inputs_embeds.shape[0]
    done = torch.zeros(n, dtype=torch.bool, device=inputs_embeds.device)
    out: list[list[int]] = [[] for _ in range(n)]
    emb = model.get_input_embeddings()
    pos = position_ids[:, -1:]
    for _ in range(max_new_tokens):
        nxt = logits[:, -1].argmax(dim=-1)
        for i in range(n):
            if not done[i]:
                if int(nxt[i]) == eos_id:
                    done[i] = True
                else:
                    out[i].append(int(nxt[i]))
        if bool(done.all()):
            break
        pos = pos + 1
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((n, 1))], dim=1)
        logits, cache = model.run_lm(emb(nxt[:, None]), attention_mask, pos, cache)
    return out
