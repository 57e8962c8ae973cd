"""``hyperface analyze INPUT...``: faces in images, folders (recursively: images and videos) and videos.

Writes one JSON object per image or video frame (``--json OUT``, ``--json -`` for standard output;
schema in :mod:`hyperface.cli.results`), annotated pictures and videos (``--draw``). Lines are
written as each image or frame is done, into ``OUT.partial``, renamed to ``OUT`` when the run ends;
``--resume`` continues a run that was cut short; ``--workers N`` analyses with N processes.

Exit status: 1 when any input failed (each failure is a line with its ``error``, and one line on
stderr), else 0; 2 for a mistake found before any work (a missing input, a bad setting, an output
that is a folder, a device or one of the inputs, models that cannot be loaded); 130 when
interrupted. A failure to write one image's drawn picture is that image's failure, never the run's.

Outputs never replace an input or each other: every file the command reads (inputs, weights,
boxes files) is collected in one :class:`~hyperface.cli.outputs.Inputs` and checked against every
output; drawn names are made unique (``a.jpg`` and ``a.png`` draw to ``a.jpg.faces.jpg`` and
``a.png.faces.jpg``).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from hyperface import fileio
from hyperface.cli.analyze_tasks import Item, Task, TaskOptions, make_tasks
from hyperface.cli.outputs import STDOUT, Inputs, UsageError, check_output_file, check_output_folder
from hyperface.cli.results import ResultsFile, ResultsWriteError, partial_path

log = logging.getLogger("hyperface.analyze")

#: Images (or video frames) per network batch when ``--batch-size`` is not given.
DEFAULT_BATCH_SIZE = 8
#: Devices the analyzer runs on; anything else is refused before the models load.
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
#: Files that macOS leaves beside copied files (AppleDouble metadata): skipped in folders.
_MACOS_METADATA = "._"


def _code_defaults() -> dict:
    """Defaults shown in the help, read from the code that applies them (never written twice); a
    keyword the code no longer declares is left out of the help rather than guessed."""
    from hyperface.inference.analyzer import DEFAULT_SCORE_THRESHOLD, FUSED_SCORE_THRESHOLD, IRP_ROUNDS, FaceAnalyzer
    from hyperface.inference.proposals import DEFAULT_PROPOSALS, SOURCES

    def default(fn, name):
        param = inspect.signature(fn).parameters.get(name)
        return None if param is None or param.default is param.empty else param.default

    min_face = {s: default(cls, "min_face") for s, cls in SOURCES.items()}
    return {"proposals": DEFAULT_PROPOSALS, "score": DEFAULT_SCORE_THRESHOLD, "fused": FUSED_SCORE_THRESHOLD,
            "irp_rounds": IRP_ROUNDS, "max_side": default(FaceAnalyzer, "max_side"),
            "min_face": {s: v for s, v in min_face.items() if v is not None},
            "cutoff": default(FaceAnalyzer.video, "min_cutoff"), "beta": default(FaceAnalyzer.video, "beta")}


def _said(value, text: str = "default {}") -> str:
    """`` (default X)`` for a known default, else nothing."""
    return "" if value is None else f" ({text.format(value)})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _code_defaults()
    min_faces = ", ".join(f"{v:g} for {s}" for s, v in d["min_face"].items()) or None
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="images, videos, and folders (searched "
                        "recursively for images and videos)")
    parser.add_argument("--example", action="store_true", help="analyse the bundled example photo")
    parser.add_argument("--weights", help="weights file (.safetensors; .onnx with --backend onnx); default: the "
                        "bundled hyperface-compact")
    parser.add_argument("--proposals", default=d["proposals"], metavar="SOURCE",
                        help=f"candidate source (default: {d['proposals']}): detector (detector:PATH: weights "
                        "written by train-detector, or their folder), fast (fast:DIR: the networks of "
                        "train-proposals --out DIR), selective-search, or boxes:FILE (JSON / JSON lines / text "
                        "boxes per image from another detector)")
    parser.add_argument("--pipeline", choices=("paper", "direct"), default="paper",
                        help="paper (default): HyperFace's stage one on every candidate, IRP, L-NMS, then stage two; "
                             "direct: a detector that finds five points gives the faces and stage two aligns them "
                             "(the bundled detector finds them; so does one trained with train-detector --points)")
    parser.add_argument("--json", metavar="OUT.jsonl", help="write one JSON object per image / frame, as each is "
                        "done ('-': standard output)")
    parser.add_argument("--resume", action="store_true", help="continue an unfinished run (OUT.jsonl.partial), "
                        "or add to a finished OUT.jsonl only what it lacks: inputs already there are skipped")
    parser.add_argument("--draw", type=Path, metavar="DIR", help="write annotated images (and videos) here")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="analyse with N processes (default 1); each gets cores / N threads unless --threads")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="analyse the images on a Ray cluster (Ray Data; pip install \"hyperface[ray]\"): at "
                             "ADDRESS, else $RAY_ADDRESS, else a local Ray; --json OUT.jsonl or OUT.parquet")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                        help="network runtime: auto = onnxruntime on the CPU where it is installed, else PyTorch")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads of each process's runtimes (default: theirs with one worker, "
                             "cores / N with N workers)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help=f"images or frames per batch (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help=f"minimum face score (default: {d['fused']:g} for scores fused with the candidate "
                             f"source's (detector), else {d['score']:g})")
    parser.add_argument("--irp-rounds", type=int, default=None,
                        help=f"IRP rounds (default {d['irp_rounds']['detector']} after the detector, "
                             f"{d['irp_rounds']['windows']} after fast or selective search and "
                             f"{d['irp_rounds']['given']} for given boxes)")
    parser.add_argument("--max-side", type=int, default=None,
                        help="longest side the analysis works at" + _said(d["max_side"]))
    parser.add_argument("--min-face", type=float, default=None,
                        help="smallest face (pixels) the fast or detector source looks for" + _said(min_faces))
    parser.add_argument("--stage-two", default="auto", metavar="auto|none|bundled|WEIGHTS",
                        help="the aligned-face network that refines landmarks, pose and gender (auto: the bundled "
                             "one with the bundled model)")
    add_stage_two_arguments(parser)
    parser.add_argument("--smooth", action="store_true", help="smooth video results over time (One-Euro filter)")
    parser.add_argument("--smooth-cutoff", type=float, default=None,
                        help="One-Euro min cutoff in Hz, > 0 (lower: smoother)" + _said(d["cutoff"]))
    parser.add_argument("--smooth-beta", type=float, default=None,
                        help="One-Euro speed coefficient, >= 0 (higher: less lag)" + _said(d["beta"]))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_stage_two_arguments(parser: argparse.ArgumentParser) -> None:
    """Stage two's options (``analyze`` and ``evaluate`` take the same ones)."""
    from hyperface.inference.analyzer import (  # the defaults the help states
        DIRECT_ITERATIONS,
        FLIP_AVERAGE,
        FLIP_AVERAGE_WITH_FINE,
    )
    parser.add_argument("--iterations", type=int, default=None, metavar="N",
                        help="stage two: align on the refined points and run again, N rounds in all (default: 1 in "
                             f"the paper pipeline, {DIRECT_ITERATIONS} in the direct pipeline: "
                             "hyperface.inference.analyzer.DIRECT_ITERATIONS)")
    parser.add_argument("--flip-average", action=argparse.BooleanOptionalAction, default=None,
                        help="stage two: average with the mirrored face, one more crop per face in the same "
                             "call (default: per pipeline, hyperface.inference.analyzer.FLIP_AVERAGE: "
                             + ", ".join(f"{'on' if on else 'off'} in the {p} one" for p, on in FLIP_AVERAGE.items())
                             + f"; {'on' if FLIP_AVERAGE_WITH_FINE['stage_two'] else 'off'} when a fine landmark "
                             "network follows: FLIP_AVERAGE_WITH_FINE)")
    parser.add_argument("--fine", default="auto", metavar="auto|none|bundled|WEIGHTS",
                        help="stage two's fine landmark network, run on each face aligned by stage two's points "
                             "(auto: the pipeline's, with the pipeline's stage two)")
    parser.add_argument("--fine-flip-average", action=argparse.BooleanOptionalAction, default=None,
                        help="the fine landmark network: average with the mirrored face, about 0.9 ms a face more "
                             f"(default {'on' if FLIP_AVERAGE_WITH_FINE['fine'] else 'off'}: "
                             "hyperface.inference.analyzer.FLIP_AVERAGE_WITH_FINE)")
    parser.add_argument("--pose-from", choices=("auto", "branch", "landmarks", "mean"), default="auto",
                        help="stage two's head pose: its pose branch, the PnP of its 68 points, or their mean "
                             "(auto: the PnP when it has 68 points, measured the better)")


