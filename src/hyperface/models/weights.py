"""Weights files: safetensors carrying their :class:`ModelConfig`, and loading of pretrained trunks.

A hyperface weights file is a safetensors file whose metadata holds the model config as JSON under
``"hyperface_config"``; :func:`load_model` rebuilds the network from that record alone. Other
files (torchvision ``.pth`` state dicts, plain safetensors) only feed :func:`read_state_dict` for
trunk initialisation, where the caller names what to copy. Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from hyperface import fileio
from hyperface.models.config import CONFIG_KEY, ModelConfig
from hyperface.models.heads import HyperFaceModel

__all__ = [
    "CONFIG_KEY",
    "save_weights",
    "load_model",
    "load_weights_into",
    "read_config",
    "read_state_dict",
    "imagenet_state_dict",
    "copy_tensors",
]

log = logging.getLogger(__name__)

_DOWNLOAD_TIMEOUT_S = 60.0
_MAX_LISTED = 12


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def save_weights(model: HyperFaceModel, path: str | os.PathLike) -> Path:
    """Write ``model``'s state dict and config to ``path`` (safetensors), atomically."""
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError(f"{type(model).__name__} has no ModelConfig in .config; only hyperface models can be saved")
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    from hyperface import __version__

    metadata = {"format": "pt", CONFIG_KEY: config.to_json(), "hyperface_version": __version__}
    path.parent.mkdir(parents=True, exist_ok=True)
    return fileio.write_safetensors(path, tensors, metadata)


