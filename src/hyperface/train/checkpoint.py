"""Checkpoints: weights in safetensors (self-describing, via the models package), training state apart.

For a tag (``last`` or ``best``) a stage folder holds ``TAG.safetensors`` (the model and its
:class:`~hyperface.models.ModelConfig`, loadable alone with :func:`hyperface.models.load_model`) and,
for ``last``, ``last.state.pt``: optimiser, scheduler, grad scaler, learned loss weights, epoch, step,
position in the epoch, running sums of the epoch, best metric, the run's config and every process's
RNG states. The state holds only tensors and plain values and is read with
``torch.load(weights_only=True)``. Both files are written to a temporary name and renamed; the
weights carry the step in their metadata, so a crash between the two renames is detected on resume
rather than silently mixing two steps.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperface.models import HyperFaceModel, load_weights_into, read_config, save_weights

__all__ = ["rng_state", "set_rng_state", "save_checkpoint", "load_checkpoint", "write_json", "CheckpointError"]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from; the message names the file."""


def rng_state() -> dict[str, Any]:
    """This process's torch (CPU and CUDA), numpy and Python RNG states, as tensors and plain values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_json(path: str | Path, data: Any) -> None:
    """JSON to a temporary file, then renamed into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _stamp(model: HyperFaceModel, info: dict[str, Any]) -> None:
    model.config.meta["training"] = dict(info)


def save_checkpoint(folder: str | Path, tag: str, model: HyperFaceModel, state: dict[str, Any] | None,
                    info: dict[str, Any]) -> Path:
    """Write ``TAG.safetensors`` (model, with ``info`` such as run/stage/epoch/step in its metadata)
    and, when ``state`` is given, ``TAG.state.pt``; each atomically. Returns the weights path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _stamp(model, info)
    weights = save_weights(model, folder / f"{tag}.safetensors")
    if state is not None:
        state = dict(state, info=dict(info))
        target = folder / f"{tag}.state.pt"
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            torch.save(state, tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    return weights


def load_checkpoint(folder: str | Path, tag: str, model: HyperFaceModel,
                    map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Load ``TAG.safetensors`` into ``model`` and return ``TAG.state.pt``'s state.

    A state whose step differs from the weights' (an interrupted save) is a :class:`CheckpointError`.
    """
    folder = Path(folder)
    weights, state_path = folder / f"{tag}.safetensors", folder / f"{tag}.state.pt"
    if not state_path.is_file() or not weights.is_file():
        raise CheckpointError(f"{folder}: no {tag}.safetensors + {tag}.state.pt to resume from")
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise CheckpointError(f"{state_path}: cannot read training state ({exc})") from None
    stored = read_config(weights).meta.get("training", {})
    if stored.get("step") != state["info"].get("step"):
        raise CheckpointError(f"{folder}: {weights.name} is from step {stored.get('step')} but {state_path.name} "
                              f"from step {state['info'].get('step')} (interrupted save); cannot resume exactly")
    load_weights_into(model, weights, map_location=map_location)
    _stamp(model, stored)
    return state
