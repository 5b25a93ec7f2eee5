"""Scores from level logits (Q-Align), yes/no confidences, severity posteriors and strict parsing."""

from __future__ import annotations

import pytest
import torch

from seagull import templates as T
from seagull.errors import AnswerParseError
from seagull.labels import QUALITY_LEVELS
from seagull.model.scoring import (
    expected_scores,
    level_scores,
    parse_answer,
    severity_posterior,
    yes_confidence,
)

IDS = [3, 7, 11, 13, 17]


def test_scores_stay_in_unit_interval_for_extreme_logits():
    torch.manual_seed(0)
    logits = torch.randn(200, 20) * 50
    s = expected_scores(torch.softmax(logits[:, IDS], -1))
    assert bool(((s >= 0) & (s <= 1)).all())


def test_score_moves_with_the_level_logits():
    base = torch.zeros(1, 20)
    prev = -1.0
    for k in range(5):  # raising one level word's logit pulls the score to its weight
        logits = base.clone()
        logits[0, IDS[k]] = 8.0
        s = level_scores(logits, IDS, QUALITY_LEVELS)[0]
        assert s.level == QUALITY_LEVELS[k]
        assert abs(s.score - k / 4) < 0.01
        assert s.score > prev
        prev = s.score
    flat = level_scores(base, IDS, QUALITY_LEVELS)[0]
    assert flat.score == pytest.approx(0.5) and sum(flat.probs.values()) == pytest.approx(1.0)
    # Other vocabulary entries do not matter: only the five words are renormalised.
    noisy = base.clone()
    noisy[0, 0] = 100.0
    assert level_scores(noisy, IDS, QUALITY_LEVELS)[0].score == pytest.approx(0.5)


def test_yes_confidence_and_severity_posterior():
    logits = torch.zeros(2, 10)
    logits[0, 1], logits[1, 2] = 5.0, 5.0
    c = yes_confidence(logits, yes_id=1, no_id=2)
    assert c[0] > 0.99 and c[1] < 0.01
    sev_ids, type_ids = [0, 1, 2, 3, 4], [5, 5, 5, 5, 5]
    sev_logits = torch.zeros(5, 10)
    type_logits = torch.zeros(5, 10)
    type_logits[3, 5] = 10.0  # the type is far more likely after severity word 3
    post = severity_posterior(sev_logits, type_logits, sev_ids, type_ids)
    assert int(post.argmax()) == 3 and post.sum() == pytest.approx(1.0)
    sev_logits[0, 1] = 30.0  # unless the severity word itself is overwhelmingly likely
    assert int(severity_posterior(sev_logits, type_logits, sev_ids, type_ids).argmax()) == 1


def test_parse_answer_is_strict():
    assert parse_answer("quality", T.answer_quality("fair")) == "fair"
    assert parse_answer("importance", T.answer_importance("essential")) == "essential"
    assert parse_answer("distortion", T.answer_distortion([("noise", "severe"), ("blur", "mild")])) == [
        ("noise", "severe"),
        ("blur", "mild"),
    ]
    for task, text in (
        ("quality", "It looks nice."),
        ("importance", "The quality is good."),
        ("distortion", "Blurry."),
    ):
        with pytest.raises(AnswerParseError):
            parse_answer(task, text)
    with pytest.raises(AnswerParseError):
        parse_answer("beauty", "x")
