"""The SEAGULL model on the micro `seagull-test` config: shapes, gradients, determinism, persistence, masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seagull import templates as T
from seagull.errors import ConfigError, ModelError, RoiError
from seagull.model import SeagullForCausalLM, get_config, load_model
from seagull.model.mfe import boxes_from_masks
from seagull.model.prompting import IGNORE_INDEX, collate_conversations, encode_conversation
from seagull.model.tokenizer import ANSWER_WORDS


def rand_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def box_masks(h: int, w: int, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    m = np.zeros((len(boxes), h, w), dtype=bool)
    for i, (x, y, bw, bh) in enumerate(boxes):
        m[i, y : y + bh, x : x + bw] = True
    return m


def region_conv(n: int, answers: list[str] | None = None) -> dict:
    answers = answers or [T.answer_quality("good")] * n
    turns = []
    for k in range(n):
        q = f"For Region {k + 1}: {T.QUESTIONS['quality']}"
        turns.append({"from": "human", "value": (T.multi_region_preamble(n) + q) if k == 0 else q})
        turns.append({"from": "gpt", "value": answers[k]})
    return {"rois": list(range(n)), "turns": turns}


def test_tokenizer_keeps_answer_words_and_special_tokens_whole(micro_tokenizer):
    for w in ANSWER_WORDS:
        assert len(micro_tokenizer.tokenize(" " + w)) == 1, w
    for s in (T.IMAGE_TOKEN, T.GLOBAL_TOKEN, T.LOCAL_TOKEN):
        assert micro_tokenizer.tokenize(s) == [s]


@pytest.mark.parametrize("size", [(40, 40), (64, 96), (97, 53)])
@pytest.mark.parametrize("n_roi", [1, 3])
def test_region_tokens_shapes(micro_model, size, n_roi):
    h, w = size
    enc = micro_model.encode_images([rand_image(h, w)])
    assert enc.image_tokens.shape == (1, 4, micro_model.config.hidden_size)  # token_grid 2 -> 4 image tokens
    masks = box_masks(h, w, [(i, i, 5 + i, 7) for i in range(n_roi)])
    g, loc = micro_model.encode_regions(enc, [masks])
    assert g.shape == loc.shape == (n_roi, micro_model.config.hidden_size)
    assert torch.isfinite(g).all() and torch.isfinite(loc).all()


def test_masks_of_any_size_including_one_pixel(micro_model):
    img = rand_image(60, 80)
    masks = np.zeros((4, 60, 80), dtype=bool)
    masks[0, 30, 40] = True  # one pixel
    masks[1, :, 79] = True  # one pixel wide, full height
    masks[2, 0, :] = True  # one pixel high, full width
    masks[3] = True  # the whole image
    boxes = boxes_from_masks(torch.from_numpy(masks))
    assert boxes.tolist()[0] == [40, 30, 41, 31]
    assert boxes.tolist()[1] == [79, 0, 80, 60]
    g, loc = micro_model.encode_regions(micro_model.encode_images([img]), [masks])
    assert torch.isfinite(g).all() and torch.isfinite(loc).all()
    # Different ROIs give different tokens (nothing collapsed to an empty crop).
    assert torch.cdist(loc, loc).fill_diagonal_(1.0).min() > 0


def test_empty_mask_and_wrong_size_are_roi_errors(micro_model):
    enc = micro_model.encode_images([rand_image(30, 30)])
    with pytest.raises(RoiError):
        micro_model.encode_regions(enc, [np.zeros((1, 30, 30), bool)])
    with pytest.raises(RoiError, match="image's size"):
        micro_model.encode_regions(enc, [np.ones((1, 20, 30), bool)])


def test_independent_rois_do_not_influence_each_other(micro_model):
    img = rand_image(48, 64)
    masks = box_masks(48, 64, [(2, 2, 10, 10), (30, 20, 20, 15), (5, 30, 8, 8)])
    enc = micro_model.encode_images([img])
    g_all, l_all = micro_model.encode_regions(enc, [masks])
    g_one, l_one = micro_model.encode_regions(enc, [masks[1:2]])
    torch.testing.assert_close(g_all[1:2], g_one, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(l_all[1:2], l_one, rtol=1e-4, atol=1e-5)


def test_joint_mode_lets_rois_attend_to_each_other(make_micro_model):
    m = make_micro_model(mfe={"roi_interaction": "joint"})
    img = rand_image(48, 64)
    masks = box_masks(48, 64, [(2, 2, 10, 10), (30, 20, 20, 15)])
    enc = m.encode_images([img])
    g_all, _ = m.encode_regions(enc, [masks])
    g_one, _ = m.encode_regions(enc, [masks[1:2]])
    assert not torch.allclose(g_all[1], g_one[0])


def test_labels_cover_only_the_answers(micro_tokenizer, micro_model):
    conv = region_conv(2, [T.answer_quality("poor"), T.answer_quality("excellent")])
    e = encode_conversation(micro_tokenizer, conv, micro_model.config.image_token_id)
    supervised = micro_tokenizer.decode(
        [t for t, lab in zip(e.input_ids, e.labels, strict=True) if lab != IGNORE_INDEX]
    )
    assert supervised == " The quality is poor.</s> The quality is excellent.</s>"
    assert e.rois == [0, 1]


def test_region_count_mismatch_is_a_clear_error(micro_tokenizer, micro_model):
    with pytest.raises(RoiError, match="ROIs"):
        encode_conversation(
            micro_tokenizer,
            {"rois": [0], "turns": region_conv(2)["turns"]},
            micro_model.config.image_token_id,
        )
    e = encode_conversation(micro_tokenizer, region_conv(2), micro_model.config.image_token_id)
    batch = collate_conversations([e], micro_tokenizer.pad_token_id)
    img = rand_image(32, 32)
    with pytest.raises(RoiError, match="<global>"):
        micro_model(**batch, images=[img], masks=[box_masks(32, 32, [(0, 0, 4, 4)])])


def test_batch_with_different_roi_counts_and_sizes(micro_tokenizer, micro_model):
    convs = [region_conv(1), region_conv(3), region_conv(2)]
    batch = collate_conversations(
        [encode_conversation(micro_tokenizer, c, micro_model.config.image_token_id) for c in convs],
        micro_tokenizer.pad_token_id,
    )
    images = [rand_image(40, 50, 1), rand_image(70, 30, 2), rand_image(33, 33, 3)]
    masks = [
        box_masks(40, 50, [(1, 1, 10, 10)]),
        box_masks(70, 30, [(0, 0, 5, 5), (10, 10, 10, 30), (29, 69, 1, 1)]),
        box_masks(33, 33, [(3, 3, 3, 3), (0, 0, 33, 33)]),
    ]
    out = micro_model(**batch, images=images, masks=masks)
    assert torch.isfinite(out.loss)
    # Each sequence alone gives the same loss contribution as inside the batch (padding is inert).
    single = micro_model(
        **collate_conversations(
            [encode_conversation(micro_tokenizer, convs[1], micro_model.config.image_token_id)], 0
        ),
        images=images[1:2],
        masks=masks[1:2],
    )
    seq_len = single.logits.shape[1]
    torch.testing.assert_close(out.logits[1, :seq_len], single.logits[0], rtol=1e-4, atol=1e-4)


def test_gradients_reach_only_trainable_parts(micro_tokenizer, micro_model):
    micro_model.train()
    batch = collate_conversations(
        [encode_conversation(micro_tokenizer, region_conv(2), micro_model.config.image_token_id)],
        micro_tokenizer.pad_token_id,
    )
    out = micro_model(
        **batch, images=[rand_image(40, 40)], masks=[box_masks(40, 40, [(0, 0, 9, 9), (20, 20, 5, 5)])]
    )
    out.loss.backward()
    try:
        assert all(p.grad is None for p in micro_model.vision_tower.parameters())
        for name in ("mask_extractor", "mm_projector", "language_model"):
            grads = [p.grad for p in getattr(micro_model, name).parameters() if p.requires_grad]
            assert any(g is not None and g.abs().sum() > 0 for g in grads), name
        assert not micro_model.vision_tower.trunk.training  # frozen BatchNorm stays in eval mode
    finally:
        micro_model.zero_grad(set_to_none=True)
        micro_model.eval()


def test_forward_is_deterministic(micro_tokenizer, micro_model):
    batch = collate_conversations(
        [encode_conversation(micro_tokenizer, region_conv(1), micro_model.config.image_token_id)], 0
    )
    kw = dict(images=[rand_image(50, 50)], masks=[box_masks(50, 50, [(5, 5, 20, 20)])])
    with torch.no_grad():
        a = micro_model(**batch, **kw).logits
        b = micro_model(**batch, **kw).logits
    assert torch.equal(a, b)


def test_save_load_round_trip_gives_equal_outputs(micro_tokenizer, micro_model, tmp_path):
    micro_model.save_pretrained(tmp_path / "m", tokenizer=micro_tokenizer)
    assert (tmp_path / "m" / "model.safetensors").is_file() and (tmp_path / "m" / "tokenizer.json").is_file()
    loaded = load_model(tmp_path / "m")
    again = SeagullForCausalLM.from_pretrained(tmp_path / "m")
    batch = collate_conversations(
        [encode_conversation(micro_tokenizer, region_conv(2), micro_model.config.image_token_id)], 0
    )
    kw = dict(images=[rand_image(45, 61)], masks=[box_masks(45, 61, [(5, 5, 20, 20), (0, 40, 3, 5)])])
    with torch.no_grad():
        ref = micro_model(**batch, **kw).logits
        torch.testing.assert_close(loaded(**batch, **kw).logits, ref)
        torch.testing.assert_close(again(**batch, **kw).logits, ref)


def test_auto_classes_know_seagull(micro_model, micro_tokenizer, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    micro_model.save_pretrained(tmp_path / "m", tokenizer=micro_tokenizer)
    assert AutoConfig.from_pretrained(tmp_path / "m").model_type == "seagull"
    assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path / "m"), SeagullForCausalLM)


def test_config_errors_and_compat_size_check():
    with pytest.raises(ConfigError, match="unknown mfe"):
        get_config("seagull-test", mfe={"nope": 1})
    with pytest.raises(ConfigError):
        get_config("no-such-config")
    with pytest.raises(ConfigError, match="local_mode"):
        get_config("seagull-test", mfe={"local_mode": "magic"})


def test_compat_mfe_rejects_other_input_sizes_and_released_local_branch_runs(make_micro_model):
    m = make_micro_model(
        mfe={
            "mode": "compat",
            "local_mode": "released",
            "dim": 16,
            "heads": 2,
            "mask_linear": True,
            "mask_linear_in": 16,
        },
    )
    g, loc = m.encode_regions(
        m.encode_images([rand_image(37, 81)]), [box_masks(37, 81, [(0, 0, 1, 37), (5, 5, 9, 3)])]
    )
    assert g.shape == loc.shape == (2, m.config.hidden_size)
    enc = m.encode_images([rand_image(20, 20)])
    enc.features = [torch.nn.functional.interpolate(f, scale_factor=2.0) for f in enc.features]
    with pytest.raises(ConfigError, match="adaptive"):
        m.encode_regions(enc, [box_masks(20, 20, [(0, 0, 5, 5)])])


def test_any_timm_backbone_by_name(make_micro_model):
    m = make_micro_model(vision={"name": "resnet18"})
    assert m.vision_tower.channels == [64, 128, 256, 512]
    g, loc = m.encode_regions(m.encode_images([rand_image(40, 56)]), [box_masks(40, 56, [(3, 3, 10, 20)])])
    assert g.shape == loc.shape == (1, m.config.hidden_size)
    with pytest.raises(ConfigError, match="not a timm model"):
        make_micro_model(vision={"name": "no_such_net"})


def test_keep_aspect_crops_are_square_and_native_windows_are_pixel_exact(micro_model):
    mfe = micro_model.mask_extractor
    boxes = torch.tensor([[10.0, 20.0, 50.0, 30.0]])  # 40 x 10
    mfe.local_mode, saved = "released", mfe.local_mode
    try:
        sq = mfe.crop_boxes(boxes)[0]
        assert float(sq[2] - sq[0]) == float(sq[3] - sq[1]) == 40.0
        assert float((sq[0] + sq[2]) / 2) == 30.0 and float((sq[1] + sq[3]) / 2) == 25.0
    finally:
        mfe.local_mode = saved
    # Native windows copy pixels 1:1 (no resampling), so noise and JPEG detail survive.
    img = torch.rand(3, 50, 60)
    masks = torch.zeros(1, 50, 60, dtype=torch.bool)
    masks[0, 20:22, 30:33] = True
    from seagull.model.mfe import RegionBatch

    crops, cmask = mfe.crops([img], RegionBatch([masks]))
    w = mfe.local_window
    x0, y0 = 31 - w // 2, 21 - w // 2  # window centred on the bbox centre pixel
    assert crops.shape == (1, 3, w, w)
    torch.testing.assert_close(crops[0], img[:, y0 : y0 + w, x0 : x0 + w], rtol=1e-6, atol=1e-6)
    assert int(cmask[0].round().sum()) == 6


def test_record_helpers_build_masks_and_corpus(micro_tokenizer):
    from seagull.model.prompting import conversation_masks, record_corpus
    from seagull.records import RoiRecord, SampleRecord
    from seagull.roi import mask_to_rle

    m = np.zeros((20, 30), bool)
    m[2:5, 3:9] = True
    roi = RoiRecord(id="r0", rle=mask_to_rle(m), bbox=[3, 2, 6, 3], area=18, source="test")
    conv = region_conv(1)
    rec = SampleRecord(id="s", image="x.png", reference="y.png", width=30, height=20, distortion={}, rois=[roi],
                       conversations=[conv])  # fmt: skip
    assert np.array_equal(conversation_masks(rec, conv)[0], m)
    text = record_corpus([rec])
    assert len(text) == 1 and text[0].endswith(T.answer_quality("good") + "</s>")


def test_a_foreign_config_json_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama", "hidden_size": 8}')
    with pytest.raises(ConfigError, match="load_released"):
        get_config(tmp_path)


def test_the_released_style_config_points_to_load_released(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"model_type": "seagull", "architectures": ["OspreyLlamaForCausalLM"]}'
    )
    with pytest.raises(ConfigError, match="load_released"):
        get_config(tmp_path)


def test_lora_on_the_language_model_trains_and_merges(make_micro_model, micro_tokenizer):
    peft = pytest.importorskip("peft")
    m = make_micro_model()
    cfg = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=r"language_model\.model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)",
        modules_to_save=["mask_extractor", "mm_projector"],
    )
    pm = peft.get_peft_model(m, cfg)
    batch = collate_conversations(
        [encode_conversation(micro_tokenizer, region_conv(1), m.config.image_token_id)], 0
    )
    out = pm(**batch, images=[rand_image(40, 40)], masks=[box_masks(40, 40, [(5, 5, 4, 4)])])
    out.loss.backward()
    lora_grads = [p.grad for n, p in pm.named_parameters() if "lora_" in n]
    assert lora_grads and all(g is not None for g in lora_grads)
    assert isinstance(pm.merge_and_unload(), SeagullForCausalLM)


def test_token_norm_brings_image_and_region_tokens_to_embedding_scale(make_micro_model, micro_tokenizer):
    m = make_micro_model(token_norm="layernorm")
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    masks = np.zeros((2, 48, 64), bool)
    masks[0, :10, :10] = True
    masks[1, 20:, 30:] = True
    prompt = T.render_prompt([T.Turn("human", T.multi_region_preamble(2) + "Go.")])
    ids = torch.tensor(micro_tokenizer(prompt)["input_ids"])
    with torch.no_grad():
        enc = m.encode_images([img])
        regions = m.encode_regions(enc, [masks])
        emb, _ = m.embed_sequence(ids, enc.image_tokens[0], regions)
    scale = float(m.config.text_config.get("initializer_range", 0.02))
    normed = m.token_norm.glob(regions[0])
    assert torch.allclose(normed.std(-1, unbiased=False), torch.full((2,), scale), rtol=1e-2)
    assert normed.abs().mean() < 10 * scale < regions[0].abs().mean()
    # what the LM receives at the <global> positions (shifted by the spliced image tokens) is the normed token
    shift = enc.image_tokens.shape[1] - 1
    g_pos = (ids == m.config.global_token_id).nonzero().flatten() + shift
    assert torch.allclose(emb[g_pos], normed, atol=1e-6)
    # the released-style model keeps raw tokens (no norm)
    assert make_micro_model().token_norm is None


def test_token_scale_keeps_magnitudes_and_bad_mode_is_refused(make_micro_model):
    m = make_micro_model(token_norm="scale")
    x = torch.randn(3, m.config.hidden_size) * torch.tensor([[1.0], [5.0], [20.0]])
    scale = float(m.config.text_config.get("initializer_range", 0.02))
    assert torch.allclose(m.token_norm.glob(x), x * scale, rtol=1e-5)  # relative magnitudes survive
    with pytest.raises(ConfigError, match="token_norm"):
        make_micro_model(token_norm="batchnorm")


def test_folding_batchnorms_keeps_the_tower_features(make_micro_model):
    from seagull.model.vision import build_vision_tower

    cfg = make_micro_model().config.vision
    tower = build_vision_tower({**cfg, "weights": "none"})
    for mod in tower.modules():  # non-trivial statistics, so a wrong fold would show
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        want = tower(x)
        assert tower.fuse_for_inference() > 10
        got = tower(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in tower.modules())
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-4, rtol=1e-4)
    trainable = build_vision_tower({**cfg, "weights": "none", "frozen": False})
    with pytest.raises(ModelError, match="frozen"):
        trainable.fuse_for_inference()
