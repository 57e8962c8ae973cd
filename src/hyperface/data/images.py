"""Image decoding to RGB uint8, whatever the file's mode (grey, RGBA, palette, 16-bit, EXIF-rotated).

A record's image may also be a :class:`SyntheticImage` (made in memory, e.g. the ``composite``
reader's photos): :func:`load_image` renders it and :func:`image_size` answers its size.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageReadError", "ImageTooLargeError", "SyntheticImage", "load_image", "image_size", "to_rgb_array",
           "max_image_pixels", "pixel_limit", "pixel_limits", "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS",
           "MAX_IMAGE_PIXELS_ENV", "MAX_CROP_PIXELS_ENV"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif"})

MAX_IMAGE_PIXELS_ENV = "HYPERFACE_MAX_IMAGE_PIXELS"
MAX_CROP_PIXELS_ENV = "HYPERFACE_MAX_CROP_PIXELS"  # read by hyperface.data.candidates
# Largest image decoded (width x height), Pillow's own refusal threshold (so every image Pillow decodes
# by default still loads): 13000 x 13000; a decompression bomb (a 48 KB PNG of 20000 x 20000) would ask
# for 1.2 GB. Raise it with the function argument, this setting, the variable or :func:`pixel_limits`.
MAX_IMAGE_PIXELS: int = 178_956_970


class ImageReadError(OSError):
    """An image file that cannot be decoded; the message names the file."""


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than the limit (checked from the header, before decoding)."""


class SyntheticImage(os.PathLike):
    """An image made in memory rather than read from a file; a record's ``image`` may be one.

    Its ``name`` (a path that need not exist) stands for it wherever a path is printed, sorted or made
    relative; :func:`load_image` calls :meth:`render`, :func:`image_size` reads ``size``. A subclass
    renders the same pixels every time and pickles (prepare's worker processes receive records).
    """

    name: str
    size: tuple[int, int]  # (width, height) of what :meth:`render` returns

    @abstractmethod
    def render(self) -> np.ndarray:
        """The image as H x W x 3 uint8 RGB."""

    def __fspath__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


def pixel_limit(limit: int | None, env: str, default: int) -> int:
    """A pixel budget: ``limit`` if given, else the environment variable ``env``, else ``default``."""
    if limit is not None:
        return int(limit)
    text = os.environ.get(env, "").strip()
    if text:
        try:
            return int(float(text))
        except ValueError:
            raise ValueError(f"${env}={text!r} is not a number of pixels") from None
    return default


@contextlib.contextmanager
def pixel_limits(image: int | None = None, crop: int | None = None) -> Iterator[None]:
    """Raise (or lower) the image and crop pixel limits for a block, in this process and in the worker
    processes it starts (through their environment variables); None leaves a limit as it is."""
    saved = {name: os.environ.get(name) for name in (MAX_IMAGE_PIXELS_ENV, MAX_CROP_PIXELS_ENV)}
    for name, value in ((MAX_IMAGE_PIXELS_ENV, image), (MAX_CROP_PIXELS_ENV, crop)):
        if value is not None:
            if value < 1:
                raise ValueError(f"a pixel limit must be >= 1, got {value}")
            os.environ[name] = str(int(value))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def max_image_pixels(limit: int | None = None) -> int:
    """The image pixel limit in force: ``limit``, else $HYPERFACE_MAX_IMAGE_PIXELS, else :data:`MAX_IMAGE_PIXELS`."""
    return pixel_limit(limit, MAX_IMAGE_PIXELS_ENV, MAX_IMAGE_PIXELS)


def _open_header(path: Path) -> Image.Image:
    """``Image.open`` (header only) without Pillow's own bomb check: :func:`_open` applies ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError:
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = previous


@contextlib.contextmanager
def _open(path: Path, limit: int | None) -> Iterator[Image.Image]:
    """The opened image, refused with :class:`ImageTooLargeError` over the pixel limit before decoding."""
    most = max_image_pixels(limit)
    with _open_header(path) as im:
        w, h = im.size
        if w * h > most:
            raise ImageTooLargeError(
                f"{path}: image too large ({w}x{h} = {w * h:,} pixels; the limit is {most:,}); if the file is "
                f"genuine, raise the limit with ${MAX_IMAGE_PIXELS_ENV} (or hyperface.data.images.MAX_IMAGE_PIXELS)")
        yield im


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


def load_image(path: str | Path | SyntheticImage, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode ``path`` fully to H x W x 3 uint8 RGB; raises :class:`ImageReadError` naming the file.

    An image of more than :func:`max_image_pixels` (``max_pixels``) pixels is refused from its
    header with :class:`ImageTooLargeError`, before any memory is allocated for it.
    """
    if isinstance(path, SyntheticImage):
        (w, h), most = path.size, max_image_pixels(max_pixels)
        if w * h > most:
            raise ImageTooLargeError(f"{path}: image too large ({w}x{h}; the limit is {most:,} pixels)")
        return path.render()
    path = Path(path)
    try:
        with _open(path, max_pixels) as im:
            im.load()
            return to_rgb_array(im)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None


def image_size(path: str | Path | SyntheticImage, *, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) of the decoded, EXIF-rotated image, read from the header only.

    Applies the same pixel limit as :func:`load_image`, so a header-only check refuses what decoding would.
    """
    if isinstance(path, SyntheticImage):
        return path.size
    path = Path(path)
    try:
        with _open(path, max_pixels) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
