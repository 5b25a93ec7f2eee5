import random

import pytest

from helpers import labelled_roi
from seagull import templates as T
from seagull.errors import AnswerParseError, ConfigError, RoiError, SchemaError
from seagull.labels import QUALITY_LEVELS, SEVERITY_LEVELS, Thresholds, importance_level, quality_level
from seagull.records import RoiRecord, read_shard, write_shard


def test_released_prompt_is_verbatim():
    q = T.region_question("quality")
    assert q.startswith("<image>\nThis provides an overview of the image.\n Please answer")
    assert "contrast exposure and noise.\n Here is the region <global><local>. Analyze the quality" in q
    assert T.count_regions(q) == 1


def test_answers_round_trip_through_strict_parsers():
    for level in QUALITY_LEVELS:
        assert T.parse_quality(T.answer_quality(level)) == level
    assert T.parse_importance(T.answer_importance("essential")) == "essential"
    items = [("blur", "mild"), ("noise", "extreme"), ("contrast", "slight")]
    assert T.parse_distortion(T.answer_distortion(items)) == items
    assert T.answer_distortion([("blur", "mild")]) == "With mild blur distortion."
    assert T.parse_distortion(T.answer_distortion([])) == []


@pytest.mark.parametrize("text", ["The quality is great.", "Quality: good", ""])
def test_unparsable_quality_is_an_error(text):
    with pytest.raises(AnswerParseError):
        T.parse_quality(text)


def test_unparsable_distortion_is_an_error():
    with pytest.raises(AnswerParseError):
        T.parse_distortion("With lots of fuzz.")
    with pytest.raises(AnswerParseError):
        T.parse_distortion("blurry")


def test_vicuna_rendering_and_region_count():
    turns = [
        T.Turn("human", T.region_question("distortion")),
        T.Turn("gpt", "With mild blur distortion."),
        T.Turn("human", "Is it?"),
    ]
    text = T.render_prompt(turns)
    assert text.startswith(T.SYSTEM + " USER: <image>")
    assert "ASSISTANT: With mild blur distortion.</s>USER: Is it? ASSISTANT:" in text
    assert T.count_regions(T.multi_region_preamble(3)) == 3
    with pytest.raises(RoiError):
        T.count_regions("<global><global><local>")


def test_judgment_answers():
    assert T.judgment_type_answer("blur", ["blur"]) == "Yes."
    assert T.judgment_type_answer("noise", ["blur"]) == "No. The region is in blur distortion."
    assert T.judgment_quality_answer("good", "poor") == "No. The quality is poor."


def test_levels_follow_thresholds():
    th = Thresholds()
    assert quality_level(0.0, th) == "bad" and quality_level(1.0, th) == "excellent"
    scores = [i / 100 for i in range(101)]
    idx = [QUALITY_LEVELS.index(quality_level(s, th)) for s in scores]
    assert idx == sorted(idx) and set(idx) == set(range(5))
    assert importance_level(0.0, th) == "unimportant"
    assert len(SEVERITY_LEVELS) == 5
    with pytest.raises(SchemaError):
        Thresholds(quality=(0.5, 0.4, 0.6, 0.7))
    assert Thresholds.from_dict(th.to_dict()) == th


def test_shard_round_trip_and_bad_json(tmp_path):
    write_shard(tmp_path / "a.jsonl", [{"id": 1}, {"id": 2}])
    assert [d["id"] for d in read_shard(tmp_path / "a.jsonl")] == [1, 2]
    (tmp_path / "b.jsonl").write_text('{"id": 1}\n{broken\n')
    with pytest.raises(SchemaError, match="b.jsonl:2"):
        list(read_shard(tmp_path / "b.jsonl"))


def _roi(importance_level: str | None = "minor", types: tuple[str, ...] = ("blur",)) -> RoiRecord:
    return labelled_roi(
        "good",
        importance_level,
        *((t, "mild") for t in types),
        quality=0.6,
        importance=0.3 if importance_level else None,
    )


def test_label_conversations_ask_every_question_and_parse_back():
    rois = [_roi(), _roi(types=()), _roi(types=("noise", "blur"))]
    convs = T.label_conversations(rois, seed=3)
    assert convs == T.label_conversations(rois, seed=3)
    assert [c["rois"] for c in convs[:3]] == [[0], [1], [2]] and len(convs[3]["rois"]) == 3
    for roi, conv in zip(rois, convs, strict=False):
        turns = conv["turns"]
        assert turns[0]["value"].startswith(T.PREAMBLE) and len(turns) == 12
        answers = {t["value"] for t in turns if t["from"] == "gpt"}
        assert T.answer_quality("good") in answers and T.answer_importance("minor") in answers
        pairs = [(d.type, d.severity_level) for d in roi.distortions]
        assert T.answer_distortion(pairs) in answers
    assert T.count_regions(convs[3]["turns"][0]["value"]) == 3


def test_drawn_conversation_follows_the_mix_and_the_labels():
    rng = random.Random(0)
    conv = T.drawn_conversation(4, _roi(), {"distortion": 1.0, "quality": 0.0}, 3, rng)
    assert conv["rois"] == [4] and len(conv["turns"]) == 6
    assert [t["value"] for t in conv["turns"][1::2]] == [T.answer_distortion([("blur", "mild")])] * 3
    # Without an importance level, neither the importance question nor its yes/no question is drawn.
    no_imp = _roi(importance_level=None)
    assert "importance" not in T.judgment_kinds(no_imp)
    mix = {"importance": 1.0, "judgment": 1.0}
    texts = [t["value"] for _ in range(30) for t in T.drawn_conversation(0, no_imp, mix, 2, rng)["turns"]]
    assert not any("importance" in x or "None" in x for x in texts)
    with pytest.raises(ConfigError):
        T.task_turn("beauty", _roi(), rng)
