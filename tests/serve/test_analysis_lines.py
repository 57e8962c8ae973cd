"""Image bytes decode exactly as the files they came from, through a temporary file that does not stay."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperface.analysis_lines import ImageReadError, ImageTooLargeError, decode_image_bytes
from hyperface.data.images import load_image


def _leftovers() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("hyperface-*"))


@pytest.mark.parametrize("mode, fmt, exif_rotated", [("RGB", "JPEG", True), ("L", "PNG", False),
                                                     ("RGBA", "PNG", False), ("P", "GIF", False)])
def test_bytes_decode_as_their_file(tmp_path, mode, fmt, exif_rotated):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (30, 40, 4), dtype=np.uint8), "RGBA").convert(mode)
    path = tmp_path / f"photo.{fmt.lower()}"
    exif = Image.Exif()
    if exif_rotated:
        exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(path, fmt, exif=exif)
    before = _leftovers()
    decoded = decode_image_bytes(path.read_bytes(), path.name)
    np.testing.assert_array_equal(decoded, load_image(path))
    assert decoded.shape == ((40, 30, 3) if exif_rotated else (30, 40, 3))
    assert _leftovers() == before


def test_bad_bytes_are_named_by_their_upload_and_leave_nothing():
    before = _leftovers()
    with pytest.raises(ImageReadError, match=r"^holiday\.jpg: cannot decode image \(.*'holiday\.jpg'\)$"):
        decode_image_bytes(b"not a photo", "holiday.jpg")
    with pytest.raises(ImageReadError, match="^x: empty file$"):
        decode_image_bytes(b"", "x")
    buf = io.BytesIO()
    Image.new("1", (3000, 3000)).save(buf, "PNG")
    with pytest.raises(ImageTooLargeError, match=r"^big\.png: image too large \(3000x3000"):
        decode_image_bytes(buf.getvalue(), "big.png", max_pixels=1_000_000)
    assert _leftovers() == before
