"""The model's output side: logits -> level scores, distortion confidences and severities; greedy text.

:class:`RegionScorer` is the one scorer: the Assessor, training validation and the benchmarks give
it the LM's logits at the ends of the scoring prompts (:data:`seagull.model.processor.SCORING_PROMPTS`),
:meth:`RegionScorer.rows` turns them into one typed :class:`RoiLogits` per ROI, and
:meth:`RegionScorer.score` into :class:`RegionScores`. Which token ids are read is the input side's
knowledge (:class:`seagull.model.processor.AnswerIds`).

- Quality / importance: after the fixed answer prefix ``templates.ANSWER_PREFIX[task]``, a softmax
  over the next-token logits of the five level words; score = expectation with the weights
  :data:`LEVEL_WEIGHTS` 0, .25, .5, .75, 1 (bad..excellent, unimportant..essential; for severities
  slight..extreme); level = the most probable word (:func:`level_summaries`, for all three).
- Distortion type: the distortion answer "With <severity> <type>" or "No obvious distortion.";
  confidence of type t = P("With" vs "No" at the first answer token) x P(t | "With"), summed over
  the severity words (:func:`type_confidences`).
- Severity of type t: constrained scoring of the answer ``With <severity> <t>``:
  P(s | t) proportional to P(s | "With") * P(t | "With s"), for the five severity words.
- Text: greedy decoding; answers parse with the templates' strict parsers, else AnswerParseError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import templates as T
from ..errors import AnswerParseError, ModelError
from ..labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS
from ..region_prediction import DistortionPrediction
from .processor import AFTER_SEVERITY, IMPORTANCE, QUALITY, WITH, AnswerIds, Prompt

PRESENCE_THRESHOLD = 0.5  # a distortion type is present when its confidence reaches this
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


def level_summaries(probs: torch.Tensor, words: Sequence[str]) -> list[LevelScore]:
    """``[N, 5]`` distributions over five level words -> their expectation (:func:`expected_scores`),
    most probable word and probabilities: the one summary of quality, importance and severity."""
    scores = expected_scores(probs)
    out = []
    for p, s in zip(probs.tolist(), scores.tolist(), strict=True):
        out.append(
            LevelScore(
                float(s), words[max(range(len(p)), key=p.__getitem__)], dict(zip(words, p, strict=True))
            )
        )
    return out


def level_scores(logits: torch.Tensor, ids: Sequence[int], words: Sequence[str]) -> list[LevelScore]:
    """``[N, vocab]`` logits -> the level summaries of the words ``ids`` (softmax over them only)."""
    return level_summaries(level_distribution(logits, ids), words)


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


# --------------------------------------------------------------------------- the scorer


@dataclass
class DistortionLogits:
    """The distortion question's logit rows for one ROI."""

    first: torch.Tensor  # [vocab] at the answer's first word ("With" or "No")
    after_with: torch.Tensor  # [vocab] after "With"
    after_severity: torch.Tensor  # [S, vocab]: row k after "With <severity_k>"


@dataclass
class RoiLogits:
    """The logit rows of one ROI, one field per question (None: the question was not asked)."""

    quality: torch.Tensor | None = None  # [vocab] after "The quality is"
    importance: torch.Tensor | None = None  # [vocab] after "This region is"
    distortion: DistortionLogits | None = None


@dataclass
class RegionScores:
    """What the logits of one ROI give (``None`` / empty for a question that was not asked)."""

    quality: LevelScore | None = None
    importance: LevelScore | None = None
    distortions: list[DistortionPrediction] = field(default_factory=list)


DISTORTION_PROMPTS: tuple[Prompt, ...] = (WITH, *AFTER_SEVERITY.values())


