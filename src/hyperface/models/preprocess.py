"""Crops to network input, built from a model's :class:`ModelConfig` so training and inference agree.

Crops arrive already resized to ``config.input_size`` (resizing belongs to whoever cuts the crop,
since it also maps the landmark coordinates); this module only converts and normalises them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from hyperface.models.config import ModelConfig

__all__ = ["to_input_tensor", "model_transform"]


def to_input_tensor(crops: np.ndarray | torch.Tensor, config: ModelConfig,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 RGB crops ``(N, S, S, 3)`` (or one ``(S, S, 3)``) -> float32 ``(N, 3, S, S)`` normalised.

    ``S`` must equal ``config.input_size``; the result is ``(crop / 255 - mean) / std``. With
    ``device`` the uint8 data is moved first (a quarter of the bytes of float32).
    """
    if isinstance(crops, np.ndarray):
        arr = np.ascontiguousarray(crops)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # torch wants writable memory
    else:
        t = crops
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"crops must be a numpy array or a torch tensor, got {type(crops).__name__}")
    if t.dtype != torch.uint8:
        raise ValueError(f"crops must be uint8 RGB (0..255), got dtype {t.dtype}")
    if t.ndim == 3:
        t = t.unsqueeze(0)
    s = config.input_size
    if t.ndim != 4 or tuple(t.shape[1:]) != (s, s, 3):
        raise ValueError(f"crops must have shape (N, {s}, {s}, 3) for {config.arch} (input_size {s}), "
                         f"got {tuple(t.shape)}")
    if device is not None:
        t = t.to(device, non_blocking=True)
    x = t.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    mean = torch.tensor(config.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).contiguous()


def model_transform(config: ModelConfig) -> Callable[..., torch.Tensor]:
    """A callable ``crops -> tensor`` bound to ``config``: the same as :func:`to_input_tensor`."""

    def transform(crops: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        return to_input_tensor(crops, config, device=device)

    return transform
