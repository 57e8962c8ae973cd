"""Image decoding to RGB uint8, whatever the file's mode (grey, RGBA, palette, 16-bit, EXIF-rotated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageReadError", "load_image", "image_size", "to_rgb_array", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif"})


class ImageReadError(OSError):
    """An image file that cannot be decoded; the message names the file."""


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to an H x W x 3 uint8 RGB array, applying EXIF orientation."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        hi = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def load_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` fully to H x W x 3 uint8 RGB; raises :class:`ImageReadError` naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb_array(im)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the decoded, EXIF-rotated image, read from the header only."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
