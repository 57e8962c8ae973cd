"""One encoded image in, its ``analyze`` JSON line out: what the HTTP service and the Ray actors share.

Both receive image *bytes* (an upload; a file read by Ray on another machine), not paths, and both
must answer exactly what ``hyperface analyze`` writes for the same picture, so the decoding (the
pixel budget that refuses decompression bombs, EXIF rotation, every mode to RGB) is
:func:`hyperface.data.images.load_image`'s and the line is built in one place, :func:`image_record`.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hyperface.data.images import ImageReadError, ImageTooLargeError, load_image

__all__ = ["image_record", "error_record", "decode_image_bytes", "analyze_bytes", "ImageReadError",
           "ImageTooLargeError"]


# --- JSON line builder (coordinator: merge with cli/analyze.py's ``_record`` / cli/outputs.py's builder) ---
def image_record(input_name: str, image: np.ndarray, faces, frame: int | None = None) -> dict[str, Any]:
    """The JSON object ``hyperface analyze`` writes for one image or frame."""
    return {"input": str(input_name), "frame": frame, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": [f.to_dict() for f in faces]}


def error_record(input_name: str, message: str) -> dict[str, Any]:
    """The JSON object of an input that could not be analysed: its name and why."""
    return {"input": str(input_name), "error": message}
# --- end of the JSON line builder ---


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
    return image_record(name, image, analyzer(image))
