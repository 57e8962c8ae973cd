"""HyperFace with the AlexNet trunk: the network of the paper.

Ranjan, Patel, Chellappa, "HyperFace: A Deep Multi-task Learning Framework for Face Detection,
Landmark Localization, Pose Estimation, and Gender Recognition", IEEE TPAMI 41(1), 2019
(arXiv 1603.01249), section 3.1; layer table in docs/hyperface.md section 1.

Input one 227x227 RGB crop. The trunk conv1..pool5 is the AlexNet of R-CNN_Face (Caffe widths
96/256/384/384/256, LRN after max1 and max2, here ungrouped). Hyper-features fuse three levels
without pooling: ``conv1a`` (4x4 stride 4 on max1, after its LRN), ``conv3a`` (2x2 stride 2 on
conv3) and pool5, each 6x6x256, concatenated to 768 channels; ``conv_all`` (1x1, 192) and
``fc_full`` (3072, dropout) give the shared feature vector; five branches (fc 512 + output) give the
tasks. With all tasks and 21 points: 33.82 M parameters, 1.14 GMAC per crop.

``trunk="torchvision"`` builds the same network on torchvision's AlexNet trunk (64/192/384/256/256
channels, conv1 padding 2, no LRN) so that ``pretrained_trunk="imagenet"`` fills every trunk layer;
torchvision has no AlexNet with the paper's widths, so the default ``trunk="paper"`` starts from
random weights or from a trained ``rcnn-face`` (:func:`hyperface.models.rcnn.init_trunk_from_rcnn`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from hyperface.models.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from hyperface.models.heads import HyperFaceModel, TaskHeads
from hyperface.models.registry import register_model
from hyperface.models.weights import copy_tensors, imagenet_state_dict, read_state_dict
from hyperface.tasks import TASKS

__all__ = ["AlexNetTrunk", "HyperFaceAlexNet", "TRUNK_VARIANTS", "alexnet_trunk_tensors", "load_alexnet_pretrained"]

INPUT_SIZE = 227

# widths of conv1..conv5, conv1 padding, LRN after max1/max2
TRUNK_VARIANTS: dict[str, dict] = {
    "paper": {"widths": (96, 256, 384, 384, 256), "conv1_padding": 0, "lrn": True},
    "torchvision": {"widths": (64, 192, 384, 256, 256), "conv1_padding": 2, "lrn": False},
}

# torchvision alexnet.features index of each of our conv layers
_TORCHVISION_CONV_INDEX = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}


# --------------------------------------------------------------------------- building blocks


class AlexNetTrunk(nn.Module):
    """conv1..pool5 of AlexNet; returns (max1 after LRN, conv3, pool5), the three fused levels."""

    def __init__(self, variant: str = "paper") -> None:
        super().__init__()
        if variant not in TRUNK_VARIANTS:
            raise ValueError(f"unknown AlexNet trunk {variant!r}; choose from {sorted(TRUNK_VARIANTS)}")
        spec = TRUNK_VARIANTS[variant]
        w1, w2, w3, w4, w5 = spec["widths"]
        self.widths = spec["widths"]
        self.conv1 = nn.Conv2d(3, w1, 11, stride=4, padding=spec["conv1_padding"])
        self.pool1 = nn.MaxPool2d(3, stride=2)
        self.norm1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0) if spec["lrn"] else nn.Identity()
        self.conv2 = nn.Conv2d(w1, w2, 5, padding=2)
        self.pool2 = nn.MaxPool2d(3, stride=2)
        self.norm2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0) if spec["lrn"] else nn.Identity()
        self.conv3 = nn.Conv2d(w2, w3, 3, padding=1)
        self.conv4 = nn.Conv2d(w3, w4, 3, padding=1)
        self.conv5 = nn.Conv2d(w4, w5, 3, padding=1)
        self.pool5 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        max1 = self.norm1(self.pool1(F.relu(self.conv1(x))))  # 27x27
        x = self.norm2(self.pool2(F.relu(self.conv2(max1))))  # 13x13
        conv3 = F.relu(self.conv3(x))
        x = F.relu(self.conv5(F.relu(self.conv4(conv3))))
        return max1, conv3, self.pool5(x)  # pool5 6x6


# --------------------------------------------------------------------------- the model


class HyperFaceAlexNet(HyperFaceModel):
    """HyperFace: AlexNet trunk, conv1a/conv3a/pool5 fusion, conv_all, fc_full, one branch per task."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        kw = config.arch_kwargs
        self.trunk = AlexNetTrunk(kw.get("trunk", "paper"))
        w1, _, w3, _, w5 = self.trunk.widths
        self.conv1a = nn.Conv2d(w1, 256, 4, stride=4)
        self.conv3a = nn.Conv2d(w3, 256, 2, stride=2)
        self.conv_all = nn.Conv2d(256 + 256 + w5, 192, 1)
        self.fc_full = nn.Linear(192 * 6 * 6, 3072)
        self.dropout = nn.Dropout(float(kw.get("dropout", 0.5)))
        self.heads = TaskHeads(3072, config.tasks, config.num_points, branch_channels=512)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        max1, conv3, pool5 = self.trunk(x)
        fused = torch.cat([F.relu(self.conv1a(max1)), F.relu(self.conv3a(conv3)), pool5], dim=1)
        x = F.relu(self.conv_all(fused)).flatten(1)
        return self.dropout(F.relu(self.fc_full(x)))

    def load_pretrained_trunk(self, source: str) -> list[str]:
        return load_alexnet_pretrained(self, source)


