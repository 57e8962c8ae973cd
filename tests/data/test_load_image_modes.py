"""load_image / image_size on every image mode the datasets meet: all come back H x W x 3 uint8 RGB."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hyperface.data.images import ImageReadError, image_size, load_image


def test_grey(tmp_path):
    Image.fromarray(np.full((5, 7), 90, np.uint8), "L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8 and (out == 90).all()


def test_rgba_is_composited_on_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 200
    arr[:2, ..., 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.shape == (4, 4, 3)
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[3, 3]) == (255, 255, 255)


def test_16_bit_png_is_scaled(tmp_path):
    arr = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    out = load_image(tmp_path / "d.png")
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], [[0, 255], [128, 4]])


def test_palette(tmp_path):
    img = Image.new("P", (3, 2))
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "p.png")
    out = load_image(tmp_path / "p.png")
    assert out.shape == (2, 3, 3)
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[0, 1]) == (200, 100, 50)


def test_exif_rotated_jpeg(tmp_path):
    # Stored 40 wide x 20 high, left half black, right half white; orientation 6 = rotate 90 cw to view.
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, 20:] = 255
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (40, 20, 3)  # viewed: 20 wide x 40 high
    # After a clockwise turn the stored left (black) half is on top, the white half at the bottom.
    assert out[:15].mean() < 20 and out[25:].mean() > 235
    assert image_size(tmp_path / "r.jpg") == (20, 40)


def test_unreadable_names_the_file(tmp_path):
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(ImageReadError, match="x.png"):
        load_image(tmp_path / "x.png")
    with pytest.raises(ImageReadError, match="not found"):
        load_image(tmp_path / "missing.png")
