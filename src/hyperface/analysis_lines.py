"""One encoded image in, its ``analyze`` JSON line out: what the HTTP service and the Ray actors share.

Both receive image *bytes* (an upload; a file read by Ray on another machine), not paths, and both
must answer exactly what ``hyperface analyze`` writes for the same picture, so the decoding (the
pixel budget that refuses decompression bombs, EXIF rotation, every mode to RGB) is
:func:`hyperface.data.images.load_image`'s and the line is built in one place, :func:`result_line`
(with :func:`error_line` for an input that failed), which ``analyze`` uses too::

    {"input": PATH, "frame": INT or null, "width": W, "height": H, "faces": [Face.to_dict(), ...]}
    {"input": PATH, "frame": INT or null, "error": MESSAGE}
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hyperface.data.images import ImageReadError, ImageTooLargeError, load_image

__all__ = ["result_line", "error_line", "decode_image_bytes", "analyze_bytes", "ImageReadError",
           "ImageTooLargeError"]


def result_line(input: str | Path, frame: int | None, size: tuple[int, int], faces: Sequence[Any]) -> dict[str, Any]:
    """The JSON object of one analysed image or frame: ``size`` is the image's (width, height), ``faces`` the
    analyzer's :class:`~hyperface.inference.Face` list for it."""
    return {"input": str(input), "frame": None if frame is None else int(frame), "width": int(size[0]),
            "height": int(size[1]), "faces": [f.to_dict() for f in faces]}


def error_line(input: str | Path, frame: int | None, message: str) -> dict[str, Any]:
    """The JSON object of an image or frame that could not be analysed: its name and why."""
    return {"input": str(input), "frame": None if frame is None else int(frame), "error": str(message)}


def _suffix(name: str) -> str:
    """``name``'s suffix, made safe for a temporary file name."""
    return re.sub(r"[^A-Za-z0-9.]", "", Path(name).suffix)[:10]


def decode_image_bytes(data: bytes, name: str, max_pixels: int | None = None) -> np.ndarray:
    """``data`` (an encoded image) as H x W x 3 uint8 RGB, decoded by :func:`load_image`.

    Raises :class:`ImageReadError` (:class:`ImageTooLargeError` past ``max_pixels``, checked from the
    header before decoding) with a message that names ``name``. ``load_image`` reads files, so the
    bytes pass through a private temporary file.
    """
    if not data:
        raise ImageReadError(f"{name}: empty file")
    with tempfile.NamedTemporaryFile(prefix="hyperface-", suffix=_suffix(name), delete=False) as fh:
        fh.write(data)
    path = Path(fh.name)
    try:
        return load_image(path, max_pixels=max_pixels)
    except ImageReadError as exc:
        raise type(exc)(str(exc).replace(str(path), name)) from None
    except Image.DecompressionBombError as exc:  # Pillow's own check, should a caller lower its limit
        raise ImageTooLargeError(f"{name}: {exc}") from None
    finally:
        path.unlink(missing_ok=True)


def analyze_bytes(analyzer, data: bytes, name: str, max_pixels: int | None = None) -> dict[str, Any]:
    """The JSON line of ``analyzer`` on the encoded image ``data`` called ``name``; decoding errors raise."""
    image = decode_image_bytes(data, name, max_pixels)
    return result_line(name, None, (image.shape[1], image.shape[0]), analyzer(image))