class RegionScorer:
    """``RegionScorer(answer_ids)``: :meth:`rows` from the logits at the ends of the scoring prompts,
    :meth:`score` from those rows (used by the Assessor, training validation and the benchmarks)."""

    def __init__(self, ids: AnswerIds, presence_threshold: float = PRESENCE_THRESHOLD) -> None:
        self.ids = ids
        self.presence_threshold = float(presence_threshold)

    @classmethod
    def from_processor(cls, processor: Any, presence_threshold: float = PRESENCE_THRESHOLD) -> RegionScorer:
        """The scorer of a :class:`~seagull.model.processor.SeagullProcessor`'s prompts and tokenizer."""
        return cls(processor.answer_ids, presence_threshold)

    def rows(self, ends: Mapping[Prompt, torch.Tensor]) -> list[RoiLogits]:
        """The rows of N ROIs from ``ends[prompt]``: ``[N, t, vocab]``, the logits at the last ``t``
        positions of that scoring prompt, in ROI order. The last row predicts the token after the
        prompt; for :data:`WITH` the row before it (``t >= 2``) predicts "With" itself, the answer's
        first word. A question is scored when its prompts are given: quality (:data:`QUALITY`),
        importance (:data:`IMPORTANCE`), distortion (:data:`WITH` and every :data:`AFTER_SEVERITY`)."""
        sizes = {int(t.shape[0]) for t in ends.values()}
        if len(sizes) > 1:
            raise ModelError(f"logits of different ROI counts {sorted(sizes)} cannot be scored together")
        given = [p in ends for p in DISTORTION_PROMPTS]
        if any(given) and not all(given):
            raise ModelError(
                "the distortion question needs the logits after 'With' and after every severity word"
            )
        if WITH in ends and ends[WITH].shape[1] < 2:
            raise ModelError(
                "the 'With' prompt needs its last two logit rows (the answer's first word and after it)"
            )
        out = []
        for j in range(sizes.pop() if sizes else 0):
            row = RoiLogits()
            if QUALITY in ends:
                row.quality = ends[QUALITY][j, -1].float()
            if IMPORTANCE in ends:
                row.importance = ends[IMPORTANCE][j, -1].float()
            if all(given):
                after = torch.stack([ends[AFTER_SEVERITY[s]][j, -1] for s in SEVERITY_LEVELS])
                row.distortion = DistortionLogits(
                    ends[WITH][j, -2].float(), ends[WITH][j, -1].float(), after.float()
                )
            out.append(row)
        return out

    def levels(self, task: str, logits: torch.Tensor) -> list[LevelScore]:
        """``[N, vocab]`` logits after the answer prefix of ``task`` (quality or importance) -> level scores."""
        if task == "quality":
            return level_scores(logits, self.ids.quality_ids, QUALITY_LEVELS)
        if task == "importance":
            return level_scores(logits, self.ids.importance_ids, IMPORTANCE_LEVELS)
        raise ModelError(f"task {task!r} has no level words; expected quality or importance")

    def distortions(self, rows: DistortionLogits) -> list[DistortionPrediction]:
        """Per type: confidence that the distortion answer names it, presence and severity.

        The confidence is P("With ...") x P(type | "With <severity>"); the severity distribution is
        P(s | type) (:func:`severity_posterior`), summarised like the level scores.
        """
        ids = self.ids
        type_ids = [ids.type_ids[s] for s in SEVERITY_LEVELS]
        confidences = type_confidences(
            rows.first,
            rows.after_with,
            rows.after_severity,
            (ids.with_id, ids.clean_id),
            ids.severity_ids,
            type_ids,
        )
        # Row k scores the type token that follows severity word k.
        posteriors = torch.stack(
            [
                severity_posterior(
                    rows.after_with[None], rows.after_severity, ids.severity_ids, [t[ti] for t in type_ids]
                )
                for ti in range(len(DISTORTION_TYPES))
            ]
        )
        # In float64: severities have always been summed at that precision.
        severities = level_summaries(posteriors.double(), SEVERITY_LEVELS)
        out = []
        for ti, (t, sev) in enumerate(zip(DISTORTION_TYPES, severities, strict=True)):
            conf = float(confidences[ti])
            out.append(
                DistortionPrediction(
                    type=t,
                    confidence=conf,
                    present=conf >= self.presence_threshold,
                    severity_level=sev.level,
                    severity=sev.score,
                    severity_probs=sev.probs,
                )
            )
        return out

    def score(self, rows: RoiLogits) -> RegionScores:
        """Scores of one ROI from its rows."""
        out = RegionScores()
        if rows.quality is not None:
            out.quality = self.levels("quality", rows.quality[None])[0]
        if rows.importance is not None:
            out.importance = self.levels("importance", rows.importance[None])[0]
        if rows.distortion is not None:
            out.distortions = self.distortions(rows.distortion)
        return out

    def score_ends(self, ends: Mapping[Prompt, torch.Tensor]) -> list[RegionScores]:
        """:meth:`score` of every ROI of :meth:`rows`."""
        return [self.score(r) for r in self.rows(ends)]


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
