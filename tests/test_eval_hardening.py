"""`seagull eval` for long runs and new users: the shipped model by default, progress saved as it is
made and resumed with identical numbers, `--split all`, clear split errors, NIQE without warnings."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import roi_record
from seagull.errors import ConfigError, SeagullError
from seagull.eval import commands
from seagull.eval.suites import default_predictors, run_cuhk
from seagull.eval.synthetic import evaluate_synthetic
from seagull.imageio import save_image
from seagull.labels import DEFAULT_THRESHOLDS, quality_level, severity_level
from seagull.metrics import nr
from seagull.records import SampleRecord, write_shard
from seagull.region_prediction import DistortionPrediction, RegionPrediction
from seagull.roi import box_to_mask

JOURNAL_DIR = "raw_outputs"  # the documented folder of saved outputs in a report folder
BASELINES = ["laplacian_var", "hf_ratio", "constant", "roi_area"]


# --------------------------------------------------------------------------- a generated dataset
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Three textured references, each clean and blurred at three strengths (12 records, all in split
    'train', as a folder made from a few photos can be), two box ROIs per image."""
    out = tmp_path_factory.mktemp("hardening-set")
    rng = np.random.default_rng(3)
    h, w = 128, 160
    masks = [box_to_mask([8, 8, 70, 60], h, w), box_to_mask([70, 50, 84, 70], h, w)]
    records = []
    for k in range(3):
        noise = rng.random((h // 4, w // 4, 3))
        ref = (cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)
        rid = f"ref{k}"
        (out / "images" / rid).mkdir(parents=True)
        for s, sigma in enumerate((0.0, 1.0, 2.0, 3.5)):
            img = ref if sigma == 0 else cv2.GaussianBlur(ref, (0, 0), sigma)
            rel = f"images/{rid}/s{s}.png"
            save_image(out / rel, img)
            q = 1.0 - 0.2 * s
            rois = [roi_record(j, m, q, float(m.mean()), "blur") for j, m in enumerate(masks)]
            fam = {"family": "none"} if s == 0 else {"family": "blur"}
            records.append(
                SampleRecord(
                    f"{rid}__s{s}",
                    rel,
                    rel if s == 0 else f"images/{rid}/s0.png",
                    w,
                    h,
                    fam,
                    rois,
                    split="train",
                )
            )
    write_shard(out / "shards" / "part0.jsonl", records)
    card = {"name": "hardening", "thresholds": DEFAULT_THRESHOLDS.to_dict(), "label_metric": "ssim"}
    (out / "dataset.json").write_text(json.dumps(card))
    return out


class FakeModel:
    """Model-like answers (calibrated quality, levels, named distortions); counts its calls and can
    stop the run after ``stop_after`` images, as Ctrl-C or a killed job would."""

    name = "seagull:fake"
    identity = "fake-model@1"

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls = 0
        self.stop_after = stop_after

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[RegionPrediction]:
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        outs = []
        for k, m in enumerate(masks):
            sharp = float(np.abs(np.diff(image[..., 1].astype(float), axis=1))[m[:, 1:]].mean()) / 40
            q = float(np.clip(sharp, 0, 1))
            dist = (
                []
                if q > 0.8
                else [
                    DistortionPrediction(
                        "blur", np.float32(0.7), severity_level=severity_level(1 - q), severity=1 - q
                    )
                ]
            )
            imp = float("nan") if k else float(m.mean())  # an unanswered value must survive a resume
            outs.append(
                RegionPrediction(
                    f"r{k}", quality=q, quality_level=quality_level(q), importance=imp, distortions=dist
                )
            )
        return outs


def _scores_json(res) -> str:
    return json.dumps([s.to_dict() for s in res.scores], sort_keys=True, default=str)


def _run(dataset: Path, out: Path | None, model: FakeModel, **kw):
    return evaluate_synthetic(
        dataset, out, model_predictor=model, baselines=BASELINES, bootstrap=20, include_fr=False, **kw
    )


# --------------------------------------------------------------------------- 2. save and resume
def test_interrupted_run_resumes_with_identical_numbers(dataset, tmp_path):
    whole = _run(dataset, tmp_path / "whole", FakeModel())

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        _run(dataset, out, FakeModel(stop_after=5))
    saved = out / JOURNAL_DIR
    lines = (saved / "seagull_fake.jsonl").read_text().splitlines()
    assert len(lines) == 5  # flushed per image, before the end of the run
    assert len((saved / "hf_ratio.jsonl").read_text().splitlines()) >= 5

    again = FakeModel()
    resumed = _run(dataset, out, again)
    assert again.calls == 12 - 5  # only the missing images are computed
    assert _scores_json(resumed) == _scores_json(whole)
    assert resumed.info["failures"] == whole.info["failures"]
    written = {p.name for p in (out / "predictions").glob("*.jsonl")}
    assert "hf_ratio.jsonl" in written and "seagull:fake.jsonl" in written

    # a finished run rerun with the same settings computes nothing and says the same
    third = FakeModel()
    assert _scores_json(_run(dataset, out, third)) == _scores_json(whole) and third.calls == 0


def test_a_line_cut_off_by_a_kill_is_computed_again(dataset, tmp_path):
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        _run(dataset, out, FakeModel(stop_after=3))
    f = out / JOURNAL_DIR / "seagull_fake.jsonl"
    with f.open("a") as fh:
        fh.write('{"key": "ref1__s0", "seconds": 0.1, "outp')  # the process died mid-write
    again = FakeModel()
    res = _run(dataset, out, again)
    assert again.calls == 12 - 3
    assert _scores_json(res) == _scores_json(_run(dataset, None, FakeModel()))


def test_a_run_with_other_settings_is_refused_then_restarted(dataset, tmp_path):
    out = tmp_path / "r"
    _run(dataset, out, FakeModel(), limit=4)
    with pytest.raises(ConfigError, match=r"split.*--restart"):
        _run(dataset, out, FakeModel(), split="train")
    other = FakeModel()
    other.identity = "fake-model@2"
    with pytest.raises(ConfigError, match="fake-model@2"):
        _run(dataset, out, other)
    fresh = FakeModel()
    _run(dataset, out, fresh, split="train", restart=True)
    assert fresh.calls == 12


def test_a_finished_run_gains_a_predictor_without_running_the_others_again(dataset, tmp_path):
    """A rerun that only adds predictors (a new model beside the baselines) reuses the saved outputs of
    the others and gives the numbers of one fresh run with all of them; removing one is refused."""
    out = tmp_path / "more"
    first = evaluate_synthetic(
        dataset, out, model_predictor=FakeModel(), baselines=["hf_ratio"], bootstrap=20, include_fr=False
    )
    saved = out / JOURNAL_DIR
    before = {p.name: p.read_bytes() for p in saved.glob("*.jsonl")}
    added = FakeModel()
    res = _run(dataset, out, added)
    assert added.calls == 0  # the model was saved by the first run
    assert {p.name: p.read_bytes() for p in saved.glob("*.jsonl") if p.name in before} == before
    assert len((saved / "laplacian_var.jsonl").read_text().splitlines()) == 12
    assert _scores_json(res) == _scores_json(_run(dataset, None, FakeModel()))
    assert first.scores and len(res.scores) > len(first.scores)
    with pytest.raises(ConfigError, match="--restart"):
        evaluate_synthetic(
            dataset, out, model_predictor=FakeModel(), baselines=["hf_ratio"], bootstrap=20, include_fr=False
        )


def test_a_limited_run_is_extended_by_a_full_rerun(dataset, tmp_path):
    out = tmp_path / "grow"
    _run(dataset, out, FakeModel(), limit=4)
    rest = FakeModel()
    res = _run(dataset, out, rest)
    assert rest.calls == 8
    assert _scores_json(res) == _scores_json(_run(dataset, None, FakeModel()))


def test_progress_bar_on_stderr(dataset, tmp_path, capsys):
    evaluate_synthetic(
        dataset, tmp_path, baselines=["constant"], bootstrap=0, include_fr=False, progress=True
    )
    assert "12/12" in capsys.readouterr().err


def _shared_data() -> Path:
    env = os.environ.get("SEAGULL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_suite_run_resumes_with_identical_rows(tmp_path):
    from seagull.eval.journal import open_journal

    root = _shared_data() / "cuhk_blur_regions"
    if not root.is_dir():
        pytest.skip(f"shared data folder {root} is absent")

    class Stopping:
        name = "laplacian_var"

        def __init__(self, inner, stop_after: int | None) -> None:
            self.inner, self.stop_after, self.calls = inner, stop_after, 0

        def predict(self, image, masks):
            if self.stop_after is not None and self.calls >= self.stop_after:
                raise KeyboardInterrupt
            self.calls += 1
            return self.inner.predict(image, masks)

    lap = default_predictors(None, ["laplacian_var"])[0]
    whole = run_cuhk(root, [lap], limit=4)
    with open_journal(tmp_path, {"suite": "cuhk"}) as j, pytest.raises(KeyboardInterrupt):
        run_cuhk(root, [Stopping(lap, 2)], limit=4, journal=j)
    again = Stopping(lap, None)
    with open_journal(tmp_path, {"suite": "cuhk"}) as j:
        resumed = run_cuhk(root, [again], limit=4, journal=j)
    assert again.calls == 2
    assert resumed.rows == whole.rows and resumed.extra_tables == whole.extra_tables


# --------------------------------------------------------------------------- 1. the shipped model
def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    commands.register(p.add_subparsers())
    return p.parse_args(["eval", *argv])


def _constant_eval(dataset: Path, out: Path, *argv: str) -> argparse.Namespace:
    """`seagull eval` of ``dataset`` into ``out`` with the constant baseline only and no FR metrics."""
    return _parse("--data", str(dataset), "--out", str(out), "--baselines", "constant", "--no-fr", *argv)


def test_eval_uses_the_shipped_model_unless_model_none(dataset, tmp_path, monkeypatch, capsys):
    from seagull.assess import default_model_dir
    from seagull.eval import predictors

    loaded = []

    def fake_load(path, name=None):
        loaded.append(Path(path))
        return FakeModel()

    monkeypatch.setattr(predictors, "load_model_predictor", fake_load)
    args = _constant_eval(dataset, tmp_path / "a", "--bootstrap", "0")
    assert commands.cmd_eval(args) == 0
    assert loaded == [default_model_dir()]
    said = capsys.readouterr().out
    assert "seagull:fake" in said and "shipped default" in said and "constant" in said
    assert (tmp_path / "a" / "predictions" / "seagull:fake.jsonl").is_file()

    args = _constant_eval(dataset, tmp_path / "b", "--model", "none")
    assert commands.cmd_eval(args) == 0
    assert len(loaded) == 1 and "no model (--model none)" in capsys.readouterr().out


def test_eval_compares_several_models_in_one_run(dataset, tmp_path, monkeypatch, capsys):
    from seagull.eval import predictors

    def fake_load(path, name=None):
        model = FakeModel()
        model.name = f"seagull:{Path(path).name}"
        return model

    monkeypatch.setattr(predictors, "load_model_predictor", fake_load)
    args = _constant_eval(dataset, tmp_path / "a", "--bootstrap", "0", "--model", "m/v1", "m/v2")
    assert commands.cmd_eval(args) == 0
    said = capsys.readouterr().out
    assert "seagull:v1 from m/v1, seagull:v2 from m/v2" in said
    assert {p.name for p in (tmp_path / "a" / "predictions").iterdir()} >= {
        "seagull:v1.jsonl",
        "seagull:v2.jsonl",
    }
    with pytest.raises(ConfigError, match="share a name"):
        commands.cmd_eval(_constant_eval(dataset, tmp_path / "b", "--model", "a/v1", "b/v1"))
    with pytest.raises(ConfigError, match="baselines only"):
        commands.cmd_eval(_constant_eval(dataset, tmp_path / "c", "--model", "none", "a/v1"))


# --------------------------------------------------------------------------- 3. splits
def test_split_all_is_the_documented_default(dataset, tmp_path):
    from seagull.cli import build_parser

    assert _parse("--data", "x", "--out", "y").split is None  # each suite's own default: all (mos: test)
    eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]
    assert "'all' records (default: all; mos: test)" in " ".join(eval_parser.format_help().split())
    res_all = evaluate_synthetic(dataset, None, baselines=["constant"], bootstrap=0, include_fr=False)
    named = evaluate_synthetic(
        dataset, None, baselines=["constant"], split="all", bootstrap=0, include_fr=False
    )
    assert named.info["records"] == 12 and named.info["split"] is None
    args = _constant_eval(dataset, tmp_path, "--model", "none", "--split", "all", "--bootstrap", "0")
    assert commands.cmd_eval(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["info"]["records"] == res_all.info["records"] == 12


def test_empty_split_says_what_the_splits_hold(dataset):
    with pytest.raises(SeagullError) as e:
        evaluate_synthetic(dataset, None, baselines=["constant"], split="test", bootstrap=0, include_fr=False)
    msg = str(e.value)
    assert "no records in split 'test'" in msg and "train 12" in msg and "--split all" in msg


# --------------------------------------------------------------------------- 4. NIQE on flat crops
@pytest.mark.filterwarnings("error")
def test_niqe_of_a_clipped_crop_is_nan_without_warnings():
    # an over-exposed ROI: every block is flat, so no block has NIQE features
    assert np.isnan(nr.niqe(np.full((164, 122, 3), 255, np.uint8)))
    # one textured block is still too few to fit the crop's Gaussian
    img = np.full((64, 128, 3), 255, np.uint8)
    img[:, :64] = np.random.default_rng(0).integers(0, 256, (64, 64, 3))
    assert np.isnan(nr.niqe(img))
    # half clipped, half textured: defined, from the textured blocks
    img = np.full((200, 200, 3), 255, np.uint8)
    img[:100] = np.random.default_rng(0).integers(0, 256, (100, 200, 3))
    assert np.isfinite(nr.niqe(img))
