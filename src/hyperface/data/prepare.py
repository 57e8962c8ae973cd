"""The prepare job: annotated datasets -> shards of labelled candidate crops (the study's GenFace).

Plan: every source's records are sorted (by image path and frame) and cut into shards of
``images_per_shard`` images, named ``SS-CCCCC`` (source index, chunk index), so a shard is a fixed,
deterministic list of images. ``--shard i/n`` takes the shards whose global index is ``i`` mod ``n``;
a re-run skips shards already complete (each is written atomically) and redoes missing or damaged
ones, so a killed job resumes where it stopped, and shard folders of several runs merge
(:func:`~hyperface.data.merge.merge`) into the same dataset one run gives.

Per image, by ``PrepareOptions.mode``: ``candidates`` (:mod:`hyperface.data.sampling`, stage one's
data): candidates are labelled, balanced and cropped; ``aligned`` (:mod:`hyperface.data.aligned`,
stage two's): one crop per face, aligned by its five points; ``hard-negatives``
(:mod:`hyperface.data.hard_negatives`): a detector's false positives, cropped as candidates are,
with each crop's detector score in its shard's ``scores`` (``PreparedDataset.info``). An image
that cannot be decoded or sampled is reported (with its file) in the shard's ``skipped`` list and
left out; the rest of the job goes on. The train/validation split is a hash of the record's
``group`` (:func:`~hyperface.data.splits.split_of`), the same on every machine.

The names other code imports from here (:class:`PrepareOptions`, :func:`prepare`, :func:`merge`,
:func:`split_of`, :func:`open_sources`, :func:`sample_image`, :func:`image_rng`) stay importable.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hyperface import __version__, fileio
from hyperface.data.aligned import PipelineAligner, aligner_for, sample_aligned, teacher_for
from hyperface.data.candidates import extract_crop
from hyperface.data.hard_negatives import mine_hard_negatives, options_detector
from hyperface.data.images import load_image
from hyperface.data.merge import merge
from hyperface.data.readers.base import DatasetReader
from hyperface.data.records import ImageRecord
from hyperface.data.sampling import PrepareOptions, image_rng, sample_image
from hyperface.data.shards import (
    FORMAT_NAME, FORMAT_VERSION, MANIFEST, PIXELS, POSE_SOURCES, SPLITS, label_dtype, load_manifest, one_based_sources,
    read_shard_json, shard_is_complete, shard_problem, sum_counts, write_shard,
)
from hyperface.data.splits import split_of
from hyperface.data.workers import worker_pool

__all__ = [
    "PrepareOptions",
    "ShardTask",
    "split_of",
    "image_rng",
    "sample_image",
    "open_sources",
    "plan_shards",
    "process_shard",
    "prepare",
    "merge",
]

logger = logging.getLogger("hyperface.data")

# What one image may raise while it is decoded, sampled or cropped (OpenCV's errors, a degenerate
# annotation, a crop over the pixel budget, a truncated file): reported and skipped, never fatal.
_IMAGE_FAILURES = (ValueError, ArithmeticError, MemoryError, OSError, cv2.error)


@dataclass(frozen=True)
class ShardTask:
    """One shard's fixed list of images (records with their keys and splits)."""

    name: str
    index: int
    source: int
    records: tuple[ImageRecord, ...]
    keys: tuple[str, ...]
    splits: tuple[int, ...]


def _relative_key(record: ImageRecord, base: Path) -> str:
    """The record's image path relative to its dataset (machine-independent), plus '#frame'."""
    image = Path(record.image)
    try:
        rel = image.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        rel = f"{record.group}/{image.name}"
    return f"{rel}#{record.frame}" if record.frame is not None else rel


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
    """Counts of one shard: per split, per task (``pose_class``: samples with MTFL's pose class); pose label sources."""
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
            "pose_class": int((lab["pose_class"] > 0).sum()),
            "gender": int(lab["gender_mask"].sum()),
        }
    pose = labels[labels["pose_mask"]]["pose_source"]
    counts["pose_source"] = {name: int((pose == i).sum()) for i, name in enumerate(POSE_SOURCES) if i}
    return counts


def _shards_dir(out: Path) -> Path:
    return out / "shards"


def _failure(record: ImageRecord, exc: BaseException, stage: str) -> dict:
    """A ``skipped`` entry (and a log line) for one image that failed, naming its file."""
    if isinstance(exc, cv2.error):
        text = f"OpenCV: {getattr(exc, 'err', '') or str(exc).strip().splitlines()[-1]}"
    else:
        text = str(exc).removeprefix(f"{record.image}: ")
    msg = text if stage == "decode" else f"cannot sample: {text}"
    logger.warning("%s: skipped (%s)", record.key, msg)
    return {"path": str(record.image), "frame": record.frame, "line": None, "message": msg}


