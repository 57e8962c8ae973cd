"""One network behind one call: uint8 pixels in, named float arrays out, run by onnxruntime or PyTorch.

Every network of the pipeline (the detector, the ``fast`` cascade's two, stage one, stage two) is a
:class:`Runtime`. It owns the network's input contract, read from the network's own
:class:`~hyperface.models.config.ModelConfig` (normalisation, crop size, point set) and
:class:`NetworkIO` (crops or a whole image, output names), and it is the only place that knows which
engine runs the network: callers hand it uint8 RGB arrays ``(N, H, W, 3)`` and get numpy arrays.

* ``onnx``: an onnxruntime session on an ONNX file written by ``hyperface export`` (the bundled
  networks ship as such files). The graph itself takes the uint8 pixels and normalises them, so
  nothing is converted in Python. This module never imports torch, so an install with onnxruntime
  alone analyses images.
* ``torch``: the PyTorch network (a safetensors weights file or a model object), run by
  :class:`hyperface.models.deploy.TorchRunner` (BatchNorm folded, channels-last on a CPU; a GPU
  with ``device="cuda"``). Needs ``pip install "hyperface[train]"``.

``backend="auto"`` is onnxruntime on the CPU and PyTorch on a GPU. A weights file needs PyTorch to
run with either backend (with onnxruntime it is exported once per process, in memory); an ONNX file
runs only with onnxruntime.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hyperface.models.config import CONFIG_KEY, ModelConfig
from hyperface.models.geometry import DETECTOR_ALIGN, DETECTOR_STRIDES, REFINE_SIZE

__all__ = ["BACKENDS", "IO_KEY", "NetworkIO", "network_io", "RuntimeOptions", "Runtime", "load_runtime",
           "parse_device", "torch_available", "TORCH_HINT", "session_options", "SPIN_MICROSECONDS"]

#: Network engines: ``auto`` is onnxruntime on the CPU and PyTorch on a GPU.
BACKENDS = ("auto", "onnx", "torch")
#: ONNX metadata key of the :class:`NetworkIO` record (beside :data:`CONFIG_KEY`).
IO_KEY = "hyperface_io"
#: What to install for the PyTorch parts.
TORCH_HINT = 'pip install "hyperface[train]"'


def torch_available() -> bool:
    """True when PyTorch can be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


@dataclass(frozen=True)
class NetworkIO:
    """How a network is fed and what it answers.

    ``kind``: ``"crops"`` (a batch of ``size`` x ``size`` crops) or ``"image"`` (one whole image whose
    sides are multiples of ``align``); ``outputs``: the names of its outputs, in order.
    """

    kind: str
    outputs: tuple[str, ...]
    size: int | None = None
    align: int = 1

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "outputs": list(self.outputs), "size": self.size, "align": self.align})

    @classmethod
    def from_json(cls, text: str) -> NetworkIO:
        d = json.loads(text)
        return cls(kind=str(d["kind"]), outputs=tuple(str(o) for o in d["outputs"]),
                   size=None if d.get("size") is None else int(d["size"]), align=int(d.get("align", 1)))


def network_io(config: ModelConfig) -> NetworkIO:
    """The :class:`NetworkIO` of the architecture ``config`` describes.

    The detector answers per level a face probability ``face{s}`` (1, h, w) and box distances in
    pixels ``box{s}`` (1, 4, h, w), and with the landmarks task the five points' offsets in pixels from
    each cell ``points{s}`` (1, 10, h, w); the ``fast`` networks a face probability ``face`` and box offsets
    ``box`` (per window, or per crop); every HyperFace network its raw task outputs, named by task.
    """
    if config.arch == "hyperface-detector":
        kinds = ("face", "box", "points") if "landmarks" in config.tasks else ("face", "box")
        names = tuple(f"{kind}{s}" for s in DETECTOR_STRIDES for kind in kinds)
        return NetworkIO("image", names, align=DETECTOR_ALIGN)
    if config.arch == "hyperface-proposal":
        return NetworkIO("image", ("face", "box"))
    if config.arch == "hyperface-proposal-refine":
        return NetworkIO("crops", ("face", "box"), size=REFINE_SIZE)
    return NetworkIO("crops", tuple(config.tasks), size=config.input_size)


def parse_device(device: Any) -> str:
    """``device`` as ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; a ValueError naming the supported ones."""
    name = str(device).strip().lower()
    if name == "cpu" or name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise ValueError(f"device {device!r} is not supported: use 'cpu', 'cuda' or 'cuda:N' (a CUDA GPU)")


