"""Every benchmark still runs: its ``--smoke`` mode exits 0 and prints its table (no timing is checked),
and writes results only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import BENCHMARKS, run_benchmark

pytestmark = pytest.mark.slow

# benchmark -> a line of its table that only a finished run prints
TABLES = {
    "assess_speed.py": "ms / ROI-question",
    "default_model_speed.py": "ten_rois_ms_median",
    "device_check.py": "cpu_ms_per_image",
    "eval_baselines.py": "sec/ROI",
    "folder_throughput.py": "folder throughput:",
    "many_rois.py": "ROIs alone vs inside the",
    "map_localisation.py": "damage found",
    "region_evidence.py": "strongly damaged",
    "paper_size.py": "LoRA step, batch 1",
    "photo_size_speed.py": "reference: a box",
    "synth_throughput.py": "ROIs/s",
    "serve_load.py": "seagull serve load test",
}


def test_every_benchmark_is_covered() -> None:
    assert sorted(TABLES) == sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "common.py")


def results_of(name: str) -> dict[str, float]:
    """The result files one benchmark writes (they are named after it), with their times."""
    return {p.name: p.stat().st_mtime for p in (BENCHMARKS / "results").glob(f"{Path(name).stem}*")}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_smoke_run_prints_its_table_and_writes_nothing(name: str) -> None:
    before = results_of(name)
    run = run_benchmark(name)
    assert run.returncode == 0, run.stderr[-3000:]
    assert TABLES[name] in run.stdout, run.stdout[-3000:]
    assert results_of(name) == before, "results are written only with --save"


def test_save_writes_the_result(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    run = run_benchmark("eval_baselines.py", "--save", "--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"rows"' in out.read_text()
