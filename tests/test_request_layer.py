"""One table of requests, good and bad, sent through both faces: `seagull assess` (files and options)
and `POST /v1/assess` (form fields and uploads). Both parse with the request layer in
:mod:`seagull.roi`, so each request must come out the same: the same ROI masks and tasks reach the
Assessor and the same results come back, or both refuse it with the same message (up to how each face
names the ROI list and the mask: a file path, or a form field and an upload)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from helpers import TEST_HOSTS, post  # noqa: E402

H, W = 40, 60
INSIDE = (slice(10, 18), slice(20, 30))  # the region every mask image of the table marks: 8x10
INSIDE_AREA = 80


def photo() -> np.ndarray:
    """A small photo with a flat-coloured object, so a point on it segments a region."""
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(120, 8, (H, W, 3)), 0, 255).astype(np.uint8)
    img[8:30, 14:44] = (200, 40, 40)
    return img


def encode(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def inside() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[INSIDE] = True
    return m


def grey(value: int = 255, dtype: Any = np.uint8, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    a = np.zeros(shape, dtype)
    a[INSIDE] = value
    return a


def rgba(colour: tuple[int, int, int], alpha_inside: int, alpha_outside: int) -> bytes:
    a = np.zeros((H, W, 4), np.uint8)
    a[..., 3] = alpha_outside
    a[INSIDE] = (*colour, alpha_inside)
    return encode(Image.fromarray(a, "RGBA"))


def palette() -> bytes:
    im = Image.fromarray(grey(1), "L").convert("P")
    im.putpalette([0, 0, 0, 30, 200, 90] + [0] * 762)  # index 0 black, index 1 green
    return encode(im)


def luminance_alpha(alpha_inside: int, alpha_outside: int) -> bytes:
    a = np.zeros((H, W, 2), np.uint8)
    a[..., 1] = alpha_outside
    a[INSIDE] = (0, alpha_inside)  # black everywhere: only the alpha channel marks the region
    return encode(Image.fromarray(a, "LA"))


MASKS = {
    "L": encode(Image.fromarray(grey(), "L")),
    "1": encode(Image.fromarray(grey()).convert("1")),
    "LA cut-out": luminance_alpha(255, 0),
    "RGBA cut-out": rgba((0, 0, 0), 255, 0),
    "RGBA opaque": rgba((255, 255, 255), 255, 255),
    "P": palette(),
    "I;16": encode(Image.fromarray(grey(1000, np.uint16))),
    "I (TIFF)": encode(Image.fromarray(grey(7, np.int32)), "TIFF"),
    "RGB dark": encode(Image.fromarray(np.stack([grey(1), grey(0), grey(0)], axis=2))),
}
EMPTY_MASKS = {
    "L": (encode(Image.fromarray(grey(0), "L")), "grey levels"),
    "RGBA opaque": (rgba((0, 0, 0), 255, 255), "colour channels (its alpha channel is 255 everywhere"),
    "LA all clear": (luminance_alpha(0, 0), "colour channels (its alpha channel is 0 everywhere"),
}


def rle_of_inside() -> dict[str, Any]:
    from seagull.roi import mask_to_rle

    return mask_to_rle(inside())


@dataclass
class Case:
    """One request: ``box``/``point`` text (repeatable), ``rois`` (entries, as JSON text or an object
    to dump), ``masks`` (file name -> bytes; a mask an entry names goes with the ROI list, any other
    is a ``--mask`` / an unreferenced ``masks`` part), ``tasks``, ``box_format``. ``ok``: the ROI
    names and areas expected; otherwise ``refused`` is a phrase both messages hold."""

    id: str
    box: list[str] = field(default_factory=list)
    point: list[str] = field(default_factory=list)
    rois: Any = None
    masks: dict[str, bytes] = field(default_factory=dict)
    tasks: str | None = None
    box_format: str | None = None
    ok: list[tuple[str, int]] | None = None
    refused: str = ""
    ok_tasks: tuple[str, ...] = ("quality", "importance", "distortion")


CASES = [
    # ---------------------------------------------------------------- boxes and points
    Case("box", box=["5,5,20,15"], ok=[("box(5,5,20,15)", 300)]),
    Case("box with spaces", box=[" 5, 5, 20, 15 "], ok=[("box(5, 5, 20, 15)", 300)]),
    Case("box in brackets", box=["[5,5,20,15]"], ok=[("box([5,5,20,15])", 300)]),
    Case("box xyxy", box=["5,5,25,20"], box_format="xyxy", ok=[("box(5,5,25,20)", 300)]),
    Case("box clipped", box=["-10,-10,20,20"], ok=[("box(-10,-10,20,20)", 100)]),
    Case("box NaN", box=["nan,0,10,10"], refused="holds nan, which is not finite"),
    Case("box infinite", box=["0,0,1e999,10"], refused="holds 1e999, which is not finite"),
    Case("box negative size", box=["5,5,-10,10"], refused="has zero or negative area"),
    Case("box zero size", box=["5,5,0,10"], refused="has zero or negative area"),
    Case("box too many numbers", box=["1,2,3,4,5"], refused="needs 4 numbers, got 5"),
    Case("box too few numbers", box=["1,2,3"], refused="needs 4 numbers, got 3"),
    Case("box not a number", box=["1,2,x,4"], refused="'x', which is not a number"),
    Case("box outside", box=["500,500,10,10"], refused="lies outside the 60x40 image"),
    Case("box too small", box=["0,0,2,2"], refused="4 pixel(s) is too small to assess"),
    Case("point", point=["28,18"], ok=[("point(28,18)", -1)]),
    Case("point outside", point=["100,5"], refused="point (100, 5) lies outside the 60x40 image"),
    Case("point negative", point=["-1,5"], refused="lies outside"),
    Case("point three numbers", point=["1,2,3"], refused="needs 2 numbers, got 3"),
    # ---------------------------------------------------------------- ROI entries
    Case(
        "entries of every kind",
        rois=[
            {"name": "b", "box": [5, 5, 20, 15]},
            {"name": "t", "box": "5,5,20,15"},
            {"name": "x", "box": [5, 5, 25, 20], "format": "xyxy"},
            {"name": "poly", "polygon": [[20, 10, 30, 10, 30, 18, 20, 18]]},
            {"name": "flat", "polygon": [20, 10, 30, 10, 30, 18, 20, 18]},
            {"name": "r", "rle": rle_of_inside()},
            {"name": "rt", "rle": json.dumps(rle_of_inside())},
            {"name": "p", "point": [28, 18]},
        ],
        ok=[("b", 300), ("t", 300), ("x", 300), ("poly", -1), ("flat", -1), ("r", 80), ("rt", 80), ("p", -1)],
    ),
    Case("entries wrapped", rois={"rois": [{"box": [5, 5, 20, 15]}]}, ok=[("roi0", 300)]),
    Case("one entry object", rois={"box": [5, 5, 20, 15], "name": "one"}, ok=[("one", 300)]),
    Case("long name", rois=[{"box": [5, 5, 20, 15], "name": "n" * 150}], ok=[("n" * 100, 300)]),
    Case(
        "entries after boxes and points",
        box=["0,0,10,10"],
        point=["28,18"],
        rois=[{"box": [30, 20, 10, 10]}],
        ok=[("box(0,0,10,10)", 100), ("point(28,18)", -1), ("roi0", 100)],
    ),
    Case(
        "entry box ignores box_format", rois=[{"box": [5, 5, 20, 15]}], box_format="xyxy", ok=[("roi0", 300)]
    ),
    Case("entry box NaN", rois='[{"box": [NaN, 1, 2, 3]}]', refused="holds nan, which is not finite"),
    Case("entry box three numbers", rois=[{"box": [1, 2, 3]}], refused="needs 4 numbers, got 3"),
    Case("entry box not a list", rois=[{"box": 5}], refused="must be 4 numbers, got 5"),
    Case("entry box a boolean", rois=[{"box": [1, 2, True, 4]}], refused="True, which is not a number"),
    Case("entry box format", rois=[{"box": [1, 1, 9, 9], "format": "cxcywh"}], refused="box format must be"),
    Case("entry two kinds", rois=[{"box": [1, 1, 9, 9], "point": [1, 1]}], refused="give exactly one of"),
    Case("entry no kind", rois=[{"name": "x"}], refused="give exactly one of"),
    Case("polygon too few points", rois=[{"polygon": [[1, 1, 5, 5]]}], refused="at least 3 (x, y) points"),
    Case("polygon odd numbers", rois=[{"polygon": [1, 1, 5, 5, 9]}], refused="at least 3 (x, y) points"),
    Case(
        "polygon not numbers", rois=[{"polygon": [1, "a", 5, 5, 9, 9]}], refused="'a', which is not a number"
    ),
    Case("polygon far away", rois=[{"polygon": [0, 0, 1e6, 0, 0, 1e6]}], refused="far outside"),
    Case("point entry outside", rois=[{"point": [70, 5]}], refused="lies outside the 60x40 image"),
    Case("RLE counts sum", rois=[{"rle": {"size": [H, W], "counts": [1, 2]}}], refused="sum to 3"),
    Case("RLE bad characters", rois=[{"rle": {"size": [H, W], "counts": "%%"}}], refused="not a COCO RLE"),
    Case("RLE negative counts", rois=[{"rle": {"size": [H, W], "counts": [5, -1]}}], refused="non-negative"),
    Case("RLE counts a number", rois=[{"rle": {"size": [H, W], "counts": 7}}], refused="counts must be"),
    Case("RLE other size", rois=[{"rle": {"size": [10, 10], "counts": [100]}}], refused="does not match"),
    Case("RLE huge size", rois=[{"rle": {"size": [10**6, 10**6], "counts": "a"}}], refused="does not match"),
    Case("RLE bad size", rois=[{"rle": {"size": [H], "counts": [1]}}], refused="'size' must be"),
    Case("RLE no counts", rois=[{"rle": {"size": [H, W]}}], refused="'size' [h, w] and 'counts'"),
    Case("RLE text not JSON", rois=[{"rle": "{not json"}], refused="the RLE is not valid JSON"),
    Case("RLE text nested", rois=[{"rle": "[" * 40 + "]" * 40}], refused="nested more than 16"),
    Case(
        "names repeated", rois=[{"box": [0, 0, 9, 9], "name": "a"}] * 2, refused="must be unique, got ['a']"
    ),
    Case("empty list", rois=[], refused="holds no ROI"),
    Case("list of numbers", rois=[1, 2], refused="entry 0 is not an object"),
    Case("not a list", rois='"box"', refused="must be a JSON list of objects"),
    Case("not JSON", rois="[{", refused="is not valid JSON"),
    Case("nested too deep", rois="[" * 50 + "]" * 50, refused="nested more than 16"),
    # ---------------------------------------------------------------- no ROI, tasks
    Case("no ROI: the whole image", ok=[("whole image", H * W)]),
    Case("one task", box=["5,5,20,15"], tasks="quality", ok=[("box(5,5,20,15)", 300)], ok_tasks=("quality",)),
    Case(
        "repeated task",
        box=["5,5,20,15"],
        tasks="quality,quality",
        ok=[("box(5,5,20,15)", 300)],
        ok_tasks=("quality",),
    ),
    Case(
        "tasks in order",
        box=["5,5,20,15"],
        tasks=" distortion , quality",
        ok=[("box(5,5,20,15)", 300)],
        ok_tasks=("distortion", "quality"),
    ),
    Case("tasks empty", tasks="", refused="names no task"),
    Case("tasks blank", tasks=" ", refused="names no task"),
    Case("tasks commas", tasks=",", refused="names no task"),
    Case("tasks unknown", tasks="bogus", refused="'bogus' is not a task"),
    Case("tasks one unknown", tasks="quality,sharpness", refused="'sharpness' is not a task"),
]
# ---------------------------------------------------------------- mask images
CASES += [
    Case(f"mask {mode}", masks={"m.png": data}, ok=[("m.png", INSIDE_AREA)]) for mode, data in MASKS.items()
]
CASES += [
    Case(
        f"mask {mode} in an entry",
        rois=[{"name": "e", "mask": "m.png"}],
        masks={"m.png": data},
        ok=[("e", 80)],
    )
    for mode, data in MASKS.items()
    if mode in ("L", "RGBA cut-out", "I;16")
]
CASES += [
    Case(f"empty mask {mode}", masks={"m.png": data}, refused=f"is empty: read by its {channel}")
    for mode, (data, channel) in EMPTY_MASKS.items()
]
CASES += [
    Case(
        "mask other size",
        masks={"m.png": encode(Image.fromarray(grey(shape=(10, 10))))},
        refused="is 10x10 but",
    ),
    Case("mask not an image", masks={"m.png": b"not a png"}, refused="is not a readable image"),
    Case("mask no bytes", masks={"m.png": b""}, refused="is empty (0 bytes)"),
    Case(
        "mask part and an entry",
        rois=[{"name": "m.png", "box": [0, 0, 9, 9]}],
        masks={"n.png": MASKS["L"]},
        ok=[("n.png", 80), ("m.png", 81)],
    ),
]


# --------------------------------------------------------------------------- the two faces


class Recorder:
    """What reached the Assessor: the tasks and each ROI's name, source and mask."""

    def __init__(self, assessor: Any) -> None:
        self.original = assessor.assess_batch
        self.calls: list[tuple[tuple[str, ...], list[tuple[str, str, np.ndarray]]]] = []

    def __call__(self, images, rois_per_image, tasks=(), text=False):
        for rois in rois_per_image:
            self.calls.append((tuple(tasks), [(r.name, r.source, r.mask.copy()) for r in rois]))
        return self.original(images, rois_per_image, tasks=tasks, text=text)

    def take(self) -> list:
        calls, self.calls = self.calls, []
        return calls


