"""What the analyzer accepts as an image, turned into one H x W x 3 uint8 RGB array.

A path is decoded by :func:`hyperface.data.images.load_image` (RGB, EXIF-rotated, pixel budget). A
PIL image is converted the same way. An array may have any shape and dtype Pillow would take
(``H x W``, ``H x W x 1``, ``x 2`` grey + alpha, ``x 3``, ``x 4`` with alpha; bool, unsigned and signed
integers, floats): integers up to 255 are pixel values, larger ones (16-bit images) are scaled from
0..65535; floats are 0..1 when none exceeds 1, else 0..255; alpha is composited on white, as for
files. ``color_order="bgr"`` reads 3- and 4-channel arrays as BGR(A), the order of ``cv2.imread``
and ``cv2.VideoCapture``; it never applies to paths or PIL images, which carry their own order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from hyperface.data.images import image_size, load_image, to_rgb_array

__all__ = ["ImageInput", "COLOR_ORDERS", "as_rgb", "array_to_rgb"]

ImageInput = Union[str, Path, np.ndarray, Image.Image]
COLOR_ORDERS = ("rgb", "bgr")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError("image arrays must not hold NaN or infinite values")
        scale = 255.0 if arr.size and float(arr.max()) <= 1.0 else 1.0
        return np.clip(np.rint(arr.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        top = int(arr.max()) if arr.size else 0
        if top <= 255 and arr.dtype != np.uint16:
            return np.clip(arr, 0, 255).astype(np.uint8)
        if top <= 65535:
            return np.clip(np.rint(arr.astype(np.float32) * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        raise ValueError(f"image arrays of {arr.dtype} must hold values up to 65535 (16-bit), got up to {top}")
    raise ValueError(f"image arrays must be of a numeric dtype (uint8, uint16, float ...), got {arr.dtype}")


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    return np.rint(rgb.astype(np.float32) * a + 255.0 * (1.0 - a)).astype(np.uint8)


def array_to_rgb(image: np.ndarray, color_order: str = "rgb") -> np.ndarray:
    """An array of any shape and dtype Pillow would take (see the module docstring) as H x W x 3 uint8 RGB."""
    if color_order not in COLOR_ORDERS:
        raise ValueError(f"color_order must be one of {COLOR_ORDERS}, got {color_order!r}")
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ValueError(f"image arrays must be H x W (grey), H x W x 1, 2 (grey and alpha), 3 (RGB) or 4 (RGBA), "
                         f"got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image arrays must be at least 1 x 1 pixels, got shape {arr.shape}")
    arr = _to_uint8(arr)
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[:, :, None], 3, axis=2))
    if arr.shape[2] == 2:
        grey = _composite_on_white(arr[:, :, :1], arr[:, :, 1])
        return np.ascontiguousarray(np.repeat(grey, 3, axis=2))
    if color_order == "bgr":
        arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]
    if arr.shape[2] == 4:
        return _composite_on_white(arr[:, :, :3], arr[:, :, 3])
    return np.ascontiguousarray(arr)


def as_rgb(image: ImageInput, color_order: str = "rgb",
           max_side: int | None = None) -> tuple[np.ndarray, str | None, tuple[int, int]]:
    """(H x W x 3 uint8 RGB, key, (width, height) of the image) from a path, an array or a PIL image; the key
    names a path input. With ``max_side`` a larger file may be decoded smaller (never below ``max_side``
    on its longer side; :func:`hyperface.data.images.load_image`), its full size still returned."""
    if isinstance(image, (str, Path)):
        size = image_size(image)
        return load_image(image, max_side=max_side), str(image), size
    if isinstance(image, Image.Image):
        if image.width < 1 or image.height < 1:
            raise ValueError(f"PIL images must be at least 1 x 1 pixels, got {image.width} x {image.height}")
        rgb = to_rgb_array(image)
    elif isinstance(image, np.ndarray):
        rgb = array_to_rgb(image, color_order)
    else:
        raise TypeError(f"an image is a path, a numpy array or a PIL image, got {type(image).__name__}")
    return rgb, None, (rgb.shape[1], rgb.shape[0])
