"""Networks: a registry of HyperFace architectures, their configs, weights files and input transform.

Registered: ``hyperface-alexnet`` (the paper), ``hyperface-resnet``, ``hyperface-compact`` (CPU),
``hyperface-aligned`` (stage two), ``rcnn-face`` (the stage-one face classifier whose conv layers
initialise HyperFace), the ``fast`` candidate networks of :mod:`hyperface.models.proposal` and the
single-pass detector. Every model maps a normalised ``(B, 3, S, S)`` batch to a dict of task outputs
(see :mod:`hyperface.tasks`).

The networks need PyTorch (``pip install "hyperface[train]"``); :mod:`hyperface.models.config` and
:mod:`hyperface.models.geometry` do not, so this package imports its PyTorch parts on first use of
one of the names below (an inference install reads configs without ever importing torch).
"""

from __future__ import annotations

import importlib
from typing import Any

from hyperface.models.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, default_point_set

# name -> module that defines it (imported on first use)
_TORCH_EXPORTS: dict[str, str] = {
    "HyperFaceModel": "hyperface.models.heads",
    "TaskHeads": "hyperface.models.heads",
    "count_macs": "hyperface.models.complexity",
    "count_parameters": "hyperface.models.complexity",
    "model_transform": "hyperface.models.preprocess",
    "to_input_tensor": "hyperface.models.preprocess",
    "create_model": "hyperface.models.registry",
    "create_model_from_config": "hyperface.models.registry",
    "get_model_entry": "hyperface.models.registry",
    "list_models": "hyperface.models.registry",
    "model_info": "hyperface.models.registry",
    "register_model": "hyperface.models.registry",
    "load_model": "hyperface.models.weights",
    "load_weights_into": "hyperface.models.weights",
    "read_config": "hyperface.models.weights",
    "save_weights": "hyperface.models.weights",
    "init_trunk_from_rcnn": "hyperface.models.rcnn",
}

__all__ = ["ModelConfig", "IMAGENET_MEAN", "IMAGENET_STD", "default_point_set", *_TORCH_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _TORCH_EXPORTS:
        from hyperface.models.registry import register_architectures

        register_architectures()
        value = getattr(importlib.import_module(_TORCH_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hyperface.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_TORCH_EXPORTS))
