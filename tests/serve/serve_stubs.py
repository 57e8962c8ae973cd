"""Stand-in analyzers and generated images for the service's tests."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
from PIL import Image

from hyperface.inference.result import Face

MAX_PIXELS = 4_000_000  # the test pools' decoding budget


def png_bytes(width: int, height: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, "PNG")
    return buf.getvalue()


class StubAnalyzer:
    """Answers one face whose score is the image's width (so a test can tell which image it saw), after
    waiting for ``gate``; raises for a 13-pixel-wide image, as an analyzer bug would."""

    def __init__(self, settings: dict, gate: threading.Event) -> None:
        self.settings, self.gate = settings, gate

    def __call__(self, image: np.ndarray) -> list[Face]:
        self.gate.wait(timeout=30)
        if image.shape[1] == 13:
            raise RuntimeError("analyzer bug")
        return [Face(box=[0, 0, 4, 4], score=image.shape[1] / 1000)]


class StubFactory:
    """Builds :class:`StubAnalyzer` objects and records the settings of each build."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.built: list[dict] = []

    def __call__(self, settings: dict) -> StubAnalyzer:
        if settings.get("score_threshold") == 0.25:  # a combination the analyzer refuses
            raise ValueError("score_threshold 0.25 is refused by this stand-in")
        self.built.append(settings)
        return StubAnalyzer(settings, self.gate)


class OverlapCheckingFactory(StubFactory):
    """A factory that notes whether two builds ever ran at once (PyTorch's ONNX export cannot)."""

    def __init__(self) -> None:
        super().__init__()
        self.building = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def __call__(self, settings: dict) -> StubAnalyzer:
        with self._lock:
            self.building += 1
            self.overlapped |= self.building > 1
        try:
            time.sleep(0.05)
            return super().__call__(settings)
        finally:
            with self._lock:
                self.building -= 1
