"""The detector's point stage: five points (eye centres, nose tip, mouth corners) from a crop of each box.

Why: the detector's dense heads see a face as one cell of a 48-channel feature map, and what they
learn of its five points is the average face (docs/training.md, "Where the five points lose"). As
MTCNN's last stage (O-Net: Zhang et al., "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks", SPL 2016) does after its detector, a small network looks at each
found box again, at a finer scale: a ``size`` x ``size`` crop of the box enlarged ``context`` times
about its centre (cut as ``roi_align`` cuts, :func:`hyperface.inference.crops.sample_crops`).

``conv 3x3 - BN - ReLU - max 2`` four times (widths 24, 48, 64, 96 at 48 px: 48 -> 24 -> 12 -> 6 ->
3), ``fc 256``, then 10 numbers: the points about the box's centre in units of the box's width and
height (``(x - cx) / w``, as stage one's landmarks, :func:`hyperface.inference.crops.relative_to_image`).
About 14 M MACs per crop at 48 px.
"""

from __future__ import annotations

import torch
from torch import nn

from hyperface.models.config import ModelConfig
from hyperface.models.heads import HyperFaceModel
from hyperface.models.registry import register_model

__all__ = ["PointRefiner", "POINT_REFINER_SIZE", "POINT_REFINER_CONTEXT"]

POINT_REFINER_SIZE = 48
#: The crop is the box enlarged this much about its centre: the detector's boxes are loose and off by a
#: tenth of a face often enough that a mouth corner would fall outside a crop of the box itself.
POINT_REFINER_CONTEXT = 1.25
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class PointRefiner(HyperFaceModel):
    """Five points of the face in a box, from a crop of it (see the module docstring)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        w = list(config.arch_kwargs["widths"])
        size = config.input_size
        self.features = nn.Sequential(_block(3, w[0]), _block(w[0], w[1]), _block(w[1], w[2]), _block(w[2], w[3]),
                                      nn.Flatten(), nn.Linear(w[3] * (size // 16) ** 2, w[4]), nn.ReLU(inplace=True))
        self.points = nn.Linear(w[4], 2 * config.num_points)
        with torch.no_grad():  # start at the box's centre, where the loss is smallest on average
            self.points.weight.mul_(0.1)
            self.points.bias.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"landmarks": self.points(features).reshape(features.shape[0], self.config.num_points, 2)}


@register_model
def hyperface_point_refiner(*, tasks=("landmarks",), num_points: int = 5, point_set: str | None = None,
                            widths: tuple[int, ...] = (24, 48, 64, 96, 256), input_size: int = POINT_REFINER_SIZE,
                            context: float = POINT_REFINER_CONTEXT) -> PointRefiner:
    """The detector's point stage: five points from a crop of each found box (MTCNN O-Net-like)."""
    if tuple(tasks) != ("landmarks",):  # num_points / point_set: always the five points (the registry passes its own)
        raise ValueError(f"hyperface-point-refiner predicts only the five points (tasks ['landmarks']), got tasks "
                         f"{list(tasks)}")
    widths = [int(v) for v in widths]
    if len(widths) != 5 or min(widths) < 1:
        raise ValueError(f"hyperface-point-refiner widths must be 5 positive integers, got {widths}")
    if input_size % 16 or input_size < 16:
        raise ValueError(f"hyperface-point-refiner input_size must be a multiple of 16, got {input_size}")
    if not context >= 1.0:
        raise ValueError(f"hyperface-point-refiner context must be >= 1, got {context}")
    config = ModelConfig(arch="hyperface-point-refiner", tasks=("landmarks",), num_points=5, point_set="five",
                         input_size=int(input_size), mean=MEAN, std=STD,
                         arch_kwargs={"widths": widths, "context": float(context)})
    return PointRefiner(config)