def _check_threads(threads: Any) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or int(threads) < 1:
        raise ValueError(f"threads must be a whole number >= 1 (or None: the runtime's choice), got {threads!r}")
    return int(threads)


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and how every network of a pipeline runs: ``backend`` (:data:`BACKENDS`), ``device``
    (``cpu``, ``cuda``, ``cuda:N``) and ``threads`` (intra-op threads of each onnxruntime session and
    PyTorch's process-wide count; None: the engines' own choice)."""

    backend: str = "auto"
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        object.__setattr__(self, "device", parse_device(self.device))
        object.__setattr__(self, "threads", _check_threads(self.threads))
        if self.backend == "torch" or (self.backend == "auto" and self.device != "cpu"):
            if not torch_available():
                what = "backend='torch'" if self.backend == "torch" else f"device={self.device!r}"
                raise ImportError(f"{what} needs PyTorch: {TORCH_HINT}")

    @property
    def engine(self) -> str:
        """``"onnx"`` or ``"torch"``: the engine ``backend`` resolves to on ``device``."""
        if self.backend == "auto":
            return "onnx" if self.device == "cpu" else "torch"
        return self.backend

    def torch_device(self):
        """The torch device, checked: a ValueError when this machine lacks it."""
        from hyperface.models.deploy import check_device

        return check_device(self.device)


#: How long (microseconds) an onnxruntime intra-op thread spins for more work before it sleeps. Threads
#: that never spin wake late for every parallel operator (the default call on the 640 x 480 test image:
#: 8.2-9.1 ms); threads that spin onnxruntime's default time starve the pipeline's other pools (9.6-9.9
#: ms); a short spin covers the gaps between one network's operators and no more (6.8-7.8 ms at 20-100
#: us, fresh processes; with both cores kept busy 50 us was the sweep's best, 16.6 ms against 22.3 never
#: spinning). ``benchmarks/analyze_speed.py`` times the never-spinning setting beside this one, quiet and busy.
SPIN_MICROSECONDS = 50
#: The first onnxruntime that reads ``session.intra_op.spin_duration_us``: an older one ignores the key and
#: would spin its default time (the slowest setting above), so there the threads never spin.
SPIN_DURATION_SINCE = (1, 27)


def _bounded_spin_supported() -> bool:
    import onnxruntime as ort

    parts = [int(p) for p in re.findall(r"\d+", ort.__version__)[:2]]
    return tuple(parts) >= SPIN_DURATION_SINCE


def session_options(threads: int | None = None, spin_us: int | None = None) -> Any:
    """onnxruntime session options shared by every session: quiet, ``threads`` intra-op threads that spin
    ``spin_us`` microseconds (None: :data:`SPIN_MICROSECONDS`; 0: never; never on an onnxruntime older
    than :data:`SPIN_DURATION_SINCE`, which cannot bound the spin) before they sleep."""
    import onnxruntime as ort

    spin = SPIN_MICROSECONDS if spin_us is None else int(spin_us)
    if spin > 0 and not _bounded_spin_supported():
        spin = 0
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin > 0 else "0")
    if spin > 0:
        opts.add_session_config_entry("session.intra_op.spin_duration_us", str(spin))
    if threads:
        opts.intra_op_num_threads = int(threads)
    return opts


class _Runner(Protocol):
    def __call__(self, pixels: np.ndarray) -> list[np.ndarray]: ...


class _OnnxRunner:
    """An onnxruntime session: pixels -> the outputs in ``names`` order."""

    def __init__(self, session: Any, names: tuple[str, ...], normalise: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.session = session
        self.input = session.get_inputs()[0].name
        self.names = list(names)
        self.normalise = normalise  # (mean, std) for exports that take normalised NCHW input (before v0.7)

    def __call__(self, pixels: np.ndarray) -> list[np.ndarray]:
        x: np.ndarray = pixels
        if self.normalise is not None:
            mean, std = self.normalise
            x = np.ascontiguousarray(((pixels.astype(np.float32) / 255.0 - mean) / std).transpose(0, 3, 1, 2))
        return self.session.run(self.names, {self.input: x})


def _onnx_session(source: bytes | Path, options: RuntimeOptions) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("the onnx backend needs onnxruntime: pip install onnxruntime (a dependency of "
                          "hyperface)") from None
    providers = ["CPUExecutionProvider"]
    if options.device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError(f"device {options.device!r}: this onnxruntime has no CUDA support (install "
                             f"onnxruntime-gpu, or use backend='torch')")
        index = options.device.partition(":")[2] or "0"
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))
    name = "the exported network" if isinstance(source, bytes) else str(source)
    try:
        return ort.InferenceSession(source if isinstance(source, bytes) else str(source),
                                    session_options(options.threads), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ValueError(f"{name}: onnxruntime cannot load it ({str(exc).strip().splitlines()[0]})") from None


def _check_graph(session: Any, config: ModelConfig, io: NetworkIO, name: str, legacy: bool) -> None:
    """The graph's input and outputs agree with its metadata (a ValueError naming the file otherwise)."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"{name}: a hyperface network has one input, this graph has {len(inputs)}")
    shape = inputs[0].shape
    channels = 1 if legacy else 3
    want = "(N, 3, S, S) float" if legacy else "(N, H, W, 3) uint8"
    if len(shape) != 4 or (isinstance(shape[channels], int) and shape[channels] != 3):
        raise ValueError(f"{name}: its metadata says {config.arch!r}, whose input is {want}, but the graph's "
                         f"input has shape {shape}")
    if io.kind == "crops" and io.size is not None:
        spatial = shape[2:] if legacy else shape[1:3]
        if any(isinstance(d, int) and d != io.size for d in spatial):
            raise ValueError(f"{name}: its metadata says {io.size} x {io.size} crops, the graph's input has "
                             f"shape {shape}")
    if not legacy and inputs[0].type != "tensor(uint8)":
        raise ValueError(f"{name}: the graph's input is {inputs[0].type}, a hyperface network takes tensor(uint8)")
    have = {o.name for o in session.get_outputs()}
    missing = [o for o in io.outputs if o not in have]
    if missing:
        raise ValueError(f"{name}: its metadata promises output(s) {missing} that the graph lacks (it has "
                         f"{sorted(have)}); export it again with 'hyperface export'")