def stage_two_settings(args: argparse.Namespace) -> dict:
    """``FaceAnalyzer`` keyword arguments of :func:`add_stage_two_arguments`' options."""
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be at least 1, got {args.iterations}")
    return dict(iterations=args.iterations, flip_average=args.flip_average, pose_from=args.pose_from,
                fine=None if args.fine == "none" else args.fine, fine_flip_average=args.fine_flip_average)


# ------------------------------------------------------------------------------------------ settings


def _check_settings(args: argparse.Namespace) -> None:
    """Settings a run cannot start with, as :class:`UsageError` naming the option (before any work)."""
    def need(ok: bool, option: str, rule: str, value) -> None:
        if not ok:
            raise UsageError(f"{option} must be {rule}, got {value}")

    stage_two_settings(args)  # checks its options
    need(args.batch_size >= 1, "--batch-size", "at least 1", args.batch_size)
    need(args.workers >= 1, "--workers", "at least 1", args.workers)
    need(args.threads is None or args.threads >= 1, "--threads", "at least 1", args.threads)
    need(args.irp_rounds is None or args.irp_rounds >= 0, "--irp-rounds", "0 or more", args.irp_rounds)
    need(args.score_threshold is None or 0.0 <= args.score_threshold <= 1.0, "--score-threshold",
         "between 0 and 1", args.score_threshold)
    need(args.smooth_cutoff is None or (math.isfinite(args.smooth_cutoff) and args.smooth_cutoff > 0),
         "--smooth-cutoff", "a finite number of Hz > 0", args.smooth_cutoff)
    need(args.smooth_beta is None or (math.isfinite(args.smooth_beta) and args.smooth_beta >= 0), "--smooth-beta",
         "a finite number >= 0", args.smooth_beta)
    if args.min_face is not None:
        need(math.isfinite(args.min_face) and args.min_face > 0, "--min-face", "a positive number of pixels",
             args.min_face)
        if args.proposals.partition(":")[0] == "fast":
            smallest = _fast_smallest_face()
            need(args.min_face >= smallest, "--min-face", f"at least {smallest:g} pixels with the fast source (a "
                 f"smaller face would need the image enlarged more than the detector ever does)", args.min_face)
    if not _DEVICE.fullmatch(args.device):
        raise UsageError(f"--device {args.device!r} is not supported: use cpu, cuda or cuda:N")
    _check_runtime(args)


