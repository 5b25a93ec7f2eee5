"""benchmarks/paper_size.py on a scaled-down seagull-7b (``--smoke``): the released files written from the
model load back through ``load_released`` strictly and bit for bit, the batched Assessor gives the numbers
of the released inference pattern, and the stage-2 LoRA steps run on the loaded model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from helpers import run_benchmark

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("paper_size") / "paper_size.json"
    run = run_benchmark("paper_size.py", "--save", "--out", str(out))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return json.loads(Path(out).read_text())


def test_it_is_the_released_configuration_scaled_down(result) -> None:
    assert result["configuration"].startswith("seagull-7b scaled down")
    assert result["scaled"] == {"layers": 2, "hidden": 64, "vision": "convnext_atto", "image_size": 128}
    assert result["dtype"] == "bfloat16"


def test_released_layout_round_trip_is_strict_and_exact(result) -> None:
    rt = result["round_trip"]
    assert rt["differ"] == [] and rt["missing"] == []
    assert rt["equal"] is True
    assert rt["tensors"] > 200  # LM layers, MFE (mask_linear included), projector and ConvNeXt trunk


def test_batched_path_gives_the_released_patterns_scores(result) -> None:
    rows = {row["rois"]: row for row in result["assess"]}
    assert sorted(rows) == [1, 10]
    assert all(row["max_abs_diff"] <= result["tolerance"] for row in rows.values())
    assert result["outputs_equal"] is True
    # The ROIs get different scores, and each path gives every ROI its own: a mix-up would show.
    assert rows[10]["max_abs_diff"] < rows[10]["quality_spread"]


def test_lora_steps_run_on_the_loaded_model(result) -> None:
    assert [row["batch_images"] for row in result["train"]] == [1, 4]
    for row in result["train"]:
        assert "error" not in row
        assert row["lora_r"] == 128 and row["s_per_step"] > 0
        assert all(math.isfinite(loss) for loss in row["losses"])
