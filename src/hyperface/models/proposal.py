"""A tiny fully-convolutional face / non-face window scorer: the candidate stage of ``fast``.

After the Fast-HyperFace idea (Ranjan et al., HyperFace, TPAMI 2019, section 6: a fast, high-recall
detector supplies the candidates) and MTCNN's P-Net (Zhang et al., "Joint Face Detection and
Alignment using Multi-task Cascaded Convolutional Networks", SPL 2016): a network whose receptive
field is one 16 x 16 window, run densely over an image pyramid. Each output position scores the
window under it and regresses the face box inside it; HyperFace then scores the windows it keeps,
and IRP moves them onto the face its landmarks point at.

Window 16, stride 4: ``conv 4x4/2 (16) - conv 3x3/2 (32) - conv 3x3 (48) - conv 1x1 (48)``, then
1x1 heads: 2 logits (index 1 = face) and 4 box offsets ``(x0, y0, x1, y1)`` of the face box in units
of the window size relative to the window centre (a window exactly on the face gives
(-0.5, -0.5, 0.5, 0.5)). About 22 k parameters and 0.1 M MACs per window position.
"""

from __future__ import annotations

import torch
from torch import nn

from hyperface.models.config import ModelConfig
from hyperface.models.geometry import PROPOSAL_STRIDE as STRIDE
from hyperface.models.geometry import PROPOSAL_WINDOW as WINDOW
from hyperface.models.geometry import REFINE_SIZE
from hyperface.models.heads import HyperFaceModel
from hyperface.models.registry import register_model

__all__ = ["ProposalNet", "RefineNet", "WINDOW", "STRIDE", "REFINE_SIZE"]

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


class ProposalNet(HyperFaceModel):
    """Window scorer; :meth:`dense` runs it over a whole image, :meth:`forward` on 16 x 16 crops."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        w = config.arch_kwargs.get("widths", [16, 32, 48, 48])
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 4, stride=2), nn.ReLU(inplace=True),
            nn.Conv2d(w[0], w[1], 3, stride=2), nn.ReLU(inplace=True),
            nn.Conv2d(w[1], w[2], 3), nn.ReLU(inplace=True),
            nn.Conv2d(w[2], w[3], 1), nn.ReLU(inplace=True),
        )
        self.score = nn.Conv2d(w[3], 2, 1)
        self.box = nn.Conv2d(w[3], 4, 1)
        with torch.no_grad():  # start the box head at "the window is the face box"
            self.box.weight.mul_(0.1)
            self.box.bias.copy_(torch.tensor([-0.5, -0.5, 0.5, 0.5]))

    def dense(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images (B, 3, H, W) -> face logits (B, 2, h, w) and box offsets (B, 4, h, w).

        Output (i, j) sees input pixels ``[4 j, 4 j + 16) x [4 i, 4 i + 16)``.
        """
        f = self.features(x)
        return self.score(f), self.box(f)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"detection": self.score(features).flatten(1)}

    def forward_box(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """16 x 16 crops -> (logits (B, 2), box offsets (B, 4)), for training."""
        f = self.forward_features(x)
        return self.score(f).flatten(1), self.box(f).flatten(1)


class RefineNet(HyperFaceModel):
    """Second stage (MTCNN's R-Net): re-scores the first stage's boxes on 24 x 24 crops and refines them.

    ``conv 3x3 (16) - max 2 - conv 3x3 (32) - max 2 - conv 3x3 (48) - fc 96``, then 2 logits and 4
    box offsets (same convention as :class:`ProposalNet`). About 0.5 M MACs per crop.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        w = config.arch_kwargs.get("widths", [16, 32, 48, 96])
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 3), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),   # 22 -> 11
            nn.Conv2d(w[0], w[1], 3), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),  # 9 -> 5
            nn.Conv2d(w[1], w[2], 3), nn.ReLU(inplace=True),  # 3
            nn.Flatten(), nn.Linear(w[2] * 9, w[3]), nn.ReLU(inplace=True),
        )
        self.score = nn.Linear(w[3], 2)
        self.box = nn.Linear(w[3], 4)
        with torch.no_grad():
            self.box.weight.mul_(0.1)
            self.box.bias.copy_(torch.tensor([-0.5, -0.5, 0.5, 0.5]))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"detection": self.score(features)}

    def forward_box(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """24 x 24 crops -> (logits (B, 2), box offsets (B, 4))."""
        f = self.forward_features(x)
        return self.score(f), self.box(f)


@register_model
def hyperface_proposal(*, tasks=("detection",), num_points: int = 5, point_set: str | None = None,
                       widths: tuple[int, ...] = (16, 32, 48, 48)) -> ProposalNet:
    """Fast candidate stage: 16x16-window face scorer with box regression, run over an image pyramid."""
    if tuple(tasks) != ("detection",):
        raise ValueError(f"hyperface-proposal predicts only the detection task, got tasks {list(tasks)}")
    widths = [int(v) for v in widths]
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"hyperface-proposal widths must be 4 positive integers, got {widths}")
    config = ModelConfig(arch="hyperface-proposal", tasks=("detection",), num_points=num_points,
                         point_set=point_set, input_size=WINDOW, mean=MEAN, std=STD,
                         arch_kwargs={"widths": widths})
    return ProposalNet(config)


@register_model
def hyperface_proposal_refine(*, tasks=("detection",), num_points: int = 5, point_set: str | None = None,
                              widths: tuple[int, ...] = (16, 32, 48, 96)) -> RefineNet:
    """Fast candidate stage 2: re-scores and refines stage-1 boxes on 24x24 crops (MTCNN R-Net-like)."""
    if tuple(tasks) != ("detection",):
        raise ValueError(f"hyperface-proposal-refine predicts only the detection task, got tasks {list(tasks)}")
    widths = [int(v) for v in widths]
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"hyperface-proposal-refine widths must be 4 positive integers, got {widths}")
    config = ModelConfig(arch="hyperface-proposal-refine", tasks=("detection",), num_points=num_points,
                         point_set=point_set, input_size=REFINE_SIZE, mean=MEAN, std=STD,
                         arch_kwargs={"widths": widths})
    return RefineNet(config)
