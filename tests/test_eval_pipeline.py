"""End-to-end: synthetic dataset evaluation, saved predictions, external suites, bench, CLI."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import roi_record
from seagull.errors import ConfigError, SchemaError
from seagull.eval import commands
from seagull.eval.baselines import QuantileCalibration, make_baseline, quantile_map
from seagull.eval.predictions import (
    SamplePrediction,
    load_prediction_dir,
    read_predictions,
    write_predictions,
)
from seagull.eval.suites import default_predictors, run_cuhk, run_konstanz, run_tid2013
from seagull.eval.synthetic import evaluate_synthetic
from seagull.imageio import load_image, save_image
from seagull.labels import DEFAULT_THRESHOLDS
from seagull.records import SampleRecord, write_shard
from seagull.region_prediction import DistortionPrediction, RegionPrediction
from seagull.roi import box_to_mask

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def data_root() -> Path:
    env = os.environ.get("SEAGULL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def need(sub: str) -> Path:
    p = data_root() / sub
    if not p.is_dir():
        pytest.skip(f"shared data folder {p} is absent")
    return p


# --------------------------------------------------------------------------- a tiny dataset
@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    """Two Kodak references at 192x128, each clean and blurred at two strengths; labels from the
    blur strength (stronger blur -> lower quality) with one ROI blurred locally in half the images."""
    root = need("kodak") / "images"
    out = tmp_path_factory.mktemp("evalset")
    records = []
    for name in ("kodim01.png", "kodim02.png"):
        ref = cv2.resize(load_image(root / name), (192, 128), interpolation=cv2.INTER_AREA)
        h, w = ref.shape[:2]
        masks = [
            box_to_mask([8, 8, 80, 56], h, w),
            box_to_mask([100, 60, 84, 60], h, w),
            box_to_mask([60, 20, 70, 90], h, w),
        ]
        rid = name.split(".")[0]
        (out / "images" / rid).mkdir(parents=True)
        save_image(out / "images" / rid / "clean.png", ref)
        rois = [roi_record(k, m, 1.0, 0.0, None) for k, m in enumerate(masks)]
        records.append(
            SampleRecord(
                f"{rid}__clean", f"images/{rid}/clean.png", name, w, h, {"family": "none"}, rois, split="test"
            )
        )
        for s, sigma in enumerate((1.0, 2.5)):
            blur = cv2.GaussianBlur(ref, (0, 0), sigma)
            local = np.where(masks[0][..., None], blur, ref)
            for scope, img in (("global", blur), ("local", local)):
                rel = f"images/{rid}/blur{s}_{scope}.png"
                save_image(out / rel, img)
                q = [0.85 - 0.3 * s if (scope == "global" or k == 0) else 1.0 for k in range(3)]
                rois = [
                    roi_record(k, m, q[k], (1 - q[k]) * m.mean() * 2, "blur" if q[k] < 1 else None)
                    for k, m in enumerate(masks)
                ]
                records.append(
                    SampleRecord(
                        f"{rid}__blur{s}_{scope}", rel, name, w, h, {"family": "blur"}, rois, split="test"
                    )
                )
    write_shard(out / "shards" / "part0.jsonl", records)
    card = {"name": "tiny", "thresholds": DEFAULT_THRESHOLDS.to_dict(), "label_metric": "ssim"}
    (out / "dataset.json").write_text(json.dumps(card))
    return out


def test_synthetic_evaluation_end_to_end(tiny_dataset, tmp_path):
    res = evaluate_synthetic(
        tiny_dataset,
        tmp_path,
        baselines=["laplacian_var", "constant", "roi_area"],
        bootstrap=10,
        include_fr=False,
    )
    by = {s.name: s for s in res.scores}
    assert set(by) == {"laplacian_var", "constant", "roi_area"}
    assert res.info["rois"] == 2 * 5 * 3
    # the sharpness heuristic ranks blurred ROIs below sharp ones on this set
    assert by["laplacian_var"].quality.srcc > 0.5
    # the constant floor has no ranking but fills the level and type columns
    assert by["constant"].quality is None and by["constant"].type_prf is not None
    assert by["roi_area"].importance is not None and by["roi_area"].quality is None
    # blur heuristics name blur: blur F1 is defined and positive
    assert by["laplacian_var"].type_f1["blur"] > 0
    files = sorted(p.name for p in (tmp_path / "predictions").glob("*.jsonl"))
    assert "laplacian_var.jsonl" in files


def test_several_folders_are_pooled(tiny_dataset, tmp_path):
    """Folders made from the same photos repeat record ids: pooled, ids are prefixed by folder name,
    every record is read from its own folder, and folders with other thresholds are refused."""
    import shutil

    other = tmp_path / "evalset-copy"
    shutil.copytree(tiny_dataset, other)
    (other / "images" / "kodim01" / "clean.png").unlink()  # must not be read from the first folder
    kw = dict(baselines=["laplacian_var"], bootstrap=0, include_fr=False)
    one = evaluate_synthetic(tiny_dataset, None, **kw)
    res = evaluate_synthetic([tiny_dataset, other], tmp_path / "r", **kw)
    assert res.info["rois"] == 2 * one.info["rois"] and res.info["records"] == 2 * one.info["records"]
    # the deleted image is one reported failure, not a crash, and not read from the other folder
    failures = res.info["failures"]
    assert len(failures) == 1 and failures[0].startswith("evalset-copy/kodim01__clean: ")
    ids = set(res.predictions["laplacian_var"])
    assert f"{tiny_dataset.name}/kodim01__clean" in ids and "evalset-copy/kodim02__clean" in ids
    assert (
        "evalset-copy/kodim01__clean" not in ids and len(ids) == 2 * len(one.predictions["laplacian_var"]) - 1
    )
    card = json.loads((other / "dataset.json").read_text())
    card["thresholds"]["visible"] = 0.5
    (other / "dataset.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="evaluate them separately"):
        evaluate_synthetic([tiny_dataset, other], None, **kw)


@pytest.mark.slow
def test_full_reference_upper_bound(tiny_dataset):
    res = evaluate_synthetic(tiny_dataset, None, baselines=[], bootstrap=0, limit=5)
    fr = next(s for s in res.scores if s.name == "fr_label")
    # the clean record of the same reference is used as the reference: blurred ROIs score lower
    assert fr.quality.srcc > 0.5


def test_saved_predictions_score_the_same_without_rerunning(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    ns = argparse.Namespace(
        model="none",
        data=str(tiny_dataset),
        suite="synthetic",
        out=str(run_dir),
        predictions=None,
        limit=None,
        split=None,
        calibration_split=None,
        baselines="laplacian_var,constant",
        bootstrap=0,
        no_fr=True,
    )
    assert commands.cmd_eval(ns) == 0
    first = json.loads((run_dir / "report.json").read_text())
    assert (run_dir / "report.md").is_file() and (run_dir / "scatter_quality.png").is_file()
    ns2 = argparse.Namespace(
        **{**vars(ns), "out": str(tmp_path / "again"), "predictions": str(run_dir / "predictions")}
    )
    assert commands.cmd_eval(ns2) == 0
    second = json.loads((tmp_path / "again" / "report.json").read_text())
    a = {p["name"]: p for p in first["predictors"]}
    b = {p["name"]: p for p in second["predictors"]}
    assert a["laplacian_var"]["quality"]["srcc"] == pytest.approx(b["laplacian_var"]["quality"]["srcc"])
    assert a["constant"]["type_prf"] == b["constant"]["type_prf"]


def test_prediction_file_roundtrip(tmp_path):
    p = SamplePrediction(
        "s1",
        "m",
        [
            RegionPrediction(
                "r0",
                quality=0.4,
                quality_level="poor",
                importance=float("nan"),
                distortions=[
                    DistortionPrediction("noise", 0.9, severity_level="mild", severity=0.2),
                    DistortionPrediction("blur", 0.1, present=False, severity_level="slight", severity=0.0),
                ],
            )
        ],
    )
    write_predictions(tmp_path / "m.jsonl", [p])
    back = list(read_predictions(tmp_path / "m.jsonl"))
    assert back[0].rois[0].importance is None  # NaN is written as null
    assert back[0].rois[0].type_set == ["noise"]  # the present types only
    assert back[0].rois[0].severity_pairs == [("noise", "mild")]
    assert set(load_prediction_dir(tmp_path)) == {"m"}
    with pytest.raises(SchemaError, match="not one of"):
        RegionPrediction.from_dict({"roi": "r0", "distortions": [{"type": "haze"}]})


def test_quantile_calibration_keeps_ranks_and_matches_marginal():
    f = quantile_map([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.9])
    assert f(1) < f(2) < f(3) < f(4)
    assert f(10) == pytest.approx(0.9)
    cal = QuantileCalibration(
        [0.2, 1.0],
        [0.1, 0.2],
        [("blur",), ()],
        [(("blur", "mild"),), ()],
        ["poor", "excellent"],
        ["minor", "minor"],
    )
    cal.fit("x", [0.0, 1.0])
    good = cal.apply("x", RegionPrediction("r", quality_uncalibrated=1.0), "r0")
    bad = cal.apply("x", RegionPrediction("r", quality_uncalibrated=0.0), "r1", distortion_type="noise")
    assert good.distortions == [] and good.quality_level == "excellent"
    assert bad.distortions[0].type == "noise"


# --------------------------------------------------------------------------- external suites
def test_cuhk_suite_runs_with_baselines():
    root = need("cuhk_blur_regions")
    res = run_cuhk(root, default_predictors(None, ["blur_effect", "whole_brisque"]), limit=4)
    rows = {r["predictor"]: r for r in res.rows}
    assert set(rows) == {"blur_effect", "whole_brisque", "size_only", "position_only"}
    assert rows["blur_effect"]["n"] == 4
    assert rows["whole_brisque"]["pair_acc"] == 0.5  # the same score for both ROIs of a photo
    assert 0.0 <= rows["blur_effect"]["auc"] <= 1.0
    assert set(res.extra_tables) == {"motion", "defocus"}


def test_konstanz_suite_runs_with_a_baseline():
    root = need("konstanz_md_iqa_src31")
    res = run_konstanz(root, [make_baseline("piqe")], limit=3)
    row = res.rows[0]
    assert row["predictor"] == "piqe"
    assert row["srcc_quality_vs_level"] is not None and row["srcc_quality_vs_level"] < 0
    assert row["paste_pair_acc"] is not None
    assert len(res.extra_tables["per_distortion"][1]) == 7


def test_tid2013_suite_runs_with_a_baseline():
    root = need("tid2013_fragments")
    res = run_tid2013(root, [make_baseline("laplacian_var")])
    row = res.rows[0]
    assert row["blur4_above_blur5"] is True  # the milder blur is sharper
    assert row["noise_type"] is None  # a score-only baseline names no distortion


def test_suite_cli_writes_report(tmp_path):
    root = need("tid2013_fragments")
    ns = argparse.Namespace(
        model="none",
        data=str(root),
        suite="tid2013",
        out=str(tmp_path),
        predictions=None,
        limit=None,
        split=None,
        calibration_split=None,
        baselines="piqe,constant",
        bootstrap=0,
        no_fr=True,
    )
    assert commands.cmd_eval(ns) == 0
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.json").is_file()


def test_bench_runs_on_two_images(tmp_path):
    root = need("kodak") / "images"
    ns = argparse.Namespace(
        images=str(root),
        model="none",
        limit=2,
        rois=2,
        max_side=160,
        baselines="laplacian_var,piqe",
        out=str(tmp_path),
    )
    assert commands.cmd_bench(ns) == 0
    res = json.loads((tmp_path / "bench.json").read_text())
    assert [r["predictor"] for r in res["rows"]] == ["laplacian_var", "piqe"]
    assert all(r["sec_per_roi"] > 0 and r["rois"] == 4 for r in res["rows"])


def test_register_adds_eval_and_bench():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    commands.register(sub)
    args = p.parse_args(["eval", "--data", "x", "--out", "y", "--suite", "cuhk", "--limit", "3"])
    assert args.func is commands.cmd_eval and args.limit == 3
    assert p.parse_args(["eval", "--data", "a", "b", "--out", "y"]).data == ["a", "b"]
    assert p.parse_args(["bench", "--images", "x"]).func is commands.cmd_bench


def test_model_style_outputs_pass_through_calibration():
    cal = QuantileCalibration([0.5], [0.5], [()], [()], ["fair"], ["normal"])
    # a model that answered only the distortion task keeps its answer; quality stays unanswered
    said = [DistortionPrediction("noise", severity_level="mild")]
    p = cal.apply("m", RegionPrediction("r", distortions=said), "r0")
    assert p.name == "r0" and p.quality is None and p.type_set == ["noise"]
    q = cal.apply("m", RegionPrediction("r", quality=0.3, quality_level="poor", distortions=[]), "r1")
    assert q.quality_level == "poor" and q.type_set == []
    assert cal.apply("m", RegionPrediction("r"), "r2", constant=True).quality_level == "fair"


def test_assessor_predictor_passes_the_assessors_predictions_through():
    from seagull.eval.predictors import AssessorPredictor

    class _Assessor:  # records what the predictor sends
        def assess(self, image, rois, tasks):
            self.rois, self.tasks = rois, tasks
            return [
                RegionPrediction(r.name, quality=0.1 * (k + 1), distortions=[]) for k, r in enumerate(rois)
            ]

    fake = _Assessor()
    masks = [np.eye(8, dtype=bool), np.ones((8, 8), bool)]
    outs = AssessorPredictor(fake).predict(np.zeros((8, 8, 3), np.uint8), masks)
    assert [o.quality for o in outs] == pytest.approx([0.1, 0.2]) and [o.type_set for o in outs] == [[], []]
    assert len(fake.rois) == 2 and fake.rois[0].area == 8
    # the distortion task not asked: no answer (None), not "clean" ([])
    outs = AssessorPredictor(fake, tasks=("quality",)).predict(np.zeros((8, 8, 3), np.uint8), masks)
    assert fake.tasks == ("quality",) and [o.distortions for o in outs] == [None, None]
