"""The per-task branches shared by every architecture, and the base class of all models.

HyperFace (Ranjan et al., TPAMI 2019, section 3) ends in one branch per task on top of a shared
fused feature vector: a fully connected layer with ReLU, then an output layer. Outputs are a dict
keyed by task (see :mod:`hyperface.tasks` for shapes); the dict has the same keys and types in
train and eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

from hyperface.models.config import ModelConfig

__all__ = ["HyperFaceModel", "TaskHeads", "AxisBinPointHead", "output_widths"]


def output_widths(num_points: int) -> dict[str, int]:
    """Units in each task's output layer for ``num_points`` landmarks."""
    return {"detection": 2, "landmarks": 2 * num_points, "visibility": num_points, "pose": 3, "gender": 2}


class TaskHeads(nn.Module):
    """One branch per enabled task: ``Linear(in, branch) + ReLU`` then ``Linear(branch, out)``.

    Post-processing is fixed per task: landmarks are reshaped to ``(B, N, 2)``, visibility goes
    through a sigmoid (the paper trains it with squared error against 0/1), the rest are raw
    (detection and gender logits, pose in radians).
    """

    def __init__(self, in_features: int, tasks: tuple[str, ...], num_points: int, branch_channels: int) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.num_points = num_points
        widths = output_widths(num_points)
        self.fc = nn.ModuleDict({t: nn.Linear(in_features, branch_channels) for t in self.tasks})
        self.out = nn.ModuleDict({t: nn.Linear(branch_channels, widths[t]) for t in self.tasks})
        self.act = nn.ReLU(inplace=True)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        result: dict[str, torch.Tensor] = {}
        for task in self.tasks:
            y = self.out[task](self.act(self.fc[task](features)))
            if task == "landmarks":
                y = y.reshape(y.shape[0], self.num_points, 2)
            elif task == "visibility":
                y = torch.sigmoid(y)
            result[task] = y
        return result


class AxisBinPointHead(nn.Module):
    """Landmarks read from a feature map as 1-D distributions over x and y bins, not regressed.

    SimCC's layout (Li et al., "SimCC: a Simple Coordinate Classification Perspective for Human Pose
    Estimation", ECCV 2022; RTMPose's head): a 1x1 convolution gives one channel per point, each
    point's flattened channel goes through a hidden layer shared by all points, and two linear layers
    give its logits over ``bins`` positions along x and along y. The answer is each distribution's
    expectation (the integral, or soft-argmax, read-out of Sun et al., "Integral Human Pose
    Regression", ECCV 2018), so it is trained by the usual landmark loss on coordinates and returns
    ``(B, N, 2)`` like the regression branch. The bins span ``[-extent, extent]`` of the input
    window's half-side (points may lie a little outside the crop: the jaw of a turned face).
    """

    def __init__(self, in_channels: int, grid: int, num_points: int, bins: int, extent: float,
                 hidden: int = 128) -> None:
        super().__init__()
        self.points = nn.Conv2d(in_channels, num_points, 1)
        self.hidden = nn.Linear(grid * grid, hidden)
        self.act = nn.ReLU(inplace=True)
        self.x_logits = nn.Linear(hidden, bins)
        self.y_logits = nn.Linear(hidden, bins)
        self.register_buffer("centres", torch.linspace(-extent, extent, bins), persistent=False)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        h = self.act(self.hidden(self.points(feature_map).flatten(2)))  # (B, N, hidden)
        x = torch.softmax(self.x_logits(h).float(), dim=-1) @ self.centres
        y = torch.softmax(self.y_logits(h).float(), dim=-1) @ self.centres
        return torch.stack((x, y), dim=-1)


class HyperFaceModel(nn.Module):
    """Base of every registered network.

    Subclasses build their layers from ``config`` and implement :meth:`forward_features` (input
    ``(B, 3, S, S)`` normalised as :func:`hyperface.models.preprocess.to_input_tensor` does, output
    the shared feature vector ``(B, F)``) and usually keep the default :meth:`forward_head`.
    """

    config: ModelConfig
    #: ``arch_kwargs`` a trained file can be continued with at other values (``model.init`` plus
    #: ``model.arch_kwargs``): widths, which only grow (:func:`hyperface.models.grow.grow_into`), and
    #: settings that change no tensor. Anything else (input size, template) changes what the weights mean.
    grow_kwargs: tuple[str, ...] = ()
    #: ``arch_kwargs`` that change what the network sees but none of its tensors (a trained file starts
    #: such a network with its weights; its answers change until it is trained on)
    reframe_kwargs: tuple[str, ...] = ()

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def input_context(self) -> float:
        """How many times its box the network's input window is: ``arch_kwargs["context"]`` where the
        architecture reframes by it, else 1 (the box itself). Training crops show this window, as
        inference's do."""
        return float(self.config.arch_kwargs.get("context", 1.0)) if "context" in self.reframe_kwargs else 1.0

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.config.tasks

    def check_input(self, x: torch.Tensor) -> None:
        """Reject input of the wrong shape with a message naming the expected one."""
        if torch.jit.is_tracing() or torch.compiler.is_compiling() or isinstance(x, torch.fx.Proxy):
            return  # shapes are symbolic while exporting / tracing
        s = self.config.input_size
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"{self.config.arch} expects input of shape (B, 3, {s}, {s}), got {tuple(x.shape)}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(features)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_head(self.forward_features(x))

    def load_pretrained_trunk(self, source: str) -> list[str]:
        """Initialise the trunk from ImageNet (``"imagenet"``) or a file; returns the keys copied."""
        raise ValueError(f"{self.config.arch} has no pretrained trunk to load; train it from scratch "
                         f"or load full weights with hyperface.models.load_weights_into")
