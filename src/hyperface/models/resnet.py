"""HyperFace-ResNet: the HyperFace fusion on a torchvision ResNet trunk.

Ranjan et al., HyperFace (TPAMI 2019), section 5 "HyperFace-ResNet": ResNet-101 trunk whose
intermediate stages are fused the same way as in the AlexNet version (He et al., "Deep Residual
Learning for Image Recognition", CVPR 2016, for the trunk).

Input 224x224 (torchvision's ImageNet size; 224 keeps every stage an exact power-of-two grid:
layer1 56, layer2 28, layer3 14, layer4 7). The outputs of layer1 (res2c), layer2 (res3b3) and
layer3 (res4b22) are projected to 7x7x256 by strided convolutions (8x8/8, 4x4/4, 2x2/2, each with
BatchNorm and ReLU, no pooling), concatenated with layer4 (res5c), reduced by ``conv_all`` (1x1, 192),
flattened into ``fc_full`` (3072, dropout) and fed to the per-task branches (fc 512 + output).
``depth`` is 18, 34, 50, 101 (default, as in the paper) or 152; ``pretrained_trunk="imagenet"`` loads
torchvision's weights for that depth, a path loads a torchvision ResNet state dict; the mapping is
exact (every trunk tensor must be present).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from hyperface.models.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from hyperface.models.heads import HyperFaceModel, TaskHeads
from hyperface.models.registry import register_model
from hyperface.models.weights import copy_tensors, imagenet_state_dict, read_state_dict
from hyperface.tasks import TASKS

__all__ = ["HyperFaceResNet", "DEPTHS", "resnet_trunk_tensors"]

INPUT_SIZE = 224
GRID = 7
DEPTHS: dict[int, tuple[str, str]] = {  # depth -> (torchvision builder, weights enum)
    18: ("resnet18", "ResNet18_Weights"),
    34: ("resnet34", "ResNet34_Weights"),
    50: ("resnet50", "ResNet50_Weights"),
    101: ("resnet101", "ResNet101_Weights"),
    152: ("resnet152", "ResNet152_Weights"),
}
_FUSED = ("layer1", "layer2", "layer3")
_STRIDES = {"layer1": 8, "layer2": 4, "layer3": 2}  # down to layer4's 7x7 grid


# --------------------------------------------------------------------------- building blocks


def _projection(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Strided conv (kernel = stride, no overlap, no pooling) + BN + ReLU onto the fusion grid."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, stride, stride=stride, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def _build_trunk(depth: int) -> tuple[nn.Module, dict[str, int]]:
    """A torchvision ResNet without avgpool/fc, and the channels of each stage."""
    builder = getattr(torchvision.models, DEPTHS[depth][0])
    trunk = builder(weights=None)
    del trunk.fc, trunk.avgpool
    channels = {}
    for name in ("layer1", "layer2", "layer3", "layer4"):
        block = getattr(trunk, name)[-1]  # its last BatchNorm has the stage's output width
        channels[name] = (block.bn3 if hasattr(block, "bn3") else block.bn2).num_features
    return trunk, channels


# --------------------------------------------------------------------------- the model


class HyperFaceResNet(HyperFaceModel):
    """HyperFace-ResNet: ResNet trunk, layer1/2/3 projections + layer4 fused, conv_all, fc_full, branches."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        kw = config.arch_kwargs
        self.trunk, channels = _build_trunk(int(kw.get("depth", 101)))
        self.proj = nn.ModuleDict({name: _projection(channels[name], 256, _STRIDES[name]) for name in _FUSED})
        self.conv_all = nn.Sequential(nn.Conv2d(256 * len(_FUSED) + channels["layer4"], 192, 1, bias=False),
                                      nn.BatchNorm2d(192), nn.ReLU(inplace=True))
        self.fc_full = nn.Linear(192 * GRID * GRID, 3072)
        self.dropout = nn.Dropout(float(kw.get("dropout", 0.5)))
        self.heads = TaskHeads(3072, config.tasks, config.num_points, branch_channels=512)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        t = self.trunk
        x = t.maxpool(t.relu(t.bn1(t.conv1(x))))
        levels = {}
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(t, name)(x)
            levels[name] = x
        fused = torch.cat([self.proj[name](levels[name]) for name in _FUSED] + [levels["layer4"]], dim=1)
        x = self.conv_all(fused).flatten(1)
        return self.dropout(torch.relu(self.fc_full(x)))

    def load_pretrained_trunk(self, source: str) -> list[str]:
        depth = int(self.config.arch_kwargs.get("depth", 101))
        if source == "imagenet":
            weights = getattr(torchvision.models, DEPTHS[depth][1]).DEFAULT
            state = imagenet_state_dict(weights)
            label = f"torchvision {weights}"
        else:
            state = read_state_dict(source)
            label = str(Path(source))
        tensors = resnet_trunk_tensors(self, state, label)
        copied = copy_tensors(self, tensors, label,
                              hint=f"the source must be a torchvision ResNet-{depth} state dict (depth={depth})")
        self.config.meta["pretrained_trunk"] = label
        return copied


# --------------------------------------------------------------------------- weight loading


def resnet_trunk_tensors(model: HyperFaceResNet, state_dict: dict[str, torch.Tensor],
                         source: str) -> dict[str, torch.Tensor]:
    """Map a torchvision ResNet state dict (``layer1.0.conv1.weight``; ``fc.*`` ignored) or a hyperface
    one (``trunk.layer1...``) onto ``model.trunk``. The trunk tensors must match one to one: a missing
    tensor or an extra one (a deeper ResNet's blocks, whose shapes would fit) is an error."""
    if any(k.startswith("trunk.") for k in state_dict):
        available = {k[len("trunk."):]: v for k, v in state_dict.items() if k.startswith("trunk.")}
    else:
        available = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    wanted = [k[len("trunk."):] for k in model.state_dict() if k.startswith("trunk.")]
    missing = [k for k in wanted if k not in available]
    extra = sorted(set(available) - set(wanted))
    if missing or extra:
        depth = model.config.arch_kwargs.get("depth", 101)

        def shown(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")

        parts = ([f"missing {len(missing)} of {len(wanted)} trunk tensors: {shown(missing)}"] if missing else []) + \
                ([f"{len(extra)} tensors the trunk does not have: {shown(extra)}"] if extra else [])
        raise ValueError(f"cannot initialise hyperface-resnet (depth {depth}) from {source}: not a torchvision "
                         f"ResNet-{depth} state dict; " + "; ".join(parts))
    return {f"trunk.{k}": available[k] for k in wanted}


# --------------------------------------------------------------------------- registered entry points


@register_model
def hyperface_resnet(*, tasks=TASKS, num_points: int = 21, point_set: str | None = None,
                     depth: int = 101, dropout: float = 0.5) -> HyperFaceResNet:
    """HyperFace-ResNet: torchvision ResNet trunk (depth 101 default), layer1-3 fused with layer4."""
    if depth not in DEPTHS:
        raise ValueError(f"unsupported ResNet depth {depth!r}; choose from {sorted(DEPTHS)}")
    config = ModelConfig(arch="hyperface-resnet", tasks=tasks, num_points=num_points, point_set=point_set,
                         input_size=INPUT_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                         arch_kwargs={"depth": int(depth), "dropout": float(dropout)})
    return HyperFaceResNet(config)