def _check_runtime(args: argparse.Namespace) -> None:
    """The engine the options ask for is here (PyTorch for --backend torch or a GPU; the GPU itself)."""
    from hyperface.runtime import RuntimeOptions

    try:
        options = RuntimeOptions(args.backend, args.device, args.threads)
        if options.engine == "torch":
            options.torch_device()
    except (ValueError, ImportError) as exc:
        raise UsageError(str(exc)) from None


def _fast_smallest_face() -> float:
    """The fast source's smallest sensible ``min_face``: its window at the detector's largest enlargement
    (below it the pyramid's first level grows with 1 / min_face squared: 4 GB for 0.5 pixels)."""
    from hyperface.inference.proposals.detector import MAX_UPSCALE
    from hyperface.inference.proposals.fast import WINDOW

    return WINDOW / MAX_UPSCALE


def analyzer_settings(args: argparse.Namespace, threads: int | None = None) -> dict:
    """``FaceAnalyzer`` keyword arguments from the command line (plain values: they go to worker processes)."""
    options = {k: v for k, v in (("score_threshold", args.score_threshold), ("irp_rounds", args.irp_rounds),
                                 ("max_side", args.max_side)) if v is not None}
    # the source decides whether it takes min_face (a ValueError naming the source when it does not)
    proposal_options = {"min_face": args.min_face} if args.min_face is not None else None
    return dict(weights=args.weights, device=args.device, proposals=args.proposals, backend=args.backend,
                threads=args.threads if threads is None else threads, proposal_options=proposal_options,
                stage_two=args.stage_two, pipeline=args.pipeline, **stage_two_settings(args), **options)


def _build_analyzer(args: argparse.Namespace):
    from hyperface.inference import FaceAnalyzer

    return FaceAnalyzer(**analyzer_settings(args))


# ------------------------------------------------------------------------------------------ inputs


def expand_inputs(inputs: list[str]) -> tuple[list[tuple[Path, str, Path]], list[str], int]:
    """(path, "image" | "video", base for output names) per file, each once, the problems of inputs that
    cannot be read (missing, not a regular file), and how many macOS metadata files (``._*``) were skipped."""
    from hyperface.data.images import IMAGE_SUFFIXES
    from hyperface.data.video import VIDEO_SUFFIXES

    def kind(path: Path) -> str:
        return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"

    items, problems, skipped = [], [], 0
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            found = []
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES or not f.is_file():
                    continue  # only regular files: a FIFO named x.jpg would hang the run
                if f.name.startswith(_MACOS_METADATA):
                    skipped += 1
                else:
                    found.append((f, kind(f), p))
            if not found:
                log.warning("%s: folder holds no images or videos", p)
            items += found
        elif p.is_file():
            items.append((p, kind(p), p.parent))
        elif p.exists():
            problems.append(f"{p}: not a regular file (a device, pipe or socket); give an image, video or folder")
        else:
            problems.append(f"{p}: no such file or folder")
    unique, seen = [], set()  # a file named twice (a.jpg and ./a.jpg, or in two given folders) is analysed once
    for item in items:
        key = os.path.abspath(item[0])
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique, problems, skipped


