"""The analyzer's network behind one call: PyTorch (``backend="torch"``) or onnxruntime (``"onnx"``);
``"auto"`` (the default) is onnxruntime on the CPU where it imports, else PyTorch.

Both take normalised crops (B, 3, S, S) and return the model's output dict keyed by task, as float
tensors on the analyzer's device. Crops are fed in chunks of ``batch_size`` to bound memory.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from hyperface.models.config import ModelConfig
from hyperface.models.heads import HyperFaceModel
from hyperface.onnx_io import BACKENDS, CONFIG_KEY, inference_session, require_onnxruntime, resolve_backend

__all__ = ["Network", "TorchNetwork", "OnnxNetwork", "load_network", "check_device", "cpu_optimized", "TorchRunner",
           "BACKENDS"]

log = logging.getLogger(__name__)


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device; a ValueError that says what is wrong for an unknown or absent one."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a device name such as 'cpu', 'cuda' or 'cuda:1' ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is available here (torch.cuda.is_available() is "
                             f"False); use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) are available")
    return dev


class Network:
    """Common interface: ``config``, ``tasks`` and ``__call__(x) -> {task: tensor}``."""

    config: ModelConfig
    device: torch.device
    batch_size: int = 64

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.config.tasks

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[0] == 0:
            with torch.inference_mode():
                probe = self.run(torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device))
            return {k: v[:0] for k, v in probe.items()}
        if x.shape[0] <= self.batch_size:
            return self.run(x)
        parts = [self.run(chunk) for chunk in torch.split(x, self.batch_size)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def cpu_optimized(module: torch.nn.Module, device: str | torch.device = "cpu") -> torch.nn.Module:
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
                 if n.op == "call_module" and isinstance(layers[n.target], (torch.nn.Conv2d, torch.nn.BatchNorm2d))]
        folded = fuse(module) if len(convs) == len(set(convs)) else _fold_sequential_bn(module)
    except Exception as exc:  # tracing can fail on unusual models
        log.debug("traced BatchNorm folding skipped for %s: %s", type(module).__name__, exc)
        folded = _fold_sequential_bn(module)
    return folded.to(memory_format=torch.channels_last)


def _fold_sequential_bn(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` with each BatchNorm2d that follows a Conv2d in an ``nn.Sequential`` folded into it."""
    module = copy.deepcopy(module)
    for seq in module.modules():
        if not isinstance(seq, torch.nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)
                    and bn.running_mean is not None):
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = torch.nn.Identity()
    return module


class TorchRunner:
    """Runs an eval-mode ``module`` under ``torch.inference_mode`` on its device: on a CPU, its
    :func:`cpu_optimized` copy (made on the first call, again after :meth:`to`) on channels-last input.
    ``module`` stays as it is, for export and for its buffers; ``optimize=False`` runs it directly."""

    def __init__(self, module: torch.nn.Module, device: str | torch.device = "cpu", optimize: bool = True) -> None:
        self.module = module.eval().to(device)
        self.device = torch.device(device)
        self.optimize = bool(optimize)
        self._run: torch.nn.Module | None = None

    def to(self, device: str | torch.device) -> TorchRunner:
        self.device = torch.device(device)
        self.module.to(self.device)
        self._run = None
        return self

    def __call__(self, x: torch.Tensor):
        fast = self.optimize and self.device.type == "cpu"
        if self._run is None:
            self._run = cpu_optimized(self.module, self.device) if fast else self.module
        x = x.to(self.device)
        with torch.inference_mode():
            return self._run(x.contiguous(memory_format=torch.channels_last) if fast else x)


class TorchNetwork(Network):
    """A :class:`HyperFaceModel` in eval mode under ``torch.inference_mode`` (:class:`TorchRunner`)."""

    def __init__(self, model: HyperFaceModel, device: str | torch.device = "cpu", batch_size: int = 64,
                 fuse: bool = True) -> None:
        self.config = model.config
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self._runner = TorchRunner(model, self.device, optimize=fuse)
        self.model = self._runner.module

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.float() for k, v in self._runner(x).items()}


class OnnxNetwork(Network):
    """An ONNX export run by onnxruntime; outputs named by task (see :mod:`hyperface.export`)."""

    def __init__(self, onnx_model: bytes | str | Path, config: ModelConfig | None = None,
                 device: str | torch.device = "cpu", batch_size: int = 64, threads: int | None = None) -> None:
        require_onnxruntime()
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        try:
            self.session = inference_session(onnx_model, threads, cuda=self.device.type == "cuda")
        except Exception as exc:  # onnxruntime raises its own exception types
            name = "the exported model" if isinstance(onnx_model, bytes) else str(onnx_model)
            raise ValueError(f"{name}: onnxruntime cannot load it ({exc})") from None
        if config is None:
            meta = self.session.get_modelmeta().custom_metadata_map
            if CONFIG_KEY not in meta:
                raise ValueError(f"{onnx_model}: ONNX file without a {CONFIG_KEY!r} metadata entry; "
                                 f"export it with 'hyperface export'")
            config = ModelConfig.from_dict(json.loads(meta[CONFIG_KEY]))
        self.config = config
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        missing = [t for t in config.tasks if t not in self.output_names]
        if missing:
            raise ValueError(f"ONNX model lacks outputs for task(s) {missing}; it has {self.output_names}")

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        arrays = self.session.run(self.output_names, {self.input_name: x.detach().cpu().float().numpy()})
        return {k: torch.from_numpy(v).float().to(self.device) for k, v in zip(self.output_names, arrays)}


def load_network(weights: str | Path | HyperFaceModel, backend: str = "auto", device: str = "cpu",
                 batch_size: int = 64, threads: int | None = None) -> Network:
    """A :class:`Network` from a weights file (safetensors; ``.onnx`` for the onnx backend) or a model.

    ``backend``: ``auto`` | ``torch`` | ``onnx`` (:func:`~hyperface.onnx_io.resolve_backend`).
    ``threads`` sets onnxruntime's intra-op threads (default: its own choice); PyTorch's thread count
    is process-wide and left to the caller (:class:`~hyperface.inference.analyzer.FaceAnalyzer` sets it).
    """
    is_onnx_file = isinstance(weights, (str, Path)) and Path(weights).suffix == ".onnx"
    if is_onnx_file and backend == "torch":
        raise ValueError(f"{weights}: an ONNX file needs backend='onnx' (or 'auto')")
    backend = resolve_backend("onnx" if is_onnx_file else backend, str(device))
    if is_onnx_file:
        return OnnxNetwork(weights, device=device, batch_size=batch_size, threads=threads)
    if isinstance(weights, HyperFaceModel):
        model = weights
    else:
        from hyperface.models.weights import load_model

        model = load_model(weights)
    if backend == "torch":
        return TorchNetwork(model, device=device, batch_size=batch_size)
    from hyperface.export import onnx_bytes

    return OnnxNetwork(onnx_bytes(model), config=model.config, device=device, batch_size=batch_size, threads=threads)
