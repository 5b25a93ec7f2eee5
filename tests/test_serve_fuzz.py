"""Fuzzing the REST endpoints with random multipart bodies: random fields, random bytes as the photo,
random JSON. Whatever comes in, the answer is never a 5xx, and every error has the documented shape."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("hypothesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers import COFFEE, TEST_HOSTS  # noqa: E402


@pytest.fixture(scope="module")
def client(micro_model_dir):
    from seagull.serve import Limits, create_app

    limits = Limits(max_upload_bytes=1_500_000, max_pixels=1_000_000, max_rois=4)
    with TestClient(
        create_app(micro_model_dir, limits, allowed_hosts=TEST_HOSTS), raise_server_exceptions=False
    ) as c:
        yield c


def encode(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def photos(draw) -> bytes:
    """Real images of any size from 1x1 (thin ones too), broken ones, and plain random bytes."""
    kind = draw(st.sampled_from(["random", "image", "thin", "truncated", "coffee"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "coffee":
        return COFFEE
    if kind == "truncated":
        return COFFEE[: draw(st.integers(0, len(COFFEE) - 1))]
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    if kind == "thin":
        h, w = (draw(st.integers(1, 3)), draw(st.sampled_from([300, 1500, 5000, 20000])))
        h, w = (h, w) if draw(st.booleans()) else (w, h)
    channels = draw(st.sampled_from([(), (3,), (4,)]))
    arr = np.random.default_rng(draw(st.integers(0, 2**16))).integers(
        0, 256, (h, w, *channels), dtype=np.uint8
    )
    return encode(arr, draw(st.sampled_from(["PNG", "JPEG", "BMP"])) if channels != (4,) else "PNG")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
NUMBERS = st.lists(st.floats() | st.integers(-1000, 5000), max_size=5).map(lambda v: ",".join(map(str, v)))
TEXT_VALUE = st.one_of(st.text(max_size=30), NUMBERS, JSON.map(json.dumps), st.just("[" * 3000))
FIELD_NAMES = ["rois", "box", "point", "box_format", "tasks", "text", "by", "max_regions", "top", "other"]
ROIS = st.lists(
    st.fixed_dictionaries(
        {}, optional={"box": JSON, "point": JSON, "rle": JSON, "polygon": JSON, "mask": JSON}
    ),
    max_size=4,
).map(json.dumps)


@st.composite
def requests(draw) -> tuple[str, list, list]:
    path = draw(st.sampled_from(["/v1/assess", "/v1/map", "/v1/segment"]))
    files = [] if draw(st.integers(0, 9)) == 0 else [("image", ("x.png", draw(photos()), "image/png"))]
    for _ in range(draw(st.integers(0, 2))):
        files.append(("masks", (draw(st.text(max_size=8)), draw(photos()), "image/png")))
    data = [(name, draw(TEXT_VALUE)) for name in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=3))]
    if draw(st.booleans()):
        data.append(("rois", draw(ROIS)))
    if path == "/v1/segment" and draw(st.integers(0, 4)):
        data.append(("point", f"{draw(st.integers(-2, 45))},{draw(st.integers(-2, 45))}"))
    return path, files, data


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(req=requests())
def test_random_multipart_requests_never_get_a_5xx(client, req):
    path, files, data = req
    body: dict[str, list[str]] = {}
    for name, value in data:
        body.setdefault(name, []).append(value)
    r = client.post(path, files=files or None, data=body)
    assert r.status_code < 500, (path, r.text[:300])
    if r.status_code >= 400:
        err = r.json()
        assert set(err) == {"detail", "error"} and isinstance(err["detail"], str), err
