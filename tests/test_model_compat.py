"""Released SEAGULL-7B compatibility without the multi-GB files: meta device, names, shapes, key maps."""

from __future__ import annotations

import pytest
import timm
import torch

from seagull.errors import ModelError
from seagull.model import build_model, get_config
from seagull.model.checkpoints import (
    RELEASED_TOWER_PREFIX,
    check_released_tokens,
    load_state_into_meta,
    ours_to_released,
    released_to_ours,
)
from seagull.model.vision import build_vision_tower, load_openclip_file

H, FFN, VOCAB, LAYERS = 4096, 11008, 32002, 32

# `mask_extractor.*` names and shapes of the release (the layout reference, written out as data).
RELEASED_MFE: dict[str, tuple[int, ...]] = {
    "feat_linear.weight": (4096, 1024), "feat_linear.bias": (4096,),
    "cross_feat_linear.weight": (4096, 1024), "cross_feat_linear.bias": (4096,),
    "mask_linear.layers.0.weight": (1024, 12544), "mask_linear.layers.0.bias": (1024,),
    "mask_linear.layers.1.weight": (1024, 1024), "mask_linear.layers.1.bias": (1024,),
    "mask_linear.layers.2.weight": (4096, 1024), "mask_linear.layers.2.bias": (4096,),
    **{f"cross_att_res.self_attn.{p}_proj.{s}": (1024, 1024) if s == "weight" else (1024,)
       for p in ("q", "k", "v", "out") for s in ("weight", "bias")},
    "cross_att_res.norm1.weight": (1024,), "cross_att_res.norm1.bias": (1024,),
    **{f"cross_att_res.cross_attn.{p}_proj.{s}": (512, 1024) if s == "weight" else (512,)
       for p in ("q", "k", "v") for s in ("weight", "bias")},
    "cross_att_res.cross_attn.out_proj.weight": (1024, 512), "cross_att_res.cross_attn.out_proj.bias": (1024,),
    "cross_att_res.norm2.weight": (1024,), "cross_att_res.norm2.bias": (1024,),
    "cross_att_res.mlp.lin1.weight": (2048, 1024), "cross_att_res.mlp.lin1.bias": (2048,),
    "cross_att_res.mlp.lin2.weight": (1024, 2048), "cross_att_res.mlp.lin2.bias": (1024,),
    "res2.weight": (1024, 192), "res2.bias": (1024,), "res3.weight": (1024, 384), "res3.bias": (1024,),
    "res4.weight": (1024, 768), "res4.bias": (1024,), "res5.weight": (1024, 1536), "res5.bias": (1024,),
    "g_res2.weight": (1024, 16384), "g_res2.bias": (1024,), "g_res3.weight": (1024, 4096), "g_res3.bias": (1024,),
    "g_res4.weight": (1024, 1024), "g_res4.bias": (1024,), "g_res5.weight": (1024, 256), "g_res5.bias": (1024,),
    "final_mlp.weight": (4096, 8192), "final_mlp.bias": (4096,),
    "global_vit.0.weight": (5, 3, 1, 1), "global_vit.0.bias": (5,),
    "global_vit.3.weight": (1, 5, 1, 1), "global_vit.3.bias": (1,),
    **{f"sa.{p}_proj.{s}": (1024, 1024) if s == "weight" else (1024,)
       for p in ("q", "k", "v", "out") for s in ("weight", "bias")},
    "mlp.layers.0.weight": (512, 1024), "mlp.layers.0.bias": (512,),
    "mlp.layers.1.weight": (512, 512), "mlp.layers.1.bias": (512,),
    "mlp.layers.2.weight": (4096, 512), "mlp.layers.2.bias": (4096,),
}  # fmt: skip


