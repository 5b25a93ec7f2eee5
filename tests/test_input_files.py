"""Input files that are not what they seem: mask images with transparency, paths that are not regular
files (FIFOs, devices, symlink loops), and files that declare a huge size. Each gets a message that
says what it is and what to do, and a folder batch reports them as items instead of skipping them."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seagull.assess.batch import ItemOptions, assess_local, expand_inputs
from seagull.cli import main
from seagull.errors import ImageLoadError, RoiError
from seagull.imageio import DEFAULT_MAX_PIXELS, load_image
from seagull.roi import RoiSpec, load_mask_file

H, W = 24, 32
IMAGE = np.zeros((H, W, 3), np.uint8)
MISSING_MODEL = "/nonexistent/model"  # errors must come before the model is loaded
PIL_REFUSES = str(2 * Image.MAX_IMAGE_PIXELS)  # the number PIL's own refusal quotes


def rgba(alpha: np.ndarray, rgb: int = 0) -> Image.Image:
    arr = np.zeros((*alpha.shape, 4), np.uint8)
    arr[..., :3] = rgb
    arr[..., 3] = alpha
    return Image.fromarray(arr, "RGBA")


def inside() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[4:12, 6:20] = True
    return m


# --------------------------------------------------------------------------- 29. masks with alpha


def test_a_cut_out_mask_is_read_by_its_alpha(tmp_path):
    # alpha 255 inside, 0 outside, every colour black: the region is the opaque part
    path = tmp_path / "cutout.png"
    rgba(inside().astype(np.uint8) * 255).save(path)
    assert np.array_equal(load_mask_file(path, shape=(H, W)), inside())
    roi = RoiSpec("mask", str(path), "cutout").resolve(IMAGE)
    assert roi.area == inside().sum()


def test_an_opaque_rgba_mask_is_read_by_its_colours(tmp_path):
    # alpha 255 everywhere (how some editors save masks): the white pixels are the region
    arr = np.zeros((H, W, 4), np.uint8)
    arr[..., 3] = 255
    arr[inside(), :3] = 255
    path = tmp_path / "opaque.png"
    Image.fromarray(arr, "RGBA").save(path)
    assert np.array_equal(load_mask_file(path, shape=(H, W)), inside())


def test_a_dark_colour_is_inside(tmp_path):
    arr = np.zeros((H, W, 3), np.uint8)
    arr[inside()] = (1, 0, 0)  # rounds to 0 in grey levels
    path = tmp_path / "dark.png"
    Image.fromarray(arr).save(path)
    assert np.array_equal(load_mask_file(path, shape=(H, W)), inside())


@pytest.mark.parametrize(
    ("make", "channel"),
    [
        (
            lambda: rgba(np.full((H, W), 255, np.uint8)),
            "colour channels (its alpha channel is 255 everywhere",
        ),
        (lambda: Image.fromarray(np.zeros((H, W, 3), np.uint8)), "colour channels (it has no alpha channel)"),
        (lambda: Image.fromarray(np.zeros((H, W), np.uint8)), "grey levels"),
    ],
)
def test_an_empty_mask_file_says_which_channel_was_read(tmp_path, make, channel):
    path = tmp_path / "empty.png"
    make().save(path)
    with pytest.raises(RoiError) as e:
        RoiSpec("mask", str(path), "m").resolve(IMAGE)
    msg = str(e.value)
    assert f"mask file {path} is empty: read by its {channel}" in msg and "non-zero" in msg


# --------------------------------------------------------------------------- 30. not regular files


@pytest.fixture
def odd_paths(tmp_path) -> dict[str, Path]:
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling.jpg"
    dangling.symlink_to(tmp_path / "gone.jpg")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    return {"loop": loop, "dangling": dangling, "fifo": fifo}


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("loop", "is a symbolic link loop"),
        ("dangling", "is a symbolic link to"),
        ("fifo", "is a named pipe (FIFO), not a regular file"),
        ("device", "is a character device, not a regular file"),
        ("folder", "is a folder, not a regular file"),
    ],
)
def test_a_path_that_is_not_a_regular_file_says_what_it_is(odd_paths, tmp_path, kind, says):
    path = {"device": Path("/dev/zero"), "folder": tmp_path, **odd_paths}[kind]
    with pytest.raises(ImageLoadError) as e:
        load_image(path)  # a FIFO is never opened, so this cannot block
    assert says in str(e.value) and "no such file" not in str(e.value)


def test_a_missing_file_is_still_no_such_file(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def test_a_mask_fifo_says_what_it_is(odd_paths):
    with pytest.raises(RoiError, match=r"is a named pipe \(FIFO\)"):
        load_mask_file(odd_paths["fifo"])


def test_a_folder_batch_reports_odd_entries_as_items(odd_paths, tmp_path):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "real.png")
    (tmp_path / "sub.jpg").mkdir()  # a folder with an image's name is not an item
    paths = expand_inputs([tmp_path])
    assert sorted(p.name for p in paths) == ["dangling.jpg", "loop.jpg", "pipe.jpg", "real.png"]

    # the readable image reaches the assessor; every other entry is its own error line
    options = ItemOptions(lambda image: [], ("quality",), False)
    out = {Path(item["image"]).name: item for item in assess_local(_Echo(), paths, options, False)}
    assert "error" not in out["real.png"]
    assert "symbolic link loop" in out["loop.jpg"]["error"]
    assert "symbolic link to" in out["dangling.jpg"]["error"]
    assert "named pipe (FIFO)" in out["pipe.jpg"]["error"]


class _Echo:
    """An assessor that answers nothing for no ROI (the batch's file handling is under test)."""

    def assess(self, image, rois, tasks=(), text=False):
        return []


def test_the_cli_names_a_device_given_as_an_image(capsys):
    assert main(["assess", "/dev/zero", "--box", "0,0,8,8", "--model", MISSING_MODEL]) == 2
    err = capsys.readouterr().err
    assert "/dev/zero: is a character device, not a regular file" in err


# --------------------------------------------------------------------------- 31. huge declared sizes


def huge_jpeg(path: Path, side: int) -> Path:
    """A tiny JPEG file whose header declares ``side`` x ``side`` pixels."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, side, side)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def pil_limit(monkeypatch):
    """PIL's limit is restored after the test (loading with a larger max_pixels raises it)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


def test_a_huge_jpeg_names_one_limit_the_one_max_pixels_sets(tmp_path, pil_limit, capsys):
    path = huge_jpeg(tmp_path / "huge.jpg", 60000)
    assert main(["assess", str(path), "--box", "0,0,8,8", "--model", MISSING_MODEL]) == 2
    err = capsys.readouterr().err
    assert f"declares 3600000000 pixels, over the limit of {DEFAULT_MAX_PIXELS}" in err
    assert "--max-pixels" in err and PIL_REFUSES not in err


@pytest.mark.filterwarnings("error")  # and no warning from PIL on top of the refusal
def test_raising_max_pixels_is_enough_to_pass_pils_limit(tmp_path, pil_limit):
    # 20000 x 20000 is over twice PIL's limit: before, PIL refused it whatever --max-pixels said
    path = huge_jpeg(tmp_path / "big.jpg", 20000)
    with pytest.raises(ImageLoadError) as e:
        load_image(path, max_pixels=300_000_000)  # still under the image's size: refused from the header
    msg = str(e.value)
    assert "20000x20000 = 400000000 pixels exceeds the limit of 300000000" in msg
    assert PIL_REFUSES not in msg
    assert Image.MAX_IMAGE_PIXELS >= 300_000_000


def test_the_default_limit_leaves_pils_alone(tmp_path, pil_limit):
    before = Image.MAX_IMAGE_PIXELS
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "small.png")
    load_image(tmp_path / "small.png")
    assert before == Image.MAX_IMAGE_PIXELS  # PIL's limit is only ever raised to a larger max_pixels
