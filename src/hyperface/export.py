"""ONNX export of hyperface networks and of whole pipelines, checked against PyTorch (after timm's
``utils/onnx.py``). Needs PyTorch and ``onnx`` (``pip install "hyperface[train]"``).

Each network is exported behind the pixel contract of :mod:`hyperface.models.deploy`: the graph takes
uint8 RGB ``pixels`` (N, H, W, 3), normalises them itself and answers with the outputs named by
:func:`hyperface.runtime.network_io` (a dynamic batch axis for crop networks; dynamic height and
width for whole-image networks). Its :class:`~hyperface.models.config.ModelConfig` and
:class:`~hyperface.runtime.NetworkIO` are stored in the ONNX metadata, so the file is all that
:class:`hyperface.runtime.Runtime` needs, without PyTorch.

Files are written by PyTorch's ``torch.export``-based exporter (``dynamo=True``). Networks exported in
memory at run time (a weights file analysed with ``backend="onnx"``) use the TorchScript exporter
while PyTorch still has it (about 0.1-0.3 s a network against 2-16 s), else the same ``torch.export``
one. :func:`export_pipeline` writes every network an analyzer uses and the manifest that names them
(:mod:`hyperface.inference.bundle`); ``FaceAnalyzer(weights=FOLDER)`` then gives the same faces.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from hyperface import fileio
from hyperface.models.config import CONFIG_KEY
from hyperface.models.deploy import Deployed, deployable, example_pixels
from hyperface.runtime import IO_KEY, RuntimeOptions, load_runtime

__all__ = ["OPSET", "onnx_bytes", "cached_onnx", "check_onnx", "export_onnx", "export_pipeline"]

log = logging.getLogger(__name__)

#: ONNX opset of every export.
OPSET = 18
_CACHE: dict[str, bytes] = {}  # content hash -> ONNX bytes (see cached_onnx)
_CACHE_SIZE = 16
# PyTorch's exporters keep global state ("GLOBALS.in_onnx_export"): one export at a time per process
_EXPORTING = threading.Lock()


def _dynamic(module: Deployed, dynamo: bool):
    io_ = module.io
    if io_.kind == "crops":
        if dynamo:
            return {"dynamic_shapes": ({0: torch.export.Dim("batch", min=1)},)}
        axes = {"pixels": {0: "batch"}, **{o: {0: "batch"} for o in io_.outputs}}
        return {"dynamic_axes": axes}
    if dynamo:
        if io_.align > 1:
            h = io_.align * torch.export.Dim("rows", min=1)
            w = io_.align * torch.export.Dim("columns", min=1)
        else:
            h, w = torch.export.Dim("height", min=io_.align), torch.export.Dim("width", min=io_.align)
        return {"dynamic_shapes": ({1: h, 2: w},)}
    return {"dynamic_axes": {"pixels": {1: "height", 2: "width"}}}


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """The exporters' INFO chatter off for a block (they log each optimisation pass)."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def onnx_bytes(model: torch.nn.Module, opset: int = OPSET, dynamo: bool = True) -> bytes:
    """``model`` behind the pixel contract, serialised as ONNX with its config and IO in the metadata."""
    import onnx

    from hyperface import __version__

    module = deployable(model.eval().cpu())
    example = (example_pixels(module.io),)
    names = {"input_names": ["pixels"], "output_names": list(module.io.outputs)}
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings(), _quiet("onnxscript", "onnx_ir", "torch.onnx"):
        warnings.simplefilter("ignore")  # the exporters' progress notes and deprecations, not the user's business
        if dynamo:
            program = torch.onnx.export(module, example, opset_version=opset, dynamo=True, verbose=False,
                                        **names, **_dynamic(module, True))
            program.save(buf)
        else:
            torch.onnx.export(module, example, buf, opset_version=opset, dynamo=False, **names,
                              **_dynamic(module, False))
    proto = onnx.load_from_string(buf.getvalue())
    del proto.metadata_props[:]
    for key, value in ((CONFIG_KEY, module.config.to_json()), (IO_KEY, module.io.to_json()),
                       ("hyperface_version", __version__)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "hyperface"
    return proto.SerializeToString()


def cached_onnx(model: torch.nn.Module) -> bytes:
    """:func:`onnx_bytes` for running ``model`` with onnxruntime now, once per process per network content.

    Keyed by a hash of the class, config and tensors, so equal networks loaded twice share one export;
    the newest 16 are kept. Uses the fast TorchScript exporter while PyTorch has it.
    """
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}|{model.config.to_json()}".encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    key = h.hexdigest()
    with _EXPORTING:
        if key not in _CACHE:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            try:
                _CACHE[key] = onnx_bytes(model, dynamo=False)
            except Exception as exc:  # a PyTorch without the TorchScript exporter, or a graph it cannot trace
                log.debug("TorchScript ONNX export failed (%s); using torch.export", exc)
                _CACHE[key] = onnx_bytes(model, dynamo=True)
        return _CACHE[key]


