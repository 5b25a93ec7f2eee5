"""The REST API on a small random `seagull-test` model: good, malformed and oversized requests."""

from __future__ import annotations

import base64
import io
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from helpers import COFFEE, EXAMPLES, TEST_HOSTS, png_bytes, post  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def client(micro_assessor):
    from seagull.serve import Limits, create_app

    limits = Limits(max_upload_bytes=1_500_000, max_pixels=1_000_000, max_rois=4, max_map_regions=12)
    with TestClient(
        create_app(micro_assessor, limits, allowed_hosts=TEST_HOSTS), raise_server_exceptions=False
    ) as c:
        yield c


def decode_png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


# --------------------------------------------------------------------------- service endpoints


def test_health_models_and_openapi(client):
    h = client.get("/healthz")
    assert h.status_code == 200 and h.json()["status"] == "ok"
    m = client.get("/v1/models").json()
    assert m["models"][0]["parameters"] > 0 and m["limits"]["max_rois"] == 4
    assert m["models"][0]["vision"]["image_size"] == 64
    spec = client.get("/openapi.json").json()
    assert {"/v1/assess", "/v1/map", "/v1/segment", "/healthz", "/v1/models"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text


# --------------------------------------------------------------------------- /v1/assess


def test_assess_equals_the_cli_json(client, micro_model_dir, capsys):
    from seagull.cli import main

    r = post(client, "/v1/assess", box=["100,80,200,150"])
    assert r.status_code == 200, r.text
    got = r.json()
    assert (
        main(
            [
                "assess",
                str(EXAMPLES / "coffee.jpg"),
                "--model",
                str(micro_model_dir),
                "--box",
                "100,80,200,150",
                "--json",
            ]
        )
        == 0
    )
    cli = json.loads(capsys.readouterr().out)
    assert got["image"] == "coffee.jpg" and (got["width"], got["height"]) == (cli["width"], cli["height"])
    assert got["rois"] == cli["rois"]
    roi = got["rois"][0]
    assert roi["bbox"] == [100, 80, 200, 150] and roi["area"] == 200 * 150
    assert 0 <= roi["quality"] <= 1 and roi["quality_level"] in ("bad", "poor", "fair", "good", "excellent")
    assert len(roi["distortions"]) == 6


def test_assess_every_roi_kind_in_one_request(client, micro_assessor):
    from seagull.imageio import load_image
    from seagull.proposals import point_to_mask
    from seagull.roi import Roi, mask_to_rle

    image = load_image(COFFEE)
    h, w = image.shape[:2]
    rle_mask = np.zeros((h, w), bool)
    rle_mask[10:60, 20:90] = True
    png_mask = np.zeros((h, w), np.uint8)
    png_mask[200:260, 300:420] = 255
    rois = [
        {"name": "r", "rle": mask_to_rle(rle_mask)},
        {"name": "poly", "polygon": [[10, 300, 120, 300, 60, 390]]},
        {"name": "xyxy", "box": [50, 50, 150, 120], "format": "xyxy"},
        {"name": "m", "mask": "cup.png"},
    ]
    r = post(
        client,
        "/v1/assess",
        files=[("masks", ("cup.png", png_bytes(png_mask), "image/png"))],
        rois=json.dumps(rois),
        tasks="quality",
    )
    assert r.status_code == 200, r.text
    out = {d["name"]: d for d in r.json()["rois"]}
    assert list(out) == ["r", "poly", "xyxy", "m"]
    assert out["r"]["bbox"] == [20, 10, 70, 50] and out["m"]["bbox"] == [300, 200, 120, 60]
    assert out["xyxy"]["bbox"] == [50, 50, 100, 70]
    assert out["r"]["importance"] is None and out["r"]["distortions"] == []  # only the asked task
    # The server's numbers are the assessor's numbers for the same masks.
    direct = micro_assessor.assess(image, [Roi(png_mask > 0, "m")], tasks=("quality",))[0]
    assert out["m"]["quality"] == pytest.approx(direct.quality, abs=1e-6)
    # A point is segmented by the weight-free prompt, as in the CLI.
    r = post(client, "/v1/assess", point=["300,200"], tasks="quality")
    assert r.status_code == 200
    assert r.json()["rois"][0]["area"] == int(point_to_mask(image, (300, 200)).sum())


def test_assess_without_rois_is_the_whole_image(client):
    r = post(client, "/v1/assess", tasks="importance")
    d = r.json()["rois"]
    assert r.status_code == 200 and len(d) == 1 and d[0]["area"] == 600 * 400 and d[0]["quality"] is None


# --------------------------------------------------------------------------- /v1/segment and /v1/map


def test_segment_point_and_box(client):
    import cv2

    from seagull.imageio import load_image
    from seagull.proposals import box_to_object_mask, point_to_mask
    from seagull.roi import rle_to_mask

    image = load_image(COFFEE)
    r = post(client, "/v1/segment", point="300,200")
    assert r.status_code == 200, r.text
    d = r.json()
    mask = rle_to_mask(d["rle"])
    assert mask.shape == (400, 600) and mask[200, 300]
    assert np.array_equal(mask, point_to_mask(image, (300, 200)))
    overlay = decode_png(d["outline_png"])
    assert (
        overlay.shape == (400, 600, 4)
        and overlay[..., 3][mask].min() > 0
        and overlay[..., 3][~cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)].max()
        == 0
    )
    assert d["method"] == "felzenszwalb" and d["area"] == int(mask.sum())

    r = post(client, "/v1/segment", box="100,50,300,250")
    mask = rle_to_mask(r.json()["rle"])
    assert np.array_equal(mask, box_to_object_mask(image, (100, 50, 300, 250)))
    assert r.json()["method"] == "grabcut"


