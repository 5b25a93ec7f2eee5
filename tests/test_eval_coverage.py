"""A predictor without a usable answer for some ROIs (NIQE on flat crops; null, NaN or infinity in a
prediction file): the table's n is what its numbers use, its coverage is the real share, and a
predictor under the coverage threshold is marked in the table, the printed notes and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from seagull.eval.predictions import SamplePrediction, load_prediction_file
from seagull.eval.protocol import COVERAGE_WARN, RoiLabel, main_row, score_predictor
from seagull.eval.report import protocol_tables, write_protocol_report
from seagull.labels import quality_level
from seagull.region_prediction import RegionPrediction

N = 36
QUALITY = np.linspace(0.1, 0.95, N)


def labels() -> list[RoiLabel]:
    return [
        RoiLabel(f"s{i}", "r0", f"photo{i % 6}", float(q), quality_level(float(q)), None, None, (), ())
        for i, q in enumerate(QUALITY)
    ]


def predictions(name: str, values) -> dict[str, SamplePrediction]:
    return {
        f"s{i}": SamplePrediction(f"s{i}", name, [RegionPrediction(name="r0", quality=v)])
        for i, v in enumerate(values)
    }


def niqe_like() -> list[float | None]:
    """A finite answer for 15 ROIs, null for the other 21 (every ROI has a prediction record)."""
    return [float(q) if i % 12 < 5 else None for i, q in enumerate(QUALITY)]


def test_n_and_coverage_count_usable_answers_only():
    full = score_predictor("full", labels(), predictions("full", QUALITY))
    part = score_predictor("niqe", labels(), predictions("niqe", niqe_like()))
    assert full.coverage == 1.0 and not full.low_coverage and main_row(full)[1:3] == ["36", "100.0"]
    assert part.quality.n == 15 == part.n_used["quality"] and part.n_labelled["quality"] == N
    assert part.coverage == pytest.approx(15 / 36) == part.coverage_by_task["quality"]
    assert part.low_coverage and part.coverage < COVERAGE_WARN
    assert main_row(part)[1:3] == ["15", "41.7*"]


def test_non_finite_numbers_in_a_prediction_file_are_not_answers(tmp_path):
    values = [float(q) for q in QUALITY]
    values[:4] = [math.nan, math.inf, -math.inf, math.nan]
    path = tmp_path / "mine.jsonl"
    lines = [
        json.dumps({"id": f"s{i}", "predictor": "mine", "rois": [{"name": "r0", "quality": v}]})
        for i, v in enumerate(values)
    ]  # json.dumps writes NaN / Infinity, as a careless writer would
    path.write_text("\n".join(lines) + "\n")
    name, preds = load_prediction_file(path)
    res = score_predictor(name, labels(), preds)
    assert res.n_used["quality"] == N - 4 and res.coverage == pytest.approx(32 / 36)
    assert res.low_coverage and main_row(res)[1:3] == ["32", "88.9*"]


def test_low_coverage_is_marked_in_the_printed_table_and_the_report(tmp_path):
    labs = labels()
    preds = {"full": predictions("full", QUALITY), "niqe": predictions("niqe", niqe_like())}
    scores = [score_predictor(n, labs, p) for n, p in preds.items()]
    main, _ = protocol_tables(scores)
    note = [line for line in main.splitlines() if line.startswith("* niqe")]
    assert len(note) == 1 and "quality 15 of 36 (41.7 %)" in note[0]
    assert "* full" not in main
    write_protocol_report(tmp_path, scores, labs, preds, {"suite": "test"})
    doc = json.loads((tmp_path / "report.json").read_text())
    by_name = {p["name"]: p for p in doc["predictors"]}
    assert by_name["niqe"]["coverage"] == pytest.approx(15 / 36) and by_name["niqe"]["low_coverage"]
    assert by_name["niqe"]["n_used"] == {"quality": 15} and by_name["full"]["coverage"] == 1.0
    assert doc["info"]["coverage_threshold"] == COVERAGE_WARN
    md = (tmp_path / "report.md").read_text()
    assert "| niqe | 15 | 41.7* |" in md and "* niqe: usable answers for under 90 %" in md