def check_onnx(model: torch.nn.Module, onnx_model: bytes | str | os.PathLike, seed: int = 0) -> dict[str, float]:
    """Largest absolute difference per output between PyTorch and onnxruntime on random pixels.

    Crop networks run batches of 1 and 3 (the dynamic batch axis); whole-image networks two image sizes.
    """
    module = deployable(model.eval().cpu())
    runtime = load_runtime(onnx_model if isinstance(onnx_model, bytes) else Path(onnx_model), RuntimeOptions("onnx"))
    rng = np.random.default_rng(seed)
    io_ = module.io
    if io_.kind == "crops":
        shapes = [(b, io_.size, io_.size, 3) for b in (1, 3)]
    else:
        a = max(io_.align, 16)
        shapes = [(1, 4 * a, 5 * a, 3), (1, 3 * a, 2 * a, 3)]
    diffs = dict.fromkeys(io_.outputs, 0.0)
    for shape in shapes:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        with torch.no_grad():
            ref = module(torch.from_numpy(x))
        got = runtime(x)
        for name, r in zip(io_.outputs, ref):
            if r.numel():
                diffs[name] = max(diffs[name], float(np.max(np.abs(got[name] - r.numpy()))))
    return diffs


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, opset: int = OPSET,
                check: bool = True) -> dict[str, float]:
    """Write ``model`` as ONNX to ``path`` atomically; with ``check``, compare it with PyTorch.

    Returns the largest absolute difference per output (empty without ``check``).
    """
    path = Path(path)
    data = onnx_bytes(model, opset=opset)
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_path(path) as tmp:
        tmp.write_bytes(data)
        diffs = check_onnx(model, tmp) if check else {}
    return diffs


def export_pipeline(folder: str | os.PathLike, models: Mapping[str, torch.nn.Module],
                    weights: Mapping[str, str | os.PathLike] | None = None, check: bool = True,
                    opset: int = OPSET) -> dict[str, dict[str, float]]:
    """Write each network of ``models`` (role -> model; roles of :data:`hyperface.inference.bundle.ROLES`)
    to ``folder`` as ``<arch>.onnx`` (``<arch>-<role>.onnx`` for a second network of one architecture) and
    the manifest that names them; ``weights`` (role -> the
    safetensors file each came from) are copied beside them so the folder also runs with PyTorch.

    Returns the differences against PyTorch per role and output (empty dicts without ``check``).
    """
    from hyperface.inference.bundle import Bundle, NetworkFiles

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, NetworkFiles] = {}
    diffs: dict[str, dict[str, float]] = {}
    used: set[str] = set()

    def unique(stem: str, role: str, suffix: str) -> Path:
        """``stem + suffix`` in ``folder``, or ``stem-role + suffix`` when another role took that name (two
        networks of one architecture, such as stage two and its fine landmark network)."""
        name, n = stem + suffix, 1
        while name in used:
            name = f"{stem}-{role.replace('_', '-')}{'' if n == 1 else n}{suffix}"
            n += 1
        used.add(name)
        return folder / name

    for role, model in models.items():
        onnx_path = unique(model.config.arch, role, ".onnx")
        diffs[role] = export_onnx(model, onnx_path, opset=opset, check=check)
        weights_path = None
        if weights and role in weights:
            source = Path(weights[role])
            weights_path = unique(source.stem, role, source.suffix)
            if source.resolve() != weights_path.resolve():
                fileio.write_bytes(weights_path, source.read_bytes())
        files[role] = NetworkFiles(onnx=onnx_path, weights=weights_path)
    Bundle(folder, files).write()
    return diffs
