"""Scores from level logits (Q-Align), yes/no confidences, severity posteriors and strict parsing."""

from __future__ import annotations

import pytest
import torch

from seagull import templates as T
from seagull.errors import AnswerParseError, ModelError
from seagull.labels import DISTORTION_TYPES, QUALITY_LEVELS, SEVERITY_LEVELS
from seagull.model.processor import AFTER_SEVERITY, IMPORTANCE, QUALITY, WITH, AnswerIds
from seagull.model.scoring import (
    DistortionLogits,
    RegionScorer,
    RoiLogits,
    expected_scores,
    level_scores,
    level_summaries,
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


# A vocabulary of 40 ids: level words 0-4, importance words 5-9, severities 10-14, types per severity
# word 15-20 (the same ids after every word here), "With" 21, "No" 22.
FAKE_IDS = AnswerIds(
    quality_ids=[0, 1, 2, 3, 4],
    importance_ids=[5, 6, 7, 8, 9],
    with_id=21,
    clean_id=22,
    severity_ids=[10, 11, 12, 13, 14],
    type_ids={s: list(range(15, 21)) for s in SEVERITY_LEVELS},
)


def test_rows_are_built_from_the_ends_of_the_scoring_prompts():
    """``ends[prompt]`` holds each prompt's last logit rows: the distortion question's first word is
    read one row before the end of the "With" prompt, everything else at the end."""
    torch.manual_seed(0)
    n, v = 3, 40
    ends = {QUALITY: torch.randn(n, 1, v), WITH: torch.randn(n, 2, v)}
    ends |= {AFTER_SEVERITY[s]: torch.randn(n, 1, v) for s in SEVERITY_LEVELS}
    rows = RegionScorer(FAKE_IDS).rows(ends)
    assert len(rows) == n and all(isinstance(r, RoiLogits) for r in rows)
    r = rows[1]
    assert torch.equal(r.quality, ends[QUALITY][1, -1]) and r.importance is None
    assert isinstance(r.distortion, DistortionLogits)
    assert torch.equal(r.distortion.first, ends[WITH][1, 0]) and torch.equal(
        r.distortion.after_with, ends[WITH][1, 1]
    )
    want = torch.stack([ends[AFTER_SEVERITY[s]][1, -1] for s in SEVERITY_LEVELS])
    assert torch.equal(r.distortion.after_severity, want)
    with pytest.raises(ModelError, match="every severity word"):
        RegionScorer(FAKE_IDS).rows({WITH: ends[WITH]})
    with pytest.raises(ModelError, match="last two logit rows"):
        RegionScorer(FAKE_IDS).rows(
            {WITH: ends[WITH][:, 1:], **{k: ends[k] for k in map(AFTER_SEVERITY.get, SEVERITY_LEVELS)}}
        )
    with pytest.raises(ModelError, match="ROI counts"):
        RegionScorer(FAKE_IDS).rows({QUALITY: ends[QUALITY], IMPORTANCE: torch.randn(2, 1, v)})


def test_scores_of_typed_rows():
    """Quality from its row; each type's severity is the level summary of its posterior (expectation
    with the level weights, most probable word); "No" outweighing "With" makes every type absent."""
    torch.manual_seed(1)
    v = 40
    first = torch.zeros(v)
    first[22] = 5.0  # "No obvious distortion." is far more likely than "With ..."
    after_with, after = torch.randn(v), torch.randn(5, v) * 3
    rows = RoiLogits(quality=torch.randn(v), distortion=DistortionLogits(first, after_with, after))
    got = RegionScorer(FAKE_IDS, presence_threshold=0.5).score(rows)
    assert got.quality.score == pytest.approx(
        float(expected_scores(torch.softmax(rows.quality[:5], -1)[None])[0])
    )
    assert got.importance is None and [d.type for d in got.distortions] == list(DISTORTION_TYPES)
    for ti, d in enumerate(got.distortions):
        post = severity_posterior(after_with[None], after, FAKE_IDS.severity_ids, [15 + ti] * 5)
        want = level_summaries(post[None].double(), SEVERITY_LEVELS)[0]
        assert (d.severity, d.severity_level, d.severity_probs) == (want.score, want.level, want.probs)
        assert d.severity == pytest.approx(sum(p * k / 4 for k, p in enumerate(post.tolist())), abs=1e-12)
        assert not d.present and d.confidence < 0.01
    assert sum(d.confidence for d in got.distortions) == pytest.approx(
        float(torch.softmax(first[[21, 22]], -1)[0])
    )
