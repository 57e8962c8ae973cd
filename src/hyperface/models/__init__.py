"""Networks: a registry of HyperFace architectures, their configs, weights files and input transform.

Registered: ``hyperface-alexnet`` (the paper), ``hyperface-resnet``, ``hyperface-compact`` (CPU),
``rcnn-face`` (the stage-one face classifier whose conv layers initialise HyperFace) and the
``fast`` candidate networks of :mod:`hyperface.models.proposal`. Every model
maps a normalised ``(B, 3, S, S)`` batch to a dict of task outputs (see :mod:`hyperface.tasks`).
"""

from hyperface.models.complexity import count_macs, count_parameters
from hyperface.models.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig, default_point_set
from hyperface.models.heads import HyperFaceModel, TaskHeads
from hyperface.models.preprocess import model_transform, to_input_tensor
from hyperface.models.registry import (
    create_model,
    create_model_from_config,
    get_model_entry,
    list_models,
    model_info,
    register_model,
)
from hyperface.models.weights import load_model, load_weights_into, read_config, save_weights

# Architectures register themselves on import; keep these after the registry.
from hyperface.models import aligned, alexnet, compact, detector, proposal, rcnn, resnet  # noqa: E402,F401  isort: skip
from hyperface.models.rcnn import init_trunk_from_rcnn  # noqa: E402

__all__ = [
    "ModelConfig",
    "HyperFaceModel",
    "TaskHeads",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "default_point_set",
    "register_model",
    "create_model",
    "create_model_from_config",
    "get_model_entry",
    "list_models",
    "model_info",
    "count_parameters",
    "count_macs",
    "save_weights",
    "load_model",
    "load_weights_into",
    "read_config",
    "to_input_tensor",
    "model_transform",
    "init_trunk_from_rcnn",
]
