"""The prepare job: annotated datasets -> shards of labelled candidate crops (the study's GenFace).

Plan: every source's records are sorted (by image path and frame) and cut into shards of
``images_per_shard`` images, named ``SS-CCCCC`` (source index, chunk index), so a shard is a fixed,
deterministic list of images. ``--shard i/n`` takes the shards whose global index is ``i`` mod ``n``;
a re-run skips shards already complete (each is written atomically), so a killed job resumes where
it stopped, and shard folders of several runs merge into the same dataset one run gives.

Per image: candidates (Selective Search, jitter around each face, random boxes) are labelled by
overlap (:mod:`hyperface.data.labels`), a balanced subset is kept, and each is cropped. Every random
draw comes from a generator seeded by the image's source-relative key, so samples do not depend on
which worker, shard split or run produced them. The train/validation split is a hash of the
record's ``group`` (one image or one video), the same on every machine.

Defaults per face: 4 positives (half from Selective Search where it has them, the rest jittered),
1 landmark-only sample (IoU between the landmark and positive thresholds, detection ignored) and
5 negatives; 8 negatives per face-less image. About 1 : 1.25 face : non-face before the negative
sources, close to the paper's balanced batches, and enough variety per face for a few epochs of
augmentation without storing a dozen near-duplicates per face.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hyperface import __version__
from hyperface.data.aligned import Teacher, model_teacher, sample_aligned
from hyperface.data.candidates import SS_MODES, extract_crop, jitter_boxes, random_boxes, selective_search
from hyperface.data.images import ImageReadError, load_image
from hyperface.data.labels import LabelOptions, assign_labels, face_targets, fill_labels
from hyperface.data.readers.base import DatasetReader
from hyperface.data.records import ImageRecord
from hyperface.data.shards import (
    FORMAT_NAME, FORMAT_VERSION, MANIFEST, POSE_SOURCES, SHARD_JSON, SPLITS, label_dtype, load_manifest,
    shard_is_complete, sum_counts, write_json_atomic, write_shard,
)
from hyperface.points import get_point_set

__all__ = [
    "PrepareOptions",
    "ShardTask",
    "split_of",
    "image_rng",
    "sample_image",
    "plan_shards",
    "prepare",
    "merge",
]

logger = logging.getLogger("hyperface.data")

PREPARE_MODES = ("candidates", "aligned")

# Candidate kinds, for the balance policy.
_SS, _JITTER, _PARTIAL, _RANDOM, _WHOLE = range(5)


@dataclass(frozen=True)
class PrepareOptions:
    """Everything that decides the samples; recorded in the manifest and checked on resume."""

    crop_size: int = 160          # stored crop side; 1.25 x a 128 px model input leaves room to augment
    context: float = 1.25         # crop = candidate box enlarged by this about its centre
    point_set: str = "ibug68"
    pos_iou: float = 0.5
    neg_iou: float = 0.35
    landmark_iou: float = 0.35
    attr_iou: float = 0.5
    contain_fraction: float = 0.5
    positives_per_face: int = 4
    partials_per_face: int = 1
    negatives_per_face: int = 5
    negatives_per_image: int = 8
    negatives_from_faces: bool = True  # non-faces also from images whose faces are not all annotated
    ss_mode: str = "fast"         # fast | quality | single | none
    ss_max_side: int = 256
    ss_max_proposals: int = 200
    min_box: float = 12.0         # smallest candidate side, source pixels
    val_fraction: float = 0.1
    seed: int = 0
    images_per_shard: int = 64
    mode: str = "candidates"      # candidates (stage one) | aligned (stage two: one aligned crop per face)
    teacher: str = "none"         # aligned mode, faces without points: "bundled", a weights file, or "none"

    def __post_init__(self) -> None:
        get_point_set(self.point_set)
        if self.mode not in PREPARE_MODES:
            raise ValueError(f"mode must be one of {PREPARE_MODES}, got {self.mode!r}")
        self.label_options()  # validates thresholds
        if self.ss_mode not in (*SS_MODES, "none"):
            raise ValueError(f"ss_mode must be one of {(*SS_MODES, 'none')}, got {self.ss_mode!r}")
        if self.crop_size < 8:
            raise ValueError(f"crop_size must be >= 8, got {self.crop_size}")
        if self.context < 1.0:
            raise ValueError(f"context must be >= 1 (the crop contains the candidate), got {self.context}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {self.val_fraction}")
        for name in ("positives_per_face", "partials_per_face", "negatives_per_face", "negatives_per_image",
                     "ss_max_proposals", "images_per_shard", "ss_max_side"):
            least = 1 if name in ("images_per_shard", "ss_max_side") else 0
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be >= {least}, got {getattr(self, name)}")

    @property
    def num_points(self) -> int:
        return get_point_set(self.point_set).num_points

    def label_options(self) -> LabelOptions:
        return LabelOptions(self.pos_iou, self.neg_iou, self.landmark_iou, self.attr_iou, self.contain_fraction)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["num_points"] = self.num_points
        return d


@dataclass(frozen=True)
class ShardTask:
    """One shard's fixed list of images (records with their keys and splits)."""

    name: str
    index: int
    source: int
    records: tuple[ImageRecord, ...]
    keys: tuple[str, ...]
    splits: tuple[int, ...]


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def split_of(group: str, val_fraction: float) -> int:
    """0 (train) or 1 (val) from the SHA-1 of ``group``: deterministic, machine-independent."""
    return int(_hash64(group) / 2.0**64 < val_fraction)