def test_map_assesses_every_automatic_region(client):
    from seagull.imageio import load_image
    from seagull.proposals import every_region

    r = post(client, "/v1/map", mode="segments", by="importance", max_regions="12", top="3")
    assert r.status_code == 200, r.text
    d = r.json()
    regions = every_region(load_image(COFFEE), 12)
    assert len(d["rois"]) == len(regions) > 1
    assert [x["area"] for x in d["rois"]] == [x.area for x in regions]
    assert decode_png(d["heatmap_png"]).shape[0] == 400 and d["scale"] == 1.0  # a scale bar at its right
    imp = {x["name"]: x["importance"] for x in d["rois"]}
    assert len(d["worst"]) == 3 and d["worst"] == sorted(imp, key=imp.get, reverse=True)[:3]
    assert all(x["importance"] is not None and x["distortions"] == [] for x in d["rois"])


def test_map_of_a_large_photo_runs_at_the_working_size(micro_assessor):
    from seagull.serve import Limits, create_app

    big = np.asarray(Image.open(io.BytesIO(COFFEE)).resize((1200, 800)))
    with TestClient(create_app(micro_assessor, Limits(work_side=300), allowed_hosts=TEST_HOSTS)) as c:
        d = post(c, "/v1/map", image=png_bytes(big), name="big.png", max_regions="4").json()
    assert (d["width"], d["height"], d["original_width"], d["scale"]) == (300, 200, 1200, 0.25)
    assert decode_png(d["heatmap_png"]).shape[0] == 200


# --------------------------------------------------------------------------- malformed input: 4xx, never 500

MALFORMED = [
    ({"box": ["a,b"]}, 422, "4 finite numbers"),
    ({"box": ["1,2,3"]}, 422, "4 finite numbers"),
    ({"box": ["0,0,0,10"]}, 422, "zero or negative area"),
    ({"box": ["5000,5000,10,10"]}, 422, "outside"),
    ({"point": ["700,10"]}, 422, "outside"),
    ({"box_format": "cxcywh", "box": ["1,1,5,5"]}, 422, ""),
    ({"rois": "[{"}, 422, "not valid JSON"),
    ({"rois": '"box"'}, 422, "JSON list of objects"),
    ({"rois": '[{"box": 5}]'}, 422, "4 finite numbers"),
    ({"rois": '[{"box": [NaN, 1, 2, 3]}]'}, 422, "finite"),
    ({"rois": '[{"box": [1, 2, 3, 4], "point": [1, 2]}]'}, 422, "exactly one"),
    ({"rois": '[{"rle": {"size": [100000, 100000], "counts": "a"}}]'}, 422, "does not match"),
    ({"rois": '[{"rle": {"size": [400, 600], "counts": 7}}]'}, 422, "counts"),
    ({"rois": '[{"rle": {"size": [400, 600], "counts": "%%%%"}}]'}, 422, "RLE"),
    ({"rois": '[{"rle": {"size": [400, 600], "counts": [1, 2]}}]'}, 422, "sum"),
    ({"rois": '[{"polygon": [["a"]]}]'}, 422, "polygon"),
    ({"rois": '[{"polygon": [1, 2]}]'}, 422, "polygon"),
    ({"rois": '[{"mask": "/etc/passwd"}]'}, 422, "not an uploaded"),
    ({"rois": '[{"mask": 3}]'}, 422, "not an uploaded"),
    ({"rois": '[{"box": [1, 1, 5, 5], "name": "a"}, {"box": [2, 2, 5, 5], "name": "a"}]'}, 422, "unique"),
    ({"tasks": "quality,sharpness"}, 422, "subset"),
    ({"tasks": " , "}, 422, "subset"),
    ({"text": "perhaps"}, 422, ""),
]


