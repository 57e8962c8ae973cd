"""A pipeline's networks as files: a folder with one ONNX file (and optionally its safetensors weights)
per role, named by ``manifest.json``.

The bundled model is such a folder (``hyperface/assets``), and so is what ``hyperface export --out DIR``
writes, so ``FaceAnalyzer(weights=DIR)`` runs an exported pipeline exactly as the bundled one. Roles:

* ``stage_one``: the HyperFace network on candidate crops (``hyperface-compact``);
* ``stage_two``: the aligned-face network (``hyperface-aligned``);
* ``detector``: the single-pass detector (the ``detector`` candidate source);
* ``refine``: the 24 x 24 re-scorer (``fast``'s second stage, the detector's second opinion);
* ``proposal``: the 16 x 16 window scorer (``fast``'s first stage);
* ``points``: the detector's point stage (five points from a crop of each found box).
* ``fine``: stage two's fine landmark network (each face again, aligned by stage two's own points).

With onnxruntime a role runs from its ``.onnx`` file; with PyTorch from its weights file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hyperface import fileio
from hyperface.runtime import TORCH_HINT, Runtime, RuntimeOptions, load_runtime, torch_available

__all__ = ["ROLES", "MANIFEST", "NetworkFiles", "Bundle", "is_bundle"]

ROLES = ("stage_one", "stage_two", "detector", "refine", "proposal", "points", "fine")
MANIFEST = "manifest.json"
_FORMAT = "hyperface-pipeline"


@dataclass(frozen=True)
class NetworkFiles:
    """One network's files: its ONNX export and/or its PyTorch weights (safetensors)."""

    onnx: Path | None = None
    weights: Path | None = None

    def pick(self, options: RuntimeOptions) -> Path:
        """The file the engine of ``options`` runs: the ONNX file for onnxruntime (the weights when there
        is none and PyTorch is here), the weights file for PyTorch."""
        if options.engine == "onnx" and self.onnx is not None:
            return self.onnx
        if self.weights is not None and (options.engine == "torch" or torch_available()):
            return self.weights
        have = self.onnx or self.weights
        if options.engine == "torch":
            raise ValueError(f"{have}: PyTorch needs the network's weights file (.safetensors), and this "
                             f"pipeline ships only its ONNX export; use backend='onnx'")
        raise ImportError(f"{have} is a PyTorch weights file with no ONNX export beside it: running it needs "
                          f"PyTorch ({TORCH_HINT})")


@dataclass(frozen=True)
class Bundle:
    """A pipeline folder: ``networks`` by role (see the module docstring)."""

    folder: Path
    networks: dict[str, NetworkFiles]

    def __contains__(self, role: str) -> bool:
        return role in self.networks

    def files(self) -> list[Path]:
        """Every file the bundle consists of (the manifest included)."""
        out = [self.folder / MANIFEST]
        for f in self.networks.values():
            out += [p for p in (f.onnx, f.weights) if p is not None]
        return out

    def runtime(self, role: str, options: RuntimeOptions, batch_size: int = 64) -> Runtime:
        """The :class:`Runtime` of ``role``; a KeyError-free ValueError when the bundle lacks it."""
        if role not in self.networks:
            raise ValueError(f"{self.folder}: the pipeline has no {role} network (it has "
                             f"{', '.join(self.networks) or 'none'})")
        return load_runtime(self.networks[role].pick(options), options, batch_size=batch_size)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Bundle:
        """The bundle in folder ``path`` (or named by its ``manifest.json``); a ValueError naming the file
        when the manifest is malformed or names a missing file."""
        path = Path(path).expanduser()
        manifest = path if path.name == MANIFEST else path / MANIFEST
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest}: no pipeline manifest (hyperface export --out DIR writes one)")
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{manifest}: not a readable JSON manifest ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("networks"), dict):
            raise ValueError(f"{manifest}: not a hyperface pipeline manifest (format {_FORMAT!r} with 'networks')")
        folder = manifest.parent
        networks: dict[str, NetworkFiles] = {}
        for role, entry in data["networks"].items():
            if role not in ROLES:
                raise ValueError(f"{manifest}: unknown network role {role!r}; known: {', '.join(ROLES)}")
            if not isinstance(entry, dict) or not (entry.get("onnx") or entry.get("weights")):
                raise ValueError(f"{manifest}: role {role!r} names no 'onnx' or 'weights' file")
            found = {}
            for key in ("onnx", "weights"):
                name = entry.get(key)
                if name is None:
                    continue
                if not isinstance(name, str) or Path(name).name != name:
                    raise ValueError(f"{manifest}: {role}.{key} must be a file name in the folder, got {name!r}")
                if not (folder / name).is_file():
                    raise FileNotFoundError(f"{manifest}: {role}.{key} names {folder / name}, which is missing")
                found[key] = folder / name
            networks[role] = NetworkFiles(**found)
        return cls(folder, networks)

    def write(self) -> Path:
        """Write ``manifest.json`` into the folder (atomically); files must lie in the folder."""
        entries = {}
        for role, f in self.networks.items():
            if role not in ROLES:
                raise ValueError(f"unknown network role {role!r}; known: {', '.join(ROLES)}")
            entry = {}
            for key, p in (("onnx", f.onnx), ("weights", f.weights)):
                if p is not None:
                    if p.parent.resolve() != self.folder.resolve():
                        raise ValueError(f"{p}: a bundle's files must lie in its folder {self.folder}")
                    entry[key] = p.name
            entries[role] = entry
        return fileio.write_json(self.folder / MANIFEST, {"format": _FORMAT, "version": 1, "networks": entries})


def is_bundle(path: str | os.PathLike) -> bool:
    """True for a pipeline folder or its manifest."""
    p = Path(path).expanduser()
    return (p.is_dir() and (p / MANIFEST).is_file()) or (p.name == MANIFEST and p.is_file())
