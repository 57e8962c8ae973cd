"""Prepared training data on disk: shards of crops and labels, and the Dataset that reads them.

A prepared folder holds ``manifest.json`` and ``shards/<name>/`` folders. Each shard has
``images.npy`` (uint8, N x S x S x 3 RGB crops), ``labels.npy`` (one structured numeric row per
crop, see :func:`label_dtype`) and ``shard.json`` (the images it came from, counts, skipped items; a
``prepare --mode hard-negatives`` shard adds ``scores``, the detector's score of each crop).
Everything is plain ``.npy``/JSON: no pickle anywhere. ``shard.json``'s ``format_version`` names
the layout of its rows (absent: 1, written before it was recorded); version 2 added ``pose_class``,
and version-1 shards are still read (their samples have ``pose_class`` 0), so old and new folders,
or a folder resumed across the change, train together. A shard is written to a temporary folder and
renamed into place (:func:`hyperface.fileio.atomic_directory`), so a killed job leaves complete shards
or nothing; a shard damaged afterwards (a file truncated, deleted or edited) is found on load, by its
sizes against ``shard.json`` and the manifest (:func:`shard_problem`).

Crop geometry: a crop is the candidate box enlarged by ``context`` about its centre (each side times
``context``) and warped, without keeping aspect, to ``crop_size`` x ``crop_size``; the candidate box
is the centred square of side ``crop_size / context``. Landmarks are stored candidate-relative,
``a = (x - cx) / w``, ``b = (y - cy) / h``; in crop pixels (pixel centres at integers) a point lies
at ``crop_size * (0.5 + a / context) - 0.5`` (see :func:`relative_to_crop`).

:class:`PreparedDataset` memory-maps the shards lazily in whichever process reads them, so it can
be handed to DataLoader workers and DDP processes (it pickles without any open file).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from hyperface import fileio
from hyperface.tasks import TASKS

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SPLITS",
    "POSE_SOURCES",
    "label_dtype",
    "upgrade_labels",
    "shard_version",
    "relative_to_crop",
    "crop_to_relative",
    "write_shard",
    "read_shard_json",
    "shard_problem",
    "shard_is_complete",
    "ShardError",
    "load_manifest",
    "combine_manifests",
    "sum_counts",
    "PIXELS",
    "one_based_sources",
    "PreparedDataset",
]

logger = logging.getLogger("hyperface.data")

FORMAT_NAME = "hyperface-prepared"
FORMAT_VERSION = 2  # 2: the ``pose_class`` label column
SPLITS = ("train", "val")  # value of the ``split`` label column = index here
POSE_SOURCES = ("none", "annotated", "pnp")  # value of the ``pose_source`` label column = index here
MANIFEST = "manifest.json"
SHARD_JSON = "shard.json"
#: The manifest's ``pixels``: since 0.20 labels are 0-based pixels; before, 1-based sources (iBUG ``.pts``,
#: MTFL: a reader's ``pixel_origin``) kept their files' numbers, a pixel off (docs/training.md, "Pixel
#: coordinates").
PIXELS = "0-based"


def one_based_sources(manifest: Mapping[str, Any]) -> list[str]:
    """Names of a manifest's sources whose labels were prepared 1-based (before 0.20); [] when none."""
    if manifest.get("pixels") == PIXELS:
        return []
    from hyperface.data.readers import READERS  # the readers say which formats count from 1; not at import

    return [s.get("name", s.get("format", "?")) for s in manifest.get("sources", [])
            if getattr(READERS.get(s.get("format")), "pixel_origin", 0.0)]

# Keys of a sample dict, in order (the training code's contract).
SAMPLE_KEYS = (
    "image", "detection", "detection_mask", "landmarks", "landmarks_mask", "visibility",
    "visibility_mask", "landmarks5", "landmarks5_mask", "pose", "pose_mask", "gender",
    "gender_mask", "pose_class", "index",
)  # fmt: skip


