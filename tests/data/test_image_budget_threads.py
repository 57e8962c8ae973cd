"""The image pixel budget is checked from the header without touching process-wide settings.

``PIL.Image.MAX_IMAGE_PIXELS`` is Pillow's own decompression-bomb check for the whole process; a
library that switches it off around each decode leaves it off when threads interleave (and raises
Pillow's raw ``DecompressionBombError``). These tests hold the pixel budget per call, in threads.
"""

from __future__ import annotations

import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from hostile_files import bomb_png
from hyperface.data.images import ImageReadError, ImageTooLargeError, image_size, load_image, to_rgb_array


class _WatchedModule(types.ModuleType):
    """PIL.Image with every assignment to MAX_IMAGE_PIXELS recorded."""

    writes: list = []

    def __setattr__(self, name, value):
        if name == "MAX_IMAGE_PIXELS":
            _WatchedModule.writes.append(value)
        super().__setattr__(name, value)


def test_reading_a_bomb_never_writes_pillows_process_wide_limit(tmp_path, monkeypatch):
    bomb = bomb_png(tmp_path / "bomb.png")
    _WatchedModule.writes = []
    monkeypatch.setattr(Image, "__class__", _WatchedModule)
    for read in (load_image, image_size):
        with pytest.raises(ImageTooLargeError):
            read(bomb)
    assert image_size(bomb, max_pixels=5 * 10**8) == (20000, 20000)  # a raised budget, past Pillow's own
    assert _WatchedModule.writes == []


def test_four_threads_reading_bombs_leave_pillows_limit_on_and_raise_only_our_error(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png")
    before = Image.MAX_IMAGE_PIXELS
    barrier = threading.Barrier(4)

    def work(k: int) -> list[str]:
        barrier.wait()
        seen = []
        for _ in range(200):
            try:
                (image_size if k % 2 else load_image)(bomb)
                seen.append("read")
            except ImageReadError as exc:
                seen.append(type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - what must not happen: anything but our error
                seen.append(f"raw {type(exc).__name__}")
            if Image.MAX_IMAGE_PIXELS != before:
                seen.append("Pillow's limit changed")
        return seen

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: the interleavings a race needs do happen
    try:
        with ThreadPoolExecutor(4) as pool:
            results = [x for seen in pool.map(work, range(4)) for x in seen]
    finally:
        sys.setswitchinterval(interval)
    assert set(results) == {"ImageTooLargeError"}
    assert Image.MAX_IMAGE_PIXELS == before is not None


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "I;16", "P"])
def test_an_empty_pil_image_is_a_clear_error(mode):
    with pytest.raises(ValueError, match=r"the image is empty \(0x0 pixels\)"):
        to_rgb_array(Image.new(mode, (0, 0)))
    with pytest.raises(ValueError, match=r"empty \(5x0"):
        to_rgb_array(Image.new(mode, (5, 0)))
