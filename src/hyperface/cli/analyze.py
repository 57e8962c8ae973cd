"""``hyperface analyze INPUT...``: faces in images, folders (recursively, images only) and videos.

Writes one JSON object per image or video frame (``--json``), annotated pictures and videos
(``--draw``); an unreadable image or video frame is reported with its path (and frame) and skipped.
Exit status 1 when any input failed, else 0; 2 for a usage error (found before any work: an output
that is a folder or an input, a bad setting); 130 when interrupted.

Outputs never replace an input or each other: drawn names are made unique (``a.jpg`` and ``a.png``
draw to ``a.jpg.faces.jpg`` and ``a.png.faces.jpg``), and the JSON lines go to a temporary file that
replaces ``--json`` only when the run ends, so Ctrl-C leaves an earlier complete file as it was.

JSON line schema: ``{"input": PATH, "frame": INT or null, "width": W, "height": H,
"faces": [Face.to_dict(), ...]}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image

from hyperface import fileio
from hyperface.cli.outputs import FileSet, UsageError, check_output_file, check_output_folder
from hyperface.data.images import IMAGE_SUFFIXES, ImageReadError, load_image
from hyperface.data.video import VIDEO_SUFFIXES

log = logging.getLogger("hyperface.analyze")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hyperface.inference.proposals import DEFAULT_PROPOSALS

    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="images, folders (searched recursively for "
                        "images) and videos")
    parser.add_argument("--example", action="store_true", help="analyse the bundled example photo")
    parser.add_argument("--weights", help="weights file (.safetensors; .onnx with --backend onnx); default: the "
                        "bundled hyperface-compact")
    parser.add_argument("--proposals", default=DEFAULT_PROPOSALS, metavar="SOURCE",
                        help="candidate source: fast (default; fast:DIR: the networks of train-proposals --out DIR), "
                        "detector (detector:PATH: weights written by train-detector, or their folder), "
                        "selective-search, or boxes:FILE (JSON / JSON lines / text boxes per image from another "
                        "detector)")
    parser.add_argument("--json", type=Path, metavar="OUT.jsonl", help="write one JSON object per image / frame")
    parser.add_argument("--draw", type=Path, metavar="DIR", help="write annotated images (and videos) here")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                        help="network runtime: auto = onnxruntime on the CPU where it is installed, else PyTorch")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads of onnxruntime and PyTorch (default: their own choice)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="images or frames per batch")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help="minimum face score (default: 0.6 for scores fused with the detector's, else 0.5)")
    parser.add_argument("--irp-rounds", type=int, default=None, help="IRP rounds")
    parser.add_argument("--max-side", type=int, default=None, help="longest side the analysis works at")
    parser.add_argument("--min-face", type=float, default=None,
                        help="smallest face (pixels) the fast or detector source looks for")
    parser.add_argument("--stage-two", default="auto", metavar="auto|none|bundled|WEIGHTS",
                        help="the aligned-face network that refines landmarks, pose and gender (auto: the bundled "
                             "one with the bundled model)")
    parser.add_argument("--iterations", type=int, default=1, metavar="N",
                        help="stage two: align on the refined points and run again, N rounds in all")
    parser.add_argument("--flip-average", action="store_true",
                        help="stage two: average with the mirrored face (about twice its cost)")
    parser.add_argument("--pose-from", choices=("auto", "branch", "landmarks", "mean"), default="auto",
                        help="stage two's head pose: its pose branch, the PnP of its 68 points, or their mean "
                             "(auto: the PnP when it has 68 points, measured the better)")
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


# ------------------------------------------------------------------------------------------ outputs


def draw_paths(items: list[tuple[Path, str, Path]], draw_dir: Path) -> list[Path]:
    """The drawn output of each item under ``draw_dir``: unique, and the same for the same inputs.

    ``DIR/REL/a.jpg`` draws to ``draw_dir/REL/a.faces.jpg`` (videos to ``.faces.mp4``); inputs that
    would share a name keep their own suffix (``a.jpg.faces.jpg``, ``a.png.faces.jpg``), and any
    name still taken gets a number (``a.jpg.faces.2.jpg``), in input order.
    """
    def relative(path: Path, base: Path) -> Path:
        try:
            return path.relative_to(base)
        except ValueError:
            return Path(path.name)

    suffixes = {"image": ".faces.jpg", "video": ".faces.mp4"}
    rels = [(relative(p, base), suffixes[kind]) for p, kind, base in items]
    plain = [draw_dir / rel.with_name(rel.stem + suffix) for rel, suffix in rels]
    shared = Counter(str(p).casefold() for p in plain)
    used: set[str] = set()
    out = []
    for target, (rel, suffix) in zip(plain, rels):
        if shared[str(target).casefold()] > 1:
            target = draw_dir / rel.with_name(rel.name + suffix)
        name, n = target, 1
        while str(name).casefold() in used:
            n += 1
            name = target.with_name(f"{target.name[:-len(suffix)]}{suffix[:-4]}.{n}{suffix[-4:]}")
        used.add(str(name).casefold())
        out.append(name)
    return out


def check_outputs(items: list[tuple[Path, str, Path]], json_path: Path | None,
                  draw_dir: Path | None) -> list[Path | None]:
    """Check every output before any work; returns each item's drawn output (None without ``--draw``).

    Raises :class:`UsageError` for an output that is a folder where a file is needed (or the
    reverse), cannot be created, or is one of the inputs; creates the output folders.
    """
    inputs = FileSet(p for p, _, _ in items)
    if json_path is not None:
        check_output_file(json_path, "--json", inputs)
    if draw_dir is None:
        return [None] * len(items)
    draws = draw_paths(items, draw_dir)
    json_file = FileSet([json_path] if json_path is not None else [])
    for (path, _, _), target in zip(items, draws):
        if target in inputs:
            raise UsageError(f"--draw: the picture drawn for {path} would be written to {target}, which is one "
                             f"of the inputs; choose another --draw folder")
        if target in json_file:
            raise UsageError(f"--draw: the picture drawn for {path} would be written to the --json file {target}")
    check_output_folder(draw_dir, "--draw")
    return draws


class _JsonLines:
    """JSON lines into a temporary file beside ``--json`` that replaces it only when the run ends cleanly."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stack = contextlib.ExitStack()
        self.fh: IO[str] | None = None

    def __enter__(self) -> _JsonLines:
        if self.path is not None:
            self.fh = self._stack.enter_context(fileio.atomic_open(self.path, "w"))
        return self

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)

    def write(self, obj: dict) -> None:
        if self.fh is not None:
            self.fh.write(json.dumps(obj) + "\n")
            self.fh.flush()


