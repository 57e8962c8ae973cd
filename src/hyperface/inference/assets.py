"""Files shipped inside the package (``hyperface/assets``): the bundled pipeline and the example photo.

The assets folder is a pipeline bundle (:mod:`hyperface.inference.bundle`): each network as ONNX
(what the analyzer runs, without PyTorch) beside its safetensors weights (what training and the
``torch`` backend use), named by ``manifest.json``. ``hyperface export --out src/hyperface/assets``
rebuilds the ONNX files from the weights and checks them against PyTorch. Nothing is ever
downloaded: a missing bundled file is an error that says which file and how to pass another one.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from hyperface.inference.bundle import Bundle, is_bundle

__all__ = ["ASSETS", "bundled", "BUNDLED_ROLES", "DEFAULT_WEIGHTS", "STAGE_TWO_WEIGHTS", "PROPOSAL_WEIGHTS",
           "REFINE_WEIGHTS", "DETECTOR_WEIGHTS", "POINTS_WEIGHTS", "FINE_WEIGHTS",
           "EXAMPLE_IMAGE", "asset_path", "resolve_weights", "parse_model_spec"]

DEFAULT_WEIGHTS = "hyperface-compact.safetensors"  # the analyzer's network
STAGE_TWO_WEIGHTS = "hyperface-aligned.safetensors"  # the aligned-face network (stage two)
PROPOSAL_WEIGHTS = "hyperface-proposal.safetensors"  # the ``fast`` candidate stage 1
REFINE_WEIGHTS = "hyperface-proposal-refine.safetensors"  # the ``fast`` candidate stage 2
DETECTOR_WEIGHTS = "hyperface-detector.safetensors"  # the ``detector`` candidates (train-detector --out)
POINTS_WEIGHTS = "hyperface-point-refiner.safetensors"  # the detector's point stage (train-point-refiner --out)
FINE_WEIGHTS = "hyperface-aligned-fine.safetensors"  # stage two's fine landmark network
EXAMPLE_IMAGE = "astronaut.jpg"  # public domain (NASA); see assets/astronaut.LICENSE.txt


#: The bundled weights file of each network role of the pipeline.
BUNDLED_ROLES = {"stage_one": DEFAULT_WEIGHTS, "stage_two": STAGE_TWO_WEIGHTS, "detector": DETECTOR_WEIGHTS,
                 "refine": REFINE_WEIGHTS, "proposal": PROPOSAL_WEIGHTS, "points": POINTS_WEIGHTS,
                 "fine": FINE_WEIGHTS}


def _assets_dir() -> Path:
    return Path(str(resources.files("hyperface") / "assets"))


ASSETS = _assets_dir()


@functools.lru_cache(maxsize=1)
def bundled() -> Bundle:
    """The bundled pipeline (read once per process); FileNotFoundError when the package lacks it."""
    return Bundle.read(_assets_dir())


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


def parse_model_spec(spec: str) -> tuple[str | None, str | None]:
    """A model named on a command line -> ``FaceAnalyzer``'s ``(weights, stage_two)``.

    ``bundled`` -> ``(None, "auto")`` (both bundled stages); a pipeline folder ``DIR`` (``hyperface export
    --out DIR``) -> ``(DIR, "auto")`` (its stages); ``A+B`` -> ``(A, B)`` (stage one A with stage two B);
    ``A`` -> ``(A, None)`` (stage-one weights alone, as before stage two existed).
    """
    if spec == "bundled":
        return None, "auto"
    if is_bundle(spec):
        return spec, "auto"
    first, plus, second = spec.partition("+")
    if not first or (plus and not second):
        raise ValueError(f"model {spec!r}: use 'bundled', STAGE1 or STAGE1+STAGE2 (weights files)")
    return first, (second if plus else None)
