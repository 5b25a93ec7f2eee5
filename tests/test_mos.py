"""Human-rated sets: ``seagull data mos`` (import from CSV and MAT, names, splits, levels, resume) and
``seagull eval --suite mos`` (correlations after the logistic fit, bootstrap, baselines' orientation).

The fixture is made here: one textured photo blurred at increasing strengths, with a made-up MOS that
falls as the blur grows, so the sharpness baselines have a known order.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from scipy.io import savemat

from seagull import cli
from seagull.authentic import ACR_CUTS, EQUAL_CUTS, MosScale, cuhk_split, mos_of
from seagull.errors import ConfigError, SchemaError
from seagull.eval.journal import RunJournal
from seagull.eval.mos import limited, run_mos
from seagull.eval.predictors import AssessorPredictor
from seagull.eval.suites import default_predictors
from seagull.metrics import stats
from seagull.records import iter_records, read_card
from seagull.region_prediction import RegionPrediction
from seagull.splits import assign_split
from seagull.synth.dataset_check import validate_dataset
from seagull.synth.mos import Columns, MosImport, ScoreFile, config_from_options, import_mos

N_PHOTOS = 12


def _texture(seed: int = 0, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.uniform(0, 255, (size, size, 3)), sigma=(1.2, 1.2, 0))
    yy, xx = np.mgrid[:size, :size]
    base += 60 * ((xx // 12 + yy // 12) % 2)[..., None]  # edges, so blur removes detail steadily
    return np.clip(base, 0, 255).astype(np.uint8)


def _acr_mos(k: int) -> float:
    return round(5.0 - 4.0 * k / (N_PHOTOS - 1), 4)  # 5 (sharpest) .. 1 (most blurred)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """``p00.png`` .. ``p11.png``: the same photo blurred more and more (sigma 0 .. 3.3 px)."""
    root = tmp_path_factory.mktemp("mos_photos")
    base = _texture()
    for k in range(N_PHOTOS):
        img = base if k == 0 else ndimage.gaussian_filter(base.astype(float), sigma=(0.3 * k, 0.3 * k, 0))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"p{k:02d}.png")
    return root


def _write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def _rows(names=None) -> list[dict]:
    names = names or [f"p{k:02d}.png" for k in range(N_PHOTOS)]
    return [{"file": n, "mos": _acr_mos(k), "sd": 0.5} for k, n in enumerate(names)]


def _cfg(photos: Path, scores: list[ScoreFile], **kw) -> MosImport:
    cols = kw.pop("columns", Columns("file", "mos", "sd"))
    return MosImport(photos, scores, cols, kw.pop("scale", MosScale(1.0, 5.0)), **kw)


@pytest.fixture(scope="module")
def acr_folder(tmp_path_factory, photo_dir) -> Path:
    """The 12 photos imported with an official train (8) / test (4) split on an ACR 1-5 scale."""
    tmp = tmp_path_factory.mktemp("mos_acr")
    rows = _rows()
    train = _write_csv(tmp / "train.csv", [r for k, r in enumerate(rows) if k % 3 != 1])
    test = _write_csv(tmp / "test.csv", [r for k, r in enumerate(rows) if k % 3 == 1])
    cfg = _cfg(photo_dir, [ScoreFile((train,), "train"), ScoreFile((test,), "test")], val_fraction=0.25)
    import_mos(cfg, tmp / "out")
    return tmp / "out"


# --------------------------------------------------------------------------- levels
def test_acr_scale_levels_at_the_anchors_and_midpoints():
    s = MosScale(1.0, 5.0)
    assert s.levels == "acr" and s.cuts == ACR_CUTS
    assert [s.level(v) for v in (1, 2, 3, 4, 5)] == ["bad", "poor", "fair", "good", "excellent"]
    assert [s.level(v) for v in (1.49, 1.5, 2.49, 2.5, 4.49, 4.5)] == [
        "bad",
        "poor",
        "poor",
        "fair",
        "good",
        "excellent",
    ]
    assert s.normalise(3.0) == 0.5
    worse_low = MosScale(1.0, 5.0, lower_better=True)
    assert (
        worse_low.level(1) == "excellent" and worse_low.level(5) == "bad" and worse_low.normalise(2) == 0.75
    )


def test_other_scales_cut_in_equal_intervals():
    s = MosScale(0.0, 100.0)
    assert s.levels == "equal" and s.cuts == EQUAL_CUTS
    assert [s.level(v) for v in (0, 19.99, 20, 59.9, 60, 79.99, 80, 100)] == [
        "bad",
        "bad",
        "poor",
        "fair",
        "good",
        "good",
        "excellent",
        "excellent",
    ]
    assert MosScale(0.0, 1.0).level(0.5) == "fair"
    assert MosScale(1.0, 5.0, levels="equal").level(4.3) == "excellent"  # equal intervals of width 0.8
    with pytest.raises(ConfigError, match="ACR anchors need the scale 1,5"):
        MosScale(0.0, 100.0, levels="acr")
    with pytest.raises(ConfigError, match="LO < HI"):
        MosScale(5.0, 1.0)


# --------------------------------------------------------------------------- import
def test_csv_import_writes_a_valid_folder_with_the_mos_in_each_record(acr_folder, photo_dir):
    n, problems = validate_dataset(acr_folder)
    assert (n, problems) == (N_PHOTOS, [])
    card = read_card(acr_folder)
    assert card["label_tasks"] == ["quality"] and card["thresholds"]["quality"] == list(ACR_CUTS)
    assert card["sources"]["photos_root"] == str(photo_dir.resolve())
    assert os.readlink(acr_folder / "photos") == str(photo_dir.resolve())
    assert not list(acr_folder.glob("**/p0*.png"))  # referenced in place, never copied
    recs = {r.id: r for r in iter_records(acr_folder)}
    for k in range(N_PHOTOS):
        rec = recs[f"p{k:02d}"]
        (roi,) = rec.rois
        assert rec.image == f"photos/p{k:02d}.png" and roi.bbox == [0, 0, 96, 96] and roi.area == 96 * 96
        m = mos_of(rec)
        assert m["raw"] == _acr_mos(k) and m["normalised"] == pytest.approx((_acr_mos(k) - 1) / 4, abs=1e-6)
        assert m["std"] == 0.5 and m["std_normalised"] == 0.125
        assert roi.quality == m["normalised"] and roi.quality_level == MosScale(1.0, 5.0).level(m["raw"])
        assert roi.importance is None and roi.distortions == []
        answers = [t["value"] for c in rec.conversations for t in c["turns"] if t["from"] == "gpt"]
        assert f"The quality is {roi.quality_level}." in answers or any(
            "No. The quality" in a for a in answers
        )
    assert recs["p00"].rois[0].quality_level == "excellent" and recs["p11"].rois[0].quality_level == "bad"


def test_official_split_kept_and_validation_drawn_from_train_by_photo(acr_folder):
    recs = list(iter_records(acr_folder))
    test = sorted(r.id for r in recs if r.split == "test")
    assert test == [f"p{k:02d}" for k in range(N_PHOTOS) if k % 3 == 1]
    for r in recs:
        if r.id not in test:
            assert r.split == assign_split(r.id, (0.75, 0.25, 0.0), 0)
    assert {r.split for r in recs} == {"train", "val", "test"}
    card = read_card(acr_folder)
    assert card["split"]["val_from_train"]["fraction"] == 0.25
    assert sum(card["counts"]["per_split"].values()) == N_PHOTOS


def test_training_reads_the_folder(acr_folder):
    from seagull.train.config import check_dataset
    from seagull.train.data import load_images

    check_dataset(acr_folder, "train", "train")
    refs = load_images([acr_folder], "train")
    assert refs and all(ref.image_path.is_file() for ref in refs)


def test_mat_files_read_as_live_ships_them(tmp_path, photo_dir):
    rows = _rows()
    names = np.array([r["file"] for r in rows], dtype=object)
    savemat(tmp_path / "names.mat", {"AllImages_release": names[:, None]})
    savemat(tmp_path / "mos.mat", {"AllMOS_release": np.array([r["mos"] for r in rows])[None, :]})
    savemat(tmp_path / "std.mat", {"AllStdDev_release": np.full(len(rows), 0.5)})
    files = tuple(tmp_path / f for f in ("names.mat", "mos.mat", "std.mat"))
    cols = Columns("AllImages_release", "AllMOS_release", "AllStdDev_release")
    res = import_mos(_cfg(photo_dir, [ScoreFile(files)], columns=cols), tmp_path / "out")
    assert res.records == N_PHOTOS and validate_dataset(tmp_path / "out")[1] == []
    got = {r.id: mos_of(r) for r in iter_records(tmp_path / "out")}
    assert {k: (v["raw"], v["std"]) for k, v in got.items()} == {
        f"p{k:02d}": (_acr_mos(k), 0.5) for k in range(N_PHOTOS)
    }
    for r in iter_records(tmp_path / "out"):  # no official split: by photo, 80/10/10, seed 0
        assert r.split == assign_split(r.id, (0.8, 0.1, 0.1), 0)
    with pytest.raises(ConfigError, match="hold no variable 'MOS'.*AllMOS_release"):
        import_mos(
            _cfg(photo_dir, [ScoreFile(files)], columns=Columns("AllImages_release", "MOS")), tmp_path / "o2"
        )


def test_names_without_photos_are_all_named_in_one_message(tmp_path, photo_dir):
    names = [f"p{k:02d}.png" for k in range(N_PHOTOS)]
    names[1], names[5] = "p01.jpg", "zzz_missing.bmp"
    scores = _write_csv(tmp_path / "s.csv", _rows(names))
    with pytest.raises(ConfigError) as e:
        import_mos(_cfg(photo_dir, [ScoreFile((scores,))]), tmp_path / "out")
    msg = str(e.value)
    assert msg.startswith("2 names in the score file(s) have no photo")
    assert "s.csv:3 'p01.jpg' (close match: 'p01.png')" in msg
    assert "s.csv:7 'zzz_missing.bmp'" in msg and "--photos" in msg
    assert not (tmp_path / "out").exists()  # nothing written before the names are checked


def test_rows_that_are_wrong_are_reported_together(tmp_path, photo_dir):
    rows = _rows()
    rows[2]["mos"], rows[4]["mos"], rows[6]["mos"] = "7.5", "abc", ""
    rows[8]["file"] = rows[9]["file"]
    scores = _write_csv(tmp_path / "s.csv", rows)
    with pytest.raises(ConfigError) as e:
        import_mos(_cfg(photo_dir, [ScoreFile((scores,))]), tmp_path / "out")
    msg = str(e.value)
    assert "3 problems" in msg and "MOS 7.5 of 'p02.png' is outside the declared scale 1,5" in msg
    assert "s.csv:6: MOS 'abc' is not a number" in msg and "photo 'p09' has 2 rows" in msg
    with pytest.raises(ConfigError, match="no column 'score'; its columns are \\['file', 'mos', 'sd'\\]"):
        import_mos(_cfg(photo_dir, [ScoreFile((scores,))], columns=Columns("file", "score")), tmp_path / "o")


def test_case_only_difference_resolved_when_unique_and_recorded(tmp_path, photo_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in photo_dir.iterdir():
        (photos / p.name).write_bytes(p.read_bytes())
    (photos / "p03.png").rename(photos / "P03.PNG")
    rows = _rows()
    rows[5]["mos"] = ""  # a row without a MOS is left out and listed
    scores = _write_csv(tmp_path / "s.csv", rows)
    res = import_mos(_cfg(photos, [ScoreFile((scores,))]), tmp_path / "out")
    assert res.records == N_PHOTOS - 1 and res.without_mos == ["s.csv:7 'p05.png'"]
    card = read_card(tmp_path / "out")
    assert card["sources"]["case_only_matches"] == [{"name": "p03.png", "file": "P03.PNG", "row": "s.csv:5"}]
    assert card["sources"]["photos_without_score"] == 1  # p05.png
    rec = next(r for r in iter_records(tmp_path / "out") if r.id == "p03")
    assert rec.image == "photos/P03.PNG" and validate_dataset(tmp_path / "out")[1] == []
    (photos / "p03.png").write_bytes((photos / "P03.PNG").read_bytes())
    names = [f"p{k:02d}.png" for k in range(N_PHOTOS)]
    names[3] = "P03.png"  # matches neither file exactly, both ignoring case
    with pytest.raises(ConfigError, match="several files differ from it only in case"):
        import_mos(
            _cfg(photos, [ScoreFile((_write_csv(tmp_path / "t.csv", _rows(names)),))]), tmp_path / "o2"
        )


def test_resume_skips_written_photos_refuses_other_options_and_relinks_moved_photos(tmp_path, photo_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in photo_dir.iterdir():
        (photos / p.name).write_bytes(p.read_bytes())
    scores = _write_csv(tmp_path / "s.csv", _rows())
    out = tmp_path / "out"
    first = import_mos(_cfg(photos, [ScoreFile((scores,))]), out)
    assert (first.new, first.reused) == (N_PHOTOS, 0)
    before = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    (out / "shards" / "p04.jsonl").unlink()  # as if killed before this photo
    (out / "dataset.json").unlink()
    again = import_mos(_cfg(photos, [ScoreFile((scores,))]), out)
    assert (again.new, again.reused) == (1, N_PHOTOS - 1)
    assert {p.name: p.read_bytes() for p in (out / "shards").iterdir()} == before
    with pytest.raises(ConfigError, match="other options or score files \\(scale differ"):
        import_mos(_cfg(photos, [ScoreFile((scores,))], scale=MosScale(0.0, 10.0)), out)
    moved = tmp_path / "moved"
    photos.rename(moved)
    assert validate_dataset(out)[1]  # the link points nowhere now
    res = import_mos(_cfg(moved, [ScoreFile((scores,))]), out)
    assert res.relinked and (res.new, res.reused) == (0, N_PHOTOS)
    assert validate_dataset(out)[1] == [] and read_card(out)["sources"]["photos_root"] == str(moved.resolve())
    dataset_moved = tmp_path / "dataset_moved"
    out.rename(dataset_moved)  # the dataset folder itself moves: the absolute link still holds
    assert validate_dataset(dataset_moved)[1] == []


def test_split_column_and_photo_and_cuhk_splits(tmp_path, photo_dir):
    rows = _rows()
    for k, r in enumerate(rows):
        r["part"] = ["Training", "validation", "TEST"][k % 3]
    scores = _write_csv(tmp_path / "s.csv", rows)
    cols = Columns("file", "mos", split="part")
    import_mos(_cfg(photo_dir, [ScoreFile((scores,))], columns=cols), tmp_path / "col")
    got = {r.id: r.split for r in iter_records(tmp_path / "col")}
    assert got == {f"p{k:02d}": ["train", "val", "test"][k % 3] for k in range(N_PHOTOS)}
    assert "val_from_train" not in read_card(tmp_path / "col")["split"]
    import_mos(_cfg(photo_dir, [ScoreFile((scores,))], split_from="cuhk"), tmp_path / "cuhk")
    assert {r.id: r.split for r in iter_records(tmp_path / "cuhk")} == {k: cuhk_split(k) for k in got}
    rows[0]["part"] = "dev"
    bad = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ConfigError, match="s?bad.csv:2: split 'dev' is not one of train, val, test"):
        import_mos(_cfg(photo_dir, [ScoreFile((bad,))], columns=cols), tmp_path / "bad")
    with pytest.raises(ConfigError, match="--split-from cuhk replaces an official split"):
        import_mos(_cfg(photo_dir, [ScoreFile((scores,))], columns=cols, split_from="cuhk"), tmp_path / "x")


def test_biq2021_preset_reads_its_layout(tmp_path, photo_dir):
    """A miniature of the BIQ2021 clone: Images/, the train CSV with two empty columns, one file name
    that differs from its row only in case."""
    src = tmp_path / "BIQ2021"
    (src / "Images").mkdir(parents=True)
    names = [f"ss0{1 + k % 3} ({k})" for k in range(N_PHOTOS)]
    for k, name in enumerate(names):
        ext = ".JPG" if k == 4 else ".jpg"
        Image.open(photo_dir / f"p{k:02d}.png").convert("RGB").save(src / "Images" / f"{name}{ext}")
    mos = [round(1 - k / (N_PHOTOS - 1), 4) for k in range(N_PHOTOS)]
    with (src / "Train (Images and MOS).csv").open("w", encoding="utf-8") as f:
        f.write("Image Name,MOS,,\n" + "".join(f"{names[k]}.jpg,{mos[k]},,\n" for k in range(9)))
    with (src / "Test (Images and MOS).csv").open("w", encoding="utf-8") as f:
        f.write("Image Name,MOS\n" + "".join(f"{names[k]}.jpg,{mos[k]}\n" for k in range(9, N_PHOTOS)))
    cfg = config_from_options(preset="biq2021", source=src)
    res = import_mos(cfg, tmp_path / "out")
    assert res.per_split["test"] == 3 and res.records == N_PHOTOS
    assert res.case_only == [
        {"name": "ss02 (4).jpg", "file": "ss02 (4).JPG", "row": "Train (Images and MOS).csv:6"}
    ]
    card = read_card(tmp_path / "out")
    assert card["groups"] == {"ss01": 4, "ss02": 4, "ss03": 4} and "BIQ2021" in card["licence_notes"][0]
    assert card["thresholds"]["quality"] == list(EQUAL_CUTS) and validate_dataset(tmp_path / "out")[1] == []
    with pytest.raises(ConfigError, match="--preset biq2021 needs --source"):
        config_from_options(preset="biq2021")


def test_cuhk_preset_keeps_the_cuhk_photo_split(tmp_path, photo_dir):
    src = tmp_path / "cuhk"
    (src / "images").mkdir(parents=True)
    rows = []
    for k in range(N_PHOTOS):
        stem = f"{'motion' if k % 2 else 'out_of_focus'}{k:04d}"
        Image.open(photo_dir / f"p{k:02d}.png").convert("RGB").save(src / "images" / f"{stem}.jpg")
        mos = "" if k == 3 else f"{100 * (1 - k / 12):.3f}"
        rows.append(
            {
                "image": f"images/{stem}.jpg",
                "mask": "",
                "blur_type": "motion" if k % 2 else "defocus",
                "mos_paq2piq": mos,
            }
        )
    _write_csv(src / "labels.csv", rows)
    res = import_mos(config_from_options(preset="cuhk", source=src), tmp_path / "out")
    assert res.records == N_PHOTOS - 1 and len(res.without_mos) == 1
    for r in iter_records(tmp_path / "out"):
        assert r.split == cuhk_split(r.id) and mos_of(r)["group"] in ("motion", "defocus")
    assert read_card(tmp_path / "out")["thresholds"]["quality"] == list(EQUAL_CUTS)


def test_cli_import_and_its_errors(tmp_path, photo_dir, capsys):
    scores = _write_csv(tmp_path / "s.csv", _rows())
    base = ["data", "mos", "--photos", str(photo_dir), "--scores", str(scores), "--name-column", "file"]
    rc = cli.main([*base, "--mos-column", "mos", "--scale", "1,5", "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and f"{N_PHOTOS} photos in" in out and "levels acr on the scale 1-5" in out
    rc = cli.main([*base, "--mos-column", "nope", "--scale", "1,5", "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no column 'nope'" in err[0]
    rc = cli.main([*base, "--scale", "1,5", "--out", str(tmp_path / "o3")])
    assert rc == 2 and "needs --mos-column" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main([*base, "--mos-column", "mos", "--scale", "5,1", "--out", str(tmp_path / "o4")])
    assert e.value.code == 2 and "LO must be below HI" in capsys.readouterr().err


# --------------------------------------------------------------------------- the math
def test_mos_agreement_of_a_perfect_predictor_and_a_reversed_one():
    y = np.linspace(0, 1, 40) ** 1.5
    a = stats.mos_agreement(y, y, bootstrap=50)
    assert a.srcc == pytest.approx(1.0) and a.krcc == pytest.approx(1.0) and a.plcc == pytest.approx(1.0)
    assert a.rmse < 1e-3 and a.fit.method == "logistic" and a.ci["srcc"] == pytest.approx((1.0, 1.0))
    r = stats.mos_agreement(-3 * y + 7, y)  # a lower-is-better number not oriented: the sign shows in SRCC
    assert r.srcc == pytest.approx(-1.0) and r.plcc == pytest.approx(1.0, abs=1e-6) and r.rmse < 1e-3
    x = np.linspace(-2, 2, 60)
    s = stats.mos_agreement(1000 * x, 0.2 + 0.6 / (1 + np.exp(-x / 0.4)))  # a logistic on any scale
    assert s.rmse < 1e-6 and s.fit.params[2] == pytest.approx(0.0, abs=1e-3)
    assert s.fit.params[3] == pytest.approx(400.0, rel=1e-3)


def test_mos_agreement_drops_missing_values_and_refuses_constants():
    a = stats.mos_agreement([1, 2, None, float("nan"), 5, 6], [0.1, 0.2, 0.3, 0.4, 0.5, 0.7])
    assert a.n == 4 and a.srcc == pytest.approx(1.0)
    c = stats.mos_agreement([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], bootstrap=20)
    assert c.fit.method == "none" and math.isnan(c.srcc) and math.isnan(c.rmse) and c.ci == {}


def test_linear_fallback_is_reported(monkeypatch):
    monkeypatch.setattr(stats, "fit_logistic4_scaled", lambda p, y, start=None: None)
    a = stats.mos_agreement([1, 2, 3, 4, 5], [0.1, 0.3, 0.5, 0.7, 0.9])
    assert a.fit.method == "linear" and "did not converge" in a.fit.note
    assert a.rmse == pytest.approx(0.0, abs=1e-9) and a.plcc == pytest.approx(1.0)


# --------------------------------------------------------------------------- the suite
class Oracle:
    """A predictor that equals the MOS: it looks the photo's MOS up by the photo's pixels."""

    name = "oracle"

    def __init__(self, table: dict[bytes, float]) -> None:
        self.table, self.calls = table, 0

    def predict(self, image: np.ndarray, masks: list[np.ndarray]) -> list[RegionPrediction]:
        self.calls += 1
        return [RegionPrediction("r0", quality_uncalibrated=self.table[image.tobytes()])]


def _oracle(folder: Path) -> Oracle:
    from seagull.imageio import load_image

    return Oracle({load_image(folder / r.image).tobytes(): mos_of(r)["raw"] for r in iter_records(folder)})


def test_suite_numbers_on_the_blur_ladder(acr_folder):
    oracle = _oracle(acr_folder)
    preds = [oracle, *default_predictors(None, ["laplacian_var", "blur_effect"])]
    res = run_mos(acr_folder, preds, split="all", bootstrap=30)
    rows = {r["predictor"]: r for r in res.rows}
    o = rows["oracle"]
    assert (o["n"], o["coverage"]) == (N_PHOTOS, 1.0)
    assert o["srcc"] == pytest.approx(1.0) and o["krcc"] == pytest.approx(1.0)
    assert o["plcc"] == pytest.approx(1.0, abs=1e-6) and o["rmse"] < 1e-3 and o["fit"] == "logistic"
    assert o["srcc_ci95"] == "[1.000, 1.000]"
    # sharper = higher MOS; blur_effect's raw number is lower-better, oriented before scoring
    assert rows["laplacian_var"]["srcc"] == pytest.approx(1.0) and rows["blur_effect"]["srcc"] > 0.9
    assert "lower = better" in rows["blur_effect"]["orientation"]
    assert res.info["photos"] == N_PHOTOS and res.info["split"] == "all"
    test = run_mos(acr_folder, [oracle], split="test", bootstrap=0)
    assert test.rows[0]["n"] == 4 and test.rows[0]["srcc_ci95"] is None
    assert run_mos(acr_folder, [oracle], split="all", limit=5, bootstrap=0).rows[0]["n"] == 5
    recs = list(iter_records(acr_folder))
    assert [r.id for r in limited(recs, 3)] == [r.id for r in limited(recs, 6)[:3]]  # nested subsets
    with pytest.raises(SchemaError, match="--split 'bogus' is not one of train, val, test, all"):
        run_mos(acr_folder, [oracle], split="bogus")


def test_suite_resumes_from_saved_outputs_and_asks_the_model_quality_only(acr_folder, tmp_path):
    class FakeAssessor:
        tasks: list = []

        def assess(self, image, rois, tasks):
            FakeAssessor.tasks.append(tuple(tasks))
            return [RegionPrediction(r.name, quality=float(image.std()) / 255) for r in rois]

    model = AssessorPredictor(FakeAssessor(), name="seagull:fake")
    oracle = _oracle(acr_folder)
    with RunJournal(tmp_path / "raw", {"suite": "mos"}) as j:
        first = run_mos(acr_folder, [model, oracle], journal=j, split="all", bootstrap=10)
    assert set(FakeAssessor.tasks) == {("quality",)} and oracle.calls == N_PHOTOS
    with RunJournal(tmp_path / "raw", {"suite": "mos"}) as j:
        again = run_mos(acr_folder, [model, oracle], journal=j, split="all", bootstrap=10)
    assert oracle.calls == N_PHOTOS and len(FakeAssessor.tasks) == N_PHOTOS  # nothing recomputed
    assert again.rows == first.rows


def test_eval_cli_suite_mos_defaults_to_the_test_split(acr_folder, tmp_path, capsys):
    out = tmp_path / "report"
    rc = cli.main(
        [
            "eval",
            "--suite",
            "mos",
            "--model",
            "none",
            "--data",
            str(acr_folder),
            "--out",
            str(out),
            "--baselines",
            "laplacian_var",
            "--bootstrap",
            "20",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and "predictors: no model (--model none); baselines: laplacian_var" in text
    report = json.loads((out / "report.json").read_text())
    assert report["suite"] == "mos" and report["info"]["split"] == "test" and report["rows"][0]["n"] == 4
    assert (out / "report.md").is_file() and "srcc" in (out / "report.md").read_text()
    rc = cli.main(
        [
            "eval",
            "--suite",
            "mos",
            "--model",
            "none",
            "--data",
            str(acr_folder.parent),
            "--out",
            str(tmp_path / "r2"),
            "--baselines",
            "laplacian_var",
        ]
    )
    assert rc == 2 and "has no dataset.json" in capsys.readouterr().err