@pytest.fixture(scope="module")
def recorder(micro_assessor):
    rec = Recorder(micro_assessor)
    micro_assessor.assess_batch = rec  # the instance's method: both faces call it
    yield rec
    del micro_assessor.assess_batch


@pytest.fixture(scope="module")
def client(micro_assessor, recorder):
    from seagull.serve import Limits, create_app

    with TestClient(
        create_app(micro_assessor, Limits(max_rois=16), allowed_hosts=TEST_HOSTS),
        raise_server_exceptions=False,
    ) as c:
        yield c


def referenced(case: Case) -> set[str]:
    """The mask files the case's ROI entries name."""
    entries = case.rois if isinstance(case.rois, list) else [case.rois]
    return {e["mask"] for e in entries if isinstance(e, dict) and isinstance(e.get("mask"), str)}


def rois_text(case: Case) -> str | None:
    if case.rois is None:
        return None
    return case.rois if isinstance(case.rois, str) else json.dumps(case.rois)


def run_cli(case: Case, tmp: Path, capsys) -> tuple[int, str, Any]:
    from seagull.cli import main

    image = tmp / "photo.png"
    Image.fromarray(photo()).save(image)
    argv = ["assess", str(image), "--model", str(tmp / "unused-model"), "--json"]
    for b in case.box:
        argv += [f"--box={b}"]
    for p in case.point:
        argv += [f"--point={p}"]
    for name, data in case.masks.items():
        (tmp / name).write_bytes(data)
        if name not in referenced(case):
            argv += ["--mask", str(tmp / name)]
    if case.rois is not None:
        (tmp / "rois.json").write_text(rois_text(case))
        argv += ["--rois", str(tmp / "rois.json")]
    if case.tasks is not None:
        argv += [f"--tasks={case.tasks}"]
    if case.box_format is not None:
        argv += ["--box-format", case.box_format]
    try:
        code = main(argv)
    except SystemExit as e:  # a usage error (--tasks): argparse exits
        code = e.code
    out, err = capsys.readouterr()
    if code:
        message = err.strip().splitlines()[-1]
        for prefix in ("seagull assess: error: argument --tasks: ", "seagull assess: error: "):
            message = message.removeprefix(prefix)
        message = message.replace(f"ROI file {tmp / 'rois.json'}", "ROIS")
        for name in case.masks:
            message = message.replace(f"mask file {tmp / name}", f"mask {name!r}")
        return code, message, None
    return code, "", json.loads(out)["rois"]


