"""Files shipped inside the package (``hyperface/assets``): default weights and the example photo.

Nothing is ever downloaded: a missing bundled file is an error that says which file and how to
pass another one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["ASSETS", "DEFAULT_WEIGHTS", "PROPOSAL_WEIGHTS", "REFINE_WEIGHTS", "EXAMPLE_IMAGE", "asset_path",
           "resolve_weights"]

DEFAULT_WEIGHTS = "hyperface-compact.safetensors"  # the analyzer's network
PROPOSAL_WEIGHTS = "hyperface-proposal.safetensors"  # the ``fast`` candidate stage 1
REFINE_WEIGHTS = "hyperface-proposal-refine.safetensors"  # the ``fast`` candidate stage 2
EXAMPLE_IMAGE = "astronaut.jpg"  # public domain (NASA); see assets/astronaut.LICENSE.txt


def _assets_dir() -> Path:
    return Path(str(resources.files("hyperface") / "assets"))


ASSETS = _assets_dir()


def asset_path(name: str) -> Path:
    """Path of a bundled asset; FileNotFoundError naming it when the package lacks it."""
    path = _assets_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"bundled file {path} is missing from this installation of hyperface "
                                f"(reinstall the package, or pass your own file)")
    return path


def resolve_weights(weights: str | Path | None, default: str = DEFAULT_WEIGHTS) -> Path:
    """``weights`` as a path, or the bundled ``default`` when None; a clear error when missing."""
    if weights is None:
        path = _assets_dir() / default
        if not path.is_file():
            raise FileNotFoundError(
                f"no weights given and the bundled default {path} is not in this installation; pass "
                f"weights='path/to/model.safetensors' (CLI: --weights PATH), a file written by 'hyperface train'")
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    return path
