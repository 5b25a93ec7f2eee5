"""Region maps that show where the damage is: tiles and segments, maps by quality, importance or a
distortion type, the picture with its colour scale, ``seagull map`` and ``POST /v1/map``."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import COFFEE, TEST_HOSTS, png_bytes, post
from seagull.assess import commands
from seagull.assess.region_maps import (
    DEFAULT_TILE,
    map_image,
    map_meaning,
    pixel_map,
    region_map,
    separate_worst,
    tile_rois,
)
from seagull.cli import main
from seagull.errors import RoiError
from seagull.labels import DISTORTION_TYPES
from seagull.region_prediction import DistortionPrediction, RegionPrediction

PHOTO = np.asarray(Image.open(io.BytesIO(COFFEE)).convert("RGB"))  # 600 x 400


def half_blurred(image: np.ndarray) -> np.ndarray:
    out = image.copy()
    half = image.shape[1] // 2
    out[:, :half] = cv2.GaussianBlur(image, (0, 0), sigmaX=4.0)[:, :half]
    return out


def prediction(name: str, quality: float, importance: float = 0.1, **confidence: float) -> RegionPrediction:
    kinds = [
        DistortionPrediction(t, confidence.get(t, 0.0), confidence.get(t, 0.0) > 0.5)
        for t in DISTORTION_TYPES
    ]
    return RegionPrediction(name, quality=quality, importance=importance, distortions=kinds)


class SharpnessAssessor:
    """Stands in for the model: quality = how sharp the region is (blur lowers it), blur confidence = 1 - that."""

    def assess(self, image, rois, tasks):
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
        edges = np.abs(cv2.Laplacian(grey, cv2.CV_64F))
        out = []
        for r in rois:
            sharp = float(min(1.0, edges[r.mask].mean() / 10))
            x, y, w, h = r.bbox
            out.append(
                prediction(r.name, sharp, blur=1 - sharp)
                if "distortion" in tasks
                else prediction(r.name, sharp)
            )
            out[-1].bbox, out[-1].area = (x, y, w, h), r.area
        return out


# --------------------------------------------------------------------------- tiles


def test_tiles_overlap_by_half_and_cover_every_pixel():
    rois = tile_rois(100, 160, 40)
    cover = np.sum([r.mask for r in rois], axis=0)
    assert cover.min() >= 1
    starts_x = sorted({r.bbox[0] for r in rois})
    assert starts_x == [0, 20, 40, 60, 80, 100, 120] and sorted({r.bbox[1] for r in rois}) == [0, 20, 40, 60]
    assert all(r.bbox[2:] == (40, 40) for r in rois)


def test_a_photo_smaller_than_the_default_tile_gets_one_tile():
    rois = tile_rois(50, 70)
    assert len(rois) == 1 and rois[0].area == 50 * 70
    assert len(tile_rois(200, 60)) == len(range(0, 200 - DEFAULT_TILE + 1, DEFAULT_TILE // 2)) + 1


def test_a_tile_larger_than_the_photo_or_too_small_is_an_error():
    with pytest.raises(RoiError, match=r"tile 120x120 px is larger than the photo \(160x100 px"):
        tile_rois(100, 160, 120)
    with pytest.raises(RoiError, match="at least 4x4"):
        tile_rois(100, 160, 3)


def test_tile_pixels_are_the_mean_of_the_tiles_covering_them():
    rois = tile_rois(8, 12, 8)  # tiles at x = 0, 4 (one row): overlap in columns 4..7
    assert [r.bbox[0] for r in rois] == [0, 4]
    values = pixel_map([r.mask for r in rois], [0.2, 0.6], "tiles")
    assert values[0, 0] == pytest.approx(0.2) and values[0, 5] == pytest.approx(0.4)
    assert values[0, 11] == pytest.approx(0.6)


def test_segment_pixels_take_the_smallest_region_and_uncovered_are_nan():
    big = np.zeros((4, 4), bool)
    big[:, :3] = True
    small = np.zeros((4, 4), bool)
    small[0, 0] = True
    values = pixel_map([small, big], [0.9, 0.1], "segments")
    assert values[0, 0] == pytest.approx(0.9) and values[1, 1] == pytest.approx(0.1)
    assert np.isnan(values[0, 3])


# --------------------------------------------------------------------------- what is mapped


def test_a_type_map_shows_that_types_confidence_and_worst_the_strongest():
    results = [prediction("a", 0.9, blur=0.1, noise=0.8), prediction("b", 0.3, blur=0.7, noise=0.2)]
    blur = region_map(results, "blur")
    assert blur.values == pytest.approx([0.1, 0.7]) and blur.worst == [1, 0]
    assert region_map(results, "worst").values == pytest.approx([0.8, 0.7])
    assert region_map(results, "quality").worst == [1, 0]
    with pytest.raises(RoiError, match="no distortion answer"):
        region_map([RegionPrediction("c", quality=0.5)], "noise")


def test_the_meaning_names_the_mapped_value_and_the_level_words():
    q = map_meaning("quality")
    assert not q.higher_is_worse and [w for _, w in q.levels] == ["bad", "poor", "fair", "good", "excellent"]
    assert map_meaning("importance").higher_is_worse and map_meaning("noise").label.startswith(
        "noise confidence"
    )


def test_worst_outlines_skip_regions_that_mostly_overlap_one_taken():
    rois = tile_rois(8, 16, 8)  # x = 0, 4, 8
    assert separate_worst(rois, [0, 1, 2], 3) == [0, 2]


# --------------------------------------------------------------------------- the picture


def test_the_picture_shows_the_photo_a_scale_bar_and_its_meaning():
    rois = tile_rois(400, 600, 96)
    results = [prediction(r.name, 0.1 if r.bbox[0] < 300 else 0.9) for r in rois]
    pic = map_image(PHOTO, rois, region_map(results, "quality"), "tiles")
    h, w = PHOTO.shape[:2]
    assert pic.shape[0] == h and pic.shape[1] > w + 100  # the scale panel
    overlay = pic[:, :w].astype(float).mean(axis=2)
    assert np.corrcoef(overlay.ravel(), PHOTO.astype(float).mean(axis=2).ravel())[0, 1] > 0.5  # photo shows
    left, right = pic[:, 50:250].reshape(-1, 3).mean(0), pic[:, 350:550].reshape(-1, 3).mean(0)
    assert left[0] > left[1] and right[1] > right[0]  # damaged half red, clean half green
    panel = pic[:, w:]
    bar = panel[h // 2 - 50 : h // 2 + 50, 10:20].reshape(-1, 3)
    assert bar.std(axis=0).max() > 10  # a colour ramp, not blank
    assert (panel < 100).all(axis=2).sum() > 200  # written text: title, ticks, level words


# --------------------------------------------------------------------------- seagull map


def run_map(tmp_path, monkeypatch, image: np.ndarray, *options: str) -> tuple[int, str]:
    monkeypatch.setattr(commands, "make_assessor", lambda *a: SharpnessAssessor())
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    return main(["map", str(path), "--out", str(tmp_path / "map.png"), *options])


def ranked_rows(out: str) -> list[list[str]]:
    """The worst-regions table of ``seagull map``: rank, region, bbox, area %, mapped value, quality."""
    return [words for words in (line.split() for line in out.splitlines()) if words and words[0].isdigit()]


def test_tile_map_of_a_half_blurred_photo_puts_the_worst_tiles_left(tmp_path, monkeypatch, capsys):
    assert (
        run_map(tmp_path, monkeypatch, half_blurred(PHOTO), "--mode", "tiles", "--tile", "64", "--top", "5")
        == 0
    )
    out = capsys.readouterr().out
    rows = ranked_rows(out)
    assert len(rows) == 5 and "tiles; map of quality" in out
    assert all(int(r[2].split(",")[0]) + 64 <= 300 + 32 for r in rows), out  # boxes on the blurred half
    pic = np.asarray(Image.open(tmp_path / "map.png"))
    assert pic.shape[0] == 400 and pic.shape[1] > 600


def test_blur_map_is_high_on_the_blurred_half(tmp_path, monkeypatch, capsys):
    assert run_map(tmp_path, monkeypatch, half_blurred(PHOTO), "--by", "blur", "--top", "3") == 0
    rows = ranked_rows(capsys.readouterr().out)
    assert all(int(r[2].split(",")[0]) < 300 for r in rows) and float(rows[0][4]) > 0.5


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (("--tile", "500"), "tile 500x500 px is larger than the photo (600x400 px"),
        (("--tile", "2"), "--tile: 2 is outside the allowed range [4, inf]"),
        (("--mode", "grid"), "invalid choice: 'grid'"),
        (("--by", "haze"), "invalid choice: 'haze'"),
    ],
)
def test_map_errors_are_clear(tmp_path, monkeypatch, capsys, options, words):
    try:
        rc = run_map(tmp_path, monkeypatch, PHOTO, *options)
    except SystemExit as e:  # argparse
        rc = e.code
    assert rc == 2 and words in capsys.readouterr().err


# --------------------------------------------------------------------------- POST /v1/map


@pytest.fixture(scope="module")
def client(micro_assessor):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from seagull.serve import Limits, create_app

    with TestClient(
        create_app(micro_assessor, Limits(max_map_tiles=100), allowed_hosts=TEST_HOSTS),
        raise_server_exceptions=False,
    ) as c:
        yield c


def test_map_endpoint_tiles_by_a_type(client):
    r = post(client, "/v1/map", mode="tiles", tile="128", by="noise", top="3")
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["mode"], d["by"], d["tile"]) == ("tiles", "noise", 128)
    assert len(d["rois"]) == len(tile_rois(400, 600, 128)) == len(d["values"])
    noise = [next(x["confidence"] for x in roi["distortions"] if x["type"] == "noise") for roi in d["rois"]]
    assert d["values"] == pytest.approx(noise)
    assert len(d["worst"]) == 3 and d["rois"][int(np.argmax(noise))]["name"] == d["worst"][0]
    pic = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["heatmap_png"]))))
    assert pic.shape[:2] == (400, 600)  # laid over the photo by the page: no scale panel


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"mode": "grid"}, "map mode 'grid' is not one of tiles, segments"),
        ({"by": "haze"}, "map by 'haze' is not one of"),
        ({"mode": "tiles", "tile": "700"}, "larger than the photo"),
        ({"mode": "tiles", "tile": "2"}, "greater than or equal to 4"),
        ({"mode": "tiles", "tile": "16"}, "over this server's limit of 100"),
    ],
)
def test_map_endpoint_refuses_bad_fields(client, fields, words):
    r = post(client, "/v1/map", **fields)
    assert r.status_code == 422 and words in r.text, r.text


def test_server_default_is_the_cli_default(client):
    r = post(client, "/v1/map")
    assert r.status_code == 200, r.text
    assert (r.json()["mode"], r.json()["tile"]) == ("tiles", 128)


def test_small_photo_gets_one_tile(client):
    r = post(client, "/v1/map", image=png_bytes(PHOTO[:50, :70].copy()), name="small.png", mode="tiles")
    assert r.status_code == 200, r.text
    assert len(r.json()["rois"]) == 1


def test_map_endpoint_superpixels(client):
    r = post(client, "/v1/map", mode="superpixels", max_regions="12")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["mode"] == "superpixels" and d["tile"] is None
    assert d["rois"] and all(roi["name"].startswith("superpixel") for roi in d["rois"])
    assert len(d["values"]) == len(d["rois"])
