"""HyperFace-Compact: the HyperFace fusion on a small MobileNetV2-style trunk, for CPUs.

Fusion as in Ranjan et al., HyperFace (TPAMI 2019): low, middle and high level features projected
by strided convolutions (no pooling) onto one grid, concatenated, reduced by a 1x1 conv, flattened
into a fully connected layer, then one small branch per task. Trunk blocks after Sandler et al.,
"MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018 (depthwise-separable
convolutions, BatchNorm, linear bottlenecks).

Layout for the default 128x128 input (``input_size`` any multiple of 16; grid = input_size / 16)::

    stem    conv 3x3/2, 16                               64x64
    stage1  depthwise-separable /2, 24                   32x32
    stage2  2 inverted residuals (t=3), 32               32x32  low  -> conv 4x4/4 -> 8x8x64
    stage3  3 inverted residuals (t=3), 64, first /2     16x16  mid  -> conv 2x2/2 -> 8x8x64
    stage4  4 inverted residuals (t=3), 128, first /2     8x8   high ---------------> 8x8x128
    concat 256 -> conv_all 1x1 64 -> flatten 4096 -> fc_full 256 (dropout 0.2) -> per task fc 128 + output

1.72 M parameters and 62 MMAC per crop (all tasks, 21 points; 1.74 M with 68 points).

What it trades against the AlexNet version: 20x fewer parameters (1.7 M vs 33.8 M) and 18x fewer
MACs (62 M vs 1.14 G per crop), so a crop takes milliseconds on a CPU and a few CPU cores train it
on ~20 k crops for several epochs within an hour. The price is capacity and initialisation: a
narrower shared vector (256 vs 3072) and branches (128 vs 512), a smaller input (128 vs 227 pixels:
less detail for fine landmark placement, though a 68-point face still spans ~100 pixels) and no
ImageNet weights (it trains from scratch; BatchNorm makes that work, but it also means batch
statistics must be sensible: train with batches of 16 or more). It keeps what HyperFace relies on:
low, middle and high level features fused without pooling, on a finer grid than the original (8x8 at
stride 16 vs 6x6 at stride ~38), and a flattened fully connected layer that keeps where each feature
is. The tasks compete harder for its small shared vector: ``fc_channels``/``branch_channels``
widen it, ``width`` scales every convolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from hyperface.models.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from hyperface.models.heads import HyperFaceModel, TaskHeads
from hyperface.models.registry import register_model
from hyperface.tasks import TASKS

__all__ = ["HyperFaceCompact", "InvertedResidual", "STAGES"]

# name: (output channels, blocks, stride of the first block, expansion)
STAGES: dict[str, tuple[int, int, int, int]] = {
    "stage1": (24, 1, 2, 1),  # depthwise-separable down to stride 4
    "stage2": (32, 2, 1, 3),  # low level, stride 4
    "stage3": (64, 3, 2, 3),  # middle level, stride 8
    "stage4": (128, 4, 2, 3),  # high level, stride 16 = the fusion grid
}
STEM_CHANNELS = 16
FUSE_CHANNELS = 64
CONV_ALL_CHANNELS = 64


# --------------------------------------------------------------------------- building blocks


def _scaled(channels: int, width: float) -> int:
    """Channels times ``width``, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(channels * width + 4) // 8 * 8)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Module:
    return Conv2dNormActivation(cin, cout, kernel, stride=stride, groups=groups, norm_layer=nn.BatchNorm2d,
                                activation_layer=nn.ReLU if act else None, inplace=True)


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped when ``expansion`` is 1), 3x3 depthwise, linear 1x1 projection, residual."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        layers = [_conv_bn(cin, hidden, 1)] if expansion != 1 else []
        layers += [_conv_bn(hidden, hidden, 3, stride=stride, groups=hidden), _conv_bn(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


def _stage(cin: int, cout: int, blocks: int, stride: int, expansion: int) -> nn.Sequential:
    return nn.Sequential(*[InvertedResidual(cin if i == 0 else cout, cout, stride if i == 0 else 1, expansion)
                           for i in range(blocks)])


# --------------------------------------------------------------------------- the model


class HyperFaceCompact(HyperFaceModel):
    """Compact HyperFace: MobileNetV2-style trunk, stage2/stage3/stage4 fused on a stride-16 grid."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        kw = config.arch_kwargs
        width = float(kw.get("width", 1.0))
        grid = config.input_size // 16
        self.stem = _conv_bn(3, _scaled(STEM_CHANNELS, width), 3, stride=2)
        cin = _scaled(STEM_CHANNELS, width)
        out_ch = {}
        for name, (cout, blocks, stride, expansion) in STAGES.items():
            cout = _scaled(cout, width)
            self.add_module(name, _stage(cin, cout, blocks, stride, expansion))
            out_ch[name] = cin = cout
        fuse = _scaled(FUSE_CHANNELS, width)
        self.proj_low = _conv_bn(out_ch["stage2"], fuse, 4, stride=4)
        self.proj_mid = _conv_bn(out_ch["stage3"], fuse, 2, stride=2)
        conv_all = _scaled(CONV_ALL_CHANNELS, width)
        self.conv_all = _conv_bn(2 * fuse + out_ch["stage4"], conv_all, 1)
        fc = int(kw.get("fc_channels", 256))
        self.fc_full = nn.Linear(conv_all * grid * grid, fc)
        self.dropout = nn.Dropout(float(kw.get("dropout", 0.2)))
        self.heads = TaskHeads(fc, config.tasks, config.num_points, branch_channels=int(kw.get("branch_channels", 128)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.stage1(self.stem(x))
        low = self.stage2(x)
        mid = self.stage3(low)
        high = self.stage4(mid)
        fused = torch.cat([self.proj_low(low), self.proj_mid(mid), high], dim=1)
        x = self.conv_all(fused).flatten(1)
        return self.dropout(torch.relu(self.fc_full(x)))


# --------------------------------------------------------------------------- registered entry points


@register_model
def hyperface_compact(*, tasks=TASKS, num_points: int = 21, point_set: str | None = None, input_size: int = 128,
                      width: float = 1.0, fc_channels: int = 256, branch_channels: int = 128,
                      dropout: float = 0.2) -> HyperFaceCompact:
    """HyperFace-Compact (CPU): MobileNetV2-style trunk, low/mid/high fusion on a stride-16 grid; 128 input."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32 or input_size % 16:
        raise ValueError(f"hyperface-compact input_size must be a multiple of 16 and >= 32, got {input_size!r}")
    if not 0.25 <= float(width) <= 4.0:
        raise ValueError(f"hyperface-compact width must be in [0.25, 4], got {width!r}")
    if int(fc_channels) < 1 or int(branch_channels) < 1:
        raise ValueError("hyperface-compact fc_channels and branch_channels must be positive")
    config = ModelConfig(arch="hyperface-compact", tasks=tasks, num_points=num_points, point_set=point_set,
                         input_size=input_size, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                         arch_kwargs={"input_size": input_size, "width": float(width), "fc_channels": int(fc_channels),
                                      "branch_channels": int(branch_channels), "dropout": float(dropout)})
    return HyperFaceCompact(config)
