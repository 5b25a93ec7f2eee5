"""End-to-end training runs on CPU: learning, kill-and-resume, two processes, loading the result."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "coffee.jpg"

# Pretrained EfficientNet-Lite0 tower (package weights) at a small size: its frozen features carry
# the blur / noise / exposure signal the MFE must learn to read within a few dozen steps.
LEARNING_MODEL = {
    "vision": {
        "kind": "efficientnet_lite0",
        "name": "efficientnet_lite0",
        "image_size": 128,
        "weights": "package",
    },
    "mfe": {"local_window": 64},
}


def check_assesses(folder: Path) -> None:
    """The folder loads in the Assessor, which scores two regions of a photo: finite, within [0, 1]."""
    from seagull.assess import Assessor
    from seagull.imageio import load_image
    from seagull.labels import IMPORTANCE_LEVELS, QUALITY_LEVELS
    from seagull.roi import Roi

    img = load_image(EXAMPLE)
    top = np.zeros(img.shape[:2], dtype=bool)
    top[: img.shape[0] // 2] = True
    results = Assessor(folder).assess(img, [Roi(top, "top"), Roi(~top, "bottom")])
    assert [r.name for r in results] == ["top", "bottom"]
    for r in results:
        scores = [r.quality, r.importance, *(d.confidence for d in r.distortions)]
        assert all(v is not None and math.isfinite(v) and 0 <= v <= 1 for v in scores), r
        assert r.quality_level in QUALITY_LEVELS and r.importance_level in IMPORTANCE_LEVELS
        assert r.distortions, r


def run_cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "seagull", "train", *args], env=env, **kw)


@pytest.mark.slow
def test_quality_srcc_rises_and_final_folder_loads(
    tmp_path: Path, tiny_train_config, tiny_synth_dataset: Path
) -> None:
    """A fit check: 100 steps on one reference's 19 images; validation reads the training images' ROIs
    (with two references in the set, the held-out reference alone cannot show generalisation)."""
    from seagull.model import SeagullForCausalLM
    from seagull.train.config import load_config
    from seagull.train.trainer import train

    cfg = load_config(
        tiny_train_config(
            tmp_path,
            "learn",
            model_overrides=LEARNING_MODEL,
            max_steps=100,
            val_every=50,
            save_every=100,
            data__val_split="train",
            data__task_mix={"quality": 3, "importance": 1, "distortion": 1, "judgment": 1},
        ),
        output_dir=str(tmp_path / "out"),
    )
    result = train(cfg)
    before, after = result.first_val["quality_srcc"], result.last_val["quality_srcc"]
    assert result.losses[-1] < result.losses[0] / 3
    assert after > 0.4 and (math.isnan(before) or after > before + 0.3), (before, after)
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert len(rows) > 10 and any(",val," in r for r in rows)
    assert list((tmp_path / "out" / "tb").glob("events.*"))
    final = result.final_dir
    model = SeagullForCausalLM.from_pretrained(final)
    from seagull.model.processor import PROCESSOR_CONFIG_NAME, SeagullProcessor
    from seagull.train.data import load_images
    from seagull.train.validate import validate

    assert (final / PROCESSOR_CONFIG_NAME).is_file()  # the input side is saved with the model
    processor = SeagullProcessor.from_pretrained(final)
    again = validate(
        model, processor, load_images([tiny_synth_dataset], "train"), None, cfg.data.val_max_rois
    )
    assert again.quality_srcc == pytest.approx(after, abs=1e-3)  # the saved folder is the trained model
    check_assesses(final)


def test_lora_run_merges_into_a_loadable_folder(tmp_path: Path, tiny_train_config) -> None:
    from seagull.model import load_model
    from seagull.train.config import load_config
    from seagull.train.trainer import train

    cfg = load_config(
        tiny_train_config(
            tmp_path,
            "lora",
            max_steps=4,
            val_every=100,
            val_at_start=False,
            parts__lm="lora",
            lora={"r": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]},
        ),
        output_dir=str(tmp_path / "out"),
    )
    result = train(cfg)
    model = load_model(result.final_dir)
    assert not any("lora" in k for k in model.state_dict())
    check_assesses(result.final_dir)
    assert (tmp_path / "out" / "checkpoints" / "step-4" / "trainer_state.json").is_file()


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_weights(tmp_path: Path, tiny_train_config) -> None:
    changes = {
        "max_steps": 24,
        "save_every": 8,
        "val_every": 1000,
        "val_at_start": False,
        "keep_checkpoints": 5,
        "parts__lm": "lora",
        "lora": {"r": 4, "alpha": 8, "dropout": 0.1, "targets": ["q_proj", "v_proj"]},
        "data__turns_per_conversation": 2,
    }
    cfg = tiny_train_config(tmp_path, "resume", **changes)
    full = run_cli(["--config", str(cfg), "--output", str(tmp_path / "full")])
    killed = run_cli(["--config", str(cfg), "--output", str(tmp_path / "killed")])
    first = tmp_path / "killed" / "checkpoints" / "step-8" / "trainer_state.json"
    deadline = time.time() + 120
    while not first.is_file() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.is_file(), "no checkpoint was written"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "final").exists(), "the run finished before it was killed"
    resumed = run_cli(["--config", str(cfg), "--output", str(tmp_path / "killed"), "--resume"])
    assert resumed.wait(timeout=300) == 0
    assert full.wait(timeout=300) == 0
    summary = json.loads((tmp_path / "killed" / "final" / "train_summary.json").read_text())
    assert summary["resumed_from"] >= 8
    a = load_file(str(tmp_path / "full" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "final" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.mark.slow
def test_two_process_run_completes(tmp_path: Path, tiny_train_config) -> None:
    # Two CPU processes on gloo through torch.distributed (accelerate's Accelerator picks the world up
    # from the environment; `accelerate launch --cpu` runs CPU jobs single-process in accelerate 1.x).
    cfg = tiny_train_config(
        tmp_path, "ddp", max_steps=6, save_every=3, val_every=6, val_at_start=False, data__val_max_rois=6
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            "-m",
            "seagull",
            "train",
            "--config",
            str(cfg),
            "--output",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "final" / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    state = json.loads((tmp_path / "out" / "checkpoints" / "step-6" / "trainer_state.json").read_text())
    assert state["world_size"] == 2
