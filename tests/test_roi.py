import json

import numpy as np
import pytest

from seagull.errors import RoiError
from seagull.roi import (
    Roi,
    RoiSpec,
    box_to_mask,
    load_roi_file,
    mask_bbox,
    mask_to_rle,
    parse_box,
    parse_point,
    polygon_to_mask,
    rle_to_mask,
)


def test_rle_round_trip_random_masks():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (7, 13), (64, 48), (321, 481)]:
        m = rng.random(shape) > 0.6
        rle = mask_to_rle(m)
        assert json.loads(json.dumps(rle)) == rle  # JSON-ready
        assert np.array_equal(rle_to_mask(rle), m)
        assert np.array_equal(rle_to_mask(json.dumps(rle)), m)


def test_uncompressed_rle_like_coco_crowd():
    m = np.zeros((4, 3), bool)
    m[1:3, 1] = True
    # column-major runs: col0 4 zeros, col1: 1 zero, 2 ones, 1 zero, col2: 4 zeros
    assert np.array_equal(rle_to_mask({"size": [4, 3], "counts": [5, 2, 5]}), m)
    with pytest.raises(RoiError, match="sum"):
        rle_to_mask({"size": [4, 3], "counts": [5, 2]})


def test_bbox_of_one_pixel_mask_is_one_wide():
    m = np.zeros((10, 10), bool)
    m[3, 7] = True
    assert mask_bbox(m) == (7, 3, 1, 1)
    assert Roi(m).area == 1


def test_box_formats_agree_and_clip():
    a = box_to_mask([2, 3, 4, 5], 20, 30, "xywh")
    b = box_to_mask([2, 3, 6, 8], 20, 30, "xyxy")
    assert np.array_equal(a, b) and a.sum() == 20 and mask_bbox(a) == (2, 3, 4, 5)
    c = box_to_mask([25, 15, 100, 100], 20, 30)  # partly outside: clipped
    assert mask_bbox(c) == (25, 15, 5, 5)


@pytest.mark.parametrize(
    "box,match",
    [([1, 1, 0, 5], "zero or negative area"), ([40, 1, 5, 5], "outside"), ([1, 2, 3], "4 numbers")],
)
def test_bad_boxes_name_the_roi(box, match):
    with pytest.raises(RoiError, match=match) as e:
        box_to_mask(box, 20, 30, name="my-box")
    assert "my-box" in str(e.value)


def test_polygon_mask_matches_box():
    m = polygon_to_mask([[10, 10, 30, 10, 30, 20, 10, 20]], 40, 40)
    x, y, w, h = mask_bbox(m)
    assert abs(x - 10) <= 1 and abs(y - 10) <= 1 and abs(w - 20) <= 2 and abs(h - 10) <= 2
    with pytest.raises(RoiError, match="at least 3"):
        polygon_to_mask([[1, 2, 3, 4]], 10, 10)


def test_empty_and_mismatched_masks_are_refused():
    with pytest.raises(RoiError, match="empty"):
        Roi(np.zeros((5, 5), bool), name="nothing")
    r = Roi(np.ones((5, 5), bool), name="small")
    with pytest.raises(RoiError, match="5x5 but the image is 6x5"):
        r.check_size(5, 6)


def test_specs_resolve_against_an_image(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    from PIL import Image

    mpath = tmp_path / "m.png"
    mm = np.zeros((20, 30), np.uint8)
    mm[5:9, 5:9] = 255
    Image.fromarray(mm).save(mpath)
    (tmp_path / "rois.json").write_text(
        json.dumps(
            {"rois": [{"box": [1, 1, 5, 5]}, {"mask": "m.png", "name": "file"}, {"rle": mask_to_rle(mm > 0)}]}
        )
    )
    specs = load_roi_file(tmp_path / "rois.json")
    rois = [s.resolve(img) for s in specs]
    assert [r.area for r in rois] == [25, 16, 16]
    assert rois[1].name == "file"
    point = parse_point("3,4").resolve(
        img, point_proposer=lambda im, p: box_to_mask((p[0], p[1], 2, 2), 20, 30)
    )
    assert point.area == 4
    with pytest.raises(RoiError, match="proposer"):
        parse_point("3,4").resolve(img)
    with pytest.raises(RoiError, match="outside"):
        parse_point("300,4").resolve(img, point_proposer=lambda im, p: None)
    with pytest.raises(RoiError, match="'x', which is not a number; give 4 finite numbers"):
        parse_box("1,2,x,4")
    with pytest.raises(RoiError, match="exactly one"):
        load_roi_file_from(tmp_path, [{"box": [1, 1, 2, 2], "point": [1, 1]}])
    with pytest.raises(RoiError, match="mask is 3x3 but the image is 30x20"):
        RoiSpec("mask", np.ones((3, 3), bool), "tiny").resolve(img)


def load_roi_file_from(tmp_path, entries):
    p = tmp_path / "x.json"
    p.write_text(json.dumps(entries))
    return load_roi_file(p)


def test_roi_file_errors(tmp_path):
    with pytest.raises(RoiError, match="does not exist"):
        load_roi_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RoiError, match="not valid JSON"):
        load_roi_file(tmp_path / "bad.json")
