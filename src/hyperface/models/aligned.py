"""HyperFace-Aligned: the stage-two network, on a face already aligned by its five points.

Every serious face toolkit analyses an *aligned* face for its fine outputs (dlib's shape predictor,
face-alignment's FAN, insightface's landmark and attribute models): the first stage's points fix a
similarity transform (:mod:`hyperface.alignment`) and the second network sees the face at a
canonical position, scale and angle, so its capacity goes to the face's shape, not to where the
face is in a loose candidate box. The trunk is a plain residual network (He et al., "Deep Residual
Learning for Image Recognition", CVPR 2016; torchvision's ``BasicBlock``), the head HyperFace's:
the final map flattened (keeping where each feature is, which regression of point coordinates
needs), one shared fully connected layer, one branch per task.

Layout for the default 96 x 96 input (``input_size`` any multiple of 16; grid = input_size / 16)::

    stem     conv 3x3/2, 16                 48x48
    stage1   basic block /2, 32             24x24
    stage2   basic block /2, 64; block, 64  12x12
    stage3   basic block /2, 128; block     6x6
    reduce   conv 1x1, 64 -> flatten 2304 -> fc 256 (dropout) -> per task fc 128 + output

1.4 M parameters and about 0.12 GMAC per face with 68 points. The input contract (the five-point
template, crop size and normalisation) is stored in the weights' config, so inference aligns faces
exactly as training did.

``landmark_head="bins"`` replaces the landmark branch by :class:`~hyperface.models.heads.AxisBinPointHead`
(SimCC-style x and y bins read out by their expectation) on the reduced 64-channel map: the stage-two
ablation's row for a head that is not direct regression (docs/training.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock
from torchvision.ops import Conv2dNormActivation

from hyperface.alignment import DEFAULT_TEMPLATE
from hyperface.models.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from hyperface.models.heads import AxisBinPointHead, HyperFaceModel, TaskHeads
from hyperface.models.registry import register_model

__all__ = ["HyperFaceAligned", "ALIGNED_TASKS", "STAGES"]

#: What stage two can answer: everything but face / non-face (stage one decided that).
ALIGNED_TASKS = ("landmarks", "visibility", "pose", "gender")
STEM_CHANNELS = 16
# name: (output channels, blocks); every stage halves the map with its first block
STAGES: dict[str, tuple[int, int]] = {"stage1": (32, 1), "stage2": (64, 2), "stage3": (128, 2)}


# --------------------------------------------------------------------------- building blocks


def _scaled(channels: int, width: float) -> int:
    """Channels times ``width``, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(channels * width + 4) // 8 * 8)


def _block(cin: int, cout: int, stride: int) -> BasicBlock:
    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
    return BasicBlock(cin, cout, stride=stride, downsample=down)


# --------------------------------------------------------------------------- the model


