"""The shipped default model: it loads offline from the package, answers per region, and the CLI uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from seagull.assess import DEFAULT_WEIGHTS_DIR, Assessor
from seagull.assess import assessor as assess_mod
from seagull.errors import ModelError
from seagull.labels import IMPORTANCE_LEVELS, QUALITY_LEVELS
from seagull.roi import Roi, box_to_mask

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_missing_weights_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(assess_mod, "DEFAULT_WEIGHTS_DIR", tmp_path)
    with pytest.raises(ModelError, match="pass a model folder"):
        Assessor()


def test_shipped_files_are_small_safetensors_with_the_stage0_tower():
    weights = DEFAULT_WEIGHTS_DIR / "model.safetensors"
    assert weights.is_file() and weights.stat().st_size < 50e6
    with safe_open(str(weights), "pt") as f:
        keys = list(f.keys())
    # the quality-aware (stage 0) tower ships in the file; the package's ImageNet weights are not read
    assert any(k.startswith("vision_tower.") for k in keys)
    config = json.loads((DEFAULT_WEIGHTS_DIR / "config.json").read_text())
    assert config["vision"]["weights"] == "none"
    for name in ("config.json", "tokenizer.json"):
        assert (DEFAULT_WEIGHTS_DIR / name).is_file()


@pytest.fixture(scope="module")
def default() -> Assessor:
    return Assessor()


def _rois(h: int, w: int) -> list[Roi]:
    return [
        Roi(box_to_mask([150, 40, 330, 300], h, w), name="cup"),
        Roi(box_to_mask([0, 340, 600, 60], h, w), name="table"),
        Roi(box_to_mask([10, 10, 80, 80], h, w), name="corner"),
    ]


def test_default_model_answers_every_task_per_region(default):
    from seagull.imageio import load_image

    img = load_image(EXAMPLES / "coffee.jpg")
    res = default.assess(img, _rois(*img.shape[:2]))
    for r in res:
        assert 0 <= r.quality <= 1 and r.quality_level in QUALITY_LEVELS
        assert 0 <= r.importance <= 1 and r.importance_level in IMPORTANCE_LEVELS
        assert len(r.distortions) == 6
    # The answers depend on the region, not only on the image.
    assert len({round(r.quality, 4) for r in res}) > 1
    assert len({round(r.importance, 4) for r in res}) > 1


def test_default_model_sees_a_region_made_worse(default):
    """Noise added inside one box only lowers that box's quality score."""
    from seagull.imageio import load_image

    img = load_image(EXAMPLES / "coffee.jpg")
    h, w = img.shape[:2]
    box = box_to_mask([150, 40, 330, 300], h, w)
    noisy = img.astype(np.float32)
    noisy[box] += np.random.default_rng(0).normal(0, 40, noisy[box].shape)
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    roi = [Roi(box, name="cup")]
    clean_q = default.assess(img, roi)[0]
    noisy_q = default.assess(noisy, roi)[0]
    assert noisy_q.quality < clean_q.quality - 0.05
    noise = {d.type: d.confidence for d in noisy_q.distortions}["noise"]
    assert noise > {d.type: d.confidence for d in clean_q.distortions}["noise"]


@pytest.mark.parametrize("variant", ["lens_defocus", "sensor"])
def test_default_model_rates_a_half_made_worse_below_the_rest_of_a_real_photo(default, shared_data, variant):
    """The user's first question on a photo no training split ever used (Kodak kodim08 is in the test
    split of every corpus folder): camera blur or sensor noise in the left half, at a clearly visible
    medium strength; the worse half must score below the untouched right half."""
    from seagull.camera import apply
    from seagull.imageio import load_image

    path = shared_data / "kodak" / "images" / "kodim08.png"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    img = load_image(path)
    h, w = img.shape[:2]
    left = np.zeros((h, w), bool)
    left[:, : w // 2] = True
    worse = np.where(left[..., None], apply(variant, 13, img, np.random.default_rng(0)), img)
    got = default.assess(worse, [Roi(left, name="worse"), Roi(~left, name="rest")])
    assert got[0].quality < got[1].quality


def test_cli_assess_with_no_model_argument_runs_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "seagull", "assess", str(EXAMPLES / "coffee.jpg"), "--rois",
         str(EXAMPLES / "coffee_rois.json"), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    names = [r["name"] for r in json.loads((EXAMPLES / "coffee_rois.json").read_text())["rois"]]
    assert [r["name"] for r in data["rois"]] == names
    for r in data["rois"]:
        assert 0 <= r["quality"] <= 1 and r["quality_level"] in QUALITY_LEVELS
        assert 0 <= r["importance"] <= 1 and r["importance_level"] in IMPORTANCE_LEVELS
        assert len(r["distortions"]) == 6
        assert all(0 <= d["confidence"] <= 1 and 0 <= d["severity"] <= 1 for d in r["distortions"])


def test_the_fused_tower_gives_the_same_features_and_scores(default, coffee):
    import torch

    from seagull.model.seagull import load_model

    plain = load_model(DEFAULT_WEIGHTS_DIR)  # not fused: BatchNorm layers, contiguous layout
    assert default.model.vision_tower.fused and not plain.vision_tower.fused
    torch.manual_seed(0)
    x = torch.randn(3, 3, 384, 384)  # 3 images: more than one chunk of MAX_CHUNK_PIXELS
    window = torch.randn(1, 3, 192, 192)
    with torch.inference_mode():
        for inputs in (x, window):
            got, want = default.model.vision_tower(inputs), plain.vision_tower(inputs)
            for g, w in zip(got, want, strict=True):
                assert g.shape == w.shape and torch.allclose(g, w, atol=1e-3, rtol=1e-3)
    h, w = coffee.shape[:2]
    fused_res = default.assess(coffee, _rois(h, w))
    plain_res = Assessor(plain, tokenizer=DEFAULT_WEIGHTS_DIR).assess(coffee, _rois(h, w))
    for a, b in zip(fused_res, plain_res, strict=True):
        assert a.quality == pytest.approx(b.quality, abs=1e-3)
        assert a.importance == pytest.approx(b.importance, abs=1e-3)


def test_a_fused_tower_refuses_weight_loading_and_saving(default, tmp_path):
    with pytest.raises(ModelError, match="fused"):
        default.model.vision_tower.load_trunk_state({}, "x")
    with pytest.raises(ModelError, match="fused"):
        default.model.save_pretrained(tmp_path / "m")
