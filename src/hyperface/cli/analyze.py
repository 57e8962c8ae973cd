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
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from hyperface import fileio
from hyperface.cli.analyze_tasks import Item, Task, TaskOptions, make_tasks
from hyperface.cli.analyzer_options import (
    add_analyzer_arguments,
    analyzer_inputs,
    analyzer_settings,
    build_analyzer,
    check_analyzer_settings,
)
from hyperface.cli.outputs import STDOUT, Inputs, UsageError, check_output_file, check_output_folder
from hyperface.cli.results import ResultsFile, ResultsWriteError, partial_path

log = logging.getLogger("hyperface.analyze")

#: Files that macOS leaves beside copied files (AppleDouble metadata): skipped in folders.
_MACOS_METADATA = "._"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """What to analyse and where the answers go; then the analyzer's options
    (:func:`hyperface.cli.analyzer_options.add_analyzer_arguments`)."""
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="images, videos, and folders (searched "
                        "recursively for images and videos)")
    parser.add_argument("--example", action="store_true", help="analyse the bundled example photo")
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
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_analyzer_arguments(parser)


def _check_settings(args: argparse.Namespace) -> None:
    """Settings a run cannot start with, as :class:`UsageError` naming the option (before any work)."""
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    check_analyzer_settings(args)


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
    from hyperface.inference.assets import ASSETS

    inputs = Inputs()
    inputs.add_files((p for p, _, _ in items), "an image or video to analyse")
    inputs.add_tree(ASSETS, "the bundled models' folder")
    analyzer_inputs(args, inputs)
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
    analyzer = build_analyzer(args)
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
