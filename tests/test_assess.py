"""Assessor: one image encoding, batched ROIs, shared prefix cache; equal to the plain full-prompt path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seagull import templates as T
from seagull.assess import Assessor
from seagull.errors import AnswerParseError, ModelError
from seagull.labels import DISTORTION_TYPES, QUALITY_LEVELS, SEVERITY_LEVELS
from seagull.model.prompting import collate_conversations, encode_conversation, tokenize_prompt
from seagull.model.scoring import level_scores, severity_posterior, yes_confidence
from seagull.region_prediction import RegionPrediction
from seagull.roi import Roi, box_to_mask


@pytest.fixture(scope="module")
def assessor(micro_model, micro_tokenizer) -> Assessor:
    return Assessor(micro_model, tokenizer=micro_tokenizer)


def image(h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def rois(h: int = 60, w: int = 80) -> list[Roi]:
    one = np.zeros((h, w), bool)
    one[h // 2 : h // 2 + 4, w // 3 : w // 3 + 4] = True  # the smallest ROI the Assessor judges
    return [
        Roi(box_to_mask([2, 3, 20, 15], h, w), name="box"),
        Roi(one, name="pixel"),
        Roi(box_to_mask([w - 1, 0, 1, h], h, w), name="column"),
        Roi(np.ones((h, w), bool), name="all"),
    ]


def test_result_structure_and_ranges(assessor):
    res = assessor.assess(image(), rois())
    assert [r.name for r in res] == ["box", "pixel", "column", "all"]
    assert res[1].area == 16 and res[1].bbox == (26, 30, 4, 4)
    for r in res:
        assert isinstance(r, RegionPrediction)
        assert 0 <= r.quality <= 1 and 0 <= r.importance <= 1
        assert r.quality_level == max(r.quality_probs, key=r.quality_probs.get)
        assert [d.type for d in r.distortions] == list(DISTORTION_TYPES)
        for d in r.distortions:
            assert 0 <= d.confidence <= 1 and d.present == (d.confidence >= 0.5)
            assert 0 <= d.severity <= 1 and sum(d.severity_probs.values()) == pytest.approx(1.0, abs=1e-5)
        d = r.to_dict()
        assert d["bbox"] == list(r.bbox) and len(d["distortions"]) == 6


def test_cached_batched_path_equals_plain_full_prompt(assessor, micro_tokenizer):
    """The quality score of ROI k equals one full forward of the released-style prompt for ROI k alone."""
    img, rr = image(), rois()
    res = assessor.assess(img, rr, tasks=("quality",))
    model = assessor.model
    text = T.render_prompt([T.Turn("human", T.region_question("quality"))]) + " " + T.ANSWER_PREFIX["quality"]
    ids = torch.tensor([tokenize_prompt(micro_tokenizer, text, model.config.image_token_id)])
    for k, r in enumerate(rr):
        with torch.no_grad():
            logits = model(ids, images=[img], masks=[r.mask[None]]).logits[:, -1]
        ref = level_scores(logits, assessor.scorer.ids.quality_ids, QUALITY_LEVELS)[0]
        assert res[k].quality == pytest.approx(ref.score, abs=1e-5)
        assert res[k].importance is None and res[k].distortions == []


def test_distortion_confidence_and_severity_equal_full_prompts(assessor, micro_tokenizer):
    """Type confidences and the cached "With <severity>" continuations equal plain full prompts."""
    img, rr = image(seed=7), rois()[:2]
    res = assessor.assess(img, rr, tasks=("distortion",))
    model, sp = assessor.model, assessor.scorer.ids
    ask = T.render_prompt([T.Turn("human", T.region_question("distortion"))])
    for k, r in enumerate(rr):

        def last_logits(text: str, mask: np.ndarray = r.mask) -> torch.Tensor:
            ids = torch.tensor([tokenize_prompt(micro_tokenizer, text, model.config.image_token_id)])
            with torch.no_grad():
                return model(ids, images=[img], masks=[mask[None]]).logits[0, -1]

        p_with = yes_confidence(last_logits(ask)[None], sp.with_id, sp.clean_id)[0]
        with_row = last_logits(ask + " With")[None]
        after = torch.stack([last_logits(f"{ask} With {s}") for s in SEVERITY_LEVELS])
        p_sev = torch.softmax(with_row[0, sp.severity_ids], dim=-1)
        ti = DISTORTION_TYPES.index("noise")
        p_noise = sum(
            p_sev[j] * torch.softmax(after[j, sp.type_ids[s]], dim=-1)[ti]
            for j, s in enumerate(SEVERITY_LEVELS)
        )
        noise = res[k].distortions[ti]
        assert noise.confidence == pytest.approx(float(p_with * p_noise), abs=1e-5)
        post = severity_posterior(
            with_row, after, sp.severity_ids, [sp.type_ids[s][ti] for s in SEVERITY_LEVELS]
        )
        assert list(noise.severity_probs.values()) == pytest.approx(post.tolist(), abs=1e-5)
        assert sum(d.confidence for d in res[k].distortions) == pytest.approx(float(p_with), abs=1e-5)


@pytest.mark.parametrize("attention", ["eager", "none"])
def test_severity_words_share_the_with_state_under_every_attention(
    attention, make_micro_model, micro_tokenizer
):
    """The severity words run as one masked block on the "With" state (SDPA: a boolean 4-D mask,
    eager: an additive one); an attention that takes no custom mask runs them one at a time. Each
    gives the numbers of the SDPA block, which the test above ties to plain full prompts."""
    img, rr = image(seed=7), rois()
    want = Assessor(make_micro_model(), tokenizer=micro_tokenizer).assess(img, rr, tasks=("distortion",))
    model = make_micro_model()
    if attention == "eager":
        model.language_model.set_attn_implementation("eager")
        assert (
            model.attention_mask_4d(torch.ones(1, 2, 3, dtype=torch.bool), torch.float32).dtype
            == torch.float32
        )
    else:
        model.attention_mask_4d = lambda allowed, dtype: None
    got = Assessor(model, tokenizer=micro_tokenizer).assess(img, rr, tasks=("distortion",))
    for g, w in zip(got, want, strict=True):
        for gd, wd in zip(g.distortions, w.distortions, strict=True):
            assert (gd.present, gd.severity_level) == (wd.present, wd.severity_level)
            assert gd.confidence == pytest.approx(wd.confidence, abs=1e-5)
            assert list(gd.severity_probs.values()) == pytest.approx(
                list(wd.severity_probs.values()), abs=1e-5
            )


def test_severity_pass_adds_the_words_tokens_not_a_copy_per_word(assessor, micro_tokenizer):
    """The cache of n "With" prompts grows by the severity words' tokens; it is never repeated once per
    word (5 words x the whole prompt per ROI, the earlier pass)."""
    from transformers.cache_utils import DynamicCache

    torch.manual_seed(0)
    n, context, cfg = 3, 17, assessor.model.language_model.config
    heads, dim = cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    layers = [
        (torch.randn(n, heads, context, dim), torch.randn(n, heads, context, dim))
        for _ in range(cfg.num_hidden_layers)
    ]
    state = DynamicCache(ddp_cache_data=layers)
    mask = torch.ones(n, context, dtype=torch.long)
    out = assessor._after_severity(state, mask, torch.full((n,), context - 1))
    assert list(out) == list(SEVERITY_LEVELS) and all(
        t.shape == (n, 1, len(micro_tokenizer)) for t in out.values()
    )
    block = sum(len(t) for t in assessor.severity_tokens.values())
    assert [tuple(lay.keys.shape) for lay in state.layers] == [(n, heads, context + block, dim)] * len(layers)
    assert torch.equal(
        state.layers[0].keys[:, :, :context], layers[0][0]
    )  # the prompt's keys, read as they were


def test_deterministic_and_independent_of_other_rois(assessor):
    img, rr = image(seed=3), rois()
    a = [r.to_dict() for r in assessor.assess(img, rr)]
    b = [r.to_dict() for r in assessor.assess(img, rr)]
    assert a == b
    alone = assessor.assess(img, rr[2:3])[0].to_dict()
    assert alone["quality"] == pytest.approx(a[2]["quality"], abs=1e-5)
    assert alone["distortions"][4]["confidence"] == pytest.approx(
        a[2]["distortions"][4]["confidence"], abs=1e-5
    )


def test_batch_of_images_with_different_roi_counts(assessor):
    imgs = [image(60, 80, 1), image(40, 30, 2), image(50, 50, 3)]
    per = [rois(60, 80)[:1], rois(40, 30), []]
    batch = assessor.assess_batch(imgs, per)
    assert [len(x) for x in batch] == [1, 4, 0]
    single = assessor.assess(imgs[1], per[1])
    for got, ref in zip(batch[1], single, strict=True):
        assert got.quality == pytest.approx(ref.quality, abs=1e-5)
        assert got.importance == pytest.approx(ref.importance, abs=1e-5)


def test_bad_inputs_are_clear_errors(assessor):
    from seagull.errors import RoiError

    with pytest.raises(RoiError, match="resize the mask"):
        assessor.assess(image(60, 80), rois(30, 30))
    with pytest.raises(ModelError, match="unknown task"):
        assessor.assess(image(), rois(), tasks=("beauty",))


def test_untrained_text_answers_raise_instead_of_guessing(assessor):
    with pytest.raises(AnswerParseError):
        assessor.assess(image(), rois()[:1], tasks=("quality",), text=True)


@pytest.mark.slow
def test_a_few_training_steps_move_scores_and_text(make_micro_model, micro_tokenizer, tmp_path):
    """The training API: teach the micro model 'excellent' quality; the score and greedy text follow."""
    model = make_micro_model()
    img, rr = image(seed=5), rois()[:2]
    convs = [
        {
            "rois": [0],
            "turns": [
                {"from": "human", "value": T.region_question("quality")},
                {"from": "gpt", "value": T.answer_quality("excellent")},
            ],
        }
    ]
    batch = collate_conversations(
        [encode_conversation(micro_tokenizer, c, model.config.image_token_id) for c in convs],
        micro_tokenizer.pad_token_id,
    )
    before = Assessor(model, tokenizer=micro_tokenizer).assess(img, rr, tasks=("quality",))[0].quality
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for step in range(30):
        roi = rr[step % 2]
        loss = model(**batch, images=[img], masks=[roi.mask[None]]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(tmp_path / "m", tokenizer=micro_tokenizer)
    trained = Assessor(tmp_path / "m")
    res = trained.assess(img, rr, tasks=("quality",), text=True)
    assert res[0].quality > max(before, 0.9) and res[0].quality_level == "excellent"
    assert res[0].answers["quality"] == T.answer_quality("excellent")
    assert res[0].parsed["quality"] == "excellent"