def _sample(image: np.ndarray, record: ImageRecord, key: str, opts: PrepareOptions,
            aligner: PipelineAligner | None = None) -> tuple[list, np.ndarray, np.ndarray | None]:
    """Crops, label rows and (hard-negatives mode) detector scores of one decoded image, by ``opts.mode``;
    ``aligner``: the shard's, for ``--align-by pipeline``."""
    if opts.mode == "aligned":
        crops, labels = sample_aligned(image, record, point_set=opts.point_set, crop_size=opts.crop_size,
                                       context=opts.context, teacher=teacher_for(opts.teacher), aligner=aligner)
        return list(crops), labels, None
    scores = None
    if opts.mode == "hard-negatives":
        boxes, labels, scores = mine_hard_negatives(image, record, options_detector(opts), opts)
    else:
        boxes, labels = sample_image(image, record, opts, image_rng(key, opts.seed))
    return [extract_crop(image, box, opts.context, opts.crop_size) for box in boxes], labels, scores


def _sample_shard(task: ShardTask, opts: PrepareOptions) -> tuple[np.ndarray, np.ndarray, dict]:
    """Crops, label rows and shard.json content of one shard's images; bad images are skipped."""
    decode = _Decoder()
    crops: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    skipped: list[dict] = []
    ok_splits: list[int] = []
    ok_faces: list[int] = []
    scores: list[float] = []
    searched = [0] * len(SPLITS)  # per split: images the detector ran on (every face annotated)
    if opts.mode == "hard-negatives":
        options_detector(opts)  # loaded here: weights that do not load stop the job, not each image
    aligner = aligner_for(opts.align_by) if opts.mode == "aligned" else None  # one per process, counts kept
    aligned_before = dict(aligner.counts) if aligner is not None else None
    try:
        for j, (record, key, split) in enumerate(zip(task.records, task.keys, task.splits)):
            try:
                image = decode(record)
            except _IMAGE_FAILURES as exc:
                skipped.append(_failure(record, exc, "decode"))
                continue
            try:
                image_crops, labels, image_scores = _sample(image, record, key, opts, aligner)
            except _IMAGE_FAILURES as exc:  # a degenerate annotation, an OpenCV failure: report, go on
                skipped.append(_failure(record, exc, "sample"))
                continue
            labels["source"] = task.source
            labels["image"] = j
            labels["split"] = split
            crops += image_crops
            if image_scores is not None:
                scores += [round(float(x), 6) for x in image_scores]
            rows.append(labels)
            ok_splits.append(split)
            ok_faces.append(len(record.faces))
            searched[split] += int(record.all_faces_annotated)
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
    if aligner is not None:  # how this shard's faces were aligned (the aligner counts per process)
        meta["counts"]["alignment"] = {k: v - aligned_before[k] for k, v in aligner.counts.items()}
    if opts.mode == "hard-negatives":
        meta["scores"] = scores  # the detector's score of each sample, in row order
        meta["counts"]["searched"] = sum(searched)
        for k, split in enumerate(SPLITS):
            meta["counts"][split]["searched"] = searched[k]
    return images, labels, meta


def process_shard(task: ShardTask, opts: PrepareOptions, out: Path) -> dict:
    """Prepare one shard (in a worker) and write it atomically; returns its shard.json content.

    A complete shard is kept; a damaged one (a file missing or truncated) is redone and replaced.
    """
    final = _shards_dir(out) / task.name
    problem = shard_problem(final)
    if problem is None:
        return read_shard_json(final)
    damaged = final.exists()
    if damaged:
        logger.warning("%s: damaged shard (%s): preparing it again", final, problem)
    images, labels, meta = _sample_shard(task, opts)
    try:
        write_shard(final, images, labels, meta, overwrite=damaged)
    except OSError:
        if not shard_is_complete(final):  # another run finished the same (identical) shard first
            raise
    return read_shard_json(final)


def _run_task(args: tuple[ShardTask, PrepareOptions, Path]) -> tuple[str, int]:
    task, opts, out = args
    process_shard(task, opts, out)
    return task.name, len(task.records)


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
        meta = read_shard_json(d)
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
        "pixels": PIXELS,
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
    if one_based := one_based_sources(old):
        raise ValueError(f"{out} holds a job prepared before 0.20, whose labels of {', '.join(one_based)} are "
                         f"1-based (today's are 0-based pixels: docs/training.md, 'Pixel coordinates'); "
                         f"use another --out")
    # Options added since the old job was written are at their defaults there.
    old_options = {**PrepareOptions().to_dict(), **old.get("options", {})}
    if old_options != opts.to_dict():
        diff = sorted(k for k in set(old_options) | set(opts.to_dict()) if old_options.get(k) != opts.to_dict().get(k))
        raise ValueError(f"{out} holds a job prepared with other options ({', '.join(diff)}); "
                         f"use another --out, or the same options to resume")
    old_sources = [(s["format"], s["name"]) for s in old.get("sources", [])]
    if old_sources != [(s.format, s.name) for s in infos]:
        raise ValueError(f"{out} holds a job with other sources ({old_sources}); use another --out")
    if old.get("plan", {}).get("fingerprint") != fingerprint:
        raise ValueError(f"{out}: the sources' images changed since this job was planned; use another --out")
    return old.get("created")


