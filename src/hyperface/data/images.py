"""Image decoding to RGB uint8, whatever the file's mode (grey, RGBA, palette, 16-bit, EXIF-rotated).

A record's image may also be a :class:`SyntheticImage` (made in memory, e.g. the ``composite``
reader's photos): :func:`load_image` renders it and :func:`image_size` answers its size.
"""

from __future__ import annotations

import contextlib
import os
import struct
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hyperface.data.files import NotRegularFileError, open_regular

__all__ = ["ImageReadError", "ImageTooLargeError", "SyntheticImage", "load_image", "image_size", "to_rgb_array",
           "check_pixels", "max_image_pixels", "pixel_limit", "pixel_limits", "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS",
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


def check_pixels(name: object, size: tuple[int, int], limit: int | None = None, what: str = "image") -> None:
    """Refuse a ``size`` = (width, height) over the pixel budget (:func:`max_image_pixels` of ``limit``) with
    :class:`ImageTooLargeError` naming ``name``: the one check of images, synthetic images and video frames."""
    most = max_image_pixels(limit)
    w, h = int(size[0]), int(size[1])
    if w * h > most:
        raise ImageTooLargeError(
            f"{name}: {what} too large ({w}x{h} = {w * h:,} pixels; the limit is {most:,}); if the file is "
            f"genuine, raise the limit with ${MAX_IMAGE_PIXELS_ENV} (or hyperface.data.images.MAX_IMAGE_PIXELS)")


def _identify(fp: BinaryIO, path: Path) -> Image.Image:
    """The image in ``fp``, header only, found as ``Image.open`` finds it but without Pillow's bomb check.

    Pillow's check reads the process-wide ``PIL.Image.MAX_IMAGE_PIXELS``; turning it off around a call
    races with other threads (one can leave it off for the whole process). Our own budget, checked by
    the caller from this header before anything is decoded, replaces it, and no global is touched.
    """
    Image.init()  # every format plugin registered (once per process)
    prefix = fp.read(16)
    for fmt in list(Image.ID):
        factory, accept = Image.OPEN[fmt]
        verdict = accept(prefix) if accept is not None else True
        if not verdict or isinstance(verdict, str):  # a string: "looks like it, but unsupported"
            continue
        fp.seek(0)
        try:
            return factory(fp, str(path))
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}")


@contextlib.contextmanager
def _open(path: Path, limit: int | None) -> Iterator[Image.Image]:
    """The opened image (a regular file only), refused with :class:`ImageTooLargeError` over the pixel
    limit before decoding."""
    with open_regular(path) as fp, _identify(fp, path) as im:
        check_pixels(path, im.size, limit)
        yield im


def _read_error(path: Path, exc: BaseException) -> ImageReadError:
    """The :class:`ImageReadError` (naming the file) for what opening or decoding ``path`` raised."""
    if isinstance(exc, ImageReadError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return ImageReadError(f"{path}: image file not found")
    if isinstance(exc, NotRegularFileError):
        return ImageReadError(str(exc))
    if isinstance(exc, Image.DecompressionBombError):  # a plugin's own check while decoding (GIF, TIFF tiles)
        return ImageTooLargeError(f"{path}: image too large ({exc})")
    return ImageReadError(f"{path}: cannot decode image ({exc})")


_READ_FAILURES = (ImageReadError, UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
                  SyntaxError)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to an H x W x 3 uint8 RGB array, applying EXIF orientation."""
    if image.width < 1 or image.height < 1:  # e.g. Image.new("RGB", (0, 0)): nothing to analyse
        raise ValueError(f"the image is empty ({image.width}x{image.height} pixels)")
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


def _decoded_within(im: Image.Image, max_side: int) -> Image.Image:
    """``im`` decoded no larger than needed for ``max_side`` pixels on its longer side: JPEG by DCT scaling
    (``draft``) while decoding, other modes Pillow can average by a whole factor (``reduce``) right after."""
    longest = max(im.size)
    if longest <= max_side:
        im.load()
        return im
    if im.format == "JPEG":
        im.draft(im.mode, (-(-im.size[0] * max_side // longest), -(-im.size[1] * max_side // longest)))
    im.load()
    factor = max(im.size) // max_side
    if factor >= 2 and im.mode in ("L", "LA", "RGB", "RGBA", "RGBX", "I", "F", "I;16"):
        im = im.reduce(factor)
    return im


def load_image(path: str | Path | SyntheticImage, *, max_pixels: int | None = None,
               max_side: int | None = None) -> np.ndarray:
    """Decode ``path`` to H x W x 3 uint8 RGB; raises :class:`ImageReadError` naming the file.

    An image of more than :func:`max_image_pixels` (``max_pixels``) pixels is refused from its
    header with :class:`ImageTooLargeError`, before any memory is allocated for it. With ``max_side``
    an image larger than that is decoded smaller, yet still at least ``max_side`` on its longer side
    (JPEG by its DCT scaling, other formats averaged by a whole factor before any copy is made; the
    caller resizes the rest of the way): a 13000 x 13000 PNG then costs one decoded image, not four.
    """
    if isinstance(path, SyntheticImage):
        check_pixels(path, path.size, max_pixels)
        return path.render()
    path = Path(path)
    try:
        with _open(path, max_pixels) as im:
            if max_side:
                im = _decoded_within(im, max_side)
            else:
                im.load()
            return to_rgb_array(im)
    except _READ_FAILURES as exc:
        raise _read_error(path, exc) from None


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
    except _READ_FAILURES as exc:
        raise _read_error(path, exc) from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
