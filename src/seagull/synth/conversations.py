"""Instruction conversations for one labelled image, built from the templates module only."""

from __future__ import annotations

import random
from typing import Any

from .. import templates as T
from ..schema import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, RoiRecord


def _distortion_answer(roi: RoiRecord) -> str:
    return T.answer_distortion([(d.type, d.severity_level) for d in roi.distortions])


def _judgments(roi: RoiRecord, rng: random.Random) -> list[tuple[str, str]]:
    """One yes/no question per kind, asked about the true label half of the time."""
    present = [d.type for d in roi.distortions]
    asked_type = rng.choice(present) if present and rng.random() < 0.5 else rng.choice(DISTORTION_TYPES)
    asked_q = roi.quality_level if rng.random() < 0.5 else rng.choice(QUALITY_LEVELS)
    asked_i = roi.importance_level if rng.random() < 0.5 else rng.choice(IMPORTANCE_LEVELS)
    return [
        (T.judgment_type_question(asked_type), T.judgment_type_answer(asked_type, present)),
        (T.judgment_quality_question(asked_q), T.judgment_quality_answer(asked_q, roi.quality_level)),
        (
            T.judgment_importance_question(asked_i),
            T.judgment_importance_answer(asked_i, roi.importance_level),
        ),
    ]


def build_conversations(rois: list[RoiRecord], seed: int) -> list[dict[str, Any]]:
    """Per ROI: the three SEAGULL questions then the judgment questions (one conversation each);
    plus, with two or more ROIs, one multi-region conversation asking a question per region."""
    rng = random.Random(seed)
    convs: list[dict[str, Any]] = []
    for i, roi in enumerate(rois):
        qa = [
            (T.QUESTIONS["quality"], T.answer_quality(roi.quality_level)),
            (T.QUESTIONS["importance"], T.answer_importance(roi.importance_level)),
            (T.QUESTIONS["distortion"], _distortion_answer(roi)),
        ]
        rng.shuffle(qa)
        qa += _judgments(roi, rng)
        turns = []
        for k, (q, a) in enumerate(qa):
            turns.append({"from": "human", "value": (T.PREAMBLE + q) if k == 0 else q})
            turns.append({"from": "gpt", "value": a})
        convs.append({"rois": [i], "turns": turns})
    if len(rois) >= 2:
        picked = rng.sample(range(len(rois)), k=min(3, len(rois)))
        turns = []
        for k, i in enumerate(picked):
            task = rng.choice(("quality", "importance", "distortion"))
            roi = rois[i]
            answer = {
                "quality": T.answer_quality(roi.quality_level),
                "importance": T.answer_importance(roi.importance_level),
                "distortion": _distortion_answer(roi),
            }[task]
            q = f"For Region {k + 1}: {T.QUESTIONS[task]}"
            turns.append(
                {"from": "human", "value": (T.multi_region_preamble(len(picked)) + q) if k == 0 else q}
            )
            turns.append({"from": "gpt", "value": answer})
        convs.append({"rois": picked, "turns": turns})
    return convs