class HyperFaceAligned(HyperFaceModel):
    """Residual trunk to a stride-16 grid, flattened, shared FC, one branch per task."""

    grow_kwargs = ("width", "reduce_channels", "fc_channels", "branch_channels", "dropout")
    reframe_kwargs = ("context",)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        kw = config.arch_kwargs
        width = float(kw.get("width", 1.0))
        grid = config.input_size // 16
        cin = _scaled(STEM_CHANNELS, width)
        self.stem = Conv2dNormActivation(3, cin, 3, stride=2, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU,
                                         inplace=True)
        for name, (cout, blocks) in STAGES.items():
            cout = _scaled(cout, width)
            self.add_module(name, nn.Sequential(*[_block(cin if i == 0 else cout, cout, 2 if i == 0 else 1)
                                                  for i in range(blocks)]))
            cin = cout
        reduce = int(kw.get("reduce_channels", 64))
        self.reduce = Conv2dNormActivation(cin, reduce, 1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU,
                                           inplace=True)
        fc = int(kw.get("fc_channels", 256))
        self.fc_full = nn.Linear(reduce * grid * grid, fc)
        self.dropout = nn.Dropout(float(kw.get("dropout", 0.1)))
        branches = config.tasks
        self.point_head: AxisBinPointHead | None = None
        if kw.get("landmark_head", "fc") == "bins" and "landmarks" in config.tasks:
            extent = float(kw.get("bin_extent", 1.25))
            bins = int(round(config.input_size * float(kw.get("bins_per_pixel", 2.0)) * extent))
            self.point_head = AxisBinPointHead(reduce, grid, config.num_points, bins, extent)
            branches = tuple(t for t in config.tasks if t != "landmarks")
        self.heads = TaskHeads(fc, branches, config.num_points, branch_channels=int(kw.get("branch_channels", 128)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # residual branches start as identity (Goyal et al., 2017)
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    @property
    def template(self) -> list[list[float]]:
        """The five-point template (window-relative) the input was aligned to."""
        return [list(p) for p in self.config.arch_kwargs["template"]]

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The reduced stride-16 feature map ``(B, 64, grid, grid)``."""
        self.check_input(x)
        return self.reduce(self.stage3(self.stage2(self.stage1(self.stem(x)))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._fuse(self.forward_map(x))

    def _fuse(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.relu(self.fc_full(feature_map.flatten(1))))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.point_head is None:
            return super().forward(x)
        feature_map = self.forward_map(x)
        outputs = self.heads(self._fuse(feature_map))
        outputs["landmarks"] = self.point_head(feature_map)
        return {t: outputs[t] for t in self.config.tasks}  # the tasks' order, as every model returns


# --------------------------------------------------------------------------- registered entry points


def _check_template(template) -> list[list[float]]:
    try:
        t = [[float(v) for v in p] for p in template]
    except (TypeError, ValueError):
        raise ValueError(f"hyperface-aligned template must be 5 (x, y) pairs, got {template!r}") from None
    if len(t) != 5 or any(len(p) != 2 or not all(abs(v) <= 1.0 for v in p) for p in t):
        raise ValueError(f"hyperface-aligned template must be 5 window-relative (x, y) pairs in [-1, 1], got {template!r}")
    return t


@register_model
def hyperface_aligned(*, tasks=ALIGNED_TASKS, num_points: int = 68, point_set: str | None = None,
                      input_size: int = 96, template=DEFAULT_TEMPLATE, context: float = 1.0, width: float = 1.0,
                      reduce_channels: int = 64, fc_channels: int = 256, branch_channels: int = 128,
                      dropout: float = 0.1, landmark_head: str = "fc", bins_per_pixel: float = 2.0,
                      bin_extent: float = 1.25) -> HyperFaceAligned:
    """HyperFace-Aligned (stage two): residual trunk on a face aligned by five points; 96 input."""
    if "detection" in tasks:
        raise ValueError("hyperface-aligned is stage two: it has no detection task (stage one decides face / "
                         f"non-face); choose from {ALIGNED_TASKS}")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32 or input_size % 16:
        raise ValueError(f"hyperface-aligned input_size must be a multiple of 16 and >= 32, got {input_size!r}")
    if not 0.25 <= float(width) <= 4.0:
        raise ValueError(f"hyperface-aligned width must be in [0.25, 4], got {width!r}")
    if not 1.0 <= float(context) <= 2.0:
        raise ValueError(f"hyperface-aligned context (input window / template window) must be in [1, 2], got {context!r}")
    if landmark_head not in ("fc", "bins"):
        raise ValueError(f"hyperface-aligned landmark_head must be 'fc' (regression) or 'bins' (x and y bins), "
                         f"got {landmark_head!r}")
    if not (0.25 <= float(bins_per_pixel) <= 8.0 and 1.0 <= float(bin_extent) <= 2.0):
        raise ValueError(f"hyperface-aligned bins_per_pixel must be in [0.25, 8] and bin_extent in [1, 2], got "
                         f"{bins_per_pixel!r} and {bin_extent!r}")
    head = {} if landmark_head == "fc" else {"landmark_head": "bins", "bins_per_pixel": float(bins_per_pixel),
                                                "bin_extent": float(bin_extent)}
    config = ModelConfig(arch="hyperface-aligned", tasks=tasks, num_points=num_points, point_set=point_set,
                         input_size=input_size, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                         arch_kwargs={"input_size": input_size, "template": _check_template(template),
                                      "context": float(context), "width": float(width),
                                      "reduce_channels": int(reduce_channels), "fc_channels": int(fc_channels),
                                      "branch_channels": int(branch_channels), "dropout": float(dropout),
                                      **head})
    return HyperFaceAligned(config)
