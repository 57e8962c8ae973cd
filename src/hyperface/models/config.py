"""The input contract a model carries with it: architecture, tasks, point set, input size, normalisation.

A :class:`ModelConfig` is stored inside every weights file (see :mod:`hyperface.models.weights`), so
a model is rebuilt from its file and its inputs are prepared from the same record, never guessed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hyperface.points import POINT_SETS, get_point_set
from hyperface.tasks import TASKS, validate_tasks

__all__ = [
    "CONFIG_KEY",
    "ModelConfig",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "default_point_set",
]

#: Metadata key under which a model's config (JSON) is stored, in safetensors weights and ONNX exports alike.
CONFIG_KEY = "hyperface_config"

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Point set implied by a landmark count when none is named.
_DEFAULT_POINT_SETS: dict[int, str] = {ps.num_points: name for name, ps in POINT_SETS.items()}


def default_point_set(num_points: int) -> str | None:
    """The named point set with ``num_points`` points (21 -> aflw21, 68 -> ibug68, 5 -> five), else None."""
    return _DEFAULT_POINT_SETS.get(int(num_points))


def _rgb_triple(name: str, value: Any, positive: bool) -> tuple[float, float, float]:
    try:
        triple = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"ModelConfig.{name} must be three numbers (R, G, B), got {value!r}") from None
    if len(triple) != 3 or not all(math.isfinite(v) for v in triple):
        raise ValueError(f"ModelConfig.{name} must be three finite numbers (R, G, B), got {value!r}")
    if positive and min(triple) <= 0:
        raise ValueError(f"ModelConfig.{name} must be positive, got {value!r}")
    return triple  # type: ignore[return-value]


def _check_json(name: str, value: dict) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"ModelConfig.{name} must be a dict, got {type(value).__name__}")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ModelConfig.{name} must hold JSON values only (str, number, bool, list, dict): "
                         f"{exc}") from None
    return json.loads(text)  # normalised (tuples -> lists) so a saved and a rebuilt config compare equal


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model and prepare its input.

    ``arch`` is a registered architecture name; ``arch_kwargs`` its keyword arguments (widths,
    depth, dropout...); ``input_size`` the side of the square RGB crop; ``mean``/``std`` the RGB
    normalisation applied to ``uint8 / 255``; ``meta`` free-form notes (licence, training data, trunk
    initialisation) that never change the network.
    """

    arch: str
    tasks: tuple[str, ...] = TASKS
    num_points: int = 21
    point_set: str | None = None
    input_size: int = 227
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or not self.arch:
            raise ValueError(f"ModelConfig.arch must be a non-empty string, got {self.arch!r}")
        if isinstance(self.tasks, str):
            raise ValueError(f"ModelConfig.tasks must be a list of task names, not the string {self.tasks!r}")
        self.tasks = validate_tasks(self.tasks)
        if isinstance(self.num_points, bool) or not isinstance(self.num_points, int) or self.num_points < 1:
            raise ValueError(f"ModelConfig.num_points must be a positive integer, got {self.num_points!r}")
        if self.point_set is None:
            self.point_set = default_point_set(self.num_points)
        else:
            ps = get_point_set(self.point_set)
            if ps.num_points != self.num_points:
                raise ValueError(f"point set {self.point_set!r} has {ps.num_points} points but num_points is "
                                 f"{self.num_points}")
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int) or self.input_size < 16:
            raise ValueError(f"ModelConfig.input_size must be an integer >= 16, got {self.input_size!r}")
        self.mean = _rgb_triple("mean", self.mean, positive=False)
        self.std = _rgb_triple("std", self.std, positive=True)
        self.arch_kwargs = _check_json("arch_kwargs", self.arch_kwargs)
        self.meta = _check_json("meta", self.meta)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples as lists)."""
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build and validate from :meth:`to_dict` output; unknown or missing keys are a ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"model config must be a dict, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown model config key(s) {unknown}; known: {known}")
        if "arch" not in data:
            raise ValueError("model config has no 'arch' (the registered architecture name)")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"model config is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def same_network(self, other: ModelConfig) -> bool:
        """True when both configs describe the same network and input (``meta`` ignored)."""
        a, b = self.to_dict(), other.to_dict()
        a.pop("meta"), b.pop("meta")
        return a == b
