"""Checkpoints: weights in safetensors (self-describing, via the models package), training state apart,
the two written as one unit.

A stage folder holds ``checkpoints/step-SSSSSSSSS-N/`` folders, each with ``model.safetensors`` (the
model and its :class:`~hyperface.models.ModelConfig`, loadable alone with
:func:`hyperface.models.load_model`) and ``state.pt``: optimiser, scheduler, grad scaler, learned
loss weights, epoch, step, position in the epoch, running sums of the epoch, best metric, the run's
config and every process's RNG states (only tensors and plain values, read with
``torch.load(weights_only=True)``). A checkpoint folder is written in full under a temporary name
and renamed into place (:func:`hyperface.fileio.atomic_directory`), so it exists complete or not at
all: a kill in the middle leaves the previous checkpoint and at most a hidden ``.step-*.tmp`` folder,
which the next save removes. Resume takes the newest complete checkpoint (:func:`find_checkpoint`);
the two newest are kept. ``last.safetensors`` beside them is the newest checkpoint's weights (a hard
link where the filesystem allows) for users; resume never reads it. ``best.safetensors`` is written
by :func:`save_best`. Folders from before this layout (``last.safetensors`` + ``last.state.pt``) still
resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyperface import fileio
from hyperface.models import HyperFaceModel, load_weights_into, read_config, save_weights

__all__ = ["rng_state", "set_rng_state", "save_checkpoint", "save_best", "find_checkpoint", "restore_weights",
           "restore_training",
           "Checkpoint", "CheckpointError", "CHECKPOINTS_DIR"]

log = logging.getLogger("hyperface.train")

CHECKPOINTS_DIR = "checkpoints"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"
KEEP = 2  # complete checkpoints kept: the newest and one to fall back on
_NAME = re.compile(r"^step-(\d+)-(\d+)$")


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


def _stamp(model: HyperFaceModel, info: dict[str, Any]) -> None:
    model.config.meta["training"] = dict(info)


@contextlib.contextmanager
def _writing(what: Path, kept: str) -> Iterator[None]:
    """A failed write (disk full, no permission) as a one-line :class:`CheckpointError` naming ``what`` and
    saying what is ``kept``; the atomic writes below leave no partial file behind."""
    try:
        yield
    except OSError as exc:
        raise CheckpointError(f"{what}: cannot write ({exc.strerror or exc}); {kept}; free some space (or fix "
                              f"the folder's permissions) and resume the run from it") from None


def save_best(folder: str | Path, model: HyperFaceModel, info: dict[str, Any]) -> Path:
    """``best.safetensors`` (atomically), with ``info`` (run, stage, epoch, step, metric) in its metadata."""
    _stamp(model, info)
    path = Path(folder) / "best.safetensors"
    with _writing(path, "the previous best weights are kept"):
        return save_weights(model, path)


def _write_state(path: Path, state: dict[str, Any]) -> None:
    # Through a Python file, so that a full disk is an OSError (ENOSPC), not torch's RuntimeError.
    with open(path, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())


def _checkpoint_dirs(root: Path) -> list[tuple[tuple[int, int], Path]]:
    """Complete checkpoint folders (by name: temporary ones are hidden) as ((step, n), path), oldest first."""
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = _NAME.match(p.name)
            if m and p.is_dir():
                found.append(((int(m[1]), int(m[2])), p))
    return sorted(found)


def save_checkpoint(folder: str | Path, model: HyperFaceModel, state: dict[str, Any], info: dict[str, Any]) -> Path:
    """Write a checkpoint of step ``info["step"]`` (weights with ``info`` in their metadata, and
    ``state``) as one folder renamed into place; then point ``last.safetensors`` at it and drop the
    older checkpoints and any temporary folder a killed save left. Returns the checkpoint folder."""
    folder = Path(folder)
    root = folder / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    step = int(info["step"])
    n = 1 + max((key[1] for key, _ in _checkpoint_dirs(root) if key[0] == step), default=-1)
    target = root / f"step-{step:09d}-{n}"
    _stamp(model, info)
    with _writing(target, "the previous checkpoint is kept"):
        with fileio.atomic_directory(target) as tmp:
            save_weights(model, tmp / WEIGHTS_FILE)
            _write_state(tmp / STATE_FILE, dict(state, info=dict(info)))
        _publish(target / WEIGHTS_FILE, folder / "last.safetensors")
    (folder / "last.state.pt").unlink(missing_ok=True)  # the old layout's state, now out of date
    for _, old in _checkpoint_dirs(root)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    for stray in root.glob(".step-*.tmp"):
        shutil.rmtree(stray, ignore_errors=True)
    return target


def _publish(src: Path, dst: Path) -> None:
    """``dst`` becomes (atomically) a hard link to ``src``, or a copy where links are not possible."""
    with fileio.atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


@dataclass
class Checkpoint:
    """A complete checkpoint: its weights file and its training state."""

    weights: Path
    state: dict[str, Any]


def _read(weights: Path, state_path: Path) -> Checkpoint:
    if not state_path.is_file() or not weights.is_file():
        raise CheckpointError(f"{weights.parent}: no {weights.name} + {state_path.name}")
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        stored = read_config(weights).meta.get("training", {})
    except Exception as exc:  # torch and safetensors raise several types for a damaged file
        raise CheckpointError(f"{weights.parent}: cannot read the checkpoint ({exc})") from None
    if stored.get("step") != state["info"].get("step"):
        raise CheckpointError(f"{weights.parent}: {weights.name} is from step {stored.get('step')} but "
                              f"{state_path.name} from step {state['info'].get('step')} (interrupted save)")
    return Checkpoint(weights, state)


def find_checkpoint(folder: str | Path) -> Checkpoint | None:
    """The newest complete, readable checkpoint of a stage folder; None when it has none at all.

    A damaged checkpoint is skipped with a warning (the one before it is used); when every one is
    damaged that is a :class:`CheckpointError` naming them.
    """
    folder = Path(folder)
    candidates = [(p / WEIGHTS_FILE, p / STATE_FILE) for _, p in reversed(_checkpoint_dirs(folder / CHECKPOINTS_DIR))]
    if (folder / "last.state.pt").is_file():  # written before checkpoint folders existed
        candidates.append((folder / "last.safetensors", folder / "last.state.pt"))
    problems = []
    for weights, state in candidates:
        try:
            return _read(weights, state)
        except CheckpointError as exc:
            log.warning("skipping a damaged checkpoint: %s", exc)
            problems.append(str(exc))
    if problems:
        raise CheckpointError("no usable checkpoint to resume from: " + "; ".join(problems))
    return None


def restore_weights(checkpoint: Checkpoint, model: HyperFaceModel, map_location: torch.device | str = "cpu") -> None:
    """Load the checkpoint's weights into ``model`` (with their training metadata)."""
    load_weights_into(model, checkpoint.weights, map_location=map_location)
    _stamp(model, read_config(checkpoint.weights).meta.get("training", {}))


def restore_training(checkpoint: Checkpoint, model: HyperFaceModel, optimizer: torch.optim.Optimizer,
                     schedule: Any) -> int:
    """Load everything a step loop needs to go on from ``checkpoint`` (weights, optimiser, learning-rate
    schedule, the process's RNG states) into the objects given; returns the step it was saved at."""
    restore_weights(checkpoint, model)
    optimizer.load_state_dict(checkpoint.state["optimizer"])
    schedule.load_state_dict(checkpoint.state["schedule"])
    set_rng_state(checkpoint.state["rng"])
    return int(checkpoint.state["info"]["step"])
