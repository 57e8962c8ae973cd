"""The one owner of the ONNX plumbing: opset, config metadata key, export to bytes, onnxruntime sessions.

Everything that exports a network or opens an onnxruntime session goes through here (the analyzer's
network, the ``fast`` and ``detector`` candidate sources, ``hyperface export``), so they agree on the
opset, on where a model's :class:`~hyperface.models.config.ModelConfig` is stored and on the session
settings. :func:`cached_export` keeps exports per process by content, so building many sources (or
analyzers) on the same network exports it once.
``onnx`` and ``onnxruntime`` are imported only when used (they are optional dependencies).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["CONFIG_KEY", "OPSET", "export_to_bytes", "cached_export", "session_options", "inference_session",
           "require_onnxruntime"]

#: Metadata key under which a model's config (JSON) is stored, in ONNX exports and safetensors weights alike.
CONFIG_KEY = "hyperface_config"
#: ONNX opset of every export.
OPSET = 17
_INSTALL_HINT = "pip install onnx onnxruntime (regular dependencies of hyperface)"
_EXPORTS: dict[str, bytes] = {}  # content hash -> ONNX bytes (see cached_export)
_MAX_EXPORTS = 16


def require_onnxruntime(what: str = "backend='onnx'") -> Any:
    """The ``onnxruntime`` module, or an ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"{what} needs onnxruntime: {_INSTALL_HINT}") from None
    return onnxruntime


#: Network runtimes: ``auto`` is onnxruntime where it imports and the device is the CPU, else PyTorch.
BACKENDS = ("auto", "torch", "onnx")


def resolve_backend(backend: str, device: str = "cpu", what: str = "backend") -> str:
    """``"torch"`` or ``"onnx"`` for a requested backend; ``"onnx"`` without onnxruntime is an ImportError.

    ``auto`` picks onnxruntime on the CPU (1.5-4x faster than PyTorch on the small inputs of this
    pipeline, ``benchmarks/analyze_speed.py``) and PyTorch elsewhere or when onnxruntime is missing.
    """
    if backend not in BACKENDS:
        raise ValueError(f"{what} must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "onnx":
        require_onnxruntime(f"{what}='onnx'")
        return "onnx"
    if backend == "auto" and str(device) == "cpu":
        try:
            require_onnxruntime()
            import onnx  # noqa: F401  (exports carry the model's config in ONNX metadata)
        except ImportError:
            return "torch"
        return "onnx"
    return "torch"


def export_to_bytes(module: torch.nn.Module, example: tuple[torch.Tensor, ...], input_names: Sequence[str],
                    output_names: Sequence[str], dynamic_axes: Mapping[str, Mapping[int, str]],
                    opset: int = OPSET, metadata: Mapping[str, str] | None = None,
                    producer: str | None = None) -> bytes:
    """``module`` (in eval mode, on the CPU) traced on ``example`` and serialised as ONNX.

    ``metadata`` entries are added to the model's ``metadata_props`` (e.g. ``{CONFIG_KEY: json}``).
    """
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, example, buf, input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()}, opset_version=opset,
                          dynamo=False)
    if not metadata and producer is None:
        return buf.getvalue()
    import onnx

    proto = onnx.load_from_string(buf.getvalue())
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    if producer is not None:
        proto.producer_name = producer
    return proto.SerializeToString()


def cached_export(module: torch.nn.Module, example: tuple[torch.Tensor, ...], input_names: Sequence[str],
                  output_names: Sequence[str], dynamic_axes: Mapping[str, Mapping[int, str]]) -> bytes:
    """:func:`export_to_bytes`, once per process for the same class, names and tensors (weights and buffers).

    Keyed by a hash of the content, not the object, so equal networks loaded twice share one export;
    the newest 16 exports are kept.
    """
    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    h = hashlib.sha256(f"{kind}|{list(input_names)}|{list(output_names)}|{dict(dynamic_axes)}".encode())
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    key = h.hexdigest()
    if key not in _EXPORTS:
        if len(_EXPORTS) >= _MAX_EXPORTS:
            _EXPORTS.pop(next(iter(_EXPORTS)))
        _EXPORTS[key] = export_to_bytes(module, example, input_names, output_names, dynamic_axes)
    return _EXPORTS[key]


def session_options(threads: int | None = None) -> Any:
    """onnxruntime session options shared by every session: quiet, no spinning, ``threads`` intra-op."""
    ort = require_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # No busy-waiting between runs: the pipeline alternates between several thread pools
    # (onnxruntime sessions, PyTorch, OpenCV), and spinning ones starve the others.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


def inference_session(source: bytes | str | Path, threads: int | None = None, cuda: bool = False) -> Any:
    """An onnxruntime session on a serialised model or a file (CUDA first when asked and available)."""
    ort = require_onnxruntime()
    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    model = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(model, session_options(threads), providers=providers)