class _VideoWriter:
    """Drawn frames into ``path`` (mp4; nothing when None), renamed into place when closed cleanly."""

    def __init__(self, path: Path | None, fps: float) -> None:
        self.path, self.fps = path, fps
        self._stack = contextlib.ExitStack()
        self._writer = None

    def write(self, rgb: np.ndarray) -> None:
        if self.path is None:
            return
        if self._writer is None:  # opened on the first frame: a video without frames leaves no file
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._stack.enter_context(fileio.atomic_path(self.path))
            self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           (rgb.shape[1], rgb.shape[0]))
            self._stack.callback(self._writer.release)  # runs before the rename
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def __enter__(self) -> _VideoWriter:
        return self

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)


def _record(path: Path, frame: int | None, image: np.ndarray, faces) -> dict:
    return {"input": str(path), "frame": frame, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": [f.to_dict() for f in faces]}


def _write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: cannot write image")


def _batches(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


# ------------------------------------------------------------------------------------------ run


def _load(path: Path) -> np.ndarray | None:
    """The image, or None (reported) when it cannot be read: one bad file never stops the batch."""
    try:
        return load_image(path)
    except ImageReadError as exc:
        log.error("%s", exc)
    except Image.DecompressionBombError as exc:  # pixel budget exceeded (a tiny file can decode to gigabytes)
        log.error("%s: %s", path, exc)
    return None


def _analyze_images(analyzer, items, args, out: _JsonLines, bar) -> tuple[int, int, int]:
    from hyperface.inference.draw import draw_faces

    failures = n_images = n_faces = 0
    for chunk in _batches(items, args.batch_size):
        loaded = []
        for path, _, draw in chunk:
            image = _load(path)
            if image is None:
                failures += 1
            else:
                loaded.append((path, draw, image))
        if loaded:
            results = analyzer.batch([im for _, _, im in loaded], keys=[str(p) for p, _, _ in loaded])
            for (path, draw, image), faces in zip(loaded, results):
                out.write(_record(path, None, image, faces))
                n_images += 1
                n_faces += len(faces)
                if draw is not None:
                    _write_image(draw, draw_faces(image, faces))
        bar.update(len(chunk))
    return failures, n_images, n_faces


def _analyze_video(analyzer, path: Path, draw: Path | None, args, out: _JsonLines,
                   progress: bool) -> tuple[int, int, int]:
    from tqdm import tqdm

    from hyperface.inference.draw import draw_faces

    failures = n_frames = n_faces = 0
    try:
        video = analyzer.video(path, smooth=args.smooth, min_cutoff=args.smooth_cutoff, beta=args.smooth_beta,
                               batch_size=args.batch_size)
    except ImageReadError as exc:
        log.error("%s", exc)
        return 1, 0, 0
    with video, _VideoWriter(draw, video.fps) as writer, \
            tqdm(total=video.frame_count or None, unit="frame", desc=path.name, disable=not progress,
                 file=sys.stderr, dynamic_ncols=True) as bar:
        for frame in video:
            bar.update(1)
            if frame.error is not None:
                log.error("%s", frame.error)
                failures += 1
                continue
            out.write(_record(path, frame.index, frame.image, frame.faces))
            n_frames += 1
            n_faces += len(frame.faces)
            if draw is not None:
                writer.write(draw_faces(frame.image, frame.faces))
    return failures, n_frames, n_faces


def _analyze_all(analyzer, items, args, out: _JsonLines) -> tuple[int, int, int]:
    """(failures, images and frames analysed, faces) over all items (path, kind, drawn output)."""
    from tqdm import tqdm

    progress = not args.no_progress
    failures = n_items = n_faces = 0
    images = [it for it in items if it[1] == "image"]
    if images:
        with tqdm(total=len(images), unit="img", desc="images", disable=not progress or len(images) < 2,
                  file=sys.stderr, dynamic_ncols=True) as bar:
            failures, n_items, n_faces = _analyze_images(analyzer, images, args, out, bar)
    for path, _, draw in (it for it in items if it[1] == "video"):
        f, n, k = _analyze_video(analyzer, path, draw, args, out, progress)
        failures, n_items, n_faces = failures + f, n_items + n, n_faces + k
    return failures, n_items, n_faces


def _check_settings(args: argparse.Namespace) -> None:
    """Settings a run cannot start with, as :class:`UsageError` (before the models load)."""
    from hyperface.runtime import RuntimeOptions, parse_device

    if args.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    if args.iterations < 1:
        raise UsageError(f"--iterations must be >= 1, got {args.iterations}")
    if args.min_face is not None and not args.min_face > 0:
        raise UsageError(f"--min-face must be a positive number of pixels, got {args.min_face:g}")
    try:
        parse_device(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None
    try:
        options = RuntimeOptions(args.backend, args.device, args.threads)
    except (ValueError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    if options.engine == "torch":  # a GPU PyTorch cannot see is a usage error, not a traceback later
        try:
            options.torch_device()
        except ValueError as exc:
            raise UsageError(f"--device: {exc}") from None


def _build_analyzer(args: argparse.Namespace):
    from hyperface.inference import FaceAnalyzer

    options = {k: v for k, v in (("score_threshold", args.score_threshold), ("irp_rounds", args.irp_rounds),
                                 ("max_side", args.max_side)) if v is not None}
    # the source decides whether it takes min_face (a ValueError naming the source when it does not)
    proposal_options = {"min_face": args.min_face} if args.min_face is not None else None
    try:
        return FaceAnalyzer(weights=args.weights, device=args.device, proposals=args.proposals,
                            backend=args.backend, threads=args.threads, proposal_options=proposal_options,
                            stage_two=args.stage_two, iterations=args.iterations, flip_average=args.flip_average,
                            pose_from=args.pose_from, **options)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"hyperface analyze: {exc}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

    inputs = list(args.inputs)
    if args.example:
        inputs.append(str(asset_path(EXAMPLE_IMAGE)))
    if not inputs:
        print("hyperface analyze: give at least one INPUT (image, folder or video), or --example", file=sys.stderr)
        return 2
    items, errors = expand_inputs(inputs)
    try:
        _check_settings(args)
        draws = check_outputs(items, args.json, args.draw)
    except UsageError as exc:
        print(f"hyperface analyze: {exc}", file=sys.stderr)
        return 2
    for e in errors:
        log.error("%s", e)
    planned = [(path, kind, draw) for (path, kind, _), draw in zip(items, draws)]
    try:
        analyzer = _build_analyzer(args)
        if analyzer is None:
            return 1
        log.info("%r", analyzer)
        with _JsonLines(args.json) as out:
            failures, n_items, n_faces = _analyze_all(analyzer, planned, args, out)
    except KeyboardInterrupt:
        if args.json is None:
            kept = ""
        elif args.json.exists():
            kept = f"; {args.json} left as it was (this run's results were not written)"
        else:
            kept = f"; {args.json} not written"
        print(f"hyperface analyze: interrupted{kept}", file=sys.stderr)
        return 130
    failures += len(errors)
    print(f"analysed {n_items} image(s)/frame(s), {n_faces} face(s), {failures} failure(s)"
          + (f"; JSON: {args.json}" if args.json else "") + (f"; pictures: {args.draw}" if args.draw else ""))
    return 1 if failures else 0
