"""The scorer both the Assessor and training validation use: scoring prompts, answer-word ids, scores.

:class:`ScoringProcessor` renders the scoring prompts from :mod:`seagull.templates`, tokenises them,
and takes every answer word's id *in context*: the token that follows the real prompt when the word
is appended to it. (A word tokenised alone can start with another token: SentencePiece turns the
space of " good" into a piece of its own.) It turns next-token logits into level scores, distortion
type confidences and severities with the functions of :mod:`seagull.model.scoring`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import templates as T
from ..errors import ModelError
from ..labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS, TASKS
from ..region_prediction import DistortionPrediction
from .prompting import tokenize_prompt
from .scoring import LEVEL_WEIGHTS, LevelScore, level_scores, severity_posterior, type_confidences

PRESENCE_THRESHOLD = 0.5  # a distortion type is present when its confidence reaches this
Key = tuple[str, ...]
# The prompts whose next-token logits are scored: after the quality / importance answer prefix,
# after "With" (row before it: the answer's first word) and after "With <severity>" for each severity.
SCORING_KEYS: tuple[Key, ...] = (
    ("quality",),
    ("importance",),
    ("with",),
    *(("severity", s) for s in SEVERITY_LEVELS),
)


@dataclass
class RegionScores:
    """What the logits of one ROI give (``None`` / empty for a question that was not asked)."""

    quality: LevelScore | None = None
    importance: LevelScore | None = None
    distortions: list[DistortionPrediction] = field(default_factory=list)


def prompt_texts() -> dict[Key, str]:
    """Scoring prompts (:data:`SCORING_KEYS`) and generation prompts (``("text", task)``), one ROI each."""

    def ask(task: str) -> str:
        return T.render_prompt([T.Turn("human", T.region_question(task))])

    texts = {
        ("quality",): f"{ask('quality')} {T.ANSWER_PREFIX['quality']}",
        ("importance",): f"{ask('importance')} {T.ANSWER_PREFIX['importance']}",
        ("with",): f"{ask('distortion')} With",
        **{("severity", s): f"{ask('distortion')} With {s}" for s in SEVERITY_LEVELS},
    }
    return {**texts, **{("text", task): ask(task) for task in TASKS}}


def next_word_ids(tokenizer: Any, image_token_id: int, text: str, words: Sequence[str]) -> list[int]:
    """For each word, the token that follows ``text`` in ``text + " " + word`` (distinct, or ModelError)."""
    base = tokenize_prompt(tokenizer, text, image_token_id)
    out = []
    for w in words:
        full = tokenize_prompt(tokenizer, f"{text} {w}", image_token_id)
        if full[: len(base)] != base or len(full) == len(base):
            raise ModelError(
                f"tokenizer merges {w!r} with the prompt before it; it cannot be scored as a next token"
            )
        out.append(full[len(base)])
    if len(set(out)) != len(out):
        raise ModelError(
            f"words {list(words)} share first tokens {out} in this tokenizer; their scores would be equal"
        )
    return out


class ScoringProcessor:
    """``ScoringProcessor(tokenizer, image_token_id)``: ``prompts[key]`` token ids (with BOS) and
    :meth:`score` from the next-token logits of those prompts."""

    def __init__(
        self, tokenizer: Any, image_token_id: int, presence_threshold: float = PRESENCE_THRESHOLD
    ) -> None:
        self.tokenizer = tokenizer
        self.presence_threshold = float(presence_threshold)
        texts = prompt_texts()
        self.prompts = {k: tokenize_prompt(tokenizer, t, image_token_id) for k, t in texts.items()}

        def ids(key: Key, words: Sequence[str]) -> list[int]:
            return next_word_ids(tokenizer, image_token_id, texts[key], words)

        self.quality_ids = ids(("quality",), QUALITY_LEVELS)
        self.importance_ids = ids(("importance",), IMPORTANCE_LEVELS)
        # The distortion answer starts "With <severity> <type>" or "No obvious distortion."
        self.with_id, self.clean_id = ids(("text", "distortion"), ["With", "No"])
        self.severity_ids = ids(("with",), SEVERITY_LEVELS)
        self.type_ids = {s: ids(("severity", s), DISTORTION_TYPES) for s in SEVERITY_LEVELS}
        if self.prompts[("with",)] != self.prompts[("text", "distortion")] + [self.with_id]:
            raise ModelError("'With' is not one token after the distortion prompt; its row cannot be read")
        # The tokens that continue "... With" for each severity word.
        with_ids = self.prompts[("with",)]
        self.severity_tokens: dict[str, list[int]] = {}
        for s in SEVERITY_LEVELS:
            full = self.prompts[("severity", s)]
            if full[: len(with_ids)] != with_ids:
                raise ModelError(f"severity word {s!r} changes the tokens of the prompt before it")
            self.severity_tokens[s] = full[len(with_ids) :]

    def levels(self, task: str, logits: torch.Tensor) -> list[LevelScore]:
        """``[N, vocab]`` logits after the answer prefix of ``task`` (quality or importance) -> level scores."""
        if task == "quality":
            return level_scores(logits, self.quality_ids, QUALITY_LEVELS)
        if task == "importance":
            return level_scores(logits, self.importance_ids, IMPORTANCE_LEVELS)
        raise ModelError(f"task {task!r} has no level words; expected quality or importance")

    def distortions(
        self, first: torch.Tensor, after_with: torch.Tensor, after_severity: torch.Tensor
    ) -> list[DistortionPrediction]:
        """Per type: confidence that the distortion answer names it, presence and severity.

        The confidence is P("With ...") x P(type | "With <severity>"); the severity is the expectation
        over the severity words. ``first [vocab]``: logits of the answer's first word; ``after_with
        [vocab]``: after "With"; ``after_severity [S, vocab]``: row k after "With <severity_k>".
        """
        type_ids = [self.type_ids[s] for s in SEVERITY_LEVELS]
        confidences = type_confidences(
            first, after_with, after_severity, (self.with_id, self.clean_id), self.severity_ids, type_ids
        )
        out = []
        for ti, t in enumerate(DISTORTION_TYPES):
            conf = float(confidences[ti])
            # Row k scores the type token that follows severity word k.
            post = severity_posterior(
                after_with[None], after_severity, self.severity_ids, [ids[ti] for ids in type_ids]
            ).tolist()
            out.append(
                DistortionPrediction(
                    type=t,
                    confidence=conf,
                    present=conf >= self.presence_threshold,
                    severity_level=SEVERITY_LEVELS[max(range(len(post)), key=post.__getitem__)],
                    severity=float(sum(p * w for p, w in zip(post, LEVEL_WEIGHTS, strict=True))),
                    severity_probs=dict(zip(SEVERITY_LEVELS, post, strict=True)),
                )
            )
        return out

    def score(self, rows: Mapping[Any, torch.Tensor]) -> RegionScores:
        """Scores of one ROI from its ``[vocab]`` logit rows: "quality" and "importance" (after the answer
        prefix), "first" (the distortion answer's first word), "with" and ("after", severity)."""
        out = RegionScores()
        if "quality" in rows:
            out.quality = self.levels("quality", rows["quality"][None])[0]
        if "importance" in rows:
            out.importance = self.levels("importance", rows["importance"][None])[0]
        if "with" in rows:
            after = torch.stack([rows[("after", s)] for s in SEVERITY_LEVELS])
            out.distortions = self.distortions(rows["first"], rows["with"], after)
        return out
