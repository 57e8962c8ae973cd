"""The command-line options that build a :class:`~hyperface.FaceAnalyzer` and say how it is called (batch
size, video smoothing), their checks and the files they name.

``hyperface analyze`` takes them all (:func:`add_analyzer_arguments`); ``hyperface evaluate`` takes
stage two's (:func:`add_stage_two_arguments`). Each default the help states is read from the code that
applies it, never written twice. A mistake is a :class:`~hyperface.cli.outputs.UsageError` naming the
option, raised before any model loads.
"""

from __future__ import annotations

import argparse
import inspect
import math
import re

from hyperface.cli.outputs import Inputs, UsageError

__all__ = ["DEFAULT_BATCH_SIZE", "add_analyzer_arguments", "add_stage_two_arguments", "add_detector_arguments",
           "parse_scales", "proposal_options", "stage_two_settings",
           "stage_two_inputs", "check_analyzer_settings", "analyzer_settings", "analyzer_inputs", "build_analyzer"]

#: Images (or video frames) per network batch when ``--batch-size`` is not given.
DEFAULT_BATCH_SIZE = 8
#: Devices the analyzer runs on; anything else is refused before the models load.
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
#: ``--stage-two`` / ``--fine`` values that name no file.
_NAMED_NETWORKS = ("auto", "none", "bundled")


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


def add_analyzer_arguments(parser: argparse.ArgumentParser) -> None:
    """The networks, candidate source, runtime, thresholds, stage two and video smoothing."""
    d = _code_defaults()
    min_faces = ", ".join(f"{v:g} for {s}" for s, v in d["min_face"].items()) or None
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
    add_detector_arguments(parser)
    parser.add_argument("--stage-two", default="auto", metavar="auto|none|bundled|WEIGHTS",
                        help="the aligned-face network that refines landmarks, pose and gender (auto: the bundled "
                             "one with the bundled model)")
    add_stage_two_arguments(parser)
    parser.add_argument("--smooth", action="store_true", help="smooth video results over time (One-Euro filter)")
    parser.add_argument("--smooth-cutoff", type=float, default=None,
                        help="One-Euro min cutoff in Hz, > 0 (lower: smoother)" + _said(d["cutoff"]))
    parser.add_argument("--smooth-beta", type=float, default=None,
                        help="One-Euro speed coefficient, >= 0 (higher: less lag)" + _said(d["beta"]))


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


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    """``--detector-passes``, ``--detector-flip`` and ``--max-candidates``: the detector source's passes
    (scales of its working image), its mirrored view and its cap on candidates."""
    from hyperface.inference.proposals.detector import MAX_CANDIDATES, PASSES

    passes = ",".join(f"{p:g}" for p in PASSES)
    parser.add_argument("--detector-passes", type=parse_scales, default=None, metavar="S[,S...]",
                        help=f"the detector's passes, as scales of its working image (default {passes}: the "
                             "coarser passes find large faces the first is unsure of; 1: one pass, a little faster)")
    parser.add_argument("--detector-flip", action=argparse.BooleanOptionalAction, default=None,
                        help="the detector also runs on each pass's mirror image and pairs the faces of both views "
                             "(a higher AP on crowd photos, above all with --min-face 10, for twice the detector's "
                             "time; default off)")
    parser.add_argument("--max-candidates", type=_positive_int, default=None, metavar="N",
                        help=f"most candidates the detector or fast source gives an image (default: the "
                             f"source's own, {MAX_CANDIDATES} for the detector; raise it for crowds of more faces)")


def _positive_int(text: str) -> int:
    """A whole number >= 1, for an argparse ``type``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def parse_scales(text: str) -> tuple[float, ...]:
    """``"1,0.25"`` -> ``(1.0, 0.25)``, for an argparse ``type`` (the source checks the values)."""
    try:
        return tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, e.g. 1,0.5,0.25; got {text!r}") \
            from None


def proposal_options(args: argparse.Namespace) -> dict | None:
    """The candidate source's own options from ``--min-face``, ``--detector-passes``, ``--detector-flip`` and
    ``--max-candidates`` (None: none given). The source decides whether it takes them (a ValueError naming
    the source when it does not)."""
    given = (("min_face", args.min_face), ("passes", args.detector_passes), ("flip", args.detector_flip),
             ("max_candidates", args.max_candidates))
    options = {k: v for k, v in given if v is not None}
    return options or None


def stage_two_settings(args: argparse.Namespace) -> dict:
    """``FaceAnalyzer`` keyword arguments of :func:`add_stage_two_arguments`' options."""
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be at least 1, got {args.iterations}")
    return dict(iterations=args.iterations, flip_average=args.flip_average, pose_from=args.pose_from,
                fine=None if args.fine == "none" else args.fine, fine_flip_average=args.fine_flip_average)


def stage_two_inputs(args: argparse.Namespace, inputs: Inputs) -> None:
    """The files :func:`add_stage_two_arguments`' options read, added to ``inputs`` (so no output replaces them)."""
    if args.fine not in _NAMED_NETWORKS:
        inputs.add(args.fine, "the --fine weights")


def check_analyzer_settings(args: argparse.Namespace) -> None:
    """:func:`add_analyzer_arguments`' settings a run cannot start with, as :class:`UsageError` naming the
    option (before any work)."""
    def need(ok: bool, option: str, rule: str, value) -> None:
        if not ok:
            raise UsageError(f"{option} must be {rule}, got {value}")

    stage_two_settings(args)  # checks its options
    need(args.batch_size >= 1, "--batch-size", "at least 1", args.batch_size)
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
    return dict(weights=args.weights, device=args.device, proposals=args.proposals, backend=args.backend,
                threads=args.threads if threads is None else threads, proposal_options=proposal_options(args),
                stage_two=args.stage_two, pipeline=args.pipeline, **stage_two_settings(args), **options)


def analyzer_inputs(args: argparse.Namespace, inputs: Inputs) -> None:
    """The files :func:`add_analyzer_arguments`' options read (weights, stage two, the candidate source's
    files), added to ``inputs``."""
    from hyperface.inference.assets import DETECTOR_WEIGHTS, PROPOSAL_WEIGHTS, REFINE_WEIGHTS

    if args.weights is not None:
        inputs.add(args.weights, "the --weights file")
    if args.stage_two not in _NAMED_NETWORKS:
        inputs.add(args.stage_two, "the --stage-two weights")
    stage_two_inputs(args, inputs)
    name, sep, arg = args.proposals.partition(":")
    if sep and arg:
        what = {"boxes": "the --proposals boxes file"}.get(name, f"the --proposals {name} weights")
        folder = inputs.add(arg, what)
        if folder.is_dir():  # the files the source reads from its folder, by name
            names = {"fast": (PROPOSAL_WEIGHTS, REFINE_WEIGHTS), "detector": (DETECTOR_WEIGHTS,)}.get(name, ())
            inputs.add_files((folder / n for n in names if (folder / n).is_file()), what)


def build_analyzer(args: argparse.Namespace):
    """The :class:`~hyperface.FaceAnalyzer` the options describe (loads its networks)."""
    from hyperface.inference import FaceAnalyzer

    return FaceAnalyzer(**analyzer_settings(args))
