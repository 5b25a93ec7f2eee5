"""The CUHK blur suite as authentic data: its fixed photo split, the stage-2 dataset converter
(``seagull data cuhk``) and ``seagull eval --suite cuhk --split``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from seagull.authentic import SPLITS, cuhk_split, read_cuhk_index, select_photos
from seagull.cli import main
from seagull.errors import ConfigError
from seagull.imageio import save_image
from seagull.labels import QUALITY_LEVELS
from seagull.records import iter_records, read_card
from seagull.synth.cuhk import convert_cuhk
from seagull.synth.dataset_check import validate_dataset
from seagull.synth.pipeline import VISIBILITY_THRESHOLDS, assign_split, conversation_seed, level_fields
from seagull.templates import label_conversations

SUBSET = 6  # photos converted: the first 3 motion and 3 defocus ones (train and test among them)


@pytest.fixture(scope="module")
def cuhk(shared_data: Path) -> Path:
    root = shared_data / "cuhk_blur_regions"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"{root} is absent")
    return root


@pytest.fixture(scope="module")
def converted(cuhk: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cuhk") / "authentic"
    assert main(["data", "cuhk", "--refs", str(cuhk), "--out", str(out), "--limit", str(SUBSET)]) == 0
    return out


# --------------------------------------------------------------------------- split
def test_split_is_fixed_disjoint_and_about_70_10_20(cuhk: Path) -> None:
    photos = read_cuhk_index(cuhk)
    assert len(photos) == 450  # every shared photo has a MOS
    assert [p.split for p in photos] == [cuhk_split(p.stem) for p in photos]  # deterministic
    assert all(p.split == assign_split(p.stem, (0.7, 0.1, 0.2), seed=0) for p in photos)  # synthesis's rule
    parts = {s: {p.stem for p in select_photos(photos, s)} for s in SPLITS}
    assert sum(len(v) for v in parts.values()) == len({p.stem for p in photos})  # disjoint, complete
    share = {s: len(v) / len(photos) for s, v in parts.items()}
    assert share == pytest.approx({"train": 0.7, "val": 0.1, "test": 0.2}, abs=0.04)
    limited = select_photos(photos, "test", 4)
    assert {p.split for p in limited} == {"test"} and {p.blur_type for p in limited} == {"motion", "defocus"}


# --------------------------------------------------------------------------- converter
def test_converted_folder_validates_and_trains(converted: Path, cuhk: Path) -> None:
    n, problems = validate_dataset(converted)
    assert problems == [] and n == SUBSET
    assert main(["data", "validate", str(converted)]) == 0
    records = list(iter_records(converted))
    assert {r.split for r in records} >= {"train", "test"}
    assert all(r.split == cuhk_split(r.id) for r in records)
    assert (converted / records[0].image).read_bytes() == (
        cuhk / "images" / f"{records[0].id}.jpg"
    ).read_bytes()

    from seagull.train.config import check_dataset
    from seagull.train.data import load_images

    check_dataset(converted, "data.train", "train")
    train = load_images([converted], "train")
    assert sorted(r.record.id for r in train) == sorted(r.id for r in records if r.split == "train")
    assert read_card(converted)["counts"]["per_split"] == dict(Counter(r.split for r in records))


def test_blurred_roi_is_blur_and_rated_below_the_sharp_one(converted: Path) -> None:
    for rec in iter_records(converted):
        blurred, sharp = rec.rois
        assert blurred.quality < sharp.quality
        assert QUALITY_LEVELS.index(blurred.quality_level) <= QUALITY_LEVELS.index(sharp.quality_level)
        assert [(d.type, d.subtype) for d in blurred.distortions] == [("blur", rec.distortion["subtype"])]
        assert sharp.distortions == []
        assert blurred.area + sharp.area == rec.width * rec.height
        for roi in rec.rois:  # the damage each ROI brings to the photo
            share = roi.area / (rec.width * rec.height)
            assert roi.importance == pytest.approx((1 - roi.quality) * share, abs=1e-4)
        for roi in rec.rois:  # levels cut like the synthetic corpus's (label scheme v2)
            fields = level_fields(roi.quality, roi.importance, None, None, VISIBILITY_THRESHOLDS)
            assert (roi.quality_level, roi.importance_level) == (
                fields["quality_level"],
                fields["importance_level"],
            )
        assert rec.conversations == label_conversations(rec.rois, conversation_seed(0, rec.id))


# --------------------------------------------------------------------------- eval --split
def test_eval_split_test_sees_only_test_photos(cuhk: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = ["eval", "--model", "none", "--suite", "cuhk", "--data", str(cuhk), "--baselines", "laplacian_var"]
    assert main([*argv, "--split", "test", "--limit", "4", "--out", str(out), "--bootstrap", "0"]) == 0
    seen = [json.loads(line)["key"] for line in (out / "raw_outputs" / "laplacian_var.jsonl").open()]
    assert {cuhk_split(Path(k).stem) for k in seen} == {"test"}
    info = json.loads((out / "report.json").read_text())["info"]
    assert info["split"] == "test" and len(seen) == info["photos"] == 4 - info["skipped_tiny_masks"]
    assert info["photos_in_split"] == len(select_photos(read_cuhk_index(cuhk), "test"))
    assert "split**: test" in (out / "report.md").read_text()


def test_split_is_refused_by_suites_without_one(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["eval", "--model", "none", "--suite", "tid2013", "--data", "x", "--out", "y", "--split", "val"]
    assert main(argv) == 2
    assert "tid2013 has no photo split" in capsys.readouterr().err


# --------------------------------------------------------------------------- bad input
def test_refs_without_labels_csv_says_which_file_and_what_to_do(tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError, match=r"labels\.csv does not exist.*cuhk_blur_regions"):
        convert_cuhk(tmp_path, tmp_path / "out")
    assert main(["data", "cuhk", "--refs", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert str(tmp_path / "labels.csv") in capsys.readouterr().err


def _tiny_cuhk(root: Path) -> Path:
    """Three 48x64 photos with half-blurred masks; the third photo's file is not an image."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    mask = np.zeros((48, 64), np.uint8)
    mask[:, 32:] = 255
    rows = ["image,mask,blur_type,width,height,blurred_fraction,mos_paq2piq,has_patch_labels"]
    for k, (stem, kind) in enumerate((("motion0001", "motion"), ("f0002", "defocus"), ("f0003", "defocus"))):
        save_image(root / "masks" / f"{stem}.png", np.repeat(mask[..., None], 3, axis=2))
        rows.append(f"images/{stem}.jpg,masks/{stem}.png,{kind},64,48,0.5,{50 + 10 * k},0")
        if stem == "f0003":
            (root / "images" / f"{stem}.jpg").write_bytes(b"not a jpeg")
        else:
            save_image(root / "images" / f"{stem}.jpg", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_unreadable_photo_is_skipped_and_reported(tmp_path: Path) -> None:
    refs = _tiny_cuhk(tmp_path / "refs")
    res = convert_cuhk(refs, tmp_path / "out")
    assert res.records == 2 and [p for p, _ in res.skipped] == ["images/f0003.jpg"]
    skipped = read_card(tmp_path / "out")["sources"]["skipped_photos"]
    assert skipped[0]["photo"] == "images/f0003.jpg" and "f0003" in skipped[0]["reason"]
    assert validate_dataset(tmp_path / "out")[1] == []

    from seagull.eval.suites import default_predictors, run_cuhk

    res = run_cuhk(refs, default_predictors(None, ["laplacian_var"]))
    assert res.info["photos"] == 2 and res.info["skipped_unreadable"] == 1


def test_blur_drops_set_the_blurred_regions_quality_and_are_recorded(tmp_path: Path) -> None:
    refs = _tiny_cuhk(tmp_path / "refs")
    argv = ["data", "cuhk", "--refs", str(refs), "--out", str(tmp_path / "out"), "--defocus-drop", "0.1"]
    assert main(argv) == 0
    recs = {r.id: r for r in iter_records(tmp_path / "out")}
    for rec, drop in ((recs["motion0001"], 0.3), (recs["f0002"], 0.1)):
        blurred, sharp = rec.rois
        assert sharp.quality - blurred.quality == pytest.approx(drop, abs=1e-5)
    assert read_card(tmp_path / "out")["labels"]["blur_drop"] == {"defocus": 0.1, "motion": 0.3}
    with pytest.raises(ConfigError, match="defocus blur drop 1.5 is not in"):
        convert_cuhk(refs, tmp_path / "out2", drops={"defocus": 1.5, "motion": 0.3})
