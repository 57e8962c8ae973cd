"""A stand-in network whose outputs follow the image content, so pipeline tests have known answers.

``BlobNet`` looks for a bright blob: its face score grows with the brightness of the crop's central
half and falls with the blob's offset from the crop centre and its misfit in size (best when the
candidate is the box fitted to the blob), its five landmarks sit around the blob's centroid at +-R/2 (R the
radius of a uniform disk with the blob's spread), so the box fitted to them (``five`` rule, side
2.2 * R) is centred on the blob whatever the candidate. It honours the model output contract
(candidate-relative landmarks, pose in radians, logits) and exports to ONNX.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from hyperface.models.config import ModelConfig
from hyperface.models.heads import HyperFaceModel
from hyperface.tasks import TASKS


class BlobNet(HyperFaceModel):
    def __init__(self, tasks=TASKS, input_size: int = 32, context: float = 1.25) -> None:
        config = ModelConfig(arch="stub-blob", tasks=tasks, num_points=5, point_set="five", input_size=input_size,
                             mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), meta={"context": context})
        super().__init__(config)
        self.context = context
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # something to save and load
        s = input_size
        j = torch.arange(s, dtype=torch.float32)
        self.register_buffer("grid", j)
        centre = torch.zeros(s, s)
        centre[s // 4: s - s // 4, s // 4: s - s // 4] = 1.0
        self.register_buffer("centre", centre / centre.sum())

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        m = x.mean(dim=1)  # (B, S, S) in 0..1
        s = m.shape[-1]
        mass = m.sum(dim=(1, 2)) + 1e-6
        mx, my = m.sum(dim=1), m.sum(dim=2)  # marginals over y and over x: (B, S)
        u = (mx * self.grid).sum(1) / mass
        v = (my * self.grid).sum(1) / mass
        var = ((mx * (self.grid - u[:, None]) ** 2).sum(1) / mass)
        radius = 2 * torch.sqrt(var + 1e-6)
        pts_x = torch.stack([u - radius / 2, u + radius / 2, u, u - radius / 2, u + radius / 2], 1)
        pts_y = torch.stack([v - radius / 2, v - radius / 2, v, v + radius / 2, v + radius / 2], 1)
        pts = torch.stack([pts_x, pts_y], 2)  # crop pixels
        rel = ((pts + 0.5) / s - 0.5) * self.context
        bright = (m * self.centre).sum(dim=(1, 2))
        c = (s - 1) / 2
        misfit = (u - c).abs() / s + (v - c).abs() / s + (radius / s - 1 / (2.2 * self.context)).abs()
        logit = 12.0 * (bright - 0.5) - 30.0 * misfit
        out = {
            "detection": torch.stack([torch.zeros_like(logit), logit], 1) + 0 * self.dummy,
            "landmarks": rel,
            "visibility": torch.sigmoid(torch.stack([logit] * 5, 1)),
            "pose": torch.stack([u - s / 2, v - s / 2, radius], 1) * 0.01,
            "gender": torch.stack([bright, 1 - bright], 1) * 4,
        }
        return {t: out[t] for t in self.config.tasks}


def blob_image(width: int, height: int, blobs: list[tuple[float, float, float]]) -> np.ndarray:
    """Black RGB image with white disks (cx, cy, r); pixel centres at integer coordinates."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), dtype=np.uint8)
    for cx, cy, r in blobs:
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 255
    return img


def expected_box(cx: float, cy: float, r: float) -> np.ndarray:
    """The box BlobNet's landmarks fit for a disk: square of side 2.2 R about its centre."""
    return np.array([cx - 1.1 * r, cy - 1.1 * r, cx + 1.1 * r, cy + 1.1 * r])


def write_video(path, frames: int, broken: int | None = None) -> None:
    """A 96 x 64 MJPG clip at 10 fps of one blob moving right; ``broken``: that frame cannot be decoded."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(frames):
        w.write(cv2.cvtColor(blob_image(96, 64, [(30 + 4 * i, 32, 12)]), cv2.COLOR_RGB2BGR))
    w.release()
    if broken is not None:  # wipe one frame's JPEG data: OpenCV cannot decode that frame
        data = bytearray(path.read_bytes())
        starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
        data[starts[broken]:starts[broken + 1] - 8] = bytes(starts[broken + 1] - 8 - starts[broken])
        path.write_bytes(bytes(data))
