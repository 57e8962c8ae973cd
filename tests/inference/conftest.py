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
def exported_pipeline(tmp_path_factory) -> Path:
    """The bundled pipeline as ``hyperface export --out DIR`` writes it (every network, checked against PyTorch):
    about 20 s of CPU, once per session."""
    pytest.importorskip("onnxruntime")
    from hyperface.cli.main import main

    out = tmp_path_factory.mktemp("pipeline") / "exported"
    assert main(["export", "--out", str(out)]) == 0
    return out


@pytest.fixture
def exports(monkeypatch) -> list[str]:
    """The class names of the models exported to ONNX in memory during the test (an empty export cache first)."""
    pytest.importorskip("onnxruntime")
    from hyperface import export

    exported: list[str] = []
    real = export.onnx_bytes

    def counting(model, *args, **kwargs):
        exported.append(type(model).__name__)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(export, "onnx_bytes", counting)
    monkeypatch.setattr(export, "_CACHE", {})
    return exported


@pytest.fixture
def no_bundled_files(monkeypatch, tmp_path):
    """An installation whose assets folder is empty (the bundled pipeline read again afterwards)."""
    from hyperface.inference import assets

    empty = tmp_path / "no-assets"
    empty.mkdir()
    monkeypatch.setattr(assets, "_assets_dir", lambda: empty)
    assets.bundled.cache_clear()
    yield empty
    assets.bundled.cache_clear()


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
