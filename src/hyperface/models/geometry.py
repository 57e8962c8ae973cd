"""The networks' fixed geometry, without PyTorch: shared by the models and by the torch-free inference.

The candidate sources decode the detector's and the proposal network's output maps with these
numbers, so they live here rather than beside the layers (whose modules import torch).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DETECTOR_STRIDES", "DETECTOR_ALIGN", "PROPOSAL_WINDOW", "PROPOSAL_STRIDE", "REFINE_SIZE", "cell_centres"]

#: Strides of the detector's output levels (``hyperface-detector``), finest first.
DETECTOR_STRIDES: tuple[int, ...] = (8, 16, 32, 64)
#: The detector's input sides must be multiples of this (its coarsest stride).
DETECTOR_ALIGN = 64
#: Side of the window one output position of ``hyperface-proposal`` sees.
PROPOSAL_WINDOW = 16
#: Step between neighbouring windows of ``hyperface-proposal`` at one pyramid level.
PROPOSAL_STRIDE = 4
#: Input side of ``hyperface-proposal-refine``.
REFINE_SIZE = 24


def cell_centres(height: int, width: int, stride: int, cells: np.ndarray | None = None) -> np.ndarray:
    """Image points (h * w, 2) float32 of the cells of a (height, width) output map at ``stride``, row-major
    (cell (i, j) sits at ``(s j + (s - 1) / 2, s i + (s - 1) / 2)``); with ``cells`` (row-major indices),
    those cells' points only (decoding keeps few of many cells)."""
    if cells is None:
        cells = np.arange(height * width)
    cells = np.asarray(cells, dtype=np.int64)
    points = np.stack([cells % width, cells // width], axis=1).astype(np.float32)
    return points * stride + (stride - 1) / 2
