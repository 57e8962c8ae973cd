"""Backends: ``auto`` is onnxruntime on the CPU where it imports; ``threads`` reaches PyTorch too."""

from __future__ import annotations

import pytest
import torch

from hyperface import onnx_io
from hyperface.inference import FaceAnalyzer
from hyperface.inference.network import OnnxNetwork, TorchNetwork
from hyperface.inference.proposals import FastProposals
from hyperface.onnx_io import resolve_backend

from inference_stubs import BlobNet, blob_image


def test_auto_is_onnxruntime_on_the_cpu_and_pytorch_without_it(monkeypatch):
    assert resolve_backend("auto") == "onnx"
    assert resolve_backend("auto", "cuda:0") == "torch"
    assert resolve_backend("torch") == "torch" and resolve_backend("onnx") == "onnx"
    with pytest.raises(ValueError, match="auto, torch, onnx"):
        resolve_backend("tensorrt")

    def missing(what: str = "") -> None:
        raise ImportError("no onnxruntime here")

    monkeypatch.setattr(onnx_io, "require_onnxruntime", missing)
    assert resolve_backend("auto") == "torch"
    with pytest.raises(ImportError):
        resolve_backend("onnx")


def test_the_analyzer_runs_every_network_on_one_backend_and_sets_both_thread_pools(proposal_weights):
    before = torch.get_num_threads()
    try:
        source = FastProposals(proposal_weights, min_face=32, refine=None)
        a = FaceAnalyzer(BlobNet(), proposals=source, threads=1)
        assert a.backend == "onnx" and isinstance(a.network, OnnxNetwork)
        assert torch.get_num_threads() == 1
        b = FaceAnalyzer(BlobNet(), proposals="fast", proposal_options={"weights": proposal_weights, "min_face": 32, "refine": None}, backend="torch")
        assert isinstance(b.network, TorchNetwork) and b.proposals.backend == "torch"
        c = FaceAnalyzer(BlobNet(), proposals="fast", proposal_options={"weights": proposal_weights, "min_face": 32, "refine": None})
        assert c.proposals.backend == "onnx"
        image = blob_image(200, 140, [(70, 60, 20)])
        fa, fb = a(image), b(image)
        assert len(fa) == len(fb) == 1
        assert abs(fa[0].score - fb[0].score) < 1e-4
        with pytest.raises(ValueError, match="threads"):
            FaceAnalyzer(BlobNet(), proposals=source, threads=0)
    finally:
        torch.set_num_threads(before)