def _temporary_owner(name: str) -> str:
    """The shard a temporary folder was for: ``.NAME.HEX.tmp`` (fileio) or ``.tmp-NAME-HEX`` (older runs)."""
    if name.startswith(".tmp-"):
        return name[5:].rsplit("-", 1)[0]
    return name[1:].split(".", 1)[0]


def _remove_temporaries(out: Path, names: set[str]) -> None:
    """Leftovers of a killed run of these shards."""
    for tmp in _shards_dir(out).glob(".*"):
        if tmp.is_dir() and _temporary_owner(tmp.name) in names:
            shutil.rmtree(tmp, ignore_errors=True)


class _Progress:
    """The progress bar, the ``on_shard`` hook and a manifest kept current on long jobs."""

    def __init__(self, total: int, enabled: bool, on_shard: Callable[[str], None] | None,
                 write_manifest: Callable[[], dict]) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="img", disable=not enabled, desc="prepare", file=sys.stderr,
                        dynamic_ncols=True)
        self.on_shard = on_shard
        self.write_manifest = write_manifest
        self.last_write = datetime.datetime.now()

    def __call__(self, name: str, count: int) -> None:
        self.bar.update(count)
        if self.on_shard is not None:
            self.on_shard(name)
        now = datetime.datetime.now()
        if (now - self.last_write).total_seconds() > 30:
            self.write_manifest()
            self.last_write = now


def _run(todo: Sequence[ShardTask], options: PrepareOptions, out: Path, workers: int,
         finished: Callable[[str, int], None]) -> None:
    args = [(t, options, out) for t in todo]
    if workers == 1 or len(todo) <= 1:
        cv2.setNumThreads(1)  # in-process run: one core too (the caller's setting is restored after)
        for a in args:
            finished(*_run_task(a))
    else:
        with worker_pool(min(workers, len(todo))) as pool:
            for result in pool.imap_unordered(_run_task, args):
                finished(*result)


def prepare(sources: Sequence[str | DatasetReader], out: str | Path, options: PrepareOptions = PrepareOptions(),
            *, workers: int = 1, shard: tuple[int, int] = (0, 1), progress: bool = True,
            command: list[str] | None = None,
            on_shard: Callable[[str], None] | None = None) -> dict:
    """Prepare ``sources`` into ``out`` (resuming a compatible job there); returns the manifest.

    ``shard=(i, n)`` does only the i-th of n parts. ``workers`` > 1 uses that many spawned
    processes. ``on_shard`` is called with each finished shard's name (tests, progress hooks).
    OpenCV's thread count is set to one while it runs and restored when it returns. The pixel
    budgets are :mod:`hyperface.data.images`' (see :func:`~hyperface.data.images.pixel_limits`).
    """
    out = Path(out)
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {i}/{n}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if options.teacher != "none":  # a wrong path: an error now, before anything is written to ``out``
        from hyperface.inference.assets import resolve_weights

        resolve_weights(None if options.teacher == "bundled" else options.teacher)
    specs = [s if isinstance(s, str) else None for s in sources]
    readers = open_sources(sources)
    tasks, infos = plan_shards(readers, options,
                               [s or getattr(r, "source", f"{r.format}:{r.path}") for s, r in zip(specs, readers)])
    out.mkdir(parents=True, exist_ok=True)
    created = _check_resume(out, options, infos, _plan_fingerprint(tasks)) \
        or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _shards_dir(out).mkdir(exist_ok=True)
    mine = [t for t in tasks if t.index % n == i]
    _remove_temporaries(out, {t.name for t in mine})
    todo = [t for t in mine if not shard_is_complete(_shards_dir(out) / t.name)]

    def write_manifest() -> dict:
        manifest = _build_manifest(out, tasks, infos, options, (i, n), created, command)
        fileio.write_json(out / MANIFEST, manifest)
        return manifest

    write_manifest()
    logger.info("prepare: %d images in %d shards; this part %d shards, %d to do",
                sum(len(t.records) for t in tasks), len(tasks), len(mine), len(todo))
    finished = _Progress(sum(len(t.records) for t in todo), progress, on_shard, write_manifest)
    threads = cv2.getNumThreads()
    try:
        _run(todo, options, out, workers, finished)
    finally:
        cv2.setNumThreads(threads)
        finished.bar.close()
        manifest = write_manifest()
    return manifest
