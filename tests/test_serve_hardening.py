"""The REST server under hostile or odd input: every 4xx in the documented shape, no 500 for bad
input, a clean JSON 500 that keeps the connection, API docs without other hosts, and the property
test of the form-field parsers."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from helpers import COFFEE, TEST_HOSTS, png_bytes, post  # noqa: E402
from seagull.errors import SeagullError  # noqa: E402


@pytest.fixture(scope="module")
def app(micro_assessor):
    from seagull.serve import Limits, create_app

    return create_app(
        micro_assessor,
        Limits(max_upload_bytes=1_500_000, max_pixels=1_000_000, max_rois=4),
        allowed_hosts=TEST_HOSTS,
    )


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def assert_error_shape(r, status: int, words: str = "") -> dict:
    """The documented error body: {"detail": "<message>", "error": "<kind>"}."""
    assert r.status_code == status, r.text[:300]
    body = r.json()
    assert set(body) == {"detail", "error"}, body
    assert isinstance(body["detail"], str) and body["detail"] and isinstance(body["error"], str)
    assert words in body["detail"], body
    return body


# --------------------------------------------------------------------------- deep or huge JSON


@pytest.mark.parametrize(
    "rois",
    [
        "[" * 100_000,  # the C parser itself recursed past Python's limit: a 500 before
        "[" * 50 + "]" * 50,  # parses, but deeper than any ROI list
        '[{"box": ' + "[" * 40 + "]" * 40 + "}]",
        '[{"rle": "' + "[" * 100_000 + '"}]',  # an RLE given as JSON text is parsed too
    ],
)
def test_deeply_nested_rois_json_is_422_naming_the_field_and_the_limit(client, rois):
    from seagull.roi import MAX_JSON_DEPTH

    body = assert_error_shape(post(client, "/v1/assess", rois=rois), 422, "nested")
    assert str(MAX_JSON_DEPTH) in body["detail"] and ("'rois'" in body["detail"] or "RLE" in body["detail"])


def test_a_huge_rois_field_is_refused_with_the_error_shape(client):
    r = post(client, "/v1/assess", rois=" " * 1_100_000)  # over the multipart part limit (1 MiB)
    assert_error_shape(r, 400, "maximum size")


# --------------------------------------------------------------------------- the documented error shape


@pytest.mark.parametrize(
    ("path", "data", "words"),
    [
        ("/v1/assess", {"box_format": "cxcywh"}, "'box_format'"),
        ("/v1/assess", {"text": "perhaps"}, "'text'"),
        ("/v1/map", {"tile": "abc"}, "'tile'"),
        ("/v1/map", {"max_regions": "0"}, "'max_regions'"),
        ("/v1/map", {"top": "many"}, "'top'"),
    ],
)
def test_request_validation_errors_follow_the_error_shape(client, path, data, words):
    body = assert_error_shape(post(client, path, **data), 422, words)
    assert body["error"] == "ValidationError"


def test_missing_image_and_other_4xx_follow_the_error_shape(client):
    body = assert_error_shape(client.post("/v1/assess", data={"box": "1,2,3,4"}), 422, "'image'")
    assert "multipart" in body["detail"]
    assert_error_shape(client.post("/v1/assess", json={"image": "coffee.jpg"}), 422)
    assert_error_shape(client.get("/v1/nothing"), 404)
    r = client.get("/v1/assess")
    assert assert_error_shape(r, 405)["error"] == "MethodNotAllowed" and "POST" in r.headers["allow"]
    r = client.post(
        "/v1/assess", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert_error_shape(r, 400)


def test_a_body_over_the_limit_is_413_in_the_error_shape_and_closes_the_connection(client):
    def chunks():  # no Content-Length: counted as it arrives, refused part-way
        for _ in range(40):
            yield b"x" * 50_000

    r = client.post(
        "/v1/assess", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert assert_error_shape(r, 413, "1500000 bytes")["error"] == "PayloadTooLarge"
    assert r.headers["connection"] == "close"  # the rest of the body is never read
    r = post(client, "/v1/assess", image=b"\0" * 1_600_000)  # declared Content-Length
    assert assert_error_shape(r, 413)["error"] == "PayloadTooLarge" and r.headers["connection"] == "close"


# --------------------------------------------------------------------------- one photo, each field once


SMALL_PNG = png_bytes(np.full((24, 32, 3), 90, np.uint8))


def image_parts(n: int, second: bytes = SMALL_PNG) -> list:
    """The photo, then ``n - 1`` more ``image`` parts."""
    return [("image", ("coffee.jpg", COFFEE, "image/jpeg"))] + [
        ("image", (f"other{i}.png", second, "image/png")) for i in range(n - 1)
    ]


ENDPOINTS = [("/v1/assess", {"box": "10,10,50,50"}), ("/v1/map", {}), ("/v1/segment", {"point": "5,5"})]


@pytest.mark.parametrize("n", [2, 50])
@pytest.mark.parametrize(("path", "data"), ENDPOINTS)
def test_more_than_one_image_part_is_422_naming_the_field(client, path, data, n):
    # Before: 200, and only the last photo was assessed (the others were dropped without a word).
    body = assert_error_shape(client.post(path, files=image_parts(n), data=data), 422, "'image'")
    assert f"{n} times" in body["detail"] and body["error"] == "FieldError"


def test_a_second_image_part_is_refused_before_any_image_is_read(client):
    # Before: the error named the second part's file as if it were the only photo.
    r = client.post("/v1/assess", files=image_parts(2, b"not an image"))
    assert "2 times" in assert_error_shape(r, 422, "'image'")["detail"]


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/assess", "rois", '[{"box": [1, 1, 20, 20]}]'),
        ("/v1/assess", "tasks", "quality"),
        ("/v1/map", "by", "quality"),
        ("/v1/map", "tile", "64"),
        ("/v1/segment", "point", "5,5"),
    ],
)
def test_a_single_valued_field_sent_twice_is_422_naming_it(client, path, field, value):
    files = [("image", ("coffee.jpg", COFFEE, "image/jpeg")), (field, (None, value)), (field, (None, value))]
    assert_error_shape(client.post(path, files=files), 422, f"field {field!r} was sent 2 times")


@pytest.mark.parametrize("tasks", ["", " ", ","])
def test_an_empty_tasks_field_is_422_as_on_the_command_line(client, tasks):
    # Before: FastAPI read the empty field as absent, so the server assessed every task with 200.
    from seagull.roi import parse_tasks

    with pytest.raises(SeagullError):
        parse_tasks(tasks)  # the rule the command line uses too
    body = assert_error_shape(post(client, "/v1/assess", tasks=tasks), 422, "tasks")
    assert "quality,importance,distortion" in body["detail"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/assess", "box_format"),
        ("/v1/map", "mode"),
        ("/v1/map", "by"),
        ("/v1/map", "tile"),
        ("/v1/map", "top"),
        ("/v1/segment", "point"),
    ],
)
def test_an_empty_option_field_is_422_not_the_default(client, path, field):
    data = {"box": "1,1,20,20"} if path == "/v1/segment" else {}
    assert_error_shape(post(client, path, **{field: "", **data}), 422, f"field {field!r} is empty")


@pytest.mark.parametrize(
    ("path", "query", "data"),
    [
        ("/v1/map", "tile=nan", {}),
        ("/v1/assess", "box=1,1,20,20", {}),
        ("/v1/segment", "point=5,5", {"box": "1,1,20,20"}),
    ],
)
def test_query_parameters_are_422_naming_them_not_ignored(client, path, query, data):
    # Before: /v1/map?tile=nan answered 200 with the default tile; the form field tile=nan is a 422.
    name = query.split("=")[0]
    r = post(client, f"{path}?{query}", **data)
    assert_error_shape(r, 422, f"query parameter(s) {name!r}")


def test_a_file_name_over_the_part_header_limit_is_400_saying_so(client):
    from python_multipart.multipart import DEFAULT_MAX_HEADER_SIZE

    # Before: "Invalid multipart data." and nothing about the cause.
    body = assert_error_shape(post(client, "/v1/assess", name="a" * 10_000 + ".jpg"), 400, "file name")
    assert f"{DEFAULT_MAX_HEADER_SIZE} bytes" in body["detail"] and "shorter name" in body["detail"]
    r = post(client, "/v1/assess", name="b" * 3_000 + ".jpg", box="1,1,20,20")  # long, but under it
    assert r.status_code == 200 and r.json()["image"] == "b" * 200


# --------------------------------------------------------------------------- the Host allow-list


def test_a_host_not_on_the_list_is_400_before_anything_is_parsed(client):
    # Before: any Host got 200, so a page on a DNS-rebound name could read the answers.
    for host in ("evil.example", "evil.example:8000", "testserver.evil.example", "127.0.0.1.evil.example"):
        r = client.get("/healthz", headers={"host": host})
        assert assert_error_shape(r, 400, "--allowed-hosts")["error"] == "HostNotAllowed", host
    files = {"image": ("coffee.jpg", COFFEE, "image/jpeg")}
    r = client.post("/v1/assess", files=files, data={"box": "1,1,20,20"}, headers={"host": "evil.example"})
    assert_error_shape(r, 400, "Host header 'evil.example'")
    assert client.get("/healthz", headers={"host": "TESTSERVER:8000"}).status_code == 200


def test_a_refused_hosts_body_is_drained_within_the_body_limit(client):
    def chunks():  # no Content-Length: only the body limit stops the drain
        for _ in range(40):
            yield b"x" * 50_000

    headers = {"host": "evil.example", "content-type": "multipart/form-data; boundary=b"}
    assert_error_shape(client.post("/v1/assess", content=chunks(), headers=headers), 413)


def test_the_default_list_is_this_machines_loopback_names(micro_assessor):
    from seagull.serve import create_app

    app = create_app(micro_assessor)
    assert app.state.allowed_hosts == ("localhost", "127.0.0.1", "::1")
    with TestClient(app, raise_server_exceptions=False) as c:
        assert_error_shape(c.get("/healthz"), 400)  # the test client's own name is not on it
        for base in ("http://127.0.0.1:8000", "http://localhost", "http://[::1]:8000"):
            assert c.get(f"{base}/healthz").status_code == 200, base
        assert_error_shape(c.get("/healthz", headers={"host": ""}), 400, "(none)")


@pytest.mark.parametrize(
    ("allowed", "host", "ok"),
    [
        (["*"], "anything.example", True),
        (["*.example.org"], "a.example.org", True),
        (["*.example.org"], "example.org", False),
        (["*.example.org"], "aexample.org", False),
        (["[::1]"], "[::1]:80", True),
        (["Example.ORG."], "example.org", True),
        (["example.org"], "example.org.", True),
    ],
)
def test_host_patterns(allowed, host, ok):
    from seagull.serve.hosts import host_allowed, host_of, normalise_hosts

    assert host_allowed(host_of(host), normalise_hosts(allowed)) is ok


@pytest.mark.parametrize(
    "bad", [[], "", ["example.org:8000"], ["a b"], ["exa*mple.org"], ["http://x"], [None]]
)
def test_a_malformed_allow_list_is_a_config_error(micro_assessor, bad):
    from seagull.errors import ConfigError
    from seagull.serve import create_app

    with pytest.raises(ConfigError, match="allowed hosts"):
        create_app(micro_assessor, allowed_hosts=bad)


# --------------------------------------------------------------------------- tiny and degenerate images


@pytest.mark.parametrize("hw", [(1, 1), (1, 3)])
def test_a_photo_too_small_to_judge_is_422(client, hw):
    r = post(client, "/v1/assess", image=png_bytes(np.full((*hw, 3), 128, np.uint8)), name="tiny.png")
    body = assert_error_shape(r, 422)
    assert "tiny.png" in body["detail"] or f"{hw[1]}x{hw[0]}" in body["detail"]


@pytest.mark.parametrize(("path", "data"), [("/v1/map", {}), ("/v1/segment", {"point": "5,0"})])
def test_a_thin_photo_for_automatic_regions_is_422(client, path, data):
    thin = png_bytes(np.full((2, 20000, 3), 128, np.uint8))
    assert_error_shape(post(client, path, image=thin, name="thin.png", **data), 422, "20000x2")


def test_every_input_error_of_the_package_is_422_and_model_failures_500(app, client, monkeypatch):
    from seagull.errors import AnswerParseError, ImageLoadError, ModelError

    def failing(exc):
        def run(*a, **k):
            raise exc

        return run

    for exc, status in [
        (ImageLoadError("image 'x': too small to judge"), 422),
        (type("FutureInputError", (SeagullError, ValueError), {})("roi too small"), 422),
        (ModelError("weights broke"), 500),
        (AnswerParseError("odd answer"), 500),
    ]:
        monkeypatch.setattr(app.state.worker.assessor, "assess_batch", failing(exc))
        body = assert_error_shape(post(client, "/v1/assess", box=["1,1,50,50"]), status)
        assert body["error"] == type(exc).__name__


# --------------------------------------------------------------------------- unexpected errors


@pytest.fixture()
def live_server(app):
    """The app on a real uvicorn server on loopback (the TestClient hides what the server does with
    the connection)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield port
    server.should_exit = True
    thread.join(10)


