"""Fixtures for the inference tests: proposal weights with known behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperface.models.proposal import hyperface_proposal
from hyperface.models.weights import save_weights


@pytest.fixture(scope="session")
def proposal_weights(tmp_path_factory) -> Path:
    """A hand-set proposal net that accepts windows more than half bright (BlobNet's "faces")."""
    import torch

    net = hyperface_proposal()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        f = net.features
        f[0].weight[0] = 1.0 / f[0].weight[0].numel()  # mean of the window's (x - 0.5) / 0.5
        f[2].weight[0, 0] = 1.0 / 9
        f[4].weight[0, 0] = 1.0 / 9
        f[6].weight[0, 0] = 1.0
        f[6].bias[0] = -0.5  # feature = relu(bright_fraction - 0.5) (black patches give relu(-1) = 0)
        net.score.weight[1, 0] = 20.0
        net.score.bias[0] = 1e-3
        net.box.bias.copy_(torch.tensor([-0.5, -0.5, 0.5, 0.5]))
    return save_weights(net, tmp_path_factory.mktemp("proposal") / "proposal.safetensors")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A small random hyperface-compact (32 px crops, five points): fast to load and run in CLI tests."""
    import torch

    from hyperface.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("hyperface-compact", input_size=32, num_points=5, point_set="five")
    return save_weights(model, tmp_path_factory.mktemp("tiny") / "compact.safetensors")


@pytest.fixture
def no_models(monkeypatch):
    """Fail the test if an analyzer is built: for checks that must come before any model loads."""
    from hyperface.inference import FaceAnalyzer

    def refuse(*args, **kwargs):
        pytest.fail("the models were loaded before the command refused its arguments")

    monkeypatch.setattr(FaceAnalyzer, "__init__", refuse)
