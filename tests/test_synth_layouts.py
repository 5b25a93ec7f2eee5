"""Local layouts of the data engine: several regions of different quality in one photo, camera-like
blur and noise, seam-straddling ROIs; resumable, and labelled by the full-reference change."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import start_held, wait_until_held
from seagull import distortions as D
from seagull.camera import CAMERA_SUBTYPES, apply_camera
from seagull.errors import ConfigError
from seagull.imageio import load_image, save_image
from seagull.metrics import fr
from seagull.records import iter_records, shard_paths
from seagull.roi import rle_to_mask
from seagull.synth import SynthConfig, run_synthesis
from seagull.synth.dataset_check import validate_dataset
from seagull.synth.layouts import compose, disjoint_regions, seam_box
from seagull.synth.pipeline import VISIBILITY_THRESHOLDS, fill_corrected

MULTI = dict(
    settings=3,
    families=("blur", "noise", "compression"),
    max_rois=5,
    max_side=192,
    multi_fraction=1.0,
    regions_per_image=3,
    camera=True,
    labels="v2",
)


@pytest.fixture(scope="module")
def kodak_two(shared_data, tmp_path_factory) -> Path:
    """Two real Kodak photos at a quarter of their size (keeps the runs short)."""
    dst = tmp_path_factory.mktemp("refs2")
    for name in ("kodim05.png", "kodim13.png"):
        img = load_image(shared_data / "kodak" / "images" / name)[::4, ::4]
        save_image(dst / name, np.ascontiguousarray(img))
    return dst


@pytest.fixture(scope="module")
def multi_run(kodak_two, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("multi") / "d"
    s = run_synthesis(SynthConfig(kodak_two, out, **MULTI), progress=False)
    assert s.done == 2 and not s.failed
    return out


def test_multi_region_items_are_valid_and_labelled_per_region(multi_run):
    assert validate_dataset(multi_run)[1] == []
    items = [r for r in iter_records(multi_run) if r.distortion["family"] != "none"]
    assert len(items) == 2 * 3 * 3 and all(r.distortion["scope"] == "multi" for r in items)
    several = 0
    for rec in items:
        d = rec.distortion
        regions, owner = d["regions"], d["roi_regions"]
        assert len(owner) == len(rec.rois) and rec.rois[-1].source == "seam"
        several += len(regions) > 1
        assert len({(r["family"], r["setting"]) for r in regions}) == len(regions)  # each its own way
        masks = [rle_to_mask(r.rle) for r in rec.rois]
        assert not any(
            (masks[a["roi"]] & masks[b["roi"]]).any() for a in regions for b in regions if a is not b
        )
        img = load_image(multi_run / rec.image)
        ref = load_image(multi_run / Path(rec.image).with_name("clean.png"))
        untouched = ~np.logical_or.reduce([masks[r["roi"]] for r in regions])
        assert (img[untouched] == ref[untouched]).all()  # the rest of the photo is the reference's
        for roi, j in zip(rec.rois, owner, strict=True):
            if j is None:  # outside every region: exactly undamaged
                assert roi.quality == 1.0 and roi.distortions == []
            elif roi.distortions:
                assert roi.distortions[0].type == regions[j]["family"]
                assert roi.distortions[0].subtype == regions[j]["subtype"]
        for r in regions:
            if r["family"] in ("blur", "noise"):
                assert r["subtype"] in CAMERA_SUBTYPES  # --camera variants
        seam = masks[-1]
        first = masks[d["local_roi"]]
        assert (seam & first).any() and (seam & ~first).any()  # the seam ROI straddles the border
    assert several >= len(items) // 2


def _tiled(photo: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The photo twice side by side, and the two halves as ROIs: the same content in both regions."""
    image = np.ascontiguousarray(np.concatenate([photo, photo], axis=1))
    left = np.zeros(image.shape[:2], bool)
    left[:, : photo.shape[1]] = True
    return image, [left, ~left]


@pytest.mark.parametrize("seed", range(4))
def test_the_more_damaged_region_has_the_lower_label(kodak_two, seed):
    """Two regions of identical content, blurred at two strengths: the stronger is labelled worse."""
    image, masks = _tiled(load_image(kodak_two / "kodim05.png")[:, :96])
    cfg = SynthConfig(kodak_two, "unused", families=("blur",), settings=20, multi_fraction=1.0)

    def render(family: str, setting: int, key: str) -> D.DistortionResult:
        return apply_camera(image, family, setting, "lens_defocus", seed=seed)

    first = render("blur", 4 + seed * 3, "first")
    comp = compose(image, first, masks, seed * 10_000, cfg, render)  # u = 0: a multi item
    assert comp.scope == "multi" and len(comp.regions) == 2
    q = fr.roi_quality(image, comp.image, masks)
    by_region = {r.roi: (r.result.setting, q[r.roi]) for r in comp.regions}
    (s0, q0), (s1, q1) = by_region[0], by_region[1]
    assert s0 != s1 and (q0 < q1) == (s0 > s1), by_region


