"""The fast cascade's second network (``hyperface-proposal-refine``, MTCNN's R-Net) on given boxes.

It scores 24 x 24 crops of candidate boxes and regresses a finer box. ``fast`` uses it as its second
stage (boxes under its ``refine_threshold`` are dropped); ``detector`` uses its probability as a
second opinion on each box (:meth:`DetectorProposals.scored`): trained against the hard negatives
of small windows, it rejects text, hands and background blobs that a whole-image detector at low
threshold proposes. Crops come from one ``roi_align`` call (``sampling`` bilinear samples per crop
pixel and axis: 2 is close to the area-averaged training crops); with onnxruntime the network is
exported once per process (:func:`hyperface.onnx_io.cached_export`) on the first call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.ops import roi_align

from hyperface.inference.assets import ASSETS, REFINE_WEIGHTS, resolve_weights
from hyperface.inference.network import TorchRunner
from hyperface.models.proposal import REFINE_SIZE, RefineNet
from hyperface.models.weights import load_model
from hyperface.onnx_io import cached_export, inference_session, resolve_backend

__all__ = ["RefineScorer", "load_refine_net"]


def load_refine_net(refine: str | Path | RefineNet | None) -> RefineNet | None:
    """``"bundled"`` (None where the installation lacks it), a weights file, a network, or None."""
    if isinstance(refine, str) and refine == "bundled":
        refine = ASSETS / REFINE_WEIGHTS if (ASSETS / REFINE_WEIGHTS).is_file() else None
    if refine is None or isinstance(refine, RefineNet):
        return refine
    path = resolve_weights(refine, REFINE_WEIGHTS)
    net = load_model(path)
    if not isinstance(net, RefineNet):
        raise ValueError(f"{path}: {net.config.arch!r} weights are not a refine network "
                         f"(need 'hyperface-proposal-refine')")
    return net


class _Refine(torch.nn.Module):
    """uint8-range crops (N, 3, 24, 24) -> face probability (N,) and box offsets (N, 4)."""

    def __init__(self, net: RefineNet) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(net.config.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(net.config.std).view(1, 3, 1, 1) * 255.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, box = self.net.forward_box((x - self.mean) / self.std)
        return torch.softmax(logits, dim=1)[:, 1], box


class RefineScorer:
    """Face probability and refined box of each given box (see the module docstring)."""

    def __init__(self, net: RefineNet, device: str = "cpu", backend: str = "auto", threads: int | None = None,
                 sampling: int = 2) -> None:
        self.device = str(device)
        self._torch = TorchRunner(_Refine(net), self.device)  # the network with its normalisation, built once
        self.backend = resolve_backend(backend, self.device, "the refine network's backend")
        self.threads = threads
        self.sampling = int(sampling)
        self._session = None

    @property
    def net(self) -> RefineNet:
        return self._torch.module.net

    def to(self, device: str) -> RefineScorer:
        self.device = str(device)
        self._torch.to(self.device)
        return self

    def _onnx_session(self):
        if self._session is None:
            example = (torch.zeros(2, 3, REFINE_SIZE, REFINE_SIZE),)  # onnxruntime runs on the CPU only
            data = cached_export(self._torch.module, example, ["crops"], ["face", "box"],
                                 {"crops": {0: "n"}, "face": {0: "n"}, "box": {0: "n"}})
            self._session = inference_session(data, self.threads)
        return self._session

    def __call__(self, image: np.ndarray, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(refined boxes (K, 4), face probabilities (K,)) of ``boxes`` (K, 4) in ``image``'s pixels, on the CPU."""
        if len(boxes) == 0:
            return boxes.float().cpu(), torch.zeros(0)
        # only the region the boxes cover (and the pixels their bilinear samples touch) is converted:
        # the same crops as from the whole image, without a float copy of it per call
        h, w = image.shape[:2]
        lo = boxes.float().min(dim=0).values.floor().long().tolist()
        hi = boxes.float().max(dim=0).values.ceil().long().tolist()
        x0, y0 = min(max(lo[0] - 2, 0), w - 1), min(max(lo[1] - 2, 0), h - 1)
        x1, y1 = max(min(hi[2] + 3, w), x0 + 1), max(min(hi[3] + 3, h), y0 + 1)
        region = np.ascontiguousarray(image[y0:y1, x0:x1].transpose(2, 0, 1))
        t = torch.from_numpy(region).to(self.device)[None].float()
        shift = torch.tensor([x0, y0, x0, y0], dtype=torch.float32, device=self.device)
        crops = roi_align(t, [boxes.float().to(self.device) - shift], (REFINE_SIZE, REFINE_SIZE), 1.0, self.sampling,
                          aligned=False).round_().clamp_(0, 255)
        if self.backend == "onnx":
            score, reg = self._onnx_session().run(None, {"crops": crops.cpu().numpy()})
            score, reg = torch.from_numpy(score), torch.from_numpy(reg)
        else:
            score, reg = self._torch(crops)
            score, reg = score.float().cpu(), reg.float().cpu()
        boxes = boxes.float().cpu()
        c = (boxes[:, :2] + boxes[:, 2:]) / 2
        wh = boxes[:, 2:] - boxes[:, :2]
        return torch.cat([c + reg[:, :2] * wh, c + reg[:, 2:] * wh], dim=1), score