def label_dtype(num_points: int, version: int = FORMAT_VERSION) -> np.dtype:
    """The structured row stored per crop in ``labels.npy`` by format ``version``; every field numeric
    (no pickle). Older layouts stay readable: a prepared folder is never invalidated by an upgrade."""
    if not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"label layout version {version}: this code knows 1..{FORMAT_VERSION}")
    fields = [
        ("detection", "i1"), ("detection_mask", "?"),
        ("landmarks", "<f4", (num_points, 2)), ("landmarks_mask", "?", (num_points,)),
        ("visibility", "<f4", (num_points,)), ("visibility_mask", "?", (num_points,)),
        ("landmarks5", "<f4", (5, 2)), ("landmarks5_mask", "?", (5,)),
        ("pose", "<f4", (3,)), ("pose_mask", "?"),
        ("gender", "i1"), ("gender_mask", "?"),
        ("box", "<f4", (4,)),          # candidate box (x0, y0, x1, y1) in source-image pixels
        ("iou", "<f4"),                # IoU with the matched face (0 for a face-less image)
        ("face", "<i2"),               # matched face's index in the record, -1 if none
        ("pose_source", "i1"),         # index into POSE_SOURCES
        ("source", "<i2"),             # index into manifest["sources"]
        ("image", "<i4"),              # index into this shard's shard.json "images"
        ("split", "i1"),               # index into SPLITS
    ]  # fmt: skip
    if version >= 2:
        fields.append(("pose_class", "i1"))  # MTFL's 5-way head-pose class 1..5; 0 = none
    return np.dtype(fields)


def upgrade_labels(labels: np.ndarray, num_points: int) -> np.ndarray:
    """Label rows of any known layout as rows of the current one (columns it lacks are 0)."""
    dtype = label_dtype(num_points)
    if labels.dtype == dtype:
        return np.asarray(labels)
    out = np.zeros(len(labels), dtype=dtype)
    for name in labels.dtype.names:
        out[name] = labels[name]
    return out


def shard_version(meta: Mapping) -> int:
    """The label layout version of a shard from its ``shard.json`` (1 when it predates the field)."""
    return int(meta.get("format_version", 1))


def relative_to_crop(rel: np.ndarray, context: float, crop_size: int) -> np.ndarray:
    """Candidate-relative (a, b) -> crop pixel coordinates (pixel centres at integers)."""
    return crop_size * (0.5 + np.asarray(rel, dtype=np.float64) / context) - 0.5


def crop_to_relative(pixels: np.ndarray, context: float, crop_size: int) -> np.ndarray:
    """Inverse of :func:`relative_to_crop`."""
    return ((np.asarray(pixels, dtype=np.float64) + 0.5) / crop_size - 0.5) * context


class ShardError(ValueError):
    """A damaged shard of a prepared folder; the message says which folder to delete and how to redo it."""


def read_shard_json(shard_dir: str | Path) -> dict:
    """A shard's ``shard.json`` (its images, counts, skipped items and ``samples``)."""
    with open(Path(shard_dir) / SHARD_JSON, encoding="utf-8") as fh:
        return json.load(fh)


def _array_problem(path: Path, samples: int, shape: tuple | None, dtype: np.dtype | None) -> str | None:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (ValueError, OSError) as exc:  # a truncated file: "mmap length is greater than file size"
        return f"{path.name} is unreadable or truncated ({exc})"
    if array.shape[:1] != (samples,):
        return f"{path.name} holds {array.shape[0] if array.ndim else 0} rows, shard.json says {samples}"
    if shape is not None and array.shape[1:] != shape:
        return f"{path.name} has rows of shape {array.shape[1:]}, expected {shape}"
    if dtype is not None and array.dtype != dtype:
        return f"{path.name} has an unexpected layout {array.dtype}"
    return None