def released_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape of the released merged checkpoint (+ the OpenCLIP trunk)."""
    out: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (VOCAB, H),
        "model.norm.weight": (H,),
        "lm_head.weight": (VOCAB, H),
        "model.mm_projector.0.weight": (H, 768),
        "model.mm_projector.0.bias": (H,),
        "model.mm_projector.2.weight": (H, H),
        "model.mm_projector.2.bias": (H,),
    }
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        out |= {p + f"self_attn.{n}_proj.weight": (H, H) for n in "qkvo"}
        out |= {
            p + "mlp.gate_proj.weight": (FFN, H),
            p + "mlp.up_proj.weight": (FFN, H),
            p + "mlp.down_proj.weight": (H, FFN),
        }
        out |= {p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,)}
    out |= {"mask_extractor." + k: v for k, v in RELEASED_MFE.items()}
    with torch.device("meta"):
        trunk = timm.create_model("convnext_large", pretrained=False, num_classes=0)
    out |= {RELEASED_TOWER_PREFIX + k: tuple(v.shape) for k, v in trunk.state_dict().items()}
    return out


@pytest.fixture(scope="module")
def meta_model():
    with torch.device("meta"):
        return build_model("seagull-7b")


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_seagull7b_parameter_counts_on_meta(meta_model):
    assert abs(count(meta_model.language_model) - 6.738e9) < 0.01e9  # LLaMA-7B with 32002 tokens
    assert abs(count(meta_model.mask_extractor) - 102.9e6) < 0.5e6  # incl. the unused mask_linear (18.1 M)
    assert abs(count(meta_model.mask_extractor.mask_linear) - 18.1e6) < 0.1e6
    assert abs(count(meta_model.mm_projector) - 19.93e6) < 0.05e6
    assert abs(count(meta_model.vision_tower) - 196.2e6) < 0.5e6  # ConvNeXt-Large trunk
    assert meta_model.vision_tower.channels == [192, 384, 768, 1536]
    assert meta_model.vision_tower.feature_sizes() == [128, 64, 32, 16]


def test_released_state_dict_loads_strictly_on_meta(meta_model):
    state = {}
    for name, shape in released_shapes().items():
        ours = released_to_ours(name)
        assert ours is not None, name
        state[ours] = torch.empty(shape, dtype=torch.float16, device="meta")
        assert ours_to_released(ours) == name
    assert set(state) == set(meta_model.state_dict())  # the same names, nothing left over
    load_state_into_meta(meta_model, state, "cpu")
    assert meta_model.mask_extractor.g_res2.weight.dtype == torch.float16
    assert not any(b.is_meta for b in meta_model.buffers())


def test_a_wrong_shape_or_missing_tensor_is_refused():
    with torch.device("meta"):
        model = build_model("seagull-7b")
    state = {released_to_ours(k): torch.empty(s, device="meta") for k, s in released_shapes().items()}
    state["mask_extractor.g_res2.weight"] = torch.empty((1024, 4096), device="meta")  # a 256 px model
    with pytest.raises(ModelError, match="wrong shape"):
        load_state_into_meta(model, dict(state), "cpu")
    state.pop("mask_extractor.g_res2.weight")
    with pytest.raises(ModelError, match="missing"):
        load_state_into_meta(model, state, "cpu")


def test_released_tokens_are_checked():
    class Tok:
        def __init__(self, ids):
            self.ids = ids

        def convert_tokens_to_ids(self, t):
            return self.ids[t]

    check_released_tokens(Tok({"<global>": 32000, "<local>": 32001}))
    with pytest.raises(ModelError, match="32000"):
        check_released_tokens(Tok({"<global>": 5, "<local>": 6}))


def test_openclip_file_loads_through_the_trunk_key_map(tmp_path):
    # A small ConvNeXt with the OpenCLIP layout: visual.trunk.*, visual.head.*, text-tower keys.
    torch.manual_seed(0)
    src = timm.create_model("convnext_atto", pretrained=False, num_classes=0).state_dict()
    file = {"visual.trunk." + k: v for k, v in src.items()}
    file |= {
        "visual.head.mlp.fc1.weight": torch.zeros(4, 4),
        "transformer.resblocks.0.ln_1.weight": torch.ones(3),
    }
    torch.save(file, tmp_path / "open_clip_pytorch_model.bin")
    cfg = dict(
        get_config("seagull-7b").vision,
        name="convnext_atto",
        weights="file",
        weights_path=str(tmp_path / "open_clip_pytorch_model.bin"),
    )
    tower = build_vision_tower(cfg)
    for k, v in tower.trunk.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(v, src[k]), k
    del file["visual.trunk.stem.0.weight"]
    torch.save(file, tmp_path / "broken.bin")
    with pytest.raises(ModelError, match="missing"):
        load_openclip_file(build_vision_tower({**cfg, "weights": "none"}), tmp_path / "broken.bin")


def test_efficientnet_lite0_weights_come_from_the_package():
    from seagull.model.vision import efficientnet_lite0_weights_file

    tower = build_vision_tower(get_config("seagull-tiny").vision)
    src = torch.load(efficientnet_lite0_weights_file(), map_location="cpu", weights_only=True)
    assert torch.equal(tower.trunk.conv_stem.weight, src["_conv_stem.weight"])
    assert torch.equal(tower.trunk.blocks[6][0].conv_pwl.weight, src["_blocks.15._project_conv.weight"])
    assert tower.channels == [24, 40, 112, 320]
    # ImageNet features separate a photo-like pattern from flat grey (random init would be near-constant).
    x = torch.linspace(-2, 2, 128)
    pattern = torch.sin(8 * x)[None, None, :, None] * torch.cos(5 * x)[None, None, None, :]
    f = tower(pattern.expand(1, 3, -1, -1).contiguous())[-1]
    assert f.std() > 0.05


@pytest.mark.slow
def test_load_released_round_trip_on_a_small_compat_model(micro_tokenizer, tmp_path):
    """A small model in the released file layout (sharded .bin, index, OpenCLIP file) loads back exactly."""
    import json

    import numpy as np

    from seagull import templates as T
    from seagull.model.checkpoints import load_released
    from seagull.model.prompting import collate_conversations, encode_conversation

    tok = micro_tokenizer
    base = get_config(
        "seagull-7b",
        vision={"name": "convnext_atto", "image_size": 64},
        mfe={"dim": 16, "heads": 2, "mlp_dim": 32, "local_hidden": 16, "mask_linear_in": 16},
        text_config={
            "model_type": "llama",
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
        },
        global_token_id=tok.convert_tokens_to_ids("<global>"),
        local_token_id=tok.convert_tokens_to_ids("<local>"),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(0)
    ref = build_model(base).eval()
    sd = ref.state_dict()
    released = {ours_to_released(k): v.clone() for k, v in sd.items() if not k.startswith("vision_tower.")}
    names = sorted(released)
    half = len(names) // 2
    folder = tmp_path / "SEAGULL-small"
    folder.mkdir()
    shards = {
        "pytorch_model-00001-of-00002.bin": names[:half],
        "pytorch_model-00002-of-00002.bin": names[half:],
    }
    for fname, keys in shards.items():
        torch.save({k: released[k].half() for k in keys}, folder / fname)
    index = {"weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text(json.dumps({"model_type": "seagull", **base.text_config}))
    tok.save_pretrained(str(folder))
    clip = {
        "visual.trunk." + k[len("vision_tower.trunk.") :]: v.half()
        for k, v in sd.items()
        if k.startswith("vision_tower.trunk.") and not k.startswith("vision_tower.trunk.head.")
    }
    torch.save(
        {**clip, "visual.head.proj.weight": torch.zeros(2, 2)}, tmp_path / "open_clip_pytorch_model.bin"
    )

    model, tok2 = load_released(
        folder, tmp_path / "open_clip_pytorch_model.bin", dtype=torch.float32, base_config=base
    )
    ref.half().float()  # the shards are fp16: compare against the same rounding
    conv = {
        "rois": [0],
        "turns": [
            {"from": "human", "value": T.region_question("quality")},
            {"from": "gpt", "value": T.answer_quality("good")},
        ],
    }
    batch = collate_conversations([encode_conversation(tok2, conv, base.image_token_id)], 0)
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    mask = np.zeros((1, 50, 70), bool)
    mask[0, 5:30, 10:12] = True
    with torch.no_grad():
        a = model(**batch, images=[img], masks=[mask]).logits
        b = ref(**batch, images=[img], masks=[mask]).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ModelError, match="no vision tower"):
        load_released(folder, None, dtype=torch.float32, base_config=base)


@pytest.mark.slow
def test_tiny_design_saves_under_40mb_without_the_package_tower(tmp_path):
    from safetensors import safe_open

    from seagull.model import load_model
    from seagull.model.tokenizer import train_tokenizer

    tok = train_tokenizer(vocab_size=2048)
    torch.manual_seed(0)
    model = build_model("seagull-tiny", tokenizer=tok)
    model.save_pretrained(tmp_path / "tiny", tokenizer=tok)
    weights = tmp_path / "tiny" / "model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        names = list(f.keys())
    assert names and not [k for k in names if k.startswith("vision_tower.")]
    assert weights.stat().st_size < 40e6
    loaded = load_model(tmp_path / "tiny")
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k  # the tower came back from the package, the rest from the file
