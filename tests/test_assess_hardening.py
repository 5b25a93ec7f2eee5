"""`seagull assess`, folder batches and the Assessor's entry on bad input: clear errors, no NaN, no
traceback, and a batch that goes on past any failing item."""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seagull.assess import Assessor
from seagull.assess.batch import ItemOptions, assess_local, expand_inputs
from seagull.assess.items import item_json
from seagull.cli import build_parser, main
from seagull.errors import ImageLoadError, ModelError, RoiError
from seagull.imageio import MIN_IMAGE_SIDE
from seagull.roi import MIN_ROI_PIXELS, Roi

MISSING_MODEL = "/nonexistent/model"  # errors must come before the model is loaded


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, h: int, w: int) -> Path:
    Image.fromarray(photo(h, w)).save(path)
    return path


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A small PNG file that declares ``side`` x ``side`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def strict_json(text: str):
    def refuse(name: str):
        raise ValueError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def assessor(micro_model, micro_tokenizer) -> Assessor:
    return Assessor(micro_model, tokenizer=micro_tokenizer)


# --------------------------------------------------------------------------- the Assessor's limits


@pytest.mark.parametrize("h,w", [(1, 3), (1, 1), (2, 2), (2, 20000), (3, 3), (MIN_IMAGE_SIDE - 1, 40)])
def test_images_below_the_smallest_side_are_refused(assessor, h, w):
    img = photo(h, w)
    with pytest.raises(ImageLoadError, match=f"at least {MIN_IMAGE_SIDE} pixels"):
        assessor.assess(img, [Roi(np.ones((h, w), bool), "all")])


def test_smallest_image_and_roi_give_finite_scores(assessor):
    side = MIN_IMAGE_SIDE
    roi = np.zeros((side, side), bool)
    roi.flat[:MIN_ROI_PIXELS] = True
    (res,) = assessor.assess(photo(side, side), [Roi(roi, "smallest")])
    record = res.to_dict()
    strict_json(json.dumps(record))
    assert math.isfinite(res.quality) and res.quality_level and res.importance_level
    assert all(math.isfinite(d.confidence) and math.isfinite(d.severity) for d in res.distortions)


def test_rois_below_the_smallest_area_are_refused(assessor):
    roi = np.zeros((40, 40), bool)
    roi.flat[: MIN_ROI_PIXELS - 1] = True
    with pytest.raises(RoiError, match=f"at least {MIN_ROI_PIXELS} pixels"):
        assessor.assess(photo(40, 40), [Roi(roi, "tiny")])


def test_json_output_refuses_nan():
    with pytest.raises(ModelError, match="non-finite"):
        item_json({"image": "a.png", "rois": [{"quality": float("nan")}]})
    assert (
        item_json({"image": "a.png", "rois": [{"quality": 0.5}]})
        == '{"image": "a.png", "rois": [{"quality": 0.5}]}'
    )


# --------------------------------------------------------------------------- batches


class FailingAssessor:
    """Fails the second image with an exception that is not the project's own."""

    def __init__(self) -> None:
        self.calls = 0

    def assess(self, image, rois, tasks, text):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("stack expects each tensor to be equal size")
        return []


def test_batch_goes_on_past_any_exception(tmp_path):
    paths = [save(tmp_path / f"{i}.png", 20, 20) for i in range(3)]
    out = list(
        assess_local(
            FailingAssessor(), paths, ItemOptions(lambda im: [], ("quality",), False), progress=False
        )
    )
    assert [("error" in o) for o in out] == [False, True, False]
    assert out[1]["image"] == str(paths[1]) and "RuntimeError" in out[1]["error"]

    def overflow(image):
        raise OverflowError("cannot convert float infinity to integer")

    out = list(
        assess_local(FailingAssessor(), paths, ItemOptions(overflow, ("quality",), False), progress=False)
    )
    assert all("OverflowError" in o["error"] for o in out)


def test_folder_batch_takes_gifs_and_reports_tiny_images(micro_model_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    save(folder / "a.png", 30, 40)
    save(folder / "b.gif", 30, 40)
    save(folder / "c_tiny.png", 1, 3)
    save(folder / "d.jpg", 30, 40)
    assert expand_inputs([folder]) == sorted(folder.iterdir())
    out = tmp_path / "o.jsonl"
    args = ["assess", str(folder), "--model", str(micro_model_dir), "--output", str(out), "--quiet"]
    assert main([*args, "--tasks", "quality"]) == 1  # some failed
    lines = [strict_json(line) for line in out.read_text().splitlines()]
    assert [Path(r["image"]).name for r in lines] == ["a.png", "b.gif", "c_tiny.png", "d.jpg"]
    assert [("error" in r) for r in lines] == [False, False, True, False]
    assert "at least" in lines[2]["error"]
    assert "3 images assessed, 1 failed" in capsys.readouterr().err


# --------------------------------------------------------------------------- the command line


def _bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    img = str(save(tmp / "ok.png", 30, 40))
    rois = {}
    for i, entry in enumerate(
        [{"point": "ab"}, {"polygon": "abc"}, {"rle": {"size": [400], "counts": [1]}}, {"box": None}]
    ):
        rois[i] = tmp / f"rois{i}.json"
        rois[i].write_text(json.dumps([entry]))
    latin = tmp / "latin.json"
    latin.write_bytes(b'\xff\xfe[{"box": [1, 2, 3, 4]}]')
    return [
        ([str(save(tmp / "r3x1.png", 1, 3))], "at least"),
        ([str(save(tmp / "r1x1.png", 1, 1)), "--json"], "at least"),
        ([str(save(tmp / "long.png", 2, 20000))], "at least"),
        ([img, "--box", "nan,0,10,10"], "finite"),
        ([img, "--box", "0,0,inf,10"], "finite"),
        ([img, "--box", "1,1,2,2"], "too small"),
        ([img, "--rle", '{"size":["a","b"],"counts":[0,10]}'], "size"),
        *[([img, "--rois", str(p)], "ROI") for p in rois.values()],
        ([img, "--rois", str(latin)], "UTF-8"),
        ([img, "--mask", str(bomb_png(tmp / "bomb.png"))], "size"),
        ([img, "--mask", str(bomb_png(tmp / "bomb9k.png", 9000))], "image's size"),
        ([img, "--out", "/proc/a.png"], "--out"),
        ([img, "--out", str(tmp)], "folder"),
        ([img, "--out", str(tmp / "a.unknown")], "picture type"),
        ([img, img, "--output", "/proc/x.jsonl"], "--output"),
        ([img, "--max-pixels", "100"], "--max-pixels"),
    ]


def test_bad_input_is_one_clear_line_before_the_model_loads(tmp_path, capsys):
    for args, expected in _bad_inputs(tmp_path):
        assert main(["assess", *args, "--model", MISSING_MODEL]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("seagull assess: error: ") and "\n" not in err, (args, err)
        assert expected in err, (args, err)
    assert not Path("/proc/a.png").exists()


def test_negative_coordinates_are_values():
    args = build_parser().parse_args(["assess", "x.png", "--box", "-10,0,50,40", "--point", "-.5,3"])
    assert args.box == ["-10,0,50,40"] and args.point == ["-.5,3"]
    assert build_parser().parse_args(["map", "x.png", "--out", "h.png", "--max-pixels", "5"]).max_pixels == 5


# --------------------------------------------------------------------------- text for terminals

EVIL = "a\x1b[2J\x1b]0;title\x07b\rforged line\nc\u202e"


def _visible(text: str) -> bool:
    """No character that moves the cursor, clears the screen or reorders text."""
    return not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in text)


def test_table_escapes_control_characters_of_file_and_roi_names():
    from seagull.assess.commands import format_table

    roi = {
        "name": EVIL,
        "bbox": [0, 0, 4, 4],
        "quality": 0.5,
        "quality_level": "fair",
        "answers": {"q": EVIL},
    }
    table = format_table({"image": EVIL, "width": 8, "height": 8, "rois": [roi]})
    assert _visible(table) and len(table.splitlines()) == 4  # image, header, ROI, answer
    assert "a\\x1b[2J" in table
    failed = format_table({"image": EVIL, "error": f"cannot read {EVIL}"})
    assert _visible(failed) and "\n" not in failed


def test_assess_and_map_print_names_escaped(micro_model_dir, tmp_path, capsys):
    photo = save(tmp_path / "evil\x1b[2J\rname.png", 64, 80)
    rois = tmp_path / "rois.json"
    rois.write_text(json.dumps([{"box": [0, 0, 40, 40], "name": EVIL}]))
    assert main(["assess", str(photo), "--rois", str(rois), "--model", str(micro_model_dir)]) == 0
    out = capsys.readouterr().out
    assert _visible(out) and "evil\\x1b[2J\\rname.png" in out and "a\\x1b[2J" in out
    assert len(out.splitlines()) == 3  # image, header, one ROI: no forged line
    assert main(["map", str(photo), "--out", str(tmp_path / "m.png"), "--model", str(micro_model_dir)]) == 0
    out = capsys.readouterr().out
    assert _visible(out) and "evil\\x1b[2J\\rname.png" in out
