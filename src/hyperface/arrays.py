"""numpy arrays and torch tensors through one code path, without importing torch.

The metrics and geometry that evaluation (numpy; torch need not be installed) and training (tensors,
on any device) share take either. Whether a value is a tensor is read from ``sys.modules``: a tensor
can only exist once torch has been imported, so asking never imports it.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["is_tensor", "as_float_array", "namespace"]


def is_tensor(x: Any) -> bool:
    """True for a torch tensor; never imports torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def as_float_array(x: Any) -> Any:
    """A tensor unchanged (its device and dtype kept); anything else as a float64 numpy array."""
    return x if is_tensor(x) else np.asarray(x, dtype=np.float64)


def namespace(x: Any) -> ModuleType:
    """The module whose functions (``where``, ``isfinite`` ...) apply to ``x``: torch for a tensor, else numpy."""
    return sys.modules["torch"] if is_tensor(x) else np