def _open_safetensors(path: Path, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    return tensors, metadata


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The :class:`ModelConfig` stored in a hyperface weights file (the tensors are not read)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    if CONFIG_KEY not in metadata:
        raise ValueError(f"{path}: not a hyperface weights file (no {CONFIG_KEY!r} in its metadata); "
                         f"build the model with create_model and use load_weights_into")
    try:
        return ModelConfig.from_json(metadata[CONFIG_KEY])
    except ValueError as exc:
        raise ValueError(f"{path}: invalid model config: {exc}") from None


def _device_str(map_location: torch.device | str | None) -> str:
    return "cpu" if map_location is None else str(torch.device(map_location))


def _fit_error(arch: str, path: Path, metadata: Mapping[str, str], expected: Mapping[str, tuple[int, ...]],
               found: Mapping[str, tuple[int, ...]]) -> ValueError | None:
    """``ValueError("weights do not fit architecture X: ...")`` listing the missing, unexpected and
    mismatched-shape keys of the file's tensor shapes ``found`` against the model's ``expected``; None if all fit."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(f"{k} (file {tuple(found[k])} vs model {tuple(expected[k])})"
                        for k in set(expected) & set(found) if tuple(found[k]) != tuple(expected[k]))
    if not (missing or unexpected or mismatched):
        return None
    parts = []
    if CONFIG_KEY in metadata:
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            saved = json.loads(metadata[CONFIG_KEY])
            parts.append(f"the file holds {saved.get('arch')!r} weights "
                         f"(tasks {saved.get('tasks')}, {saved.get('num_points')} points, "
                         f"arch_kwargs {saved.get('arch_kwargs')})")
    if missing:
        parts.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_listing(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches: {_listing(mismatched)}")
    return ValueError(f"weights do not fit architecture {arch}: {path}: " + "; ".join(parts))


def load_weights_into(model: HyperFaceModel, path: str | os.PathLike,
                      map_location: torch.device | str | None = "cpu") -> HyperFaceModel:
    """Load a safetensors state dict into ``model``; every key and shape must match.

    A mismatch raises ``ValueError("weights do not fit architecture X: ...")`` listing the missing,
    unexpected and mismatched-shape keys (and the architecture the file was saved from).
    """
    path = Path(path)
    tensors, metadata = _open_safetensors(path, _device_str(map_location))
    arch = getattr(getattr(model, "config", None), "arch", type(model).__name__)
    error = _fit_error(arch, path, metadata, {k: tuple(v.shape) for k, v in model.state_dict().items()},
                       {k: tuple(v.shape) for k, v in tensors.items()})
    if error is not None:
        raise error
    _check_finite(tensors, path)
    model.load_state_dict(tensors, strict=True)
    return model


def _check_finite(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse weights with NaN or infinite values (a diverged run): such a model silently finds nothing."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path}: non-finite values (NaN or inf) in tensor(s) {_listing(sorted(bad))}; "
                         f"the weights are damaged or come from a diverged training run")


def _file_shapes(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """(tensor name -> shape, metadata) from a safetensors header: no tensor data is read."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None


def _check_network_fits(config: ModelConfig, path: Path) -> None:
    """Refuse a file whose metadata asks for a network its tensors do not hold, before building it.

    The network is built on the ``meta`` device (shapes only, no memory) and its state dict shapes
    compared with the file's header, so a 67 KB file whose config asks for a 2,000,000-wide layer is
    a clear error instead of gigabytes allocated: the real network is never larger than the file.
    """
    from hyperface.models.registry import create_model_from_config

    try:
        with torch.device("meta"):
            skeleton = create_model_from_config(config)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    found, metadata = _file_shapes(path)
    error = _fit_error(config.arch, path, metadata, {k: tuple(v.shape) for k, v in skeleton.state_dict().items()},
                       found)
    if error is not None:
        raise error


def load_model(path: str | os.PathLike, map_location: torch.device | str | None = "cpu") -> HyperFaceModel:
    """Rebuild the model stored in a hyperface weights file, in eval mode, on ``map_location``.

    The layer shapes the stored config implies are checked against the file's tensors before the
    network is built, so memory is bounded by the file, whatever its metadata asks for.
    """
    from hyperface.models.registry import create_model_from_config

    path = Path(path)
    config = read_config(path)
    _check_network_fits(config, path)
    model = create_model_from_config(config)
    load_weights_into(model, path, map_location="cpu")
    return model.to(_device_str(map_location)).eval()


# --------------------------------------------------------------------------- pretrained trunks


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``.pth``/``.pt`` state dict (``weights_only=True``).

    A ``.pth`` holding ``{"state_dict": ...}`` or ``{"model": ...}`` is unwrapped.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        return _open_safetensors(path)[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or pickled-object files
        raise ValueError(f"{path}: cannot read as a state dict with torch.load(weights_only=True) ({exc})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state dict (a mapping of names to tensors)")
    return dict(obj)


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Bound urllib's connect/read waits (torch.hub sets none) so a firewalled download fails, not hangs."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds if previous is None else previous)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def imagenet_state_dict(weights: Any) -> dict[str, torch.Tensor]:
    """The state dict of a torchvision weights enum member, downloaded into the torch hub cache.

    Without network this raises a RuntimeError saying which file to fetch and how to pass it.
    """
    filename = os.path.basename(weights.url)
    try:
        with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
            return weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as exc:  # urllib's URLError is an OSError
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise RuntimeError(
            f"could not download torchvision's ImageNet weights {weights} from {weights.url} ({exc}). "
            f"Without network: fetch that file on another machine and pass its path as "
            f"pretrained_trunk='/path/to/{filename}', or copy it to {cache}/{filename}") from exc


def copy_tensors(model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str, hint: str = "") -> list[str]:
    """Copy ``tensors`` (keyed by ``model``'s state-dict names) into ``model``; all or nothing.

    Unknown target keys or shape mismatches raise a ValueError naming each one, ``source`` and
    ``hint`` (what to do instead). Returns the copied keys.
    """
    own = model.state_dict()
    unknown = sorted(k for k in tensors if k not in own)
    mismatched = sorted(f"{k} (source {tuple(v.shape)} vs model {tuple(own[k].shape)})"
                        for k, v in tensors.items() if k in own and v.shape != own[k].shape)
    if unknown or mismatched:
        arch = getattr(getattr(model, "config", None), "arch", type(model).__name__)
        parts = ([f"no such layers: {_listing(unknown)}"] if unknown else []) + \
                ([f"shape mismatches: {_listing(mismatched)}"] if mismatched else [])
        raise ValueError(f"cannot initialise {arch} from {source}: " + "; ".join(parts) + (f". {hint}" if hint else ""))
    with torch.no_grad():
        for k, v in tensors.items():
            own[k].copy_(v)
    arch = getattr(getattr(model, "config", None), "arch", type(model).__name__)
    log.info("initialised %d tensors of %s from %s", len(tensors), arch, source)
    return sorted(tensors)
