"""Property tests of every ROI parser: any input gives a result or the project's own error, never
another exception (a traceback on the command line, a 500 from the server)."""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from seagull.assess.commands import make_roi_builder
from seagull.errors import SeagullError
from seagull.roi import (
    Roi,
    box_to_mask,
    load_mask_file,
    load_roi_file,
    mask_to_rle,
    parse_box,
    parse_point,
    polygon_to_mask,
    rle_to_mask,
    spec_from_dict,
)

H, W = 12, 16
IMAGE = np.zeros((H, W, 3), np.uint8)
FAST = settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-40, 40),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=16,
)
number_lists = st.lists(numbers, max_size=9)
csv_text = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.one_of(numbers.map(str), st.sampled_from(["nan", "inf", "-inf", "", "1e999", "x"])), max_size=6
    ).map(",".join),
)


def box_proposer(image: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    return box_to_mask((point[0] - 2, point[1] - 2, 5, 5), *image.shape[:2])


def own_error_or(fn, *args):
    """Call ``fn``; a SeagullError is an accepted answer, anything else propagates and fails the test."""
    try:
        return fn(*args)
    except SeagullError:
        return None


def check_roi(roi):
    if roi is not None:
        assert isinstance(roi, Roi) and roi.mask.shape == (H, W) and roi.mask.dtype == bool and roi.mask.any()


@FAST
@given(csv_text, st.sampled_from(["xywh", "xyxy", "xyz"]))
def test_parse_box_then_resolve(text, fmt):
    spec = own_error_or(parse_box, text, fmt)
    if spec is not None:
        check_roi(own_error_or(spec.resolve, IMAGE))


@FAST
@given(csv_text)
def test_parse_point_then_resolve(text):
    spec = own_error_or(parse_point, text)
    if spec is not None:
        check_roi(own_error_or(spec.resolve, IMAGE, box_proposer))


@FAST
@given(st.one_of(number_lists, json_values), st.sampled_from(["xywh", "xyxy", "?"]))
def test_box_to_mask(box, fmt):
    m = own_error_or(box_to_mask, box, H, W, fmt)
    assert m is None or (m.shape == (H, W) and m.any())


@FAST
@given(st.one_of(st.lists(number_lists, max_size=3), number_lists, json_values))
def test_polygon_to_mask(polygons):
    m = own_error_or(polygon_to_mask, polygons, H, W)
    assert m is None or (m.shape == (H, W) and m.dtype == bool)


@FAST
@given(
    st.one_of(
        json_values,
        st.text(max_size=40),
        st.fixed_dictionaries(
            {"size": st.one_of(json_values, st.lists(st.integers(-3, 30), max_size=3)), "counts": json_values}
        ),
        st.fixed_dictionaries(
            {
                "size": st.just([H, W]),
                "counts": st.one_of(st.text(max_size=20), st.lists(st.integers(-5, H * W), max_size=6)),
            }
        ),
    )
)
def test_rle_to_mask(rle):
    m = own_error_or(rle_to_mask, rle)
    assert m is None or (m.ndim == 2 and m.dtype == bool)


@FAST
@given(st.integers(1, 20), st.integers(1, 20), st.floats(0, 1), st.randoms(use_true_random=False))
def test_rle_round_trip(h, w, density, rnd):
    mask = np.array([[rnd.random() < density for _ in range(w)] for _ in range(h)], bool)
    rle = mask_to_rle(mask)
    assert np.array_equal(rle_to_mask(rle), mask)
    assert np.array_equal(rle_to_mask(json.dumps(rle)), mask)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["box", "point", "rle", "polygon", "mask", "name", "format"]), json_values
    )
)
def test_roi_file_entry(entry):
    spec = own_error_or(spec_from_dict, entry)
    if spec is not None:
        check_roi(own_error_or(spec.resolve, IMAGE, box_proposer))


def png_bytes(w: int, h: int, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 1).save(buf, format="PNG")
    return buf.getvalue()


@FAST
@given(
    st.one_of(
        st.binary(max_size=64),
        st.builds(
            png_bytes, st.integers(1, 20), st.integers(1, 20), st.sampled_from(["L", "1", "RGB", "I;16"])
        ),
        st.builds(
            lambda b, k: b[:k], st.builds(png_bytes, st.just(W), st.just(H), st.just("L")), st.integers(0, 80)
        ),
    )
)
def test_mask_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("mask") / "m.png"
    path.write_bytes(data)
    m = own_error_or(load_mask_file, path, "m", (H, W))
    assert m is None or m.shape == (H, W)


@FAST
@given(
    st.one_of(
        st.binary(max_size=64),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.lists(json_values, min_size=1, max_size=3).map(lambda v: json.dumps({"rois": v}).encode()),
    )
)
def test_roi_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rois") / "rois.json"
    path.write_bytes(data)
    for spec in own_error_or(load_roi_file, path) or []:
        check_roi(own_error_or(spec.resolve, IMAGE, box_proposer))


def cli_args(**kw) -> argparse.Namespace:
    base = {"box": None, "box_format": "xywh", "point": None, "mask": None, "rle": None, "rois": None}
    return argparse.Namespace(**{**base, "every": False, "sam": None, **kw})


@FAST
@given(
    st.lists(csv_text, max_size=2),
    st.lists(csv_text, max_size=2),
    st.lists(st.one_of(st.text(max_size=30), json_values.map(json.dumps)), max_size=2),
    st.sampled_from(["xywh", "xyxy"]),
)
def test_command_line_regions(boxes, points, rles, fmt):
    """What `seagull assess --box/--point/--rle` does with its words, up to the ROIs of an image."""
    build = own_error_or(make_roi_builder, cli_args(box=boxes, point=points, rle=rles, box_format=fmt))
    if build is not None:
        for roi in own_error_or(build, IMAGE) or []:
            check_roi(roi)


@pytest.mark.parametrize(
    "entry",
    [{"point": "ab"}, {"polygon": "abc"}, {"rle": {"size": [400], "counts": [1]}}, {"box": None}],
)
def test_reported_roi_file_entries_are_own_errors(tmp_path, entry):
    path = tmp_path / "rois.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(SeagullError):
        for spec in load_roi_file(path):
            spec.resolve(IMAGE, box_proposer)