def run_server(case: Case, client) -> tuple[int, str, Any]:
    data: dict[str, Any] = {"box": case.box, "point": case.point}
    if case.rois is not None:
        data["rois"] = rois_text(case)
    if case.tasks is not None:
        data["tasks"] = case.tasks
    if case.box_format is not None:
        data["box_format"] = case.box_format
    files = [("masks", (name, blob, "image/png")) for name, blob in case.masks.items()]
    r = post(
        client, "/v1/assess", image=encode(Image.fromarray(photo())), name="photo.png", files=files, **data
    )
    if r.status_code != 200:
        body = r.json()
        assert set(body) == {"detail", "error"}, body  # the documented error shape
        message = body["detail"].replace("field 'rois'", "ROIS")
        for name in case.masks:
            message = message.replace(f"mask image {name!r}", f"mask {name!r}")
        return r.status_code, message, None
    return r.status_code, "", r.json()["rois"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_both_faces_parse_a_request_the_same_way(
    case, client, recorder, micro_assessor, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr("seagull.assess.commands.make_assessor", lambda *args: micro_assessor)
    recorder.take()
    cli_code, cli_message, cli_rois = run_cli(case, tmp_path, capsys)
    cli_calls = recorder.take()
    server_code, server_message, server_rois = run_server(case, client)
    server_calls = recorder.take()

    if case.ok is None:
        assert (cli_code, server_code) == (2, 422), (cli_message, server_message)
        assert case.refused in cli_message and case.refused in server_message, (cli_message, server_message)
        assert cli_message == server_message
        assert cli_calls == server_calls == []  # refused before the model
        return
    assert (cli_code, server_code) == (0, 200), (cli_message, server_message)
    assert len(cli_calls) == len(server_calls) == 1
    (cli_tasks, cli_masks), (server_tasks, server_masks) = cli_calls[0], server_calls[0]
    assert cli_tasks == server_tasks == case.ok_tasks
    assert [(n, s) for n, s, _ in cli_masks] == [(n, s) for n, s, _ in server_masks]
    for (name, _, a), (_, _, b) in zip(cli_masks, server_masks, strict=True):
        assert a.shape == b.shape == (H, W) and np.array_equal(a, b), name
    expected = [(name, area) for name, area in case.ok]
    got = [(name, int(mask.sum())) for name, _, mask in cli_masks]
    assert [n for n, _ in got] == [n for n, _ in expected]
    for (name, source, mask), (_, want) in zip(cli_masks, expected, strict=True):
        assert want < 0 or int(mask.sum()) == want, name  # -1: a segmented point or a polygon
        if source in ("mask", "rle"):  # every mask image and RLE of the table marks INSIDE
            assert np.array_equal(mask, inside()), name
    assert cli_rois == server_rois  # the same results, field for field
