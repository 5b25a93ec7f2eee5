"""Stage 0 (train/tower/): the quality-aware tower's crops, loss, resume, probe and hand-over to stage 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from seagull.errors import ConfigError
from seagull.train.tower.config import load_tower_config
from seagull.train.tower.data import CropSampler, load_photos
from seagull.train.tower.probe import ridge_fit, ridge_predict, run_probe
from seagull.train.tower.trainer import build_module, losses, region_quality_pairs, train_tower

CONFIG = Path(__file__).resolve().parents[1] / "src" / "seagull" / "train" / "configs" / "tower_stage0.yaml"


@pytest.fixture()
def tower_config(tmp_path: Path, tiny_synth_dataset: Path):
    """``tower_config(name, **changes)``: the shipped stage-0 config on the tiny synthetic set."""

    def write(name: str = "tower", **changes) -> Path:
        raw = yaml.safe_load(CONFIG.read_text())
        raw.update(
            train=[str(tiny_synth_dataset)],
            train_split=None,
            val_split=None,
            val_photos=2,
            output_dir=str(tmp_path / name),
            max_steps=6,
            crop=96,
            groups=2,
            variants=2,
            max_rois=3,
            warmup_steps=1,
            save_every=3,
            val_every=6,
            log_every=1,
            threads=1,
            progress=False,
        )
        raw.update(changes)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


def test_crops_are_deterministic_and_keep_regions_inside(tower_config) -> None:
    cfg = load_tower_config(tower_config())
    sampler = CropSampler(load_photos(cfg.train, None), crop=96, groups=2, variants=2, max_rois=3, seed=0)
    a, b = sampler.batch(5), sampler.batch(5)
    assert torch.equal(a.pixels, b.pixels) and torch.equal(a.quality, b.quality)
    assert a.pixels.shape[1] == 3 and a.pixels.shape[2] == a.pixels.shape[3] <= 96  # square, <= crop
    assert len(a.masks) == a.pixels.shape[0]
    assert sum(int(m.shape[0]) for m in a.masks) == len(a.quality) == len(a.group) == len(a.severity)
    assert all(int(m.flatten(1).sum(1).min()) >= sampler.min_pixels for m in a.masks)
    assert not torch.equal(sampler.batch(6).pixels, a.pixels)
    tiny_regions = CropSampler(sampler.photos, crop=96, min_pixels=10**6, seed=0)
    assert tiny_regions.fixed(0) is None  # validation skips such a photo
    with pytest.raises(ConfigError, match="step 3: no region fell inside"):
        tiny_regions.batch(3)


def test_stage0_loss_falls(tower_config) -> None:
    """A few steps at a high rate lower the loss on the batches they trained on."""
    cfg = load_tower_config(tower_config(lr=1e-3, head_lr=1e-2, max_steps=12))
    torch.set_num_threads(1)
    sampler = CropSampler(load_photos(cfg.train, None), crop=96, groups=2, variants=2, max_rois=3, seed=0)
    batches = [sampler.batch(s) for s in range(3)]
    module = build_module(cfg).train()
    with torch.no_grad():
        before = sum(float(losses(module, b, cfg)["loss"]) for b in batches)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    for step in range(12):
        loss = losses(module, batches[step % 3], cfg)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = sum(float(losses(module, b, cfg)["loss"]) for b in batches)
    assert after < 0.7 * before, (before, after)


def test_stage0_run_resumes_bit_identically(tower_config) -> None:
    whole = train_tower(load_tower_config(tower_config("whole")))
    assert (whole.final_dir / "tower.safetensors").is_file() and set(whole.last_val) >= {
        "quality_srcc",
        "type_f1",
        "pair_acc",
    }
    cut = load_tower_config(tower_config("cut"))
    train_tower(cut)
    # Pretend the run died after step 3: drop what came later, then resume.
    import shutil

    shutil.rmtree(cut.output_dir / "checkpoints" / "step-6")
    shutil.rmtree(cut.output_dir / "final")
    resumed = train_tower(cut, resume=True)
    assert resumed.steps == 3
    a = load_file(str(whole.final_dir / "tower.safetensors"))
    b = load_file(str(resumed.final_dir / "tower.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    start = build_module(cut).tower.trunk.state_dict()
    assert any(not torch.equal(start[k], a[k]) for k in a if a[k].is_floating_point())  # it trained
    rows = (cut.output_dir / "metrics.csv").read_text().splitlines()
    steps = [r.split(",")[:2] for r in rows[1:]]
    assert len(steps) == len({tuple(s) for s in steps})  # no step logged twice after the resume


def test_stage0_refuses_a_second_run_and_a_foreign_resume(tower_config) -> None:
    cfg = load_tower_config(tower_config("once", max_steps=3, save_every=3))
    train_tower(cfg)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train_tower(cfg)
    other = load_tower_config(tower_config("once", max_steps=3, save_every=3, lr=5e-4))
    with pytest.raises(ConfigError, match="different configuration"):
        train_tower(other, resume=True)


def test_tower_config_errors_name_the_fix(tower_config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train is empty"):
        load_tower_config(tower_config(train=[]))
    with pytest.raises(ConfigError, match="does not exist"):
        load_tower_config(tower_config(train=[str(tmp_path / "nope")]))
    with pytest.raises(ConfigError, match="crop must be at least"):
        load_tower_config(tower_config(crop=8))
    with pytest.raises(ConfigError, match="unknown option"):
        load_tower_config(tower_config(crops=8))


def test_train_command_dispatches_a_tower_config(tower_config) -> None:
    path = tower_config("cli", max_steps=2, save_every=2, val_every=2)
    done = subprocess.run(
        [sys.executable, "-m", "seagull", "train", "--config", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "trained the tower 2 steps" in done.stdout and "quality_srcc" in done.stdout


def test_ridge_probe_recovers_a_linear_rule_and_pairs_count() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = np.stack([x @ [1.0, -2.0, 0, 0, 0.5], (x[:, 2] > 0).astype(float)], axis=1)
    fit = ridge_fit(x, y)
    pred = ridge_predict(fit, x)
    assert np.corrcoef(pred[:, 0], y[:, 0])[0, 1] > 0.99
    assert ((pred[:, 1] > 0.5) == (y[:, 1] > 0.5)).mean() > 0.8
    truth = np.array([1.0, 0.5, 0.9, 0.52])
    # pairs with a margin >= 0.05: (1.0>0.5), (1.0>0.52), (0.9>0.5), (0.9>0.52), (1.0>0.9) -> 5
    assert region_quality_pairs(truth, truth) == (5, 5)
    assert region_quality_pairs(-truth, truth) == (0, 5)


def test_probe_scores_both_towers_on_the_same_regions(tower_config, tiny_synth_dataset: Path) -> None:
    cfg = load_tower_config(tower_config("probe", max_steps=2, save_every=2, val_every=2))
    trained = train_tower(cfg).final_dir / "tower.safetensors"
    results = run_probe(["imagenet", str(trained)], [tiny_synth_dataset], 1, 1, None, None)
    assert [r.tower for r in results] == ["imagenet", str(trained)]
    assert results[0].test_rois == results[1].test_rois > 0 and results[0].pairs == results[1].pairs > 0
    assert all(-1 <= r.quality_srcc <= 1 and 0 <= r.type_f1 <= 1 and 0 <= r.pair_acc <= 1 for r in results)


def test_stage1_takes_the_tower_and_the_model_keeps_it(tower_config, tmp_path: Path, micro_tokenizer) -> None:
    from seagull.model import load_model
    from seagull.model.seagull import build_model
    from seagull.train.features import preprocessing_fingerprint

    cfg = load_tower_config(tower_config("hand", max_steps=2, save_every=2, val_every=2))
    tower_file = train_tower(cfg).final_dir / "tower.safetensors"
    tok = micro_tokenizer
    model = build_model(
        "seagull-test",
        tokenizer=tok,
        vision={
            "kind": "efficientnet_lite0",
            "name": "efficientnet_lite0",
            "image_size": 64,
            "weights": "package",
        },
    )
    before = preprocessing_fingerprint(model)
    model.use_tower_file(tower_file)
    assert model.config.vision["weights"] == "none" and len(model.config.vision["digest"]) == 12
    assert preprocessing_fingerprint(model) != before  # a new feature cache for the new tower
    model.save_pretrained(tmp_path / "m", tokenizer=tok)
    loaded = load_model(tmp_path / "m")
    trained = load_file(str(tower_file))
    own = loaded.vision_tower.trunk.state_dict()
    assert all(torch.equal(own[k], trained[k]) for k in trained if not k.endswith("num_batches_tracked"))


def test_stage1_config_refuses_a_missing_tower(tmp_path: Path, tiny_train_config) -> None:
    from seagull.train.config import load_config

    path = tiny_train_config(tmp_path, "t", tower=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ConfigError, match="tower: .* does not exist"):
        load_config(path)
