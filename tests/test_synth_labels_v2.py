"""Label scheme v2's visibility gain (seagull.synth.pipeline.visibility_corrected, VISIBILITY_GAIN):
the correction on its own, and on a real photo that v2 labels a clearly visible distortion worse than
v1, by exactly the fill correction and the sub-type's gain (docs/labels.md, section 9)."""

from __future__ import annotations

import numpy as np
import pytest

from seagull import distortions as D
from seagull.records import read_shard
from seagull.references import Reference
from seagull.roi import rle_to_mask
from seagull.synth.pipeline import (
    VISIBILITY_GAIN,
    VISIBILITY_THRESHOLDS,
    SynthConfig,
    fill_corrected,
    process_reference,
    visibility_corrected,
)

QUALITIES = np.linspace(0.0, 1.0, 41)


def test_gains_are_for_known_sub_types_and_at_least_one():
    known = {s for subs in D.FAMILIES.values() for s in subs} | {"sensor", "lens_defocus", "shake"}
    assert set(VISIBILITY_GAIN) <= known
    assert all(1.0 <= g <= 3.0 for g in VISIBILITY_GAIN.values())  # the fitting rule's clip


@pytest.mark.parametrize("subtype", [None, "", "no_such_subtype", "gaussian", "jpeg"])
def test_sub_types_without_a_gain_keep_their_quality(subtype):
    assert subtype not in VISIBILITY_GAIN
    for q in QUALITIES:
        assert visibility_corrected(float(q), subtype) == pytest.approx(q, abs=1e-12)


@pytest.mark.parametrize("subtype", sorted(VISIBILITY_GAIN))
def test_the_gain_scales_damage_monotonically_within_zero_and_one(subtype):
    gain = VISIBILITY_GAIN[subtype]
    out = np.array([visibility_corrected(float(q), subtype) for q in QUALITIES])
    assert np.all((out >= 0.0) & (out <= 1.0))
    assert np.all(np.diff(out) >= 0.0)  # a better ROI is never labelled worse
    assert np.all(out <= QUALITIES + 1e-12)  # a gain only adds damage
    assert visibility_corrected(1.0, subtype) == 1.0  # no damage stays no damage
    assert visibility_corrected(0.95, subtype) == pytest.approx(1.0 - 0.05 * gain)
    assert visibility_corrected(0.0, subtype) == 0.0 and visibility_corrected(0.2, subtype) >= 0.0


def test_out_of_range_inputs_are_clipped():
    assert visibility_corrected(-0.5, "color_shift") == 0.0
    assert visibility_corrected(1.5, "color_shift") == 1.0  # negative damage is no damage
    assert visibility_corrected(1.5, None) == 1.0


# --------------------------------------------------------------------------- a real photo
PHOTO = "kodim05.png"
SETTING = 6  # clearly visible for every family (docs/labels.md, section 9)
WANTED = {"colorfulness": "color_shift", "compression": "webp"}  # the most lenient sub-types under v1


def _seed_for(ref_id: str) -> int:
    """The first config seed whose items at SETTING draw the WANTED sub-types."""
    for seed in range(200):
        if all(D.choose_subtype(f, f"{ref_id}__{f}__s{SETTING:02d}", seed) == s for f, s in WANTED.items()):
            return seed
    raise AssertionError("no seed draws the wanted sub-types")


def _labels(shared_data, tmp_path, labels: str) -> dict[str, tuple[str, list[dict]]]:
    ref = Reference("kodim05", shared_data / "kodak" / "images" / PHOTO)
    cfg = SynthConfig(
        shared_data / "kodak" / "images",
        tmp_path / labels,
        families=tuple(WANTED),
        settings=1,
        strongest=SETTING,  # the one setting rendered is SETTING
        seed=_seed_for(ref.id),
        max_rois=3,
        max_side=256,
        importance_max_side=128,
        clean=False,
        labels=labels,
    )
    (cfg.out / "shards").mkdir(parents=True)
    res = process_reference(ref, cfg)
    assert res.error is None, res.error
    recs = list(read_shard(cfg.out / "shards" / f"{ref.id}.jsonl"))
    return {r["distortion"]["family"]: (r["distortion"]["subtype"], r["rois"]) for r in recs}


def test_v2_labels_clearly_visible_color_shift_and_webp_worse_than_v1(shared_data, tmp_path):
    v1, v2 = _labels(shared_data, tmp_path, "v1"), _labels(shared_data, tmp_path, "v2")
    assert set(v1) == set(v2) == set(WANTED)
    for family, subtype in WANTED.items():
        (sub1, rois1), (sub2, rois2) = v1[family], v2[family]
        assert sub1 == sub2 == subtype
        assert len(rois1) == len(rois2) >= 2
        for a, b in zip(rois1, rois2, strict=True):
            assert a["rle"] == b["rle"]  # the same ROIs, the same distorted pixels
            mask = rle_to_mask(a["rle"])
            want = visibility_corrected(fill_corrected(a["quality"], mask), subtype)
            # v2 = v1 fill-corrected and gained (the stored v1 score is rounded to 6 decimals)
            assert b["quality"] == pytest.approx(want, abs=1e-4)
            assert b["quality"] < fill_corrected(a["quality"], mask)  # the gain itself adds damage
        q1 = np.mean([r["quality"] for r in rois1])
        q2 = np.mean([r["quality"] for r in rois2])
        assert q2 < q1 - 0.05, (family, q1, q2)
        # clearly visible: v2 calls no ROI excellent and most of them fair or worse
        assert all(r["quality_level"] != "excellent" for r in rois2)
        assert np.mean([r["quality"] < VISIBILITY_THRESHOLDS.quality[2] for r in rois2]) >= 0.5, family


def test_levels_are_cut_from_the_stored_numbers_so_validation_recuts_the_same() -> None:
    """A damage just under a severity boundary is stored rounded onto it: the level is the stored
    number's (found in the v2 corpus: damage 0.0699999996 labelled 'slight', stored as 0.07)."""
    from seagull.labels import DEFAULT_THRESHOLDS, quality_level, severity_level
    from seagull.synth.pipeline import level_fields

    th = DEFAULT_THRESHOLDS
    for cut in th.severity:
        f = level_fields(1.0 - cut + 4e-10, 0.5, "blur", None, th)
        (d,) = f["distortions"]
        assert d.severity == round(cut, 6) and d.severity_level == severity_level(d.severity, th)
    for cut in th.quality:
        f = level_fields(cut - 4e-10, 0.5, None, None, th)
        assert f["quality_level"] == quality_level(f["quality"], th)
