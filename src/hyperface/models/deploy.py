"""Networks as the pipeline runs them: uint8 pixels in, named outputs out.

:func:`deployable` wraps a model in the module that both ``hyperface export`` writes as ONNX and the
``torch`` backend runs (:class:`TorchRunner`), so the two engines compute the same graph. The wrapper
takes uint8 RGB ``(N, H, W, 3)`` and normalises inside the network (``x * 1/(255 std) - mean/std``,
the model's own :class:`~hyperface.models.config.ModelConfig`), then answers in the order of
:func:`hyperface.runtime.network_io`: the detector's per-level face probabilities and box distances,
the ``fast`` networks' face probability and box offsets, or a HyperFace network's raw task outputs.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from hyperface.models.config import ModelConfig
from hyperface.runtime import NetworkIO, network_io

__all__ = ["Deployed", "deployable", "TorchRunner", "cpu_optimized", "check_device", "example_pixels"]

log = logging.getLogger(__name__)


class Deployed(nn.Module):
    """``model`` behind the pixel contract (see the module docstring); ``io`` names its outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        config: ModelConfig = model.config
        self.model = model.eval()
        self.io: NetworkIO = network_io(config)
        mean = torch.tensor(config.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(config.std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", mean / std)
        # in eval mode itself too: an exporter that restores the wrapper's mode afterwards (TorchScript's) would
        # otherwise put the caller's model in training mode (BatchNorm then normalises by batch statistics)
        self.eval()

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = pixels.permute(0, 3, 1, 2).to(torch.float32) * self.scale - self.shift
        arch = self.model.config.arch
        if arch == "hyperface-detector":
            out: list[torch.Tensor] = []
            for logits, dist, points in self.model.levels(x):
                out += [torch.sigmoid(logits[:, 0]), dist] + ([] if points is None else [points])
            return tuple(out)
        if arch == "hyperface-proposal":
            logits, box = self.model.dense(x)
            return torch.softmax(logits, dim=1)[:, 1], box
        if arch == "hyperface-proposal-refine":
            logits, box = self.model.forward_box(x)
            return torch.softmax(logits, dim=1)[:, 1], box
        answers = self.model(x)
        return tuple(answers[t] for t in self.io.outputs)


def deployable(model: nn.Module) -> Deployed:
    """``model`` (a registered hyperface network, moved to the CPU and eval mode) behind the pixel contract."""
    if isinstance(model, Deployed):
        return model
    return Deployed(model)


def example_pixels(io: NetworkIO, batch: int = 2) -> torch.Tensor:
    """A uint8 input of the right shape for tracing or checking (random, reproducible)."""
    side = io.size if io.kind == "crops" else 2 * max(io.align, 64)
    gen = torch.Generator().manual_seed(0)
    n = batch if io.kind == "crops" else 1
    return torch.randint(0, 256, (n, side, side, 3), generator=gen, dtype=torch.uint8)


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device; a ValueError that says what is wrong for an unknown or absent one."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a device name such as 'cpu', 'cuda' or 'cuda:1' ({exc})") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported: use 'cpu', 'cuda' or 'cuda:N'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is available here (torch.cuda.is_available() is "
                             f"False); use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) are available")
    return dev


def cpu_optimized(module: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
    """An eval-mode ``module`` made for PyTorch inference on ``device``, with the same outputs.

    On a CPU: a copy with its BatchNorms folded into the convolutions before them and its weights in
    channels-last layout, where oneDNN's depthwise and 1x1 convolutions run about 1.3-1.8x faster.
    Folding follows the traced calls (``torch.fx``'s ``fuse``) when every convolution and BatchNorm is
    called once; a module that calls one several times (a head shared by all pyramid levels) would
    have it folded once per call, so there, and where tracing fails, each BatchNorm right after a
    convolution in an ``nn.Sequential`` (torchvision's ``Conv2dNormActivation``) is folded instead.
    Elsewhere: ``module``.
    """
    if torch.device(device).type != "cpu":
        return module
    module = module.eval()
    try:
        from torch.fx import symbolic_trace
        from torch.fx.experimental.optimization import fuse

        layers = dict(module.named_modules())
        convs = [n.target for n in symbolic_trace(module).graph.nodes
                 if n.op == "call_module" and isinstance(layers[n.target], (nn.Conv2d, nn.BatchNorm2d))]
        folded = fuse(module) if len(convs) == len(set(convs)) else _fold_sequential_bn(module)
    except Exception as exc:  # tracing can fail on unusual models
        log.debug("traced BatchNorm folding skipped for %s: %s", type(module).__name__, exc)
        folded = _fold_sequential_bn(module)
    return folded.to(memory_format=torch.channels_last)


def _fold_sequential_bn(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with each BatchNorm2d that follows a Conv2d in an ``nn.Sequential`` folded into it."""
    module = copy.deepcopy(module)
    for seq in module.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None:
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = nn.Identity()
    return module


class TorchRunner:
    """Runs a :class:`Deployed` network under ``torch.inference_mode`` on ``device``: numpy pixels in, numpy
    arrays out. On a CPU it runs the :func:`cpu_optimized` copy (made on the first call); ``threads`` sets
    PyTorch's process-wide intra-op thread count once, here (None leaves it)."""

    def __init__(self, module: Deployed, device: str | torch.device = "cpu", threads: int | None = None,
                 optimize: bool = True) -> None:
        self.module = module.eval().to(device)
        self.device = torch.device(device)
        self.optimize = bool(optimize) and self.device.type == "cpu"
        self._run: nn.Module | None = None
        if threads is not None:
            torch.set_num_threads(int(threads))

    def __call__(self, pixels: np.ndarray) -> list[np.ndarray]:
        if self._run is None:
            self._run = cpu_optimized(self.module, self.device) if self.optimize else self.module
        x = torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy()).to(self.device)
        with torch.inference_mode():
            out = self._run(x)
        return [o.float().cpu().numpy() for o in out]