class Runtime:
    """One network: ``runtime(pixels)`` -> ``{output name: float32 array}`` (see the module docstring).

    ``pixels``: uint8 RGB, ``(N, size, size, 3)`` crops for a ``crops`` network (fed in chunks of
    ``batch_size``; N may be 0) or ``(1, H, W, 3)`` with H and W multiples of ``io.align`` for an
    ``image`` network.
    """

    def __init__(self, config: ModelConfig, io: NetworkIO, runner: _Runner, engine: str, source: str,
                 batch_size: int = 64) -> None:
        self.config = config
        self.io = io
        self.engine = engine
        self.source = source
        self.batch_size = max(1, int(batch_size))
        self._run = runner
        self._empty: dict[str, np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"Runtime({self.config.arch!r}, engine={self.engine!r}, source={self.source!r})"

    @functools.cached_property
    def pad_value(self) -> np.ndarray:
        """The uint8 RGB colour closest to the one the network normalises to zero (its mean); read-only."""
        value = np.round(np.asarray(self.config.mean) * 255.0).astype(np.uint8)
        value.flags.writeable = False
        return value

    def _check(self, pixels: np.ndarray) -> None:
        if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[3] != 3:
            got = f"{pixels.dtype} {pixels.shape}" if isinstance(pixels, np.ndarray) else type(pixels).__name__
            raise ValueError(f"{self.config.arch} takes uint8 RGB pixels (N, H, W, 3), got {got}")
        if self.io.kind == "crops" and pixels.shape[1:3] != (self.io.size, self.io.size):
            raise ValueError(f"{self.config.arch} takes {self.io.size} x {self.io.size} crops, got {pixels.shape}")
        if self.io.kind == "image" and (pixels.shape[1] % self.io.align or pixels.shape[2] % self.io.align):
            raise ValueError(f"{self.config.arch} takes images whose sides are multiples of {self.io.align}, "
                             f"got {pixels.shape}")

    def __call__(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        self._check(pixels)
        n = len(pixels)
        if n == 0:
            if self._empty is None:
                probe = self._run(np.zeros((1, *pixels.shape[1:]), np.uint8))
                self._empty = {k: np.zeros((0, *v.shape[1:]), np.float32) for k, v in zip(self.io.outputs, probe)}
            return dict(self._empty)
        if self.io.kind == "image" or n <= self.batch_size:
            arrays = self._run(np.ascontiguousarray(pixels))
        else:
            parts = [self._run(np.ascontiguousarray(pixels[i: i + self.batch_size]))
                     for i in range(0, n, self.batch_size)]
            arrays = [np.concatenate(p) for p in zip(*parts)]
        return {k: np.asarray(v, dtype=np.float32) for k, v in zip(self.io.outputs, arrays)}


def _read_onnx(path: Path | bytes, options: RuntimeOptions, batch_size: int, name: str) -> Runtime:
    session = _onnx_session(path, options)
    meta = session.get_modelmeta().custom_metadata_map
    if CONFIG_KEY not in meta:
        raise ValueError(f"{name}: ONNX file without a {CONFIG_KEY!r} metadata entry; export it with "
                         f"'hyperface export'")
    try:
        config = ModelConfig.from_json(meta[CONFIG_KEY])
    except ValueError as exc:
        raise ValueError(f"{name}: its {CONFIG_KEY!r} metadata is not a valid model config ({exc})") from None
    legacy = IO_KEY not in meta  # exports before v0.7 took normalised (N, 3, S, S) crops of a HyperFace network
    io = network_io(config)
    if not legacy:
        try:
            io = NetworkIO.from_json(meta[IO_KEY])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{name}: its {IO_KEY!r} metadata is malformed ({exc})") from None
        if io != network_io(config):  # the pipeline feeds the network by its config (crop size, tasks)
            raise ValueError(f"{name}: its {IO_KEY!r} metadata ({io}) disagrees with its {CONFIG_KEY!r} metadata, "
                             f"which describes {network_io(config)}; export it again with 'hyperface export'")
    elif io.kind != "crops":
        raise ValueError(f"{name}: an ONNX {config.arch!r} without {IO_KEY!r} metadata; export it again with "
                         f"'hyperface export'")
    _check_graph(session, config, io, name, legacy)
    normalise = None
    if legacy:
        normalise = (np.asarray(config.mean, np.float32).reshape(1, 1, 1, 3),
                     np.asarray(config.std, np.float32).reshape(1, 1, 1, 3))
    runner = _OnnxRunner(session, io.outputs, normalise)
    return Runtime(config, io, runner, "onnx", name, batch_size)


def load_runtime(source: str | os.PathLike | bytes | Any, options: RuntimeOptions | None = None, *,
                 batch_size: int = 64, name: str | None = None) -> Runtime:
    """A :class:`Runtime` for ``source``: an ``.onnx`` file (or its bytes), a hyperface weights file
    (``.safetensors``; needs PyTorch) or a PyTorch model object (needs PyTorch).

    With ``options.engine == "onnx"`` a weights file or model is exported to ONNX in memory first
    (once per process per network, :func:`hyperface.export.cached_onnx`).
    """
    options = options or RuntimeOptions()
    if isinstance(source, bytes):
        return _read_onnx(source, options, batch_size, name or "the exported network")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        label = name or str(path)
        if not path.is_file():
            raise FileNotFoundError(f"{label}: network file not found")
        if path.suffix.lower() == ".onnx":
            if options.backend == "torch":
                raise ValueError(f"{label}: an ONNX file runs with backend='onnx' (or 'auto'), not 'torch'")
            if options.device != "cpu" and options.backend == "auto":
                options = RuntimeOptions("onnx", options.device, options.threads)
            return _read_onnx(path, options, batch_size, label)
        if not torch_available():
            raise ImportError(f"{label} is a PyTorch weights file: running it needs PyTorch ({TORCH_HINT}), or "
                              f"its ONNX export ('hyperface export' on a machine with PyTorch)")
        from hyperface.models.weights import load_model

        model = load_model(path)
    else:
        model, label = source, name or type(source).__name__
        if not torch_available():
            raise ImportError(f"a model object needs PyTorch: {TORCH_HINT}")
    from hyperface.models.deploy import TorchRunner, deployable

    if not hasattr(model, "config") or not isinstance(model.config, ModelConfig):
        raise TypeError(f"{label}: not a hyperface model (no ModelConfig in .config)")
    if options.engine == "onnx":
        from hyperface.export import cached_onnx

        return _read_onnx(cached_onnx(model), options, batch_size, label)
    module = deployable(model)
    return Runtime(model.config, module.io, TorchRunner(module, options.torch_device(), options.threads),
                   "torch", label, batch_size)