@pytest.mark.parametrize(("data", "status", "words"), MALFORMED)
def test_malformed_assess_fields(client, data, status, words):
    r = post(client, "/v1/assess", **data)
    assert r.status_code == status, r.text
    assert words in json.dumps(r.json()["detail"])


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (b"", "empty"),
        (b"this is not an image", "not a readable image"),
        (COFFEE[:2000], "truncated or corrupt"),
    ],
)
def test_malformed_images(client, image, words):
    r = post(client, "/v1/assess", image=image, name="../../x.jpg")
    assert r.status_code == 422 and words in r.json()["detail"]
    assert "../" not in r.json()["detail"]  # the client's path is reduced to a name


def test_malformed_requests_are_4xx(client):
    assert client.post("/v1/assess", data={"box": "1,2,3,4"}).status_code == 422  # no image
    r = client.post(
        "/v1/assess", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=xx"}
    )
    assert r.status_code == 400
    assert client.post("/v1/assess", json={"image": "coffee.jpg"}).status_code == 422
    assert client.get("/v1/assess").status_code == 405
    assert post(client, "/v1/segment").status_code == 422  # no prompt
    assert post(client, "/v1/segment", point="1,1", box="1,1,5,5").status_code == 422
    assert post(client, "/v1/segment", point="nan,1").status_code == 422
    assert post(client, "/v1/map", by="sharpness").status_code == 422
    assert post(client, "/v1/map", max_regions="0").status_code == 422
    bad_mask = [("masks", ("m.png", b"not a png", "image/png"))]
    r = post(client, "/v1/assess", files=bad_mask)
    assert r.status_code == 422 and "m.png" in r.json()["detail"]
    small = [("masks", ("m.png", png_bytes(np.full((10, 10), 255, np.uint8)), "image/png"))]
    r = post(client, "/v1/assess", files=small)
    assert r.status_code == 422 and "10x10" in r.json()["detail"]
    empty = [("masks", ("m.png", png_bytes(np.zeros((400, 600), np.uint8)), "image/png"))]
    assert "empty" in post(client, "/v1/assess", files=empty).json()["detail"]


# --------------------------------------------------------------------------- oversized input


