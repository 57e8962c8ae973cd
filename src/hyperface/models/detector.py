"""A single-pass face detector: the candidate stage of the ``detector`` proposal source.

Why: the ``fast`` cascade scores a 16-pixel window over an image pyramid, so its cost grows with
every level (about half of a whole call on a 640x480 photo). This network looks at the image once,
at one working size, and finds faces of every size from heads at four strides, as anchor-free
detectors do (FCOS: Tian et al., ICCV 2019; SCRFD: Guo et al., ICLR 2022, for small CPU-sized face
detectors). HyperFace then scores and refines what it proposes, so it is trained for recall.

Layout (widths configurable; BatchNorm + ReLU after every convolution but the outputs)::

    stem   conv 3x3/2                                   stride 2
    s4     depthwise-separable /2, then 1 more          stride 4
    s8     depthwise-separable /2, then 2 more  -> C3   stride 8    faces about 10-40 px
    s16    depthwise-separable /2, then 1 more  -> C4   stride 16   faces 26-80 px
    s32    depthwise-separable /2, then 1 more  -> C5   stride 32   faces 51-160 px
    s64    depthwise-separable /2, then 1 more  -> C6   stride 64   faces over 102 px
    FPN    1x1 laterals to ``fpn`` channels, top-down sums, one depthwise-separable conv per level
    head   shared by the levels: depthwise-separable conv, then 1x1 to a face logit and 4 distances
    points (with the landmarks task) ``point_head="shared"``: a 1x1 conv on the head's features, offsets
           in strides from the cell; ``"box"``: its own two depthwise-separable convs on the FPN level,
           then a 1x1 conv, offsets in units of the cell's own predicted box from that box's centre

Each output cell (i, j) of the level with stride ``s`` sits at image point ``(s j + (s - 1) / 2,
s i + (s - 1) / 2)`` and predicts the face whose centre region covers it: a logit and the distances
``(left, top, right, bottom)`` from that point to the face box's sides, ``exp(raw) * s``. About
0.2 M parameters and 30 M MACs at 256 x 256.

Why the ``box`` point head: v0.7's shared head puts close to one average shape in every box (NME 20%
on MTFL's validation faces, as good as 300-W's mean shape), and a 1x1 layer shared with the score and
the box, which must also learn the face's scale in strides, has little room for where an eye is. In
the box's units a shape needs no scale, the box's error does not reach the points' gradient (the box
is detached there), and the tower gives the points features of their own. Measured (docs/training.md):
trained alone on v0.7's frozen detector it reaches 16.1%, MTFL's own mean shape's 16.4%; the features
of one cell, not the head's form, are what limits the points.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from hyperface.models import geometry
from hyperface.models.config import ModelConfig
from hyperface.models.geometry import DETECTOR_ALIGN as ALIGN
from hyperface.models.geometry import DETECTOR_STRIDES as STRIDES
from hyperface.models.heads import HyperFaceModel
from hyperface.models.registry import register_model

__all__ = ["FaceDetectorNet", "STRIDES", "SIZE_RANGES", "MEAN", "STD", "cell_centres"]

#: Face sizes (sqrt of box area, pixels at the working size) each level is trained on; neighbours
#: overlap, so a face near a boundary is a positive on both.
SIZE_RANGES = ((0.0, 40.0), (26.0, 80.0), (51.0, 160.0), (102.0, float("inf")))
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
POINT_HEADS = ("shared", "box")
PRIOR = 0.01  # initial face probability of every cell (focal-loss initialisation)


def _separable(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with BatchNorm and ReLU."""
    return nn.Sequential(
        Conv2dNormActivation(cin, cin, 3, stride=stride, groups=cin),
        Conv2dNormActivation(cin, cout, 1),
    )


def _stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(_separable(cin, cout, 2), *[_separable(cout, cout) for _ in range(blocks - 1)])


