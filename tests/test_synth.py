"""End-to-end tests of the synthesis pipeline on real photos (shared data and bundled examples)."""

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
from seagull.errors import ConfigError
from seagull.imageio import load_image, save_image
from seagull.records import iter_records, shard_paths
from seagull.roi import rle_to_mask
from seagull.synth import SynthConfig, discover_references, run_synthesis
from seagull.synth.dataset_check import validate_dataset

FAST = dict(settings=2, families=("blur", "noise"), max_rois=3, max_side=160)


def _small_refs(src: Path, dst: Path, n: int) -> Path:
    """Copies of n real photos at a small size (keeps the tests fast)."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.glob("*.png"))[:n]:
        img = load_image(p)[::4, ::4]
        save_image(dst / p.name, np.ascontiguousarray(img))
    return dst


@pytest.fixture(scope="module")
def kodak_small(shared_data, tmp_path_factory) -> Path:
    return _small_refs(shared_data / "kodak" / "images", tmp_path_factory.mktemp("refs"), 4)


def _records(out: Path) -> dict[str, dict]:
    return {r.id: r.to_dict() for r in iter_records(out)}


def test_synthesis_is_valid_and_deterministic(kodak_small, tmp_path):
    a = run_synthesis(SynthConfig(kodak_small, tmp_path / "a", **FAST), limit=2, progress=False)
    run_synthesis(SynthConfig(kodak_small, tmp_path / "b", **FAST), limit=2, progress=False)
    assert a.done == 2 and not a.failed
    ra, rb = _records(tmp_path / "a"), _records(tmp_path / "b")
    assert ra == rb and len(ra) == 2 * (1 + 2 * 2)  # clean + 2 families x 2 settings per reference
    n, problems = validate_dataset(tmp_path / "a")
    assert n == len(ra) and problems == []
    card = json.loads((tmp_path / "a" / "dataset.json").read_text())
    assert card["counts"]["records"] == len(ra) and card["thresholds"]["quality"]
    assert (tmp_path / "a" / "level_histograms.png").is_file()
    for rec in iter_records(tmp_path / "a"):
        for roi in rec.rois:
            if rec.distortion["family"] == "none":
                assert roi.quality == 1.0 and roi.distortions == []
        # images of the same bytes on both runs
        assert (tmp_path / "a" / rec.image).read_bytes() == (tmp_path / "b" / rec.image).read_bytes()


def test_validate_reports_broken_folders(kodak_small, tmp_path):
    out = tmp_path / "d"
    run_synthesis(SynthConfig(kodak_small, out, **FAST), limit=1, progress=False)
    shard = shard_paths(out)[0]
    lines = shard.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["rois"][0]["quality_level"] = "bad" if rec["rois"][0]["quality_level"] != "bad" else "excellent"
    rec["rois"][0]["area"] += 1
    lines[1] = json.dumps(rec)
    shard.write_text("\n".join(lines) + "\n")
    (out / json.loads(lines[2])["image"]).unlink()
    _, problems = validate_dataset(out)
    text = "\n".join(problems)
    assert "quality level" in text and "area" in text and "missing" in text


def test_resume_after_sigkill_gives_every_item_once(kodak_small, tmp_path):
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "seagull",
        "synth",
        "--refs",
        str(kodak_small),
        "--out",
        str(out),
        "--quiet",
        "--settings",
        "2",
        "--families",
        "blur,noise",
        "--max-rois",
        "3",
        "--max-side",
        "160",
    ]
    # The run stops for good right after its first shard (helpers.start_held) and is killed there.
    proc = start_held(cmd, tmp_path / "held")
    try:
        wait_until_held(proc, tmp_path / "held", processes=1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(shard_paths(out)) == 1, "the run should have been killed after its first shard of four"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    ids = [r.id for r in iter_records(out)]
    assert len(ids) == len(set(ids)) == 4 * 5
    clean = tmp_path / "clean"
    run_synthesis(SynthConfig(kodak_small, clean, **FAST), progress=False)
    assert _records(out) == _records(clean)
    assert validate_dataset(out)[1] == []


def test_resume_refuses_a_different_configuration(kodak_small, tmp_path):
    run_synthesis(SynthConfig(kodak_small, tmp_path / "o", **FAST), limit=1, progress=False)
    with pytest.raises(ConfigError, match="settings"):
        run_synthesis(
            SynthConfig(kodak_small, tmp_path / "o", **{**FAST, "settings": 3}), limit=1, progress=False
        )


def test_a_bad_reference_is_reported_and_the_batch_goes_on(kodak_small, tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    for p in sorted(kodak_small.glob("*.png"))[:2]:
        (refs / p.name).write_bytes(p.read_bytes())
    (refs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    s = run_synthesis(SynthConfig(refs, tmp_path / "o", **FAST), progress=False)
    assert s.done == 2 and [f[0] for f in s.failed] == ["broken"]
    assert "ImageLoadError" in s.failed[0][1] and "broken.png" in s.failed[0][1]
    assert (tmp_path / "o" / "failures.jsonl").is_file()


def test_bsds_and_coco_references_use_human_segmentations(shared_data, tmp_path):
    bsds = discover_references(shared_data / "bsds500")
    assert len(bsds) >= 300 and all(r.gt is not None for r in bsds)
    coco = discover_references(shared_data / "coco128")
    assert coco[0].coco is not None
    from seagull.synth.pipeline import load_reference, propose_rois

    cfg = SynthConfig(shared_data / "bsds500", tmp_path, rois="gt", max_rois=6)
    rois = propose_rois(bsds[0], load_reference(bsds[0], 512), cfg)
    assert rois and {r.source for r in rois} <= {"bsds:object", "bsds:component"}
    cfg = SynthConfig(shared_data / "coco128", tmp_path, rois="gt", max_rois=6)
    ref = next(r for r in coco if r.path.name == "000000000025.jpg")
    rois = propose_rois(ref, load_reference(ref, 512), cfg)
    assert rois and all(r.source == "coco:object" for r in rois)
    assert all(r.mask.shape == load_reference(ref, 512).shape[:2] for r in rois)


def test_importance_grows_with_roi_area(shared_data):
    from seagull import distortions as D
    from seagull.metrics import fr

    img = load_image(shared_data / "kodak" / "images" / "kodim05.png")[::2, ::2]
    dist = D.apply_distortion(img, "noise", 12, "gaussian", seed=1).image
    h, w = img.shape[:2]
    masks = []
    for frac in (0.05, 0.15, 0.35, 0.7):
        m = np.zeros((h, w), bool)
        m[: int(h * frac) or 1, :] = True
        masks.append(m)
    imp = fr.roi_importance(img, dist, masks)
    assert all(a < b for a, b in zip(imp, imp[1:], strict=False)), imp


def test_bad_configuration_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="families"):
        SynthConfig("examples", tmp_path, families=("fog",))
    with pytest.raises(ConfigError, match="settings"):
        SynthConfig("examples", tmp_path, settings=0)
    with pytest.raises(ConfigError, match="neither"):
        discover_references(tmp_path / "missing")
    with pytest.raises(ConfigError, match="at most 1"):
        SynthConfig("examples", tmp_path, local_fraction=0.6, background_fraction=0.5)
    with pytest.raises(ConfigError, match="background-fraction"):
        SynthConfig("examples", tmp_path, background_fraction=1.5)


def test_background_scope_blurs_everything_but_the_subject(kodak_small, tmp_path):
    """A defocused-background item: the subject ROI keeps the reference's pixels and its clean label,
    the rest of the photo is blurred, is one more ROI, and ROIs there are labelled by the full-reference
    change."""
    cfg = SynthConfig(
        kodak_small,
        tmp_path / "bg",
        settings=2,
        families=("blur",),
        max_rois=4,
        max_side=160,
        background_fraction=1.0,
    )
    run_synthesis(cfg, limit=2, progress=False)
    assert validate_dataset(tmp_path / "bg")[1] == []
    seen = 0
    for rec in iter_records(tmp_path / "bg"):
        if rec.distortion["family"] == "none":
            continue
        assert rec.distortion["scope"] == "background"
        k = rec.distortion["local_roi"]
        subject, background = rec.rois[k], rec.rois[-1]
        others = [r for j, r in enumerate(rec.rois) if j != k]
        assert background.source == "background"
        assert (rle_to_mask(background.rle) == ~rle_to_mask(subject.rle)).all()
        ref = load_image(tmp_path / "bg" / rec.image.replace(Path(rec.image).name, "clean.png"))
        img = load_image(tmp_path / "bg" / rec.image)
        inside = rle_to_mask(subject.rle)
        assert inside.any() and (img[inside] == ref[inside]).all()  # the feathered seam lies outside
        assert (img[~inside] != ref[~inside]).mean() > 0.5
        assert subject.quality >= max(r.quality for r in others) - 1e-6
        assert background.quality < subject.quality and background.distortions[0].type == "blur"
        seen += 1
    assert seen == 4  # 2 references x 2 settings


@pytest.mark.ray
@pytest.mark.slow
def test_ray_and_local_runs_give_the_same_records(kodak_small, tmp_path):
    run_synthesis(SynthConfig(kodak_small, tmp_path / "local", **FAST), limit=2, workers=2, progress=False)
    s = run_synthesis(
        SynthConfig(kodak_small, tmp_path / "ray", **FAST), limit=2, use_ray=True, progress=False
    )
    assert s.done == 2 and not s.failed
    assert _records(tmp_path / "local") == _records(tmp_path / "ray")


def test_relabel_recuts_levels_from_scores(kodak_small, tmp_path):
    from seagull.labels import Thresholds
    from seagull.records import dataset_thresholds
    from seagull.synth.relabel import relabel_dataset

    out = tmp_path / "r"
    run_synthesis(SynthConfig(kodak_small, out, **FAST), limit=1, progress=False)
    before = _records(out)
    th = Thresholds(
        quality=(0.1, 0.2, 0.3, 0.999),
        importance=(0.001, 0.002, 0.003, 0.004),
        severity=(0.001, 0.002, 0.003, 0.5),
        visible=0.0005,
    )
    assert relabel_dataset(out, th) == len(before)
    assert dataset_thresholds(out) == th
    assert validate_dataset(out)[1] == []
    after = _records(out)
    assert {k: [r["quality"] for r in v["rois"]] for k, v in before.items()} == {
        k: [r["quality"] for r in v["rois"]] for k, v in after.items()
    }
    assert after != before