def test_kill_and_resume_gives_the_same_shards(kodak_two, multi_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "seagull", "synth", "--refs", str(kodak_two), "--out", str(out), "--quiet"]
    cmd += ["--settings", "3", "--families", "blur,noise,compression", "--max-rois", "5", "--max-side", "192"]
    cmd += ["--multi-fraction", "1", "--regions-per-image", "3", "--camera", "--labels", "v2"]
    # The run stops for good right after its first shard (helpers.start_held) and is killed there.
    proc = start_held(cmd, tmp_path / "held")
    try:
        wait_until_held(proc, tmp_path / "held", processes=1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(shard_paths(out)) == 1, "the run should have been killed after its first shard of two"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    killed, clean = shard_paths(out), shard_paths(multi_run)
    assert [p.name for p in killed] == [p.name for p in clean]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(killed, clean, strict=True))
    for rec in iter_records(out):
        assert (out / rec.image).read_bytes() == (multi_run / rec.image).read_bytes()


def test_relabel_keeps_each_roi_with_its_own_region(multi_run, tmp_path):
    import shutil

    from seagull.records import dataset_thresholds
    from seagull.synth.relabel import relabel_dataset

    copy = tmp_path / "copy"
    shutil.copytree(multi_run, copy)
    relabel_dataset(copy, dataset_thresholds(multi_run))
    assert [p.read_bytes() for p in shard_paths(copy)] == [p.read_bytes() for p in shard_paths(multi_run)]


def test_new_options_stay_out_of_old_fingerprints(tmp_path):
    # A folder written before these options existed used label scheme v1 (the default until v2).
    old = SynthConfig("examples", tmp_path, labels="v1").fingerprint()
    assert not {
        "multi_fraction",
        "regions_per_image",
        "region_feather",
        "camera",
        "labels",
        "strongest",
    } & set(old)
    assert SynthConfig("examples", tmp_path).fingerprint()["labels"] == "v2"
    new = SynthConfig("examples", tmp_path, multi_fraction=0.5, camera=True).fingerprint()
    assert new["multi_fraction"] == 0.5 and new["regions_per_image"] == 2 and new["camera"] is True


def test_a_different_layout_is_not_resumed(kodak_two, tmp_path):
    small = dict(settings=1, families=("blur",), max_rois=3, max_side=96)
    run_synthesis(SynthConfig(kodak_two, tmp_path / "o", **small), limit=1, progress=False)
    with pytest.raises(ConfigError, match="camera"):
        run_synthesis(SynthConfig(kodak_two, tmp_path / "o", camera=True, **small), limit=1, progress=False)


def test_bad_layout_options_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="sum to at most 1"):
        SynthConfig("examples", tmp_path, local_fraction=0.5, multi_fraction=0.6)
    with pytest.raises(ConfigError, match="regions-per-image"):
        SynthConfig("examples", tmp_path, multi_fraction=0.5, regions_per_image=0)
    with pytest.raises(ConfigError, match="strongest setting"):
        SynthConfig("examples", tmp_path, settings=12, strongest=10)


def test_regions_are_disjoint_and_the_seam_box_straddles():
    masks = [np.zeros((40, 40), bool) for _ in range(3)]
    masks[0][:20], masks[1][10:30], masks[2][30:] = True, True, True  # 0 and 1 overlap
    for seed in range(6):
        picked = disjoint_regions(masks, 3, np.random.default_rng(seed))
        assert not (0 in picked and 1 in picked) and len(picked) == 2
    seam = seam_box(masks[0], np.random.default_rng(0))
    assert (seam.mask & masks[0]).any() and (seam.mask & ~masks[0]).any()
    assert seam_box(np.ones((40, 40), bool), np.random.default_rng(0)) is None


def test_v2_labels_correct_for_the_bounding_box_fill(multi_run):
    box = np.zeros((20, 20), bool)
    box[5:15, 5:15] = True
    half = box.copy()
    half[5:15, 10:15] = False
    half[5:15, 5] = half[5, 5:15] = True  # same bounding box, about half of it filled
    fill = half.sum() / box.sum()
    assert fill_corrected(0.9, box) == pytest.approx(0.9)
    assert fill_corrected(0.9, half) == pytest.approx(1 - 0.1 / np.sqrt(fill))
    assert fill_corrected(0.2, half) == 0.0  # damage cannot exceed 1
    card = json.loads((multi_run / "dataset.json").read_text())
    assert card["thresholds"]["quality"] == list(VISIBILITY_THRESHOLDS.quality)
    assert card["config"]["labels"] == "v2"
    with pytest.raises(ConfigError, match="--labels"):
        SynthConfig("examples", "unused", labels="v3")
