"""R-CNN_Face: the face / non-face AlexNet classifier whose conv layers initialise HyperFace.

Ranjan et al., HyperFace (TPAMI 2019), section 3.1: the trunk conv1..conv5 of HyperFace is taken
from an AlexNet trained first to tell face candidates from non-faces (itself started from ImageNet
weights when available; Girshick et al., R-CNN, CVPR 2014, for the fine-tuning recipe).

Network: the AlexNet trunk of :mod:`hyperface.models.alexnet` (conv1..pool5, 6x6x256), ``fc6`` 4096,
``fc7`` 4096 (ReLU, dropout), ``fc8`` 2 logits (index 1 = face). Output ``{"detection": logits}``.
With ``trunk="torchvision"`` and ``pretrained_trunk="imagenet"`` fc6 and fc7 are also taken from
torchvision's AlexNet classifier (same shapes).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from hyperface.models.alexnet import AlexNetTrunk, alexnet_config, load_alexnet_pretrained
from hyperface.models.heads import HyperFaceModel
from hyperface.models.registry import register_model
from hyperface.models.weights import copy_tensors, load_model

__all__ = ["RCNNFace", "init_trunk_from_rcnn", "TRUNK_KEYS"]

TRUNK_KEYS: tuple[str, ...] = tuple(f"trunk.conv{i}.{p}" for i in range(1, 6) for p in ("weight", "bias"))


# --------------------------------------------------------------------------- the model


class RCNNFace(HyperFaceModel):
    """AlexNet face / non-face classifier: trunk, fc6, fc7, fc8 (2 logits)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        kw = config.arch_kwargs
        self.trunk = AlexNetTrunk(kw.get("trunk", "paper"))
        self.fc6 = nn.Linear(self.trunk.widths[4] * 6 * 6, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, 2)
        self.dropout = nn.Dropout(float(kw.get("dropout", 0.5)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.trunk(x)[2].flatten(1)
        x = self.dropout(F.relu(self.fc6(x)))
        return self.dropout(F.relu(self.fc7(x)))

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"detection": self.fc8(features)}

    def load_pretrained_trunk(self, source: str) -> list[str]:
        # torchvision's classifier.1 / classifier.4 are fc6 / fc7 (9216->4096, 4096->4096)
        extra = {"fc6.weight": "classifier.1.weight", "fc6.bias": "classifier.1.bias",
                 "fc7.weight": "classifier.4.weight", "fc7.bias": "classifier.4.bias"}
        if self.config.arch_kwargs.get("trunk", "paper") != "torchvision":
            extra = {}
        return load_alexnet_pretrained(self, source, extra=extra)


# --------------------------------------------------------------------------- weight loading


def init_trunk_from_rcnn(hyperface_model: HyperFaceModel,
                         rcnn_model_or_path: nn.Module | str | os.PathLike) -> list[str]:
    """Copy conv1..conv5 (weights and biases) of a trained R-CNN_Face into ``hyperface_model``.

    The source is a model or a hyperface weights file (any architecture with the AlexNet trunk).
    Shapes are checked first and nothing is copied on a mismatch; the ValueError names each one.
    Returns the copied keys (``trunk.conv1.weight`` ...) and records the source in ``config.meta``.
    """
    if isinstance(rcnn_model_or_path, nn.Module):
        arch = getattr(getattr(rcnn_model_or_path, "config", None), "arch", type(rcnn_model_or_path).__name__)
        source, label = rcnn_model_or_path, f"{arch} model"
    else:
        source, label = load_model(rcnn_model_or_path), str(Path(rcnn_model_or_path))
    state = source.state_dict()
    absent = [k for k in TRUNK_KEYS if k not in state]
    if absent:
        arch = getattr(getattr(source, "config", None), "arch", type(source).__name__)
        raise ValueError(f"{label}: {arch} has no AlexNet trunk (missing {', '.join(absent)})")
    copied = copy_tensors(hyperface_model, {k: state[k] for k in TRUNK_KEYS}, label,
                          hint="both models need the same AlexNet trunk variant (arch kwarg 'trunk')")
    hyperface_model.config.meta["trunk_init"] = f"rcnn-face: {label}"
    return copied


# --------------------------------------------------------------------------- registered entry points


@register_model
def rcnn_face(*, tasks=("detection",), num_points: int = 21, point_set: str | None = None,
              trunk: str = "paper", dropout: float = 0.5) -> RCNNFace:
    """R-CNN_Face (stage one): AlexNet trunk, fc6/fc7 4096, face/non-face logits; its convs init HyperFace."""
    tasks = tuple(tasks)
    if tasks != ("detection",):
        raise ValueError(f"rcnn-face only does the 'detection' task, got tasks {list(tasks)}")
    return RCNNFace(alexnet_config("rcnn-face", tasks=tasks, num_points=num_points, point_set=point_set,
                                   trunk=trunk, dropout=dropout))
