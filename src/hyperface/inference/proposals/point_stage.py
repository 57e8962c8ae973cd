"""The detector's point stage (``hyperface-point-refiner``, MTCNN's O-Net) on found boxes.

It reads the five points (eye centres, nose tip, mouth corners) of the face in each box from a crop
of the box enlarged by the network's ``context`` (its weights file says how much), sampled as
``roi_align`` samples (:func:`hyperface.inference.crops.sample_crops`; training cuts the same
crops, up to resampling blur, from the faces it stored with the same sampling), and answers them in
image pixels. The ``detector`` source runs it on the boxes whose points are
asked for (:meth:`hyperface.inference.proposals.detector.DetectorProposals.faces`).
"""

from __future__ import annotations

import numpy as np

from hyperface.boxes import scale_boxes
from hyperface.inference.crops import relative_to_image, sample_crops
from hyperface.runtime import Runtime

__all__ = ["PointStage", "POINT_STAGE_ARCH"]

POINT_STAGE_ARCH = "hyperface-point-refiner"


class PointStage:
    """Five points of the face in each given box (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        if runtime.config.arch != POINT_STAGE_ARCH:
            raise ValueError(f"{runtime.source}: {runtime.config.arch!r} is not a point stage (need "
                             f"{POINT_STAGE_ARCH!r}, as train-point-refiner writes)")
        self.runtime = runtime
        self.size = int(runtime.config.input_size)
        self.context = float(runtime.config.arch_kwargs.get("context", 1.0))

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Points (K, 5, 2), float32, in ``image``'s pixels, of the faces in ``boxes`` (K, 4)."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 5, 2), np.float32)
        crops = sample_crops(image, scale_boxes(boxes, self.context), self.size)
        relative = self.runtime(crops)["landmarks"].astype(np.float32).reshape(len(boxes), 5, 2)
        return relative_to_image(relative, boxes).astype(np.float32)