def multipart(fields: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "seagullboundary"
    out = b""
    for name, (filename, data) in fields.items():
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_an_unexpected_error_is_a_json_500_and_the_connection_stays_usable(app, live_server, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.state.segmenter, "point", broken)
    conn = http.client.HTTPConnection("127.0.0.1", live_server, timeout=30)
    body, ctype = multipart({"image": ("c.jpg", COFFEE), "point": (None, b"10,10")})
    conn.request("POST", "/v1/segment", body=body, headers={"Content-Type": ctype})
    r = conn.getresponse()
    err = json.loads(r.read())
    assert r.status == 500 and err == {
        "detail": "internal server error (RuntimeError); see the server log",
        "error": "Internal",
    }
    sock = conn.sock
    conn.request("GET", "/healthz")  # the next request on the same keep-alive connection
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["status"] == "ok"
    assert conn.sock is sock  # not reconnected
    conn.close()


def test_a_refused_host_gets_its_answer_and_the_connection_stays_usable(live_server):
    # Before the body was drained, the server answered and closed while the client was still sending
    # the photo: the client saw a reset, not the 400 (the load benchmark's "no answer").
    conn = http.client.HTTPConnection("127.0.0.1", live_server, timeout=30)
    body, ctype = multipart({"image": ("c.jpg", COFFEE), "box": (None, b"10,10,50,50")})
    conn.request("POST", "/v1/assess", body=body, headers={"Content-Type": ctype, "Host": "rebound.example"})
    r = conn.getresponse()
    assert r.status == 400 and json.loads(r.read())["error"] == "HostNotAllowed"
    sock = conn.sock
    conn.request("GET", "/healthz")  # the next request on the same keep-alive connection
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["status"] == "ok"
    assert conn.sock is sock  # not reconnected
    conn.close()


# --------------------------------------------------------------------------- API docs, offline

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
LOCAL_REF = re.compile(r"""(?:src|href)\s*=\s*["'](/[^"']+)["']""", re.I)
CSS_EXTERNAL = re.compile(r"""(?:@import|url\()\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.mark.parametrize("page", ["/", "/docs", "/redoc"])
def test_pages_load_nothing_from_other_hosts(client, page):
    r = client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert not EXTERNAL.findall(r.text), EXTERNAL.findall(r.text)
    assert "fonts.googleapis" not in r.text and "cdn." not in r.text
    refs = LOCAL_REF.findall(r.text)
    if page != "/":
        assert any(ref.endswith(".js") for ref in refs)
    for ref in refs:  # every script, style sheet and icon the page names is served here
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        if ref.endswith(".css"):
            assert not CSS_EXTERNAL.findall(asset.text), ref


def test_swagger_ui_does_not_call_the_online_validator(client):
    assert re.search(r'"validatorUrl"\s*:\s*null', client.get("/docs").text)


# --------------------------------------------------------------------------- property test of the parsers

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
NUMBER = st.floats() | st.integers(-(10**20), 10**20)
ROI_VALUES = {  # nearly valid values, so that resolving the ROIs runs too
    "box": st.lists(NUMBER, min_size=3, max_size=5),
    "point": st.lists(NUMBER, min_size=1, max_size=3),
    "polygon": st.lists(st.lists(NUMBER, max_size=10), max_size=3),
    "rle": st.fixed_dictionaries(
        {
            "size": st.just([24, 32]),
            "counts": st.text(max_size=20) | st.lists(st.integers(-5, 800), max_size=8),
        }
    ),
    "mask": st.integers(-1, 2) | st.text(max_size=6),
}
NEARLY_VALID_ROI = st.sampled_from(sorted(ROI_VALUES)).flatmap(
    lambda kind: st.fixed_dictionaries(
        {kind: ROI_VALUES[kind]},
        optional={"name": st.text(max_size=8), "format": st.sampled_from(["xywh", "xyxy", "cxcywh"])},
    )
)
ROI_LIKE = st.dictionaries(st.sampled_from([*ROI_VALUES, "name", "format"]), JSON, max_size=4)
ROIS_TEXT = st.one_of(
    st.text(max_size=60),
    JSON.map(json.dumps),
    st.lists(NEARLY_VALID_ROI | ROI_LIKE, max_size=6).map(json.dumps),
    st.builds(lambda n, inner: "[" * n + inner + "]" * n, st.integers(0, 3000), st.text(max_size=5)),
)
NUMBERS_TEXT = st.one_of(
    st.text(max_size=30),
    st.lists(st.floats() | st.integers(-(10**30), 10**30), max_size=6).map(lambda v: ",".join(map(str, v))),
)
PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _small_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)


@PROPERTY
@given(
    rois=st.none() | ROIS_TEXT,
    boxes=st.lists(NUMBERS_TEXT, max_size=3),
    points=st.lists(NUMBERS_TEXT, max_size=3),
)
def test_form_fields_give_rois_or_the_projects_own_error(rois, boxes, points):
    from seagull.roi import request_rois
    from seagull.serve import Limits
    from seagull.serve.inputs import Upload, build_specs

    image = _small_image()
    masks = [Upload("m.png", png_bytes(np.full((24, 32), 255, np.uint8)))]
    try:
        specs = build_specs(rois, boxes, points, "xywh", masks, image.shape[:2], Limits(max_rois=8))
        out = request_rois(image, specs, [], lambda im, p: np.ones(im.shape[:2], bool))
    except SeagullError:
        return
    assert out and all(r.mask.shape == image.shape[:2] for r in out)


@PROPERTY
@given(text=st.text(max_size=40), value=JSON, n=st.sampled_from([2, 4]))
def test_numbers_tasks_and_names_give_a_value_or_the_projects_own_error(text, value, n):
    from seagull.roi import numbers, parse_tasks
    from seagull.serve.inputs import safe_name

    for arg in (text, value):
        try:
            got = numbers(arg, n, "box")
        except SeagullError:
            pass
        else:
            assert len(got) == n and all(np.isfinite(got))
    with contextlib.suppress(SeagullError):
        assert parse_tasks(text)
    name = safe_name(text)
    assert name and "/" not in name and len(name) <= 200
