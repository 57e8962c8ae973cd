"""ONNX export of a hyperface model, checked against PyTorch (after timm's ``utils/onnx.py``).

The exported graph takes ``input`` (B, 3, S, S) normalised crops with a dynamic batch axis and has
one output per task, named by the task (``detection``, ``landmarks``, ...), with the same values as
the PyTorch model's output dict. The model's :class:`~hyperface.models.config.ModelConfig` is stored
in the ONNX metadata (``hyperface_config``), so ``FaceAnalyzer(weights="m.onnx", backend="onnx")``
needs no other file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from hyperface import fileio
from hyperface.models.heads import HyperFaceModel
from hyperface.onnx_io import CONFIG_KEY, OPSET, export_to_bytes, inference_session

__all__ = ["onnx_bytes", "export_onnx", "check_onnx"]

log = logging.getLogger(__name__)


class _Outputs(torch.nn.Module):
    """The model with its dict output flattened into a tuple in task order (ONNX outputs are positional)."""

    def __init__(self, model: HyperFaceModel) -> None:
        super().__init__()
        self.model = model
        self.tasks = tuple(model.config.tasks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return tuple(out[t] for t in self.tasks)


def onnx_bytes(model: HyperFaceModel, opset: int = OPSET) -> bytes:
    """The serialised ONNX model (dynamic batch, outputs named by task, config in the metadata)."""
    model = model.eval().cpu()
    s = model.config.input_size
    wrapper = _Outputs(model).eval()
    tasks = list(wrapper.tasks)
    dynamic = {"input": {0: "batch"}, **{t: {0: "batch"} for t in tasks}}
    return export_to_bytes(wrapper, (torch.zeros(2, 3, s, s),), ["input"], tasks, dynamic, opset=opset,
                           metadata={CONFIG_KEY: model.config.to_json()}, producer="hyperface")


def check_onnx(model: HyperFaceModel, onnx_model: bytes | str | Path, batch_sizes: tuple[int, ...] = (1, 3),
               seed: int = 0) -> dict[str, float]:
    """Max absolute difference per task between PyTorch and onnxruntime on random input.

    Runs each batch size in ``batch_sizes`` (so the dynamic batch axis is exercised).
    """
    model = model.eval().cpu()
    s = model.config.input_size
    session = inference_session(onnx_model)
    names = [o.name for o in session.get_outputs()]
    gen = torch.Generator().manual_seed(seed)
    diffs = dict.fromkeys(model.config.tasks, 0.0)
    for b in batch_sizes:
        x = torch.randn(b, 3, s, s, generator=gen)
        with torch.no_grad():
            ref = model(x)
        got = dict(zip(names, session.run(names, {"input": x.numpy()})))
        for t in model.config.tasks:
            d = float(np.max(np.abs(got[t] - ref[t].numpy()))) if ref[t].numel() else 0.0
            diffs[t] = max(diffs[t], d)
    return diffs


def export_onnx(model: HyperFaceModel, path: str | os.PathLike, opset: int = OPSET,
                check: bool = True) -> dict[str, float]:
    """Write ``model`` as ONNX to ``path`` atomically; with ``check``, compare it with PyTorch.

    Returns the max absolute difference per task (empty without ``check``).
    """
    path = Path(path)
    data = onnx_bytes(model, opset=opset)
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_path(path) as tmp:
        tmp.write_bytes(data)
        diffs = check_onnx(model, tmp) if check else {}
    return diffs
