"""``hyperface analyze INPUT...``: faces in images, folders (recursively, images only) and videos.

Writes one JSON object per image or video frame (``--json``), annotated pictures and videos
(``--draw``); an unreadable image or video frame is reported with its path (and frame) and skipped.
Exit status 1 when any input failed, else 0.

JSON line schema: ``{"input": PATH, "frame": INT or null, "width": W, "height": H,
"faces": [Face.to_dict(), ...]}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from hyperface.data.images import IMAGE_SUFFIXES, ImageReadError, load_image
from hyperface.data.video import VIDEO_SUFFIXES, VideoFrames

log = logging.getLogger("hyperface.analyze")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="images, folders (searched recursively for "
                        "images) and videos")
    parser.add_argument("--example", action="store_true", help="analyse the bundled example photo")
    parser.add_argument("--weights", help="weights file (.safetensors; .onnx with --backend onnx); default: the "
                        "bundled hyperface-compact")
    parser.add_argument("--proposals", default="fast", metavar="SOURCE",
                        help="candidate source: fast (default), selective-search, or boxes:FILE (JSON / JSON lines / "
                        "text boxes per image from another detector)")
    parser.add_argument("--json", type=Path, metavar="OUT.jsonl", help="write one JSON object per image / frame")
    parser.add_argument("--draw", type=Path, metavar="DIR", help="write annotated images (and videos) here")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="network runtime")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="images or frames per batch")
    parser.add_argument("--score-threshold", type=float, default=None, help="minimum face score")
    parser.add_argument("--irp-rounds", type=int, default=None, help="IRP rounds")
    parser.add_argument("--max-side", type=int, default=None, help="longest side the analysis works at")
    parser.add_argument("--min-face", type=float, default=None, help="smallest face (pixels) the fast source looks for")
    parser.add_argument("--smooth", action="store_true", help="smooth video results over time (One-Euro filter)")
    parser.add_argument("--smooth-cutoff", type=float, default=1.0, help="One-Euro min cutoff in Hz (lower: smoother)")
    parser.add_argument("--smooth-beta", type=float, default=0.5, help="One-Euro speed coefficient (higher: less lag)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# ------------------------------------------------------------------------------------------ inputs


def expand_inputs(inputs: list[str]) -> tuple[list[tuple[Path, str, Path]], list[str]]:
    """(path, "image" | "video", base for output names) per item, and error messages for bad inputs."""
    items, errors = [], []
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                log.warning("%s: folder holds no images", p)
            items += [(f, "image", p) for f in found]
        elif p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            items.append((p, "video", p.parent))
        elif p.is_file():
            items.append((p, "image", p.parent))
        else:
            errors.append(f"{p}: no such file or folder")
    return items, errors


class _JsonLines:
    """Line-flushed JSON lines in a temporary file beside the target, renamed into place at the end."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fh: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            self.fh = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, obj: dict) -> None:
        if self.fh is not None:
            self.fh.write(json.dumps(obj) + "\n")
            self.fh.flush()

    def close(self, keep: bool = True) -> None:
        if self.fh is None:
            return
        self.fh.close()
        self.fh = None
        if keep:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def _record(path: Path, frame: int | None, image: np.ndarray, faces) -> dict:
    return {"input": str(path), "frame": frame, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": [f.to_dict() for f in faces]}


def _draw_path(draw_dir: Path, path: Path, base: Path, suffix: str) -> Path:
    try:
        rel = path.relative_to(base)
    except ValueError:
        rel = Path(path.name)
    return draw_dir / rel.with_name(rel.stem + suffix)


def _write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: cannot write image")
    os.replace(tmp, path)


def _batches(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


# ------------------------------------------------------------------------------------------ run


def _analyze_images(analyzer, items, args, out: _JsonLines, bar) -> tuple[int, int, int]:
    from hyperface.inference.draw import draw_faces

    failures = n_images = n_faces = 0
    for chunk in _batches(items, max(1, args.batch_size)):
        loaded = []
        for path, _, base in chunk:
            try:
                loaded.append((path, base, load_image(path)))
            except ImageReadError as exc:
                log.error("%s", exc)
                failures += 1
        if loaded:
            results = analyzer.batch([im for _, _, im in loaded], keys=[str(p) for p, _, _ in loaded])
            for (path, base, image), faces in zip(loaded, results):
                out.write(_record(path, None, image, faces))
                n_images += 1
                n_faces += len(faces)
                if args.draw is not None:
                    _write_image(_draw_path(args.draw, path, base, ".faces.jpg"), draw_faces(image, faces))
        bar.update(len(chunk))
    return failures, n_images, n_faces


def _analyze_video(analyzer, path: Path, base: Path, args, out: _JsonLines, progress: bool) -> tuple[int, int, int]:
    from tqdm import tqdm

    from hyperface.inference.draw import draw_faces
    from hyperface.inference.smoothing import FaceSmoother

    failures = n_frames = n_faces = 0
    try:
        video = VideoFrames(path)
    except ImageReadError as exc:
        log.error("%s", exc)
        return 1, 0, 0
    writer = None
    draw_path = tmp = None
    smoother = FaceSmoother(video.fps, args.smooth_cutoff, args.smooth_beta) if args.smooth else None
    count = video.frame_count
    bar = tqdm(total=count or None, unit="frame", desc=path.name, disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        frame, pending = 0, []

        def flush() -> None:
            nonlocal writer, n_frames, n_faces, draw_path, tmp
            if not pending:
                return
            results = analyzer.batch([im for _, im in pending], keys=[f"{path}#{i}" for i, _ in pending])
            for (i, image), faces in zip(pending, results):
                if smoother is not None:
                    faces = smoother(faces)
                out.write(_record(path, i, image, faces))
                n_frames += 1
                n_faces += len(faces)
                if args.draw is not None:
                    if writer is None:
                        draw_path = _draw_path(args.draw, path, base, ".faces.mp4")
                        draw_path.parent.mkdir(parents=True, exist_ok=True)
                        tmp = draw_path.with_name(f".{draw_path.stem}.tmp.mp4")
                        fps = video.fps if video.fps > 0 else 25.0
                        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                                 (image.shape[1], image.shape[0]))
                    writer.write(cv2.cvtColor(draw_faces(image, faces), cv2.COLOR_RGB2BGR))
            pending.clear()

        consecutive = 0
        while count == 0 or frame < count:
            try:
                image = video.read(frame)
                consecutive = 0
                pending.append((frame, image))
                if len(pending) >= max(1, args.batch_size):
                    flush()
            except ImageReadError as exc:
                if count == 0:  # the container gives no length: a failed read is the end
                    break
                log.error("%s", exc)
                failures += 1
                consecutive += 1
                if consecutive >= 25:
                    log.error("%s: giving up after %d unreadable frames in a row", path, consecutive)
                    break
            frame += 1
            bar.update(1)
        flush()
    finally:
        bar.close()
        video.close()
        if writer is not None:
            writer.release()
            os.replace(tmp, draw_path)
    return failures, n_frames, n_faces


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hyperface.inference import FaceAnalyzer
    from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

    inputs = list(args.inputs)
    if args.example:
        inputs.append(str(asset_path(EXAMPLE_IMAGE)))
    if not inputs:
        print("hyperface analyze: give at least one INPUT (image, folder or video), or --example", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print("hyperface analyze: --batch-size must be >= 1", file=sys.stderr)
        return 2
    items, errors = expand_inputs(inputs)
    for e in errors:
        log.error("%s", e)
    options = {k: v for k, v in (("score_threshold", args.score_threshold), ("irp_rounds", args.irp_rounds),
                                 ("max_side", args.max_side)) if v is not None}
    proposal_options = {"min_face": args.min_face} if args.min_face is not None and args.proposals == "fast" else None
    try:
        analyzer = FaceAnalyzer(weights=args.weights, device=args.device, proposals=args.proposals,
                                backend=args.backend, proposal_options=proposal_options, **options)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"hyperface analyze: {exc}", file=sys.stderr)
        return 1
    log.info("%r", analyzer)
    out = _JsonLines(args.json)
    failures, n_items, n_faces = len(errors), 0, 0
    progress = not args.no_progress
    try:
        images = [it for it in items if it[1] == "image"]
        if images:
            with tqdm(total=len(images), unit="img", desc="images", disable=not progress or len(images) < 2,
                      file=sys.stderr, dynamic_ncols=True) as bar:
                f, n, k = _analyze_images(analyzer, images, args, out, bar)
            failures, n_items, n_faces = failures + f, n_items + n, n_faces + k
        for path, _, base in (it for it in items if it[1] == "video"):
            f, n, k = _analyze_video(analyzer, path, base, args, out, progress)
            failures, n_items, n_faces = failures + f, n_items + n, n_faces + k
    finally:
        out.close(keep=True)
    print(f"analysed {n_items} image(s)/frame(s), {n_faces} face(s), {failures} failure(s)"
          + (f"; JSON: {args.json}" if args.json else "") + (f"; pictures: {args.draw}" if args.draw else ""))
    return 1 if failures else 0
