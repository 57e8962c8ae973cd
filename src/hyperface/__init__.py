"""hyperface: multi-task face analysis (detection, landmarks, visibility, head pose, gender)."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.21.0"

# Exports resolved on first use, so `import hyperface` (and `hyperface --help`) does not import torch.
_LAZY_EXPORTS: dict[str, str] = {
    "create_model": "hyperface.models",
    "list_models": "hyperface.models",
    "FaceAnalyzer": "hyperface.inference",
    "Face": "hyperface.inference",
}

__all__ = ["__version__", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hyperface' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
