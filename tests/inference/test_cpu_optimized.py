"""``cpu_optimized`` and ``TorchRunner``: BatchNorm folded and channels-last weights, the same outputs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hyperface.models.deploy import TorchRunner, cpu_optimized, deployable
from hyperface.models.detector import hyperface_detector
from hyperface.models.registry import create_model


def _randomise_batchnorm(module: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so that folding them wrongly shows."""
    g = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return module.eval()


def _count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


class _SharedHead(nn.Module):
    """A convolution + BatchNorm block called on two inputs, as the detector's head is on every level."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.stem(x)
        return self.head(a), self.head(self.down(a))


def test_a_block_called_twice_is_folded_once_with_the_same_outputs():
    model = _randomise_batchnorm(_SharedHead())
    fast = cpu_optimized(model)
    assert _count(fast, nn.BatchNorm2d) == 0 and _count(model, nn.BatchNorm2d) == 3  # the model is untouched
    x = torch.rand(2, 3, 32, 48)
    with torch.inference_mode():
        for want, got in zip(model(x), fast(x.contiguous(memory_format=torch.channels_last))):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_the_detector_and_a_traced_network_keep_their_outputs():
    detector = _randomise_batchnorm(hyperface_detector())
    fast = cpu_optimized(detector)
    assert _count(fast, nn.BatchNorm2d) == 0
    x = torch.rand(1, 3, 128, 192)
    with torch.inference_mode():
        for (wl, wd), (gl, gd) in zip(detector.dense(x), fast.dense(x)):
            torch.testing.assert_close(gl, wl, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(gd, wd, rtol=1e-4, atol=1e-3)
    net = _randomise_batchnorm(create_model("hyperface-compact"))
    module = deployable(net)
    runner = TorchRunner(module)
    s = net.config.input_size
    pixels = np.random.default_rng(0).integers(0, 256, (2, s, s, 3), dtype=np.uint8)
    with torch.inference_mode():
        want = module(torch.from_numpy(pixels))
    got = runner(pixels)
    assert _count(runner._run, nn.BatchNorm2d) == 0 and _count(net, nn.BatchNorm2d) > 0
    convs = [m.weight for m in runner._run.modules()
             if isinstance(m, nn.Conv2d) and m.weight.shape[1] > 1 and m.weight.shape[2] > 1]  # not 1x1 or depthwise
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs)
    assert len(got) == len(want) == len(net.config.tasks) and all(isinstance(g, np.ndarray) for g in got)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4)
    # without optimisation the module itself runs
    plain = TorchRunner(module, optimize=False)
    np.testing.assert_allclose(plain(pixels)[0], want[0].numpy(), rtol=1e-6, atol=1e-6)
    assert plain._run is module