class FaceDetectorNet(HyperFaceModel):
    """Fully convolutional; :meth:`dense` maps a normalised image to per-level logits and box distances."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        w = config.arch_kwargs.get("widths", [16, 24, 32, 64, 96, 128])
        fpn = int(config.arch_kwargs.get("fpn", 48))
        self.stem = Conv2dNormActivation(3, w[0], 3, stride=2)
        self.s4 = _stage(w[0], w[1], 2)
        self.s8 = _stage(w[1], w[2], 3)
        self.s16 = _stage(w[2], w[3], 2)
        self.s32 = _stage(w[3], w[4], 2)
        self.s64 = _stage(w[4], w[5], 2)
        self.lateral = nn.ModuleList(nn.Conv2d(c, fpn, 1) for c in w[2:])
        self.smooth = nn.ModuleList(_separable(fpn, fpn) for _ in STRIDES)
        self.head = _separable(fpn, fpn)
        self.score = nn.Conv2d(fpn, 1, 1)
        self.box = nn.Conv2d(fpn, 4, 1)
        self.box_scale = nn.Parameter(torch.ones(len(STRIDES)))
        # five points per cell (eye centres, nose tip, mouth corners), see the module's docstring
        self.point_head = str(config.arch_kwargs.get("point_head", "shared"))
        if self.point_head not in POINT_HEADS:
            raise ValueError(f"hyperface-detector's point_head is one of {POINT_HEADS}, got {self.point_head!r}")
        self.points: nn.Module | None = None
        if "landmarks" in config.tasks and self.point_head == "shared":
            self.points = nn.Conv2d(fpn, 2 * config.num_points, 1)
        elif "landmarks" in config.tasks:
            self.points = nn.Sequential(_separable(fpn, fpn), _separable(fpn, fpn),
                                        nn.Conv2d(fpn, 2 * config.num_points, 1))
            with torch.no_grad():
                self.points[-1].weight.mul_(0.1)
                self.points[-1].bias.zero_()  # every point starts at the box's centre
        with torch.no_grad():
            self.score.bias.fill_(-math.log((1 - PRIOR) / PRIOR))
            self.box.weight.mul_(0.1)
            self.box.bias.fill_(0.4)  # exp(0.4) = 1.5 strides from the cell to each side

    def dense(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised images (B, 3, H, W), H and W multiples of 64 -> per level (stride 8, 16, 32, 64):
        face logits (B, 1, H/s, W/s) and box distances in pixels (B, 4, H/s, W/s)."""
        return [(logit, dist) for logit, dist, _ in self.levels(x)]

    def levels(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """:meth:`dense`'s per-level outputs and, with the landmarks task, each cell's points as offsets in
        pixels from the cell's centre (B, 2 * num_points, H/s, W/s: x0, y0, x1, y1, ...); else None."""
        c2 = self.s4(self.stem(x))
        c3 = self.s8(c2)
        c4 = self.s16(c3)
        c5 = self.s32(c4)
        c6 = self.s64(c5)
        feats = [lat(c) for lat, c in zip(self.lateral, (c3, c4, c5, c6))]
        for k in range(len(feats) - 2, -1, -1):  # top-down: each level gets the coarser one's context
            feats[k] = feats[k] + nn.functional.interpolate(feats[k + 1], size=feats[k].shape[-2:], mode="nearest")
        out = []
        for k, (f, smooth) in enumerate(zip(feats, self.smooth)):
            f = smooth(f)
            h = self.head(f)
            dist = torch.exp((self.box(h) * self.box_scale[k]).clamp(max=8.0)) * STRIDES[k]
            points = None if self.points is None else self._points(f if self.point_head == "box" else h, dist, k)
            out.append((self.score(h), dist, points))
        return out

    def _points(self, features: torch.Tensor, dist: torch.Tensor, level: int) -> torch.Tensor:
        """Each cell's points as pixel offsets from the cell's centre (B, 2 * num_points, H, W)."""
        raw = self.points(features)
        if self.point_head == "shared":
            return raw * STRIDES[level]
        left, top, right, bottom = dist.detach().unbind(1)
        b, _, h, w = raw.shape
        raw = raw.view(b, -1, 2, h, w)
        centre = torch.stack([(right - left) / 2, (bottom - top) / 2], 1).unsqueeze(1)
        size = torch.stack([left + right, top + bottom], 1).unsqueeze(1)
        return (centre + raw * size).view(b, -1, h, w)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Every cell's face logit (B, cells) on an ``input_size`` window, all levels concatenated."""
        self.check_input(x)
        return torch.cat([logit.flatten(1) for logit, _ in self.dense(x)], 1)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Window classification with the crop models' contract: ``detection`` (B, 2) two-class logits
        whose softmax is the best cell's face probability. Whole images go through :meth:`dense`."""
        best = features.amax(1, keepdim=True)
        return {"detection": torch.cat([torch.zeros_like(best), best], 1)}


def cell_centres(height: int, width: int, stride: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """:func:`hyperface.models.geometry.cell_centres` of every cell, as a tensor on ``device`` (training's targets)."""
    return torch.from_numpy(geometry.cell_centres(height, width, stride)).to(device)


@register_model
def hyperface_detector(*, tasks=("detection",), num_points: int = 5, point_set: str | None = None,
                       widths: tuple[int, ...] = (16, 24, 32, 64, 96, 128), fpn: int = 48,
                       point_head: str = "shared") -> FaceDetectorNet:
    """Single-pass face detector: anchor-free heads at strides 8-64 over the whole image (candidates);
    ``point_head`` ("shared" or "box", see the module's docstring) only matters with the landmarks task."""
    if tuple(tasks) not in (("detection",), ("detection", "landmarks")):
        raise ValueError(f"hyperface-detector predicts detection, and optionally five landmarks, got tasks "
                         f"{list(tasks)}")
    if "landmarks" in tasks and (num_points != 5 or point_set not in (None, "five")):
        raise ValueError(f"hyperface-detector's landmarks are the five points ('five'), got {num_points} "
                         f"{point_set!r}")
    widths = [int(v) for v in widths]
    if len(widths) != 6 or min(widths) < 1 or int(fpn) < 1:
        raise ValueError(f"hyperface-detector needs 6 positive widths and fpn >= 1, got {widths}, {fpn}")
    config = ModelConfig(arch="hyperface-detector", tasks=tuple(tasks), num_points=num_points,
                         point_set=point_set, input_size=ALIGN, mean=MEAN, std=STD,
                         arch_kwargs={"widths": widths, "fpn": int(fpn),
                                      **({"point_head": point_head} if point_head != "shared" else {})})
    return FaceDetectorNet(config)