def shard_problem(shard_dir: str | Path, *, samples: int | None = None, crop_size: int | None = None,
                  num_points: int | None = None) -> str | None:
    """What is wrong with a shard folder (None: complete and consistent), from file headers and sizes.

    ``samples`` (the manifest's count), ``crop_size`` and ``num_points`` are checked where given.
    """
    shard_dir = Path(shard_dir)
    if not shard_dir.is_dir():
        return "the shard folder is missing"
    try:
        meta = read_shard_json(shard_dir)
        count, version = int(meta["samples"]), shard_version(meta)
    except FileNotFoundError:
        return f"{SHARD_JSON} is missing"
    except (ValueError, KeyError, TypeError, OSError) as exc:
        return f"{SHARD_JSON} is unreadable ({exc})"
    if samples is not None and count != samples:
        return f"{SHARD_JSON} says {count} samples, the manifest {samples}"
    if not 1 <= version <= FORMAT_VERSION:
        return f"{SHARD_JSON} says format_version {version}, this code reads 1..{FORMAT_VERSION}"
    images_shape = (crop_size, crop_size, 3) if crop_size is not None else None
    dtype = label_dtype(num_points, version) if num_points is not None else None
    return (_array_problem(shard_dir / "labels.npy", count, None, dtype)
            or _array_problem(shard_dir / "images.npy", count, images_shape, np.dtype(np.uint8)))


def shard_is_complete(shard_dir: str | Path) -> bool:
    """A shard folder whose files are all there with the sizes its ``shard.json`` states."""
    return shard_problem(shard_dir) is None


def write_shard(shard_dir: str | Path, images: np.ndarray, labels: np.ndarray, meta: Mapping,
                *, overwrite: bool = False) -> None:
    """Write one shard atomically: into a temporary sibling folder, then rename it into place.

    ``images`` (N, S, S, 3) uint8, ``labels`` (N,) of :func:`label_dtype` (the current layout: every
    writer writes it); ``meta`` goes to ``shard.json`` (with ``samples`` set to N and
    ``format_version``). An existing shard folder is an error unless ``overwrite`` (used to replace a
    damaged one).
    """
    shard_dir = Path(shard_dir)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"shard images must be N x S x S x 3, got {images.shape}")
    if labels.dtype.names is None or len(labels) != len(images):
        raise ValueError("shard labels must be a structured array with one row per image")
    if "landmarks" not in labels.dtype.names or labels.dtype != label_dtype(labels.dtype["landmarks"].shape[0]):
        raise ValueError(f"shard labels must be rows of label_dtype(num_points) (format {FORMAT_VERSION}), "
                         f"got {labels.dtype}")
    shard_dir.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_directory(shard_dir, overwrite=overwrite) as tmp:
        fileio.write_npy(tmp / "images.npy", images)
        fileio.write_npy(tmp / "labels.npy", labels)
        fileio.write_json(tmp / SHARD_JSON, dict(meta, samples=int(len(labels)), format_version=FORMAT_VERSION))


def load_manifest(root: str | Path) -> tuple[dict, Path]:
    """Read a prepared folder's (or merged) manifest: ``(manifest, folder its paths are relative to)``.

    ``root`` is a prepared folder or a manifest JSON file.
    """
    root = Path(root)
    path = root / MANIFEST if root.is_dir() else root
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no prepared-data manifest (run 'hyperface prepare' first)")
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: manifest is not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: not a {FORMAT_NAME} manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: manifest format {manifest['format_version']} is newer than this "
                         f"code reads ({FORMAT_VERSION}); update hyperface")
    return manifest, path.parent


_GEOMETRY_KEYS = ("crop_size", "context", "point_set", "num_points")


def combine_manifests(manifests: Sequence[Mapping]) -> dict:
    """Summary of several manifests read together: same crop geometry and point set required."""
    if not manifests:
        raise ValueError("no manifest to combine")
    if len(manifests) == 1:
        return dict(manifests[0])
    first = manifests[0]["options"]
    for m in manifests[1:]:
        for key in _GEOMETRY_KEYS:
            if m["options"].get(key) != first.get(key):
                raise ValueError(f"prepared folders disagree on {key}: {first.get(key)!r} vs "
                                 f"{m['options'].get(key)!r}; prepare them with the same options")
    counts = sum_counts([m.get("counts", {}) for m in manifests])
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "options": {k: first[k] for k in _GEOMETRY_KEYS},
        "counts": counts,
        "parts": [dict(m) for m in manifests],
    }