def image_rng(key: str, seed: int = 0) -> np.random.Generator:
    """The random generator of one image: from its key, so any run draws the same samples."""
    return np.random.default_rng([seed, _hash64(key)])


def _relative_key(record: ImageRecord, base: Path) -> str:
    """The record's image path relative to its dataset (machine-independent), plus '#frame'."""
    image = Path(record.image)
    try:
        rel = image.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        rel = f"{record.group}/{image.name}"
    return f"{rel}#{record.frame}" if record.frame is not None else rel


def _choose(rng: np.random.Generator, idx: np.ndarray, n: int) -> np.ndarray:
    if n <= 0 or len(idx) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(idx) <= n:
        return idx
    return np.sort(rng.choice(idx, size=n, replace=False))


def _candidates(image: np.ndarray, record: ImageRecord, opts: PrepareOptions,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All candidate boxes of an image and their kind."""
    h, w = image.shape[:2]
    boxes, kinds = [], []

    def add(b: np.ndarray, kind: int) -> None:
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        boxes.append(b)
        kinds.append(np.full(len(b), kind, dtype=np.int8))

    if opts.ss_mode != "none":
        add(selective_search(image, mode=opts.ss_mode, max_side=opts.ss_max_side,
                             max_proposals=opts.ss_max_proposals, min_size=opts.min_box, rng=rng), _SS)
    for face in record.faces:
        if face.attributes.get("ignore"):
            continue
        add(jitter_boxes(face.box, opts.positives_per_face, rng, min_iou=opts.pos_iou), _JITTER)
        add(jitter_boxes(face.box, opts.partials_per_face, rng, min_iou=opts.landmark_iou,
                         max_iou=opts.pos_iou, shift=0.35, scale=0.5, aspect=0.2), _PARTIAL)
    n_neg = opts.negatives_per_face * len(record.faces) if record.faces else opts.negatives_per_image
    add(random_boxes(w, h, 3 * n_neg, rng, min_side=opts.min_box), _RANDOM)
    if not record.faces:
        add(np.array([0.0, 0.0, w, h]), _WHOLE)
    return np.concatenate(boxes), np.concatenate(kinds)


def sample_image(image: np.ndarray, record: ImageRecord, opts: PrepareOptions,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Balanced, labelled candidates of one decoded image: (boxes (M, 4), labels (M,) rows).

    Label rows are :func:`~hyperface.data.shards.label_dtype` with the per-sample fields filled
    (box, IoU, matched face, task labels and masks, pose source); source/image/split are the
    caller's.
    """
    h, w = image.shape[:2]
    boxes, kinds = _candidates(image, record, opts, rng)
    faces = record.faces
    a = assign_labels(boxes, faces, opts.label_options())
    ignore = np.array([bool(f.attributes.get("ignore")) for f in faces] or [False])
    on_ignored = (a.face >= 0) & ignore[np.maximum(a.face, 0)] & (a.detection != 0)
    usable = ~a.dropped & ~on_ignored
    chosen: list[np.ndarray] = []
    for f, face in enumerate(faces):
        if face.attributes.get("ignore"):
            continue
        mine = usable & (a.face == f)
        pos = mine & (a.detection == 1)
        ss_pos = _choose(rng, np.flatnonzero(pos & (kinds == _SS)), opts.positives_per_face // 2)
        jit_pos = _choose(rng, np.flatnonzero(pos & (kinds == _JITTER)), opts.positives_per_face - len(ss_pos))
        if len(ss_pos) + len(jit_pos) < opts.positives_per_face:  # too few jittered: more from SS
            rest = np.setdiff1d(np.flatnonzero(pos & (kinds == _SS)), ss_pos)
            ss_pos = np.concatenate([ss_pos, _choose(rng, rest, opts.positives_per_face - len(ss_pos) - len(jit_pos))])
        partial = _choose(rng, np.flatnonzero(mine & (a.detection == -1) & a.landmarks), opts.partials_per_face)
        chosen += [np.sort(ss_pos), jit_pos, partial]
    negatives_ok = not faces or record.all_faces_annotated or opts.negatives_from_faces
    if negatives_ok:
        n_neg = opts.negatives_per_face * sum(not f.attributes.get("ignore") for f in faces) if faces \
            else opts.negatives_per_image
        neg = usable & (a.detection == 0)
        whole = np.flatnonzero(neg & (kinds == _WHOLE))
        ss_neg = _choose(rng, np.flatnonzero(neg & (kinds == _SS)), (n_neg - len(whole)) // 2)
        rnd_neg = _choose(rng, np.flatnonzero(neg & (kinds == _RANDOM)), n_neg - len(whole) - len(ss_neg))
        if len(whole) + len(ss_neg) + len(rnd_neg) < n_neg:
            rest = np.setdiff1d(np.flatnonzero(neg & (kinds == _SS)), ss_neg)
            ss_neg = np.sort(np.concatenate([ss_neg, _choose(rng, rest, n_neg - len(whole) - len(ss_neg) - len(rnd_neg))]))
        chosen += [whole, ss_neg, rnd_neg]
    sel = np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)

    targets = [face_targets(face, opts.point_set, (w, h)) for face in faces]
    labels = np.zeros(len(sel), dtype=label_dtype(opts.num_points))
    for i, k in enumerate(sel):
        fi = int(a.face[k])
        fill_labels(labels[i], boxes[k], a, int(k), targets[fi] if fi >= 0 else None)
    keep = (labels["detection_mask"] | labels["landmarks_mask"].any(axis=1) | labels["landmarks5_mask"].any(axis=1)
            | labels["visibility_mask"].any(axis=1) | labels["pose_mask"] | labels["gender_mask"])  # any label
    return boxes[sel][keep], labels[keep]


class _Decoder:
    """Decodes images and video frames; keeps the current video open for frames in order."""

    def __init__(self) -> None:
        self._video = None
        self._last: tuple[tuple[str, int | None], np.ndarray] | None = None

    def __call__(self, record: ImageRecord) -> np.ndarray:
        key = (str(record.image), record.frame)
        if self._last is not None and self._last[0] == key:
            return self._last[1]  # several records of one image: decode once
        if record.frame is None:
            image = load_image(record.image)
        else:
            from hyperface.data.video import VideoFrames

            if self._video is None or self._video.path != Path(record.image):
                self.close()
                self._video = VideoFrames(record.image)
            image = self._video.read(record.frame)
        self._last = (key, image)
        return image

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None


def _count(labels: np.ndarray, splits_of_images: Sequence[int], faces_of_images: Sequence[int]) -> dict:
    """Counts of one shard: per split, per task; pose label sources."""
    counts: dict[str, Any] = {"images": len(splits_of_images), "faces": int(sum(faces_of_images)),
                              "samples": int(len(labels))}
    for s, split in enumerate(SPLITS):
        lab = labels[labels["split"] == s]
        counts[split] = {
            "images": int(sum(1 for x in splits_of_images if x == s)),
            "samples": int(len(lab)),
            "detection": int(lab["detection_mask"].sum()),
            "face": int((lab["detection_mask"] & (lab["detection"] == 1)).sum()),
            "non_face": int((lab["detection_mask"] & (lab["detection"] == 0)).sum()),
            "landmarks": int(lab["landmarks_mask"].any(axis=1).sum()),
            "landmarks5": int(lab["landmarks5_mask"].any(axis=1).sum()),
            "visibility": int(lab["visibility_mask"].any(axis=1).sum()),
            "pose": int(lab["pose_mask"].sum()),
            "gender": int(lab["gender_mask"].sum()),
        }
    pose = labels[labels["pose_mask"]]["pose_source"]
    counts["pose_source"] = {name: int((pose == i).sum()) for i, name in enumerate(POSE_SOURCES) if i}
    return counts


def _shards_dir(out: Path) -> Path:
    return out / "shards"


def process_shard(task: ShardTask, opts: PrepareOptions, out: Path) -> dict:
    """Prepare one shard (in a worker) and write it atomically; returns its shard.json content."""
    final = _shards_dir(out) / task.name
    if shard_is_complete(final):
        return _read_shard_json(final)
    decode = _Decoder()
    crops: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    skipped: list[dict] = []
    ok_splits: list[int] = []
    ok_faces: list[int] = []
    try:
        for j, (record, key, split) in enumerate(zip(task.records, task.keys, task.splits)):
            try:
                image = decode(record)
            except (ImageReadError, OSError, ValueError) as exc:
                msg = str(exc).removeprefix(f"{record.image}: ")
                skipped.append({"path": str(record.image), "frame": record.frame, "line": None,
                                "message": msg})
                logger.warning("%s: skipped (%s)", record.key, msg)
                continue
            try:
                if opts.mode == "aligned":
                    image_crops, labels = sample_aligned(image, record, point_set=opts.point_set,
                                                         crop_size=opts.crop_size, context=opts.context,
                                                         teacher=_teacher(opts.teacher))
                    image_crops = list(image_crops)
                else:
                    boxes, labels = sample_image(image, record, opts, image_rng(key, opts.seed))
                    image_crops = [extract_crop(image, box, opts.context, opts.crop_size) for box in boxes]
            except ValueError as exc:  # a degenerate annotation: report, go on
                skipped.append({"path": str(record.image), "frame": record.frame, "line": None,
                                "message": f"cannot sample: {exc}"})
                logger.warning("%s: skipped (cannot sample: %s)", record.key, exc)
                continue
            labels["source"] = task.source
            labels["image"] = j
            labels["split"] = split
            crops += image_crops
            rows.append(labels)
            ok_splits.append(split)
            ok_faces.append(len(record.faces))
    finally:
        decode.close()
    s = opts.crop_size
    images = np.stack(crops) if crops else np.zeros((0, s, s, 3), dtype=np.uint8)
    labels = np.concatenate(rows) if rows else np.zeros(0, dtype=label_dtype(opts.num_points))
    meta = {
        "name": task.name, "index": task.index, "source": task.source,
        "images": list(task.keys), "skipped": skipped,
        "counts": _count(labels, ok_splits, ok_faces),
        "hyperface_version": __version__,
    }
    try:
        write_shard(final, images, labels, meta)
    except OSError:
        if not shard_is_complete(final):  # another run finished the same (identical) shard first
            raise
    return _read_shard_json(final)


_TEACHERS: dict[str, Teacher] = {}


def _teacher(spec: str) -> Teacher | None:
    """The aligned mode's teacher for faces without points, loaded once per process."""
    if spec == "none":
        return None
    if spec not in _TEACHERS:
        _TEACHERS[spec] = model_teacher(None if spec == "bundled" else spec)
    return _TEACHERS[spec]


def _read_shard_json(shard_dir: Path) -> dict:
    import json

    with open(shard_dir / SHARD_JSON, encoding="utf-8") as fh:
        return json.load(fh)


def _run_task(args: tuple[ShardTask, PrepareOptions, Path]) -> tuple[str, int]:
    task, opts, out = args
    process_shard(task, opts, out)
    return task.name, len(task.records)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core: no nested threading
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


# -- planning ---------------------------------------------------------------------------------

@dataclass
class SourceInfo:
    spec: str
    format: str
    name: str
    base: Path
    problems: list[dict] = field(default_factory=list)
    records: int = 0

    def to_dict(self) -> dict:
        return {"spec": self.spec, "format": self.format, "name": self.name, "records": self.records,
                "problems": len(self.problems)}


def _source_name(reader: DatasetReader) -> str:
    parts = Path(reader.path).parts[-2:]
    return f"{reader.format}:{'/'.join(parts)}"


def open_sources(sources: Sequence[str | DatasetReader]) -> list[DatasetReader]:
    """Readers for ``FORMAT:PATH[?opt=v]`` specs (or readers given as such)."""
    readers = []
    for s in sources:
        if isinstance(s, DatasetReader):
            readers.append(s)
        else:
            from hyperface.data.readers import open_dataset

            readers.append(open_dataset(str(s)))
    return readers


def plan_shards(readers: Sequence[DatasetReader], opts: PrepareOptions,
                specs: Sequence[str] | None = None) -> tuple[list[ShardTask], list[SourceInfo]]:
    """Read every source and cut its sorted records into fixed shards."""
    tasks: list[ShardTask] = []
    infos: list[SourceInfo] = []
    names: set[str] = set()
    for si, reader in enumerate(readers):
        name = _source_name(reader)
        base_name, n = name, 2
        while name in names:
            name, n = f"{base_name}#{n}", n + 1
        names.add(name)
        base = reader.path if reader.path.is_dir() else reader.path.parent
        spec = specs[si] if specs is not None else getattr(reader, "source", f"{reader.format}:{reader.path}")
        info = SourceInfo(str(spec), reader.format, name, base)
        records = sorted(reader, key=lambda r: (str(r.image), -1 if r.frame is None else r.frame))
        info.problems = [p.to_dict() for p in reader.problems]
        info.records = len(records)
        infos.append(info)
        for c in range(0, len(records), opts.images_per_shard):
            chunk = tuple(records[c:c + opts.images_per_shard])
            keys = tuple(_relative_key(r, base) for r in chunk)
            splits = tuple(split_of(r.group, opts.val_fraction) for r in chunk)
            tasks.append(ShardTask(f"{si:02d}-{c // opts.images_per_shard:05d}", len(tasks), si, chunk, keys, splits))
    return tasks, infos


def _plan_fingerprint(tasks: Sequence[ShardTask]) -> str:
    h = hashlib.sha1()
    for t in tasks:
        h.update(t.name.encode())
        for k in t.keys:
            h.update(b"\0" + k.encode())
    return h.hexdigest()


# -- the job ----------------------------------------------------------------------------------

def _build_manifest(out: Path, tasks: Sequence[ShardTask], infos: Sequence[SourceInfo], opts: PrepareOptions,
                    shard_spec: tuple[int, int], created: str, command: list[str] | None) -> dict:
    i, n = shard_spec
    mine = [t for t in tasks if t.index % n == i]
    done = []
    skipped: list[dict] = []
    for info in infos:
        skipped += [dict(p, source=info.name) for p in info.problems]
    by_source: dict[str, list[dict]] = {}
    for t in mine:
        d = _shards_dir(out) / t.name
        if not shard_is_complete(d):
            continue
        meta = _read_shard_json(d)
        done.append({"name": t.name, "path": f"shards/{t.name}", "samples": meta["samples"],
                     "images": len(meta["images"])})
        skipped += [dict(s, source=infos[t.source].name) for s in meta.get("skipped", [])]
        by_source.setdefault(infos[t.source].name, []).append(meta["counts"])
    counts = sum_counts([c for cs in by_source.values() for c in cs])
    counts["by_source"] = {name: sum_counts(cs) for name, cs in by_source.items()}
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "hyperface_version": __version__,
        "created": created,
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "sources": [info.to_dict() for info in infos],
        "options": opts.to_dict(),
        "plan": {"fingerprint": _plan_fingerprint(tasks), "shards": len(tasks),
                 "images": sum(len(t.records) for t in tasks), "shard_spec": [i, n],
                 "shard_names": [t.name for t in tasks]},
        "complete": len(done) == len(mine),
        "shards": done,
        "counts": counts,
        "skipped": skipped,
    }


def _check_resume(out: Path, opts: PrepareOptions, infos: Sequence[SourceInfo], fingerprint: str) -> str | None:
    """Creation time of an existing compatible job in ``out`` (None: fresh); ValueError if not compatible."""
    if not (out / MANIFEST).is_file():
        return None
    old, _ = load_manifest(out)
    if old.get("options") != opts.to_dict():
        diff = sorted(k for k in set(old.get("options", {})) | set(opts.to_dict())
                      if old.get("options", {}).get(k) != opts.to_dict().get(k))
        raise ValueError(f"{out} holds a job prepared with other options ({', '.join(diff)}); "
                         f"use another --out, or the same options to resume")
    old_sources = [(s["format"], s["name"]) for s in old.get("sources", [])]
    if old_sources != [(s.format, s.name) for s in infos]:
        raise ValueError(f"{out} holds a job with other sources ({old_sources}); use another --out")
    if old.get("plan", {}).get("fingerprint") != fingerprint:
        raise ValueError(f"{out}: the sources' images changed since this job was planned; use another --out")
    return old.get("created")


def prepare(sources: Sequence[str | DatasetReader], out: str | Path, options: PrepareOptions = PrepareOptions(),
            *, workers: int = 1, shard: tuple[int, int] = (0, 1), progress: bool = True,
            command: list[str] | None = None,
            on_shard: Callable[[str], None] | None = None) -> dict:
    """Prepare ``sources`` into ``out`` (resuming a compatible job there); returns the manifest.

    ``shard=(i, n)`` does only the i-th of n parts. ``workers`` > 1 uses that many spawned
    processes. ``on_shard`` is called with each finished shard's name (tests, progress hooks).
    """
    out = Path(out)
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {i}/{n}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    specs = [s if isinstance(s, str) else None for s in sources]
    readers = open_sources(sources)
    tasks, infos = plan_shards(readers, options,
                               [s or getattr(r, "source", f"{r.format}:{r.path}") for s, r in zip(specs, readers)])
    out.mkdir(parents=True, exist_ok=True)
    created = _check_resume(out, options, infos, _plan_fingerprint(tasks)) \
        or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _shards_dir(out).mkdir(exist_ok=True)
    mine = [t for t in tasks if t.index % n == i]
    mine_names = {t.name for t in mine}
    for tmp in _shards_dir(out).glob(".tmp-*"):  # leftovers of a killed run of these shards
        if tmp.name[5:].rsplit("-", 1)[0] in mine_names:
            shutil.rmtree(tmp, ignore_errors=True)
    todo = [t for t in mine if not shard_is_complete(_shards_dir(out) / t.name)]
    manifest = _build_manifest(out, tasks, infos, options, (i, n), created, command)
    write_json_atomic(out / MANIFEST, manifest)
    logger.info("prepare: %d images in %d shards; this part %d shards, %d to do",
                sum(len(t.records) for t in tasks), len(tasks), len(mine), len(todo))

    from tqdm import tqdm

    bar = tqdm(total=sum(len(t.records) for t in todo), unit="img", disable=not progress,
               desc="prepare", file=sys.stderr, dynamic_ncols=True)
    last_write = datetime.datetime.now()

    def finished(name: str, count: int) -> None:
        nonlocal last_write
        bar.update(count)
        if on_shard is not None:
            on_shard(name)
        now = datetime.datetime.now()
        if (now - last_write).total_seconds() > 30:  # keep the manifest current on long jobs
            write_json_atomic(out / MANIFEST, _build_manifest(out, tasks, infos, options, (i, n), created, command))
            last_write = now

    try:
        args = [(t, options, out) for t in todo]
        if workers == 1 or len(todo) <= 1:
            _init_worker_threads_main()
            for a in args:
                finished(*_run_task(a))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_init_worker) as pool:
                for result in pool.imap_unordered(_run_task, args):
                    finished(*result)
    finally:
        bar.close()
        manifest = _build_manifest(out, tasks, infos, options, (i, n), created, command)
        write_json_atomic(out / MANIFEST, manifest)
    return manifest


