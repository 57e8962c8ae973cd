"""Generators for small dataset files used by the reader tests (images, .pts files, a face shape)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from hyperface.data.readers.pts import PTS_ORIGIN


def write_image(path: Path, size: tuple[int, int] = (64, 48), color=(120, 80, 40)) -> Path:
    """A plain RGB image file (format from the suffix) of ``size`` = (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_pts(path: Path, points: np.ndarray, *, header: bool = True) -> Path:
    """An iBUG .pts file of 0-based ``points``, with or without the version/n_points header; written
    1-based, as the format is (``PTS_ORIGIN``), so a reader gives ``points`` back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = [f"{x:.3f} {y:.3f}" for x, y in np.asarray(points) + PTS_ORIGIN]
    lines = (["version: 1", f"n_points:  {len(body)}", "{", *body, "}"] if header else body)
    path.write_text("\n".join(lines) + "\n")
    return path


def face_points(n: int = 68, offset: tuple[float, float] = (10.0, 5.0), scale: float = 20.0) -> np.ndarray:
    """``n`` distinct points in a box starting at ``offset`` (deterministic)."""
    rng = np.random.default_rng(n)
    pts = rng.uniform(0, scale, size=(n, 2)) + np.asarray(offset)
    pts[0] = offset  # pin the box corners so tests can state them
    pts[1] = (offset[0] + scale, offset[1] + scale)
    return pts


@pytest.fixture
def gen() -> SimpleNamespace:
    """The generators above, for tests to build datasets in ``tmp_path``."""
    return SimpleNamespace(image=write_image, pts=write_pts, points=face_points)
