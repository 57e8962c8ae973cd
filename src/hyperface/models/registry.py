"""Model registry and factory: architectures register themselves by name, ``create_model`` builds them.

After timm's ``_registry.py`` / ``_factory.py``: a decorator registers an entry point (a function
returning a :class:`~hyperface.models.heads.HyperFaceModel`), a duplicate name is an error, and an
unknown name is a ValueError that lists the known ones.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from hyperface.models.complexity import count_macs, count_parameters
from hyperface.models.config import ModelConfig
from hyperface.models.heads import HyperFaceModel
from hyperface.tasks import TASKS

__all__ = [
    "ModelEntry",
    "register_architectures",
    "register_model",
    "list_models",
    "get_model_entry",
    "create_model",
    "create_model_from_config",
    "model_info",
]


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: its name, entry point and one-line description."""

    name: str
    fn: Callable[..., HyperFaceModel]
    description: str

    @property
    def supported_tasks(self) -> tuple[str, ...]:
        """The tasks the architecture can output: its entry point's default ``tasks``."""
        p = inspect.signature(self.fn).parameters.get("tasks")
        return tuple(p.default) if p is not None and p.default is not inspect.Parameter.empty else TASKS

    @property
    def arch_kwargs(self) -> list[str]:
        """Names of the architecture-specific keyword arguments the entry point accepts."""
        common = {"tasks", "num_points", "point_set"}
        return [p for p in inspect.signature(self.fn).parameters if p not in common]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(fn: Callable[..., HyperFaceModel] | None = None, *, name: str | None = None):
    """Decorator registering an entry point; the name defaults to the function name with ``_`` -> ``-``.

    The entry point takes keyword arguments ``tasks``, ``num_points``, ``point_set`` and its own
    architecture arguments, and returns a model whose ``config.arch`` is the registered name. Its
    docstring's first line is the description shown by ``hyperface models``.
    """

    def decorate(f: Callable[..., HyperFaceModel]) -> Callable[..., HyperFaceModel]:
        model_name = name or f.__name__.replace("_", "-")
        if model_name in _REGISTRY:
            other = _REGISTRY[model_name].fn
            raise ValueError(f"model {model_name!r} is already registered (by {other.__module__}.{other.__qualname__})")
        doc = inspect.getdoc(f) or ""
        _REGISTRY[model_name] = ModelEntry(model_name, f, doc.splitlines()[0] if doc else "")
        return f

    return decorate(fn) if fn is not None else decorate


#: Modules whose entry points register themselves on import.
ARCHITECTURE_MODULES = ("aligned", "alexnet", "compact", "detector", "point_refiner", "proposal", "rcnn", "resnet")


def register_architectures() -> None:
    """Import every architecture module, so that their entry points are registered (idempotent)."""
    for module in ARCHITECTURE_MODULES:
        importlib.import_module(f"hyperface.models.{module}")


def list_models() -> list[str]:
    """Names of the registered architectures, sorted."""
    register_architectures()
    return sorted(_REGISTRY)


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; a ValueError lists the known names."""
    register_architectures()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def create_model(name: str, *, tasks: Sequence[str] = TASKS, num_points: int = 21, point_set: str | None = None,
                 pretrained_trunk: str | None = None, **arch_kwargs: Any) -> HyperFaceModel:
    """Build the registered architecture ``name``.

    ``tasks`` selects the output branches (an architecture that supports fewer tasks, such as
    ``rcnn-face``, narrows the default to what it supports, and rejects an explicit list it cannot
    serve); ``num_points``/``point_set`` size the landmark outputs; ``pretrained_trunk`` is
    ``"imagenet"`` (torchvision's weights, needs network) or a path to a weights file to initialise the
    trunk from. Other keyword arguments go to the architecture (e.g. ``depth=18``).
    """
    entry = get_model_entry(name)
    unknown = sorted(set(arch_kwargs) - set(entry.arch_kwargs))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown} for model {name!r}; "
                         f"accepted: {', '.join(entry.arch_kwargs) or 'none'}")
    kwargs: dict[str, Any] = dict(num_points=num_points, point_set=point_set, **arch_kwargs)
    if tasks is not TASKS:  # the default means "all the tasks this architecture supports"
        if isinstance(tasks, str):
            raise ValueError(f"tasks must be a list of task names, not the string {tasks!r}")
        kwargs["tasks"] = tuple(tasks)
    model = entry.fn(**kwargs)
    assert model.config.arch == name, f"entry point {name!r} built a model whose config says {model.config.arch!r}"
    if pretrained_trunk is not None:
        model.load_pretrained_trunk(pretrained_trunk)
    return model


def create_model_from_config(config: ModelConfig) -> HyperFaceModel:
    """Rebuild the network ``config`` describes (fresh weights), keeping its ``meta``.

    A config that the current code would build differently (e.g. an architecture argument whose
    default changed) is an error rather than a silently different network.
    """
    model = create_model(config.arch, tasks=config.tasks, num_points=config.num_points,
                         point_set=config.point_set, **config.arch_kwargs)
    if not model.config.same_network(config):
        raise ValueError(f"model config does not rebuild the same network: stored {config.to_dict()} but "
                         f"{config.arch!r} builds {model.config.to_dict()}")
    model.config.meta = dict(config.meta)
    return model


def model_info(name: str, **kwargs: Any) -> dict[str, Any]:
    """Name, parameters, MACs per crop, input size, tasks, points and description of an architecture.

    ``kwargs`` are those of :func:`create_model`. The model is built on the ``meta`` device, so
    this is fast and allocates no weights (``pretrained_trunk`` is ignored).
    """
    entry = get_model_entry(name)
    kwargs.pop("pretrained_trunk", None)
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    cfg = model.config
    return {
        "name": name,
        "params": count_parameters(model),
        "macs": count_macs(model),
        "input_size": cfg.input_size,
        "tasks": list(cfg.tasks),
        "num_points": cfg.num_points,
        "point_set": cfg.point_set,
        "arch_kwargs": dict(cfg.arch_kwargs),
        "description": entry.description,
    }