def collect_inputs(args: argparse.Namespace, items: list[tuple[Path, str, Path]]) -> Inputs:
    """Every file the run reads: the images and videos, the weights, stage two, the candidate source's files."""
    from hyperface.inference.assets import ASSETS, DETECTOR_WEIGHTS, PROPOSAL_WEIGHTS, REFINE_WEIGHTS

    inputs = Inputs()
    inputs.add_files((p for p, _, _ in items), "an image or video to analyse")
    inputs.add_tree(ASSETS, "the bundled models' folder")
    if args.weights is not None:
        inputs.add(args.weights, "the --weights file")
    if args.stage_two not in ("auto", "none", "bundled"):
        inputs.add(args.stage_two, "the --stage-two weights")
    if args.fine not in ("auto", "none", "bundled"):
        inputs.add(args.fine, "the --fine weights")
    name, sep, arg = args.proposals.partition(":")
    if sep and arg:
        what = {"boxes": "the --proposals boxes file"}.get(name, f"the --proposals {name} weights")
        folder = inputs.add(arg, what)
        if folder.is_dir():  # the files the source reads from its folder, by name
            names = {"fast": (PROPOSAL_WEIGHTS, REFINE_WEIGHTS), "detector": (DETECTOR_WEIGHTS,)}.get(name, ())
            inputs.add_files((folder / n for n in names if (folder / n).is_file()), what)
    return inputs


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


def check_outputs(items: list[tuple[Path, str, Path]], json_path: str | None, draw_dir: Path | None,
                  inputs: Inputs) -> list[Path | None]:
    """Check every output before any work; returns each item's drawn output (None without ``--draw``).

    Raises :class:`UsageError` for an output that is a folder where a file is needed (or the
    reverse), a device or pipe, cannot be created, or is one of the ``inputs``; creates the output folders.
    """
    json_files = Inputs()
    if json_path is not None and json_path != STDOUT:
        path = check_output_file(json_path, "--json", inputs, stdout=True)
        partial = check_output_file(partial_path(fileio.replaced_path(path)), "--json (its partial file)", inputs)
        json_files.files.add(path, "the --json file")
        json_files.files.add(partial, "the --json partial file")
    if draw_dir is None:
        return [None] * len(items)
    check_output_folder(draw_dir, "--draw")
    draws = draw_paths(items, draw_dir)
    for (path, _, _), target in zip(items, draws):
        reason = inputs.reason(target) or json_files.reason(target)
        if reason is not None:
            raise UsageError(f"--draw: the picture drawn for {path} would be written to {target}, which {reason}; "
                             f"choose another --draw folder")
    return draws


# ------------------------------------------------------------------------------------------ run


def _frames_left(task: Task) -> int:
    from hyperface.data.images import ImageReadError
    from hyperface.data.video import VideoFrames

    try:
        with VideoFrames(task.items[0].path) as video:
            return max(video.frame_count - len(task.skip_frames), 0)
    except ImageReadError:
        return 1  # its error line


def _lines(args: argparse.Namespace, tasks: list[Task], options: TaskOptions, analyzer) -> Iterator[dict]:
    from hyperface.cli.workers import parallel_lines, serial_lines, worker_threads

    if analyzer is not None:
        return serial_lines(analyzer, tasks, options)
    threads = worker_threads(args.workers, args.threads)
    return parallel_lines(tasks, options, analyzer_settings(args, threads), args.workers, threads)


class _Tally:
    """What the run did, from its lines."""

    def __init__(self) -> None:
        self.analysed = self.faces = self.failures = 0

    def add(self, line: dict) -> None:
        if "faces" in line:
            self.analysed += 1
            self.faces += len(line["faces"])
        if "error" in line:
            self.failures += 1
            log.error("%s", line["error"])


