"""Fixtures of the training tests (helpers in train_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import draw_faces, draw_non_faces, prepare_folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Prepared folders: ``faces`` (drawn faces with 68 points, their own non-faces) and ``negatives``."""
    root = tmp_path_factory.mktemp("tiny_prepared")
    draw_faces(root / "src_faces", 24)
    draw_non_faces(root / "src_neg", 8)
    return {
        "faces": prepare_folder([f"pts:{root / 'src_faces'}"], root / "faces"),
        "negatives": prepare_folder([f"negatives:{root / 'src_neg'}"], root / "negatives"),
    }