# --------------------------------------------------------------------------- weight loading


def alexnet_trunk_tensors(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Pick the conv1..conv5 tensors out of a torchvision AlexNet state dict (``features.N.*``) or a
    hyperface one (``trunk.convK.*``), keyed by our names (``trunk.convK.weight``/``.bias``)."""
    out: dict[str, torch.Tensor] = {}
    for name, index in _TORCHVISION_CONV_INDEX.items():
        for p in ("weight", "bias"):
            for key in (f"trunk.{name}.{p}", f"features.{index}.{p}"):
                if key in state_dict:
                    out[f"trunk.{name}.{p}"] = state_dict[key]
                    break
    if len(out) != 2 * len(_TORCHVISION_CONV_INDEX):
        have = sorted(out) or "none"
        raise ValueError(f"not an AlexNet state dict: expected torchvision 'features.0.weight', 'features.3.weight', "
                         f"... or hyperface 'trunk.conv1.weight', ...; found conv tensors: {have}")
    return out


def _trunk_hint(model: HyperFaceModel) -> str:
    variant = model.config.arch_kwargs.get("trunk", "paper")
    if variant == "paper":
        return ("The paper's (Caffe) AlexNet trunk has 96/256/384/384/256 channels, torchvision's 64/192/384/256/256: "
                "build the model with trunk='torchvision' to start from torchvision's ImageNet weights, or initialise "
                "the paper trunk from a trained rcnn-face with init_trunk_from_rcnn")
    return "The source must hold an AlexNet trunk of the same widths (trunk='torchvision')"


def load_alexnet_pretrained(model: HyperFaceModel, source: str,
                            extra: dict[str, str] | None = None) -> list[str]:
    """Initialise ``model.trunk`` (and ``extra`` layers: our key -> source key, copied when all present)
    from ``"imagenet"`` (torchvision's AlexNet weights) or a file; records the source in ``config.meta``."""
    if source == "imagenet":
        weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
        state = imagenet_state_dict(weights)
        label = f"torchvision {weights}"
    else:
        state = read_state_dict(source)
        label = str(Path(source))
    tensors = alexnet_trunk_tensors(state)
    if extra and all(src in state for src in extra.values()):
        tensors.update({ours: state[src] for ours, src in extra.items()})
    copied = copy_tensors(model, tensors, label, hint=_trunk_hint(model))
    model.config.meta["pretrained_trunk"] = label
    return copied


# --------------------------------------------------------------------------- registered entry points


def alexnet_config(arch: str, *, tasks, num_points: int, point_set: str | None, trunk: str,
                   dropout: float) -> ModelConfig:
    """The input contract of an AlexNet-trunk model (HyperFace or the R-CNN face classifier)."""
    if trunk not in TRUNK_VARIANTS:
        raise ValueError(f"unknown AlexNet trunk {trunk!r}; choose from {sorted(TRUNK_VARIANTS)}")
    return ModelConfig(arch=arch, tasks=tasks, num_points=num_points, point_set=point_set,
                       input_size=INPUT_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                       arch_kwargs={"trunk": trunk, "dropout": float(dropout)})


@register_model
def hyperface_alexnet(*, tasks=TASKS, num_points: int = 21, point_set: str | None = None,
                      trunk: str = "paper", dropout: float = 0.5) -> HyperFaceAlexNet:
    """HyperFace (paper): AlexNet trunk, conv1a+conv3a+pool5 fusion, fc_full 3072, 5 branches."""
    return HyperFaceAlexNet(alexnet_config("hyperface-alexnet", tasks=tasks, num_points=num_points,
                                           point_set=point_set, trunk=trunk, dropout=dropout))
