"""ROI proposers: automatic regions, weight-free prompts and the SAM adapter's plumbing."""

from __future__ import annotations

import pytest

from seagull.errors import ConfigError
from seagull.proposals import RegionFilter, SamProposer, auto_regions, box_to_object_mask, point_to_mask


def test_auto_regions_give_object_and_component_levels(coffee):
    rois = auto_regions(coffee)
    sources = {r.source for r in rois}
    assert sources == {"auto:object", "auto:component"}
    kept = RegionFilter(min_frac=0.01, max_frac=0.7, max_iou=0.8)(rois)
    assert kept and all(0.01 <= r.area / r.mask.size <= 0.7 for r in kept)
    n_obj = sum(r.source == "auto:object" for r in rois)
    assert n_obj < len(rois) - n_obj  # the component level is finer


def test_weight_free_point_and_box_prompts(coffee):
    m = point_to_mask(coffee, (300, 140))  # the coffee surface
    assert m[140, 300] and 0.005 < m.mean() < 0.5
    b = box_to_object_mask(coffee, (150, 40, 330, 300))
    assert b.sum() > 0 and not b[:40].any() and not b[:, :150].any()


@pytest.mark.slow
def test_sam_adapter_plumbing_with_a_random_model(coffee, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    with pytest.raises(ConfigError, match="does not exist"):
        SamProposer(tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match="unknown SAM model type"):
        SamProposer(None, "vit_tiny")
    torch.manual_seed(0)
    ckpt = tmp_path / "sam_random.pth"
    torch.save(SamProposer(None).model.state_dict(), ckpt)  # a user-supplied file, read weights-only
    sam = SamProposer(ckpt)
    small = coffee[::2, ::2].copy()
    mask = sam.point(small, (150, 70))
    assert mask.shape == small.shape[:2] and mask.dtype == bool