def sum_counts(items: Sequence[Mapping]) -> dict:
    """Recursively add nested dicts of numbers."""
    out: dict = {}
    for item in items:
        for key, value in item.items():
            if isinstance(value, Mapping):
                out[key] = sum_counts([out.get(key, {}), value])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = out.get(key, 0) + value
    return out


class PreparedDataset(Dataset):
    """Samples of one or more prepared folders (or merged manifests), read from memory-mapped shards.

    ``split`` is "train", "val" or None (all). Each item is a dict of numpy values (see the module
    docstring and :data:`SAMPLE_KEYS`); masks False mean the value is 0 and must be ignored, and
    ``pose_class`` (MTFL's 1..5) has no mask: 0 means none (always so for a version-1 shard).
    Shards are opened lazily in the process that reads them and never pickled, so the dataset is
    safe with DataLoader workers (fork or spawn) and with several DDP processes.
    """

    def __init__(self, roots: str | Path | Sequence[str | Path], split: str | None = "train") -> None:
        if isinstance(roots, (str, Path)):
            roots = [roots]
        roots = [Path(r) for r in roots]
        if not roots:
            raise ValueError("PreparedDataset needs at least one prepared folder")
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        self.split = split
        manifests = []
        self._shard_dirs: list[Path] = []
        self._shard_part: list[int] = []
        self._shard_samples: list[int | None] = []
        seen: dict[str, Path] = {}
        for part, root in enumerate(roots):
            manifest, base = load_manifest(root)
            manifests.append(manifest)
            if old := one_based_sources(manifest):
                logger.warning("%s: prepared before 0.20: the labels of %s are 1-based, a pixel off today's 0-based "
                               "ones (docs/training.md, 'Pixel coordinates'); prepare it again", root, ", ".join(old))
            for entry in manifest.get("shards", []):
                shard_dir = (base / entry["path"]).resolve()
                key = f"{part}:{entry['name']}" if len(roots) > 1 else entry["name"]
                if key in seen:
                    raise ValueError(f"{root}: shard {entry['name']} listed twice")
                seen[key] = shard_dir
                self._shard_dirs.append(shard_dir)
                self._shard_part.append(part)
                self._shard_samples.append(entry.get("samples"))
        self.manifest = combine_manifests(manifests)
        self._manifests = manifests
        opts = self.manifest["options"]
        self.crop_size: int = int(opts["crop_size"])
        self.context: float = float(opts["context"])
        self.point_set: str = str(opts["point_set"])
        self.num_points: int = int(opts["num_points"])
        self._dtype = label_dtype(self.num_points)

        rows: list[np.ndarray] = []
        present = dict.fromkeys(TASKS, False)
        for shard_dir, samples in zip(self._shard_dirs, self._shard_samples):
            self._verify(shard_dir, samples)
            labels = self._load(shard_dir, "labels.npy")
            keep = (np.ones(len(labels), dtype=bool) if split is None
                    else labels["split"] == SPLITS.index(split))
            sel = np.flatnonzero(keep).astype(np.int32)
            rows.append(sel)
            if len(sel):
                lab = labels[sel]
                present["detection"] |= bool(lab["detection_mask"].any())
                present["landmarks"] |= bool(lab["landmarks_mask"].any() or lab["landmarks5_mask"].any())
                present["visibility"] |= bool(lab["visibility_mask"].any())
                present["pose"] |= bool(lab["pose_mask"].any())
                present["gender"] |= bool(lab["gender_mask"].any())
            del labels
        self._rows = rows
        self._offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        self.tasks_present: tuple[str, ...] = tuple(t for t in TASKS if present[t])
        self._open: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._meta: dict[int, dict] = {}  # shard.json contents, read on demand by info()
        self._pid = os.getpid()

    def folders(self) -> np.ndarray:
        """Each sample's prepared folder: its index in ``roots``."""
        return np.repeat(np.asarray(self._shard_part, dtype=np.int64), [len(r) for r in self._rows])

    # -- pickling: never carry open memory maps into another process ---------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = {}
        state["_meta"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def _verify(self, shard_dir: Path, samples: int | None) -> None:
        problem = shard_problem(shard_dir, samples=samples, crop_size=self.crop_size, num_points=self.num_points)
        if problem is not None:
            raise ShardError(f"{shard_dir}: damaged shard: {problem}. Delete the folder {shard_dir} and re-run "
                             f"the same 'hyperface prepare' command (it resumes: only the missing shards are redone; "
                             f"then 'prepare merge' again if this folder came from a merge)")

    @staticmethod
    def _load(shard_dir: Path, name: str) -> np.ndarray:
        path = shard_dir / name
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: shard file missing (incomplete or moved prepared folder)") from None
        except ValueError as exc:
            raise ValueError(f"{path}: cannot read shard ({exc})") from None

    def _shard(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        if self._pid != os.getpid():  # forked after opening: start afresh in this process
            self._open = {}
            self._pid = os.getpid()
        arrays = self._open.get(s)
        if arrays is None:
            if len(self._open) >= 256:  # bound the number of live mappings
                self._open.pop(next(iter(self._open)))
            d = self._shard_dirs[s]
            arrays = (self._load(d, "images.npy"), self._load(d, "labels.npy"))
            self._open[s] = arrays
        return arrays

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} samples")
        s = int(np.searchsorted(self._offsets, i, side="right") - 1)
        return s, int(self._rows[s][i - self._offsets[s]])

    def __getitem__(self, i: int) -> dict[str, Any]:
        s, row = self._locate(int(i))
        images, labels = self._shard(s)
        lab = labels[row]
        return {
            "image": np.array(images[row]),
            "detection": np.int64(lab["detection"]),
            "detection_mask": np.bool_(lab["detection_mask"]),
            "landmarks": np.array(lab["landmarks"], dtype=np.float32),
            "landmarks_mask": np.array(lab["landmarks_mask"], dtype=bool),
            "visibility": np.array(lab["visibility"], dtype=np.float32),
            "visibility_mask": np.array(lab["visibility_mask"], dtype=bool),
            "landmarks5": np.array(lab["landmarks5"], dtype=np.float32),
            "landmarks5_mask": np.array(lab["landmarks5_mask"], dtype=bool),
            "pose": np.array(lab["pose"], dtype=np.float32),
            "pose_mask": np.bool_(lab["pose_mask"]),
            "gender": np.int64(lab["gender"]),
            "gender_mask": np.bool_(lab["gender_mask"]),
            "pose_class": np.int64(lab["pose_class"] if "pose_class" in lab.dtype.names else 0),
            "index": int(i) % len(self),
        }

    def info(self, i: int) -> dict[str, Any]:
        """Where sample ``i`` came from: source, image key, candidate box, IoU, pose source, split, and
        ``score``, the detector's score of a mined hard negative (None for other samples)."""
        s, row = self._locate(int(i))
        _, labels = self._shard(s)
        lab = labels[row]
        meta = self._meta.get(s)
        if meta is None:
            with open(self._shard_dirs[s] / SHARD_JSON, encoding="utf-8") as fh:
                meta = self._meta[s] = json.load(fh)
        manifest = self._manifests[self._shard_part[s]]
        return {
            "source": manifest["sources"][int(lab["source"])]["name"],
            "image": meta["images"][int(lab["image"])],
            "shard": self._shard_dirs[s].name,
            "box": np.array(lab["box"], dtype=np.float64),
            "iou": float(lab["iou"]),
            "face": int(lab["face"]),
            "pose_source": POSE_SOURCES[int(lab["pose_source"])],
            "split": SPLITS[int(lab["split"])],
            "score": meta["scores"][row] if "scores" in meta else None,
        }

    def labels(self) -> np.ndarray:
        """All label rows of the selected split (no images), e.g. for class-balanced sampling."""
        parts = [upgrade_labels(self._load(d, "labels.npy")[r], self.num_points)
                 for d, r in zip(self._shard_dirs, self._rows)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=self._dtype)