def _plan(args: argparse.Namespace) -> tuple[list[Item], ResultsFile]:
    """Inputs, outputs and the earlier run's record, all checked before any work (:class:`UsageError`)."""
    from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

    inputs = list(args.inputs)
    if args.example:
        inputs.append(str(asset_path(EXAMPLE_IMAGE)))
    if not inputs:
        raise UsageError("give at least one INPUT (image, folder or video), or --example")
    _check_settings(args)
    found, problems, skipped = expand_inputs(inputs)
    if problems:
        raise UsageError("; ".join(problems))
    if skipped:
        log.info("skipped %d macOS metadata file(s) (._*), which are not images", skipped)
    if not found:
        raise UsageError(f"no image or video in {', '.join(inputs)}")
    draws = check_outputs(found, args.json, args.draw, collect_inputs(args, found))
    items = [Item(path, kind, draw) for (path, kind, _), draw in zip(found, draws)]
    return items, ResultsFile(args.json, resume=args.resume)


def _start(args: argparse.Namespace, tasks: list[Task]):
    """The analyzer of a one-process run (None with workers, each building its own, or with nothing to do)."""
    if args.workers > 1 or not tasks:
        return None
    analyzer = _build_analyzer(args)
    log.info("%r", analyzer)
    return analyzer


def _run_on_ray(args: argparse.Namespace) -> int:
    """``--ray``: the images of the inputs analysed by :func:`hyperface.cluster.run_ray_cli`."""
    from hyperface.cluster import run_ray_cli

    try:
        for option, used in (("--draw", args.draw), ("--resume", args.resume), ("--workers", args.workers > 1),
                             ("--json -", args.json == "-")):
            if used:
                raise UsageError(f"{option} does not go with --ray (the cluster writes one results file)")
        items, _ = _plan(args)
        if any(item.kind == "video" for item in items):
            raise UsageError("--ray analyses images; analyse videos without it")
    except UsageError as exc:
        print(f"hyperface analyze: {exc}", file=sys.stderr)
        return 2
    return run_ray_cli([item.path for item in items], args.json, args.ray, analyzer_settings(args))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hyperface.cli.workers import WorkerSetupError

    if args.ray is not None:
        return _run_on_ray(args)
    try:
        items, results = _plan(args)
        tasks = list(make_tasks(items, args.batch_size, results.recorded))
        analyzer = _start(args, tasks)
    except (UsageError, OSError, ValueError, ImportError, RuntimeError) as exc:  # or the analyzer refused them
        print(f"hyperface analyze: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hyperface analyze: interrupted before any work; nothing was written", file=sys.stderr)
        return 130
    if len(results.recorded):
        log.info("resuming: %d line(s) already written; %d input(s) left", len(results.recorded),
                 sum(len(t.items) for t in tasks))
    smoothing = {k: v for k, v in (("min_cutoff", args.smooth_cutoff), ("beta", args.smooth_beta)) if v is not None}
    options = TaskOptions(args.batch_size, args.smooth, smoothing)
    progress = not args.no_progress
    total = sum(len(t.items) if t.items[0].kind == "image" else _frames_left(t) for t in tasks) if progress else 0
    tally = _Tally()
    try:
        with results, tqdm(total=total, unit="img", desc="analyse", disable=not progress or total < 2,
                           file=sys.stderr, dynamic_ncols=True) as bar:
            if tasks:
                with contextlib.closing(_lines(args, tasks, options, analyzer)) as lines:  # workers stop here
                    for line in lines:
                        results.write(line)
                        tally.add(line)
                        bar.update(1)
            results.finish()
    except WorkerSetupError as exc:
        print(f"hyperface analyze: {exc}", file=sys.stderr)
        return 2
    except ResultsWriteError as exc:
        print(f"hyperface analyze: {exc}; {_kept(results)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hyperface analyze: interrupted; {_kept(results)}", file=sys.stderr)
        return 130
    earlier = f" ({len(results.recorded)} more from the earlier run)" if len(results.recorded) else ""
    print(f"analysed {tally.analysed} image(s)/frame(s){earlier}, {tally.faces} face(s), {tally.failures} failure(s)"
          + (f"; JSON: {args.json}" if args.json else "") + (f"; pictures: {args.draw}" if args.draw else ""),
          file=sys.stderr if results.stdout else sys.stdout)  # standard output may be the JSON lines
    return 1 if tally.failures or results.recorded.failures else 0


def _kept(results: ResultsFile) -> str:
    """What an unfinished run leaves, and how to go on."""
    if results.target is None:
        return "nothing was written" if not results.stdout else "the lines written so far are on standard output"
    before = f"{results.target} left as it was" if results.target.exists() else f"{results.target} not written"
    if results.partial.exists():
        return (f"{before}; the {results.written + len(results.recorded)} line(s) so far are in {results.partial}: "
                f"run the same command with --resume to continue")
    return before
