"""``hyperface.inference.inputs``: every array shape and dtype Pillow would take becomes H x W x 3 uint8 RGB by
the documented rules; OpenCV's BGR(A) when told; paths and PIL images carry their own order."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hyperface.inference.inputs import COLOR_ORDERS, array_to_rgb, as_rgb


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)


def test_the_same_pixels_in_any_dtype_give_the_same_rgb(rgb):
    assert COLOR_ORDERS == ("rgb", "bgr")
    same = [rgb, rgb.astype(np.uint16) * 257, rgb.astype(np.float32) / 255, rgb.astype(np.float64),
            rgb.astype(np.int64), rgb.astype(np.int16), rgb.astype(np.uint32) * 257]
    for array in same:
        got = array_to_rgb(array)
        assert got.dtype == np.uint8 and got.shape == rgb.shape and got.flags.c_contiguous
        np.testing.assert_array_equal(got, rgb, err_msg=str(array.dtype))
    # 16-bit values that fit 8 bits are still 16-bit values: scaled from 0..65535
    assert array_to_rgb(np.full((2, 2), 255, np.uint16))[0, 0].tolist() == [1, 1, 1]
    assert array_to_rgb(np.full((2, 2), 65535, np.int32))[0, 0].tolist() == [255] * 3
    assert array_to_rgb(np.array([[True, False]]))[0].tolist() == [[255] * 3, [0] * 3]
    assert array_to_rgb(np.array([[-5.0, 1.0]]))[0, 0].tolist() == [0] * 3  # clipped, 0..1 since none exceeds 1


def test_grey_alpha_and_bgr_layouts(rgb):
    grey = rgb[:, :, 0]
    for array in (grey, grey[:, :, None], np.dstack([grey, np.full_like(grey, 255)])):
        np.testing.assert_array_equal(array_to_rgb(array), np.repeat(grey[:, :, None], 3, axis=2))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(array_to_rgb(rgba), rgb)
    np.testing.assert_array_equal(array_to_rgb(rgb[:, :, ::-1], "bgr"), rgb)
    np.testing.assert_array_equal(array_to_rgb(rgba[:, :, [2, 1, 0, 3]], "bgr"), rgb)
    np.testing.assert_array_equal(array_to_rgb(grey, "bgr"), array_to_rgb(grey))  # grey has no order
    transparent = np.dstack([grey, np.zeros_like(grey)])  # grey + alpha 0: white, as for files
    assert (array_to_rgb(transparent) == 255).all()
    half = np.zeros((1, 1, 4), np.uint8)
    half[..., 3] = 128
    assert array_to_rgb(half)[0, 0].tolist() == [127] * 3  # black at half opacity on white


def test_paths_and_pil_images_keep_their_own_order(rgb, tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    got, key, _ = as_rgb(path, "bgr")
    np.testing.assert_array_equal(got, rgb)
    assert key == str(path)
    got, key, _ = as_rgb(Image.open(path), "bgr")
    np.testing.assert_array_equal(got, rgb)
    assert key is None
    np.testing.assert_array_equal(as_rgb(Image.fromarray(rgb).convert("L"))[0][:, :, 0],
                                  np.asarray(Image.fromarray(rgb).convert("L")))


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 4, 5), np.uint8), "H x W"),
    (np.zeros((4,), np.uint8), "H x W"),
    (np.zeros((0, 4, 3), np.uint8), "at least 1 x 1"),
    (np.full((2, 2), 70000, np.int64), "up to 65535"),
    (np.full((2, 2, 3), np.inf), "NaN or infinite"),
    (np.zeros((2, 2, 3), np.complex64), "numeric dtype"),
])
def test_arrays_that_are_no_image_are_clear_errors(array, message):
    with pytest.raises(ValueError, match=message):
        array_to_rgb(array)


def test_bad_settings_and_types_are_clear_errors(rgb):
    with pytest.raises(ValueError, match="color_order"):
        array_to_rgb(rgb, "BGR")
    with pytest.raises(TypeError, match="path, a numpy array or a PIL image"):
        as_rgb(rgb.tolist())
