"""The Assessor's working resolution: a photo larger than ``max_side`` is assessed on a shrunk copy,
its masks with it, so cost is bounded by design; smaller photos (every evaluation suite's) are untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seagull import Assessor, Roi, load_image
from seagull.errors import ModelError
from seagull.imageio import fit_longest_side, resize_mask
from seagull.roi import box_to_mask

EXAMPLE = "examples/coffee.jpg"
TASKS = ("quality", "importance", "distortion")


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor()


def numbers(results):
    return [(r.quality, r.importance, [(d.type, d.confidence) for d in r.distortions or []]) for r in results]


def test_a_photo_within_the_bound_is_assessed_as_it_is(assessor):
    photo = load_image(EXAMPLE)
    rois = [Roi(box_to_mask([150, 40, 330, 300], 400, 600), name="cup")]
    unbounded = Assessor.__new__(Assessor)
    unbounded.__dict__.update(assessor.__dict__, max_side=None)
    assert numbers(assessor.assess(photo, rois)) == numbers(unbounded.assess(photo, rois))


def test_a_large_photo_is_assessed_on_its_working_copy_with_boxes_in_its_own_pixels(assessor):
    photo = cv2.resize(load_image(EXAMPLE), (2400, 1600), interpolation=cv2.INTER_CUBIC)
    masks = [box_to_mask([600, 160, 1320, 1200], 1600, 2400), box_to_mask([0, 1360, 2400, 240], 1600, 2400)]
    got = assessor.assess(photo, [Roi(m, name=f"r{i}") for i, m in enumerate(masks)], tasks=TASKS)
    small = fit_longest_side(photo, 1024)
    want = assessor.assess(
        small, [Roi(resize_mask(m, small.shape[:2]), name=f"r{i}") for i, m in enumerate(masks)], tasks=TASKS
    )
    assert numbers(got) == numbers(want)
    assert [r.bbox for r in got] == [(600, 160, 1320, 1200), (0, 1360, 2400, 240)]
    assert [r.area for r in got] == [int(m.sum()) for m in masks]


def test_a_roi_smaller_than_a_working_pixel_keeps_a_mask(assessor):
    from seagull.assess.assessor import _working_mask

    mask = np.zeros((1600, 2400), bool)
    mask[805:807, 1205:1207] = True  # 2x2 px: nearest neighbour at 1024 px misses it
    assert not resize_mask(mask, (683, 1024)).any()
    small = _working_mask(mask, (683, 1024))
    assert small.any() and small.sum() <= 4
    photo = cv2.resize(load_image(EXAMPLE), (2400, 1600), interpolation=cv2.INTER_CUBIC)
    box = np.zeros((1600, 2400), bool)
    box[803:807, 1203:1207] = True  # the smallest ROI the model takes, 4x4 px
    (r,) = assessor.assess(photo, [Roi(box, name="dot")], tasks=("quality",))
    assert 0.0 <= r.quality <= 1.0


def test_thin_photos_keep_their_pixels_and_a_tiny_bound_is_refused(assessor):
    thin = np.zeros((12, 3000, 3), np.uint8)  # shrinking would leave a 4 px side
    assert assessor._working_copy(thin) is thin
    with pytest.raises(ModelError, match="max_side"):
        Assessor(max_side=4)