def test_oversized_body_is_413_before_it_is_read(client):
    r = post(client, "/v1/assess", image=b"\0" * 1_600_000)
    assert r.status_code == 413 and "1500000 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(40):
            yield b"x" * 50_000

    r = client.post(
        "/v1/assess", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert r.status_code == 413


def test_too_many_pixels_is_413(client):
    big = png_bytes(np.zeros((1100, 1000, 3), np.uint8))
    r = post(client, "/v1/assess", image=big, name="big.png")
    assert r.status_code == 413 and "1100000 pixels" in r.json()["detail"]
    assert post(client, "/v1/segment", image=big, point="1,1").status_code == 413
    assert post(client, "/v1/map", image=big, max_regions="4").status_code == 413


def test_too_many_rois_is_422(client):
    r = post(client, "/v1/assess", box=[f"{i},{i},20,20" for i in range(5)])
    assert r.status_code == 422 and "at most 4" in r.json()["detail"]
    r = post(
        client, "/v1/assess", rois=json.dumps([{"box": [i, i, 9, 9]} for i in range(3)]), box=["1,1,5,5"] * 2
    )
    assert r.status_code == 422
    r = post(client, "/v1/map", max_regions="13")
    assert r.status_code == 422 and "12" in r.json()["detail"]


# --------------------------------------------------------------------------- time and queue limits


def test_timeout_and_full_queue(micro_assessor, monkeypatch):
    import threading

    from seagull.serve import Limits, create_app

    release = threading.Event()
    real = micro_assessor.assess_batch

    def slow_batch(*a, **k):
        release.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(micro_assessor, "assess_batch", slow_batch)
    app = create_app(
        micro_assessor, Limits(request_timeout_s=0.5, queue_size=1, max_batch=1), allowed_hosts=TEST_HOSTS
    )
    with TestClient(app) as c:
        r = post(c, "/v1/assess", box=["1,1,50,50"])  # occupies the worker, then times out
        assert r.status_code == 504 and "within 0.5 s" in r.json()["detail"]
        r2 = post(c, "/v1/assess", box=["1,1,50,50"])  # waits in the one queue slot, times out
        assert r2.status_code == 504
        release.set()
        monkeypatch.setattr(micro_assessor, "assess_batch", real)
        deadline = time.monotonic() + 10
        while app.state.worker.stats.expired < 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # the worker finishes the first job and skips the expired second
        assert app.state.worker.stats.expired == 1
        assert post(c, "/v1/assess", box=["1,1,50,50"]).status_code == 200
        assert c.get("/healthz").json()["status"] == "ok"


def test_full_queue_is_503(micro_assessor, monkeypatch):
    import threading

    from seagull.serve import Limits, create_app

    release = threading.Event()
    real = micro_assessor.assess_batch
    monkeypatch.setattr(micro_assessor, "assess_batch", lambda *a, **k: (release.wait(10), real(*a, **k))[1])
    app = create_app(
        micro_assessor, Limits(request_timeout_s=20, queue_size=1, max_batch=1), allowed_hosts=TEST_HOSTS
    )
    with TestClient(app) as c:
        codes: list[int] = []
        threads = [
            threading.Thread(target=lambda: codes.append(post(c, "/v1/assess", tasks="quality").status_code))
            for _ in range(2)
        ]
        worker = app.state.worker

        def until(cond) -> None:
            deadline = time.monotonic() + 10
            while not cond() and time.monotonic() < deadline:
                time.sleep(0.02)

        threads[0].start()
        until(lambda: worker.stats.running == 1)  # held on the model
        threads[1].start()
        until(lambda: worker.depth == 1)  # in the one queue slot
        r = post(c, "/v1/assess", tasks="quality")
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["detail"]
        release.set()
        for t in threads:
            t.join(20)
        assert codes == [200, 200]


def test_cli_parser_defaults_to_loopback():
    from seagull.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.model, args.sam) == ("127.0.0.1", 8000, None, None)
    assert callable(args.func)


def test_a_repeated_photo_is_encoded_once_and_answers_the_same(micro_model_dir):
    from seagull.serve import Limits, create_app

    with TestClient(create_app(micro_model_dir, Limits(image_cache_mb=8), allowed_hosts=TEST_HOSTS)) as c:
        first = post(c, "/v1/assess", box="10,10,200,100").json()
        again = post(c, "/v1/assess", box="10,10,200,100").json()
        cache = c.get("/healthz").json()["image_cache"]
    assert (cache["entries"], cache["hits"], cache["misses"]) == (1, 1, 1) and cache["max_mb"] == 8
    assert again["rois"][0]["quality"] == pytest.approx(first["rois"][0]["quality"], abs=1e-6)
    with TestClient(create_app(micro_model_dir, Limits(image_cache_mb=0), allowed_hosts=TEST_HOSTS)) as c:
        post(c, "/v1/assess", box="10,10,200,100")
        assert c.get("/healthz").json()["image_cache"]["entries"] == 0


def test_serve_keeps_openmp_threads_spinning_unless_the_user_chose(monkeypatch):
    from seagull.serve.commands import keep_openmp_threads_spinning

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    keep_openmp_threads_spinning()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and int(os.environ["GOMP_SPINCOUNT"]) > 0
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.delenv("GOMP_SPINCOUNT")
    keep_openmp_threads_spinning()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in os.environ


def test_limits_must_be_positive_and_the_image_cache_may_be_off():
    from seagull.errors import ConfigError
    from seagull.serve import Limits

    assert Limits(image_cache_mb=0).image_cache_mb == 0
    with pytest.raises(ConfigError, match="image_cache_mb must be >= 0"):
        Limits(image_cache_mb=-1)
    with pytest.raises(ConfigError, match="max_rois must be positive"):
        Limits(max_rois=0)
    assert Limits.from_dict(Limits(max_batch=4).to_dict()).max_batch == 4
    with pytest.raises(ConfigError, match="unknown server limit"):
        Limits.from_dict({"max_boxes": 3})
