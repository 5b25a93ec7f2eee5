import io

import numpy as np
import pytest
from PIL import Image

from seagull.errors import ImageLoadError
from seagull.imageio import load_image


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP"])
def test_formats_load_as_rgb8(fmt):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 17, 3), dtype=np.uint8))
    out = load_image(_bytes(rgb, fmt))
    assert out.shape == (12, 17, 3) and out.dtype == np.uint8


def test_modes_convert():
    grey = Image.fromarray(np.full((4, 5), 100, np.uint8), "L")
    assert load_image(_bytes(grey, "PNG"))[0, 0].tolist() == [100, 100, 100]
    rgba = Image.new("RGBA", (3, 3), (10, 20, 30, 0))  # fully transparent -> white background
    assert load_image(_bytes(rgba, "PNG"))[0, 0].tolist() == [255, 255, 255]
    pal = Image.new("P", (3, 3), 0)
    pal.putpalette([1, 2, 3] * 256)
    assert load_image(_bytes(pal, "PNG"))[0, 0].tolist() == [1, 2, 3]
    i16 = Image.fromarray(np.full((3, 3), 65535, np.uint16))
    assert load_image(_bytes(i16, "PNG"))[0, 0].tolist() == [255, 255, 255]
    assert load_image(np.full((2, 2), 0.5, np.float32))[0, 0].tolist() == [128, 128, 128]


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = load_image(_bytes(img, "JPEG", exif=exif))
    assert out.shape[:2] == (40, 20)


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageLoadError, match="not a readable image"):
        load_image(b"hello, not an image")
    good = _bytes(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(good[: len(good) // 2])
    with pytest.raises(ImageLoadError, match="exceeds the limit"):
        load_image(good, max_pixels=1000)
    with pytest.raises(ImageLoadError, match="shape"):
        load_image(np.zeros((3, 3, 2), np.uint8))
