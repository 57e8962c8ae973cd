"""Files shipped inside the package (``hyperface/assets``): default weights and the example photo.

Nothing is ever downloaded: a missing bundled file is an error that says which file and how to
pass another one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["ASSETS", "DEFAULT_WEIGHTS", "STAGE_TWO_WEIGHTS", "PROPOSAL_WEIGHTS", "REFINE_WEIGHTS", "DETECTOR_WEIGHTS",
           "EXAMPLE_IMAGE", "asset_path", "resolve_weights", "resolve_stage_two", "parse_model_spec"]

DEFAULT_WEIGHTS = "hyperface-compact.safetensors"  # the analyzer's network
STAGE_TWO_WEIGHTS = "hyperface-aligned.safetensors"  # the aligned-face network (stage two)
PROPOSAL_WEIGHTS = "hyperface-proposal.safetensors"  # the ``fast`` candidate stage 1
REFINE_WEIGHTS = "hyperface-proposal-refine.safetensors"  # the ``fast`` candidate stage 2
DETECTOR_WEIGHTS = "hyperface-detector.safetensors"  # the ``detector`` candidates (train-detector --out)
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


def resolve_stage_two(stage_two, bundled_stage_one: bool):
    """The stage-two weights (a path or model) ``FaceAnalyzer(stage_two=...)`` asks for, or None.

    ``"auto"``: the bundled stage two when the stage-one weights are the bundled ones too and the
    package ships it, else none; ``"bundled"``: the bundled one (an error when missing); ``None`` or
    ``"none"``: no stage two; anything else: a weights file (or a model object, returned as is).
    """
    if stage_two is None or (isinstance(stage_two, str) and stage_two == "none"):
        return None
    if isinstance(stage_two, str) and stage_two == "auto":
        path = _assets_dir() / STAGE_TWO_WEIGHTS
        return path if bundled_stage_one and path.is_file() else None
    if isinstance(stage_two, str) and stage_two == "bundled":
        return asset_path(STAGE_TWO_WEIGHTS)
    if isinstance(stage_two, (str, Path)):
        return resolve_weights(stage_two)
    return stage_two


def parse_model_spec(spec: str) -> tuple[str | None, str | None]:
    """A model named on a command line -> ``FaceAnalyzer``'s ``(weights, stage_two)``.

    ``bundled`` -> ``(None, "auto")`` (both bundled stages); ``A+B`` -> ``(A, B)`` (stage one A with
    stage two B); ``A`` -> ``(A, None)`` (stage-one weights alone, as before stage two existed).
    """
    if spec == "bundled":
        return None, "auto"
    first, plus, second = spec.partition("+")
    if not first or (plus and not second):
        raise ValueError(f"model {spec!r}: use 'bundled', STAGE1 or STAGE1+STAGE2 (weights files)")
    return first, (second if plus else None)
