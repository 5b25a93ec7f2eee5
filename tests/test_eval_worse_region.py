"""The region suite (seagull.eval.worse_region): the damaged region is worse by the full-reference metric
in every pair, the untouched regions are untouched, runs are deterministic and resume, bad photos
are reported, and the scoring of pairs and types is right on predictors with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seagull.distortions import FAMILIES
from seagull.eval.baselines import make_baseline
from seagull.eval.journal import open_journal
from seagull.eval.worse_region import (
    DEGRADATIONS,
    LAYOUTS,
    composite,
    degraded_versions,
    ladder,
    photo_layouts,
    run_regions,
)
from seagull.imageio import load_image, save_image
from seagull.region_prediction import DistortionPrediction, RegionPrediction

PHOTOS = ("kodim01.png", "kodim04.png")


@pytest.fixture(scope="module")
def kodak_two(shared_data, tmp_path_factory):
    """A folder with two Kodak photos (links to the shared files)."""
    folder = tmp_path_factory.mktemp("kodak-two")
    for name in PHOTOS:
        (folder / name).symlink_to(shared_data / "kodak" / "images" / name)
    return folder


class FirstIsWorse:
    """Rates the first ROI lowest and calls it blurred; counts its calls."""

    name = "first_is_worse"

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, image, masks):
        self.calls += 1
        blur = [DistortionPrediction("blur", confidence=0.9)]
        return [
            RegionPrediction(f"r{k}", quality=0.1 if k == 0 else 0.9, distortions=blur if k == 0 else [])
            for k in range(len(masks))
        ]


def test_worse_region_is_worse_by_fr_in_every_pair(kodak_two):
    from seagull.metrics import fr

    photo = load_image(kodak_two / PHOTOS[1])
    photo = photo[::2, ::2].copy()  # 384 x 256: every layout, the automatic one included
    layouts, skipped = photo_layouts(photo, PHOTOS[1])
    assert [lay.name for lay in layouts] == list(LAYOUTS) and not skipped
    n = 0
    for family, setting, deg in degraded_versions(photo, PHOTOS[1]):
        for lay in layouts:
            comp = composite(photo, deg.image, lay)
            assert not (lay.worse & lay.other).any() and not (lay.worse & lay.rest).any()
            assert np.array_equal(comp[lay.rest], photo[lay.rest])  # the rest is untouched
            q_worse, q_rest, q_other = fr.roi_quality(photo, comp, lay.masks)
            assert q_rest == pytest.approx(1.0, abs=1e-6) and q_other == pytest.approx(1.0, abs=1e-6)
            assert q_worse < q_rest - 0.01, (family, setting, lay.name, q_worse)
            n += 1
    assert n == len(DEGRADATIONS) * 3 * len(LAYOUTS)


def test_suite_is_deterministic_resumes_and_scores_known_answers(kodak_two, tmp_path):
    fake = FirstIsWorse()
    lap = make_baseline("laplacian_var")
    kw = dict(bootstrap=20, max_side=256, strengths=(20,))
    with open_journal(tmp_path / "rep", {"suite": "regions"}) as j:
        first = run_regions(kodak_two, [fake, lap], journal=j, **kw)
    calls = fake.calls
    again = run_regions(kodak_two, [FirstIsWorse(), lap], **kw)  # fresh, in memory
    assert json.dumps(first.rows) == json.dumps(again.rows)
    with open_journal(tmp_path / "rep", {"suite": "regions"}) as j:
        resumed = run_regions(kodak_two, [fake, lap], journal=j, **kw)
    assert fake.calls == calls  # every output came back from the journal
    assert json.dumps(resumed.rows) == json.dumps(first.rows)

    assert first.info["photos"] == 2
    # at 256 px the automatic proposer finds no region of 8-45 % in these photos: skipped with a reason
    assert any("/auto: no automatic region" in s for s in first.info["skipped"])
    row = {r["predictor"]: r for r in first.rows}
    f = row["first_is_worse"]
    # 2 photos x 3 layouts x 6 families x 1 strength x 2 comparisons, minus pairs not visibly worse
    assert f["pairs"] == 72 - 2 * first.info["not_visible"]
    assert f["pair_acc"] == 1.0 and f["clean_prior"] == 1.0
    assert f["type_top"] == pytest.approx(1 / 6, abs=0.05) and f["other_clean"] == 1.0
    types = {t["family"]: t["type_top"] for t in first.extra_tables["type_by_family"][1]}
    assert types["blur"] == 1.0 and types["noise"] == 0.0
    lap_row = row["laplacian_var"]
    assert lap_row["type_top"] is None  # it names no distortions
    assert lap_row["blur"] == 1.0  # a blurred region has less Laplacian variance at the strongest setting
    assert lap_row["noise"] < 0.5  # noise raises it


def test_unreadable_and_too_small_photos_are_reported(kodak_two, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")
    save_image(folder / "tiny.png", np.full((60, 80, 3), 128, np.uint8))
    res = run_regions(folder, [FirstIsWorse()], bootstrap=0, strengths=(20,))
    assert len(res.info["failures"]) == 1 and res.info["failures"][0].startswith("broken.png")
    assert res.info["skipped"] == ["tiny.png: 80x60 is too small for the layouts (shorter side under 96 px)"]
    assert res.info["photos"] == 0 and res.rows[0]["pairs"] == 0 and res.rows[0]["pair_acc"] is None


def test_registered_as_a_suite():
    from seagull.eval.suite_registry import get_suite

    assert get_suite("regions").load() is run_regions


def test_blur_and_noise_are_camera_like_seeded_by_the_photo(kodak_two):
    from seagull import camera
    from seagull.imageio import seeded_rng
    from seagull.metrics import fr

    photo = load_image(kodak_two / PHOTOS[0])[::4, ::4].copy()
    for family in ("blur", "noise"):
        degrade = DEGRADATIONS[family]
        deg = degrade(photo, 13, PHOTOS[0])
        fam, variant = deg.name.split("/")
        assert fam == family and variant in camera.CAMERA_FAMILIES[family]
        # exactly the camera degradation, its draws seeded by the photo's name
        want = camera.apply(variant, 13, photo, seeded_rng("regions", "camera", family, variant, PHOTOS[0]))
        assert np.array_equal(deg.image, want)
        assert np.array_equal(deg.image, degrade(photo, 13, PHOTOS[0]).image)  # deterministic
        # three graded strengths: the full-reference damage rises from weak to strong
        whole = [np.ones(photo.shape[:2], bool)]
        q = [fr.roi_quality(photo, degrade(photo, s, PHOTOS[0]).image, whole)[0] for s in (7, 13, 20)]
        assert q[0] > q[1] > q[2] and q[0] < 0.95, (family, q)
    for family in ("colorfulness", "compression", "contrast", "exposure"):  # the sRGB edits stay
        assert DEGRADATIONS[family](photo, 13, PHOTOS[0]).name.split("/")[1] in FAMILIES[family]


def test_camera_noise_draws_are_the_same_at_every_strength_and_differ_between_photos(kodak_two):
    photo = load_image(kodak_two / PHOTOS[0])[::4, ::4].copy()
    noise = DEGRADATIONS["noise"]
    d = [noise(photo, s, PHOTOS[0]).image.astype(float) - photo for s in (7, 20)]
    both = (d[0] != 0) & (d[1] != 0)
    assert np.mean(np.sign(d[0][both]) == np.sign(d[1][both])) > 0.9  # one noise field, scaled
    other = noise(photo, 7, PHOTOS[1]).image.astype(float) - photo  # another photo's draws
    both = (d[0] != 0) & (other != 0)
    assert 0.4 < np.mean(np.sign(d[0][both]) == np.sign(other[both])) < 0.6


def test_a_table_entry_can_point_at_the_plain_ladder(kodak_two):
    photo = load_image(kodak_two / PHOTOS[0])[::4, ::4].copy()
    blur = ladder("blur")
    deg = blur(photo, 13, PHOTOS[0])
    assert deg.name.split("/")[1] in FAMILIES["blur"]
    assert deg.image.shape == photo.shape and not np.array_equal(deg.image, photo)


def test_cli_runs_the_suite_on_one_photo(kodak_two, tmp_path, capsys):
    from seagull.cli import main

    out = tmp_path / "rep"
    argv = ["eval", "--suite", "regions", "--model", "none", "--baselines", "laplacian_var"]
    argv += ["--data", str(kodak_two), "--out", str(out), "--limit", "1"]
    assert main(argv) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["info"]["photos"] == 1 and doc["info"]["strengths"] == {"weak": 7, "medium": 13, "strong": 20}
    (row,) = doc["rows"]
    assert row["predictor"] == "laplacian_var" and row["pairs"] > 100 and row["blur"] > 0.9
    assert row["pair_acc_ci95"] is not None  # --bootstrap 200 by default
    assert "pair_acc" in capsys.readouterr().out
    assert "## layout" in (out / "report.md").read_text()


def test_cli_passes_bootstrap_and_pair_margin_to_the_suite(kodak_two, tmp_path):
    from seagull.cli import main

    out = tmp_path / "rep"
    argv = ["eval", "--suite", "regions", "--model", "none", "--baselines", "laplacian_var", "--limit", "1"]
    argv += ["--data", str(kodak_two), "--out", str(out), "--bootstrap", "0", "--pair-margin", "0.2"]
    assert main(argv) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["info"]["bootstrap"] == 0 and doc["info"]["margin"] == 0.2
    (row,) = doc["rows"]
    assert row["pairs"] > 0 and row["pair_acc_ci95"] is None


@pytest.fixture(scope="module")
def bsds(shared_data):
    folder = shared_data / "bsds500"
    if not (folder / "groundTruth").is_dir():
        pytest.skip(f"no BSDS500 folder at {folder}")
    return folder


def test_human_segments_give_a_layout_that_leaves_the_others_as_they_were(bsds):
    from seagull.references import discover_references, human_regions

    ref = discover_references(bsds)[1]  # the first photo's human region leaves no untouched ninth
    photo = load_image(ref.path)
    segments = [r.mask for r in human_regions(ref)]
    plain, _ = photo_layouts(photo, ref.id)
    layouts, skipped = photo_layouts(photo, ref.id, segments)
    assert [lay.name for lay in layouts] == [*LAYOUTS, "human"] and not skipped
    for a, b in zip(plain, layouts, strict=False):
        assert a.name == b.name and all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks, strict=True))
    human = layouts[-1].worse
    fitting = [m for m in segments if 0.1 <= m.mean() <= 0.5]
    assert any(np.array_equal(human, m) for m in fitting)
    assert human.sum() == max(m.sum() for m in fitting)
    assert photo_layouts(photo, ref.id, [])[1] == [
        f"{ref.id}/human: no human segment covers 10-50 % of the photo"
    ]


def test_a_bsds_folder_is_run_with_the_human_layout(bsds):
    res = run_regions(bsds, [FirstIsWorse()], limit=2, bootstrap=0, strengths=(20,))
    assert res.info["photos"] == 2 and res.info["layouts"] == [*LAYOUTS, "human"]
    assert not res.info["failures"]
    assert res.info["skipped"] == [
        "images/test/100007.jpg/human: no untouched ninth of the photo outside the region"
    ]
    header, (row,) = res.extra_tables["layout"]
    assert header == ["predictor", *LAYOUTS, "human"] and row["human"] == 1.0