def _init_worker_threads_main() -> None:
    """In-process run: keep OpenCV to one thread too, so --workers 1 means one core."""
    cv2.setNumThreads(1)


def merge(out: str | Path, parts: Sequence[str | Path]) -> dict:
    """Write ``out/manifest.json`` listing the shards of several prepared folders of one job.

    The parts must share options, sources and plan (e.g. the ``--shard i/n`` runs of one command);
    shards stay where they are and are referenced by relative path. A shard present in several parts
    is taken once. Returns the merged manifest (``complete`` says whether every planned shard is in).
    """
    out = Path(out)
    if not parts:
        raise ValueError("merge needs at least one prepared folder")
    manifests = []
    for p in parts:
        m, base = load_manifest(p)
        if "parts" in m:
            raise ValueError(f"{p}: a combined manifest cannot be merged again; merge the prepared folders")
        manifests.append((m, base))
    first = manifests[0][0]
    for (m, base), p in zip(manifests[1:], parts[1:]):
        for key in ("options", "plan"):
            a = first[key] if key == "options" else first[key]["fingerprint"]
            b = m[key] if key == "options" else m[key]["fingerprint"]
            if a != b:
                raise ValueError(f"{p}: its {key} differ from {parts[0]}'s; only parts of one job merge")
        if [s["name"] for s in m["sources"]] != [s["name"] for s in first["sources"]]:
            raise ValueError(f"{p}: its sources differ from {parts[0]}'s; only parts of one job merge")
    out.mkdir(parents=True, exist_ok=True)
    by_name: dict[str, dict] = {}
    skipped: list[dict] = []
    seen_skips: set[str] = set()
    by_source: dict[str, list[dict]] = {}
    names = [s["name"] for s in first["sources"]]
    for m, base in manifests:
        for s in m.get("skipped", []):
            k = repr(sorted(s.items()))
            if k not in seen_skips:
                seen_skips.add(k)
                skipped.append(s)
        for entry in m["shards"]:
            if entry["name"] in by_name:
                continue
            d = (base / entry["path"]).resolve()
            meta = _read_shard_json(d)
            by_name[entry["name"]] = {"name": entry["name"], "path": os.path.relpath(d, out.resolve()),
                                      "samples": meta["samples"], "images": len(meta["images"])}
            by_source.setdefault(names[meta["source"]], []).append(meta["counts"])
    order = {name: k for k, name in enumerate(first["plan"]["shard_names"])}
    shards = sorted(by_name.values(), key=lambda e: order.get(e["name"], len(order)))
    counts = sum_counts([c for cs in by_source.values() for c in cs])
    counts["by_source"] = {name: sum_counts(cs) for name, cs in by_source.items()}
    manifest = dict(first)
    manifest.update({
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "merged_from": [str(Path(p)) for p in parts],
        "plan": dict(first["plan"], shard_spec=[0, 1]),
        "complete": len(shards) == first["plan"]["shards"],
        "shards": shards,
        "counts": counts,
        "skipped": skipped,
    })
    write_json_atomic(out / MANIFEST, manifest)
    return manifest
