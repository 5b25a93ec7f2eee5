"""ROI proposers: automatic regions, weight-free prompts and the SAM adapter's plumbing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seagull.errors import ConfigError, RoiError
from seagull.proposals import (
    CachedImagePredictor,
    RegionFilter,
    SamProposer,
    auto_regions,
    box_to_object_mask,
    point_to_mask,
)


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


class _RunsCode:
    """A pickle that creates ``path`` when it is unpickled."""

    def __init__(self, path) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def test_a_pickled_sam_file_is_refused_by_name_without_running_it(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from seagull.cli import main
    from seagull.errors import ModelError

    marker, evil = tmp_path / "ran", tmp_path / "sam_vit_b.pth"
    torch.save({"image_encoder.x": _RunsCode(marker)}, evil)
    with pytest.raises(
        ModelError, match=f"SAM checkpoint {evil} is not a safe weights file .*weights_only=True"
    ):
        SamProposer(evil)
    photo = str(Path(__file__).resolve().parents[1] / "examples" / "coffee.jpg")
    assert main(["assess", photo, "--point", "300,140", "--sam", str(evil)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seagull assess: error: SAM checkpoint") and "official SAM vit_b" in err, err
    assert "GLOBAL posix.system" in err and "False" not in err  # no advice to load it unsafely
    assert len(err.splitlines()) == 1 and not marker.exists()


@pytest.mark.slow
def test_a_safe_file_of_other_tensors_is_refused_by_name(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from seagull.errors import ModelError

    torch.save({"image_encoder.x": torch.zeros(2)}, tmp_path / "other.pth")  # safe, but not SAM's tensors
    with pytest.raises(ModelError, match=r"does not fit SAM vit_b: 0 tensors of another shape .* unexpected"):
        SamProposer(tmp_path / "other.pth")


@pytest.mark.parametrize("shape", [(2, 20000, 3), (20000, 2, 3), (12, 6000, 3)])
def test_auto_regions_on_very_thin_images(shape):
    """A side that rounds to 0 at the working size used to crash cv2.resize."""
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    rois = auto_regions(image)
    assert rois and all(r.mask.shape == shape[:2] for r in rois)
    covered = np.zeros(shape[:2], int)
    for r in rois:
        if r.source == "auto:object":
            covered += r.mask
    assert (covered == 1).all()  # the object-level regions partition the image


class _CountingPredictor:
    """A stand-in for segment-anything's SamPredictor: "encodes" by storing the image's mean."""

    def __init__(self) -> None:
        self.set_image_calls = 0
        self.features = None
        self.original_size = self.input_size = None
        self.is_image_set = False

    def set_image(self, image: np.ndarray) -> None:
        self.set_image_calls += 1
        self.features = float(image.mean())
        self.original_size = self.input_size = image.shape[:2]
        self.is_image_set = True

    def predict(self, **prompts):
        return self.features, self.original_size


def test_cached_predictor_encodes_each_photo_once_and_evicts_the_oldest():
    inner = _CountingPredictor()
    cached = CachedImagePredictor(inner, max_images=2)
    a, b, c = (np.full((4, 5, 3), v, np.uint8) for v in (10, 20, 30))
    for _ in range(3):
        cached.set_image(a.copy())  # equal pixels in another array: the same key
    assert inner.set_image_calls == 1 and cached.hits == 2
    cached.set_image(b)
    cached.set_image(a)  # back to a: its state is restored, not re-encoded
    assert inner.set_image_calls == 2 and cached.predict() == (10.0, (4, 5))
    cached.set_image(c)  # evicts b, the least recently used
    cached.set_image(a)
    assert inner.set_image_calls == 3
    cached.set_image(b)
    assert inner.set_image_calls == 4 and cached.encodes == 4
    with pytest.raises(ConfigError, match="at least one image"):
        CachedImagePredictor(inner, max_images=0)


def test_sam_points_and_boxes_on_one_photo_encode_once(coffee):
    torch = pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    from segment_anything import SamPredictor
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(0)
    tiny = _build_sam(
        encoder_embed_dim=16,
        encoder_depth=1,
        encoder_num_heads=1,
        encoder_global_attn_indexes=[],
        checkpoint=None,
    )
    encoded = []
    tiny.image_encoder.register_forward_hook(lambda *_: encoded.append(1))
    sam = SamProposer(model=tiny)
    photo = coffee[::4, ::4].copy()
    masks = [sam.point(photo, (40, 30)), sam.box(photo, (10, 10, 50, 40)), sam.point(photo, (80, 60))]
    assert len(encoded) == 1
    assert all(m.shape == photo.shape[:2] and m.dtype == bool for m in masks)
    # The cached embedding gives the same mask as a fresh encoding.
    fresh = SamPredictor(tiny)
    fresh.set_image(photo)
    m, s, _ = fresh.predict(point_coords=np.array([(80, 60)]), point_labels=np.array([1]))
    assert np.array_equal(masks[2], m[int(np.argmax(s))])
    assert len(encoded) == 2  # the fresh predictor's encoding
    sam.point(photo[:, ::-1].copy(), (40, 30))  # another photo: the proposer encodes once more
    assert len(encoded) == 3


def test_superpixels_cover_the_photo_once_and_repeat(coffee):
    from seagull.proposals import superpixel_regions

    rois = superpixel_regions(coffee, 24)
    assert 12 <= len(rois) <= 48  # SLIC's count is approximate
    cover = np.sum([r.mask for r in rois], axis=0)
    assert (cover == 1).all()
    assert [r.name for r in rois][:2] == ["superpixel1", "superpixel2"] and rois[0].source == "superpixel"
    again = superpixel_regions(coffee, 24)
    assert all((a.mask == b.mask).all() for a, b in zip(rois, again, strict=True))
    with pytest.raises(RoiError, match="at least 1"):
        superpixel_regions(coffee, 0)
