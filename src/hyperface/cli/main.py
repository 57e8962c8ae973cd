"""``hyperface`` entry point: one sub-command per module in :mod:`hyperface.cli`.

Each sub-command module defines ``add_arguments(parser)`` and ``run(args) -> int`` (exit status).
Modules are imported only when their command runs, so ``hyperface --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from hyperface import __version__

#: The extra that brings each optional package: a command that needs a missing one says how to install it.
EXTRAS = {**dict.fromkeys(("torch", "torchvision", "safetensors", "onnx", "onnxscript", "yaml", "scipy",
                           "matplotlib"), "train"),
          **dict.fromkeys(("starlette", "uvicorn", "multipart", "python_multipart"), "serve"),
          **dict.fromkeys(("ray", "pyarrow"), "ray")}
#: Exit status after the reader of standard output went away (a shell's status for SIGPIPE: 128 + 13).
BROKEN_PIPE_STATUS = 141

# command name -> (module under hyperface.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("models", "list the network architectures with parameters, MACs and input size"),
    "data": ("data", "inspect datasets: 'hyperface data check FORMAT:PATH'"),
    "prepare": ("prepare", "build training shards from annotated datasets"),
    "train": ("train", "train a model from a YAML config"),
    "train-proposals": ("train_proposals", "train the fast candidate networks (both stages) on prepared data"),
    "train-detector": ("train_detector", "train the single-pass face detector (the 'detector' candidates) on photos"),
    "train-point-refiner": ("train_point_refiner", "train the detector's point stage (five points from each found box)"),
    "experiments": ("experiments", "report on the study's experiments"),
    "analyze": ("analyze", "find faces in images, folders and videos"),
    "evaluate": ("evaluate", "measure models on annotated data"),
    "export": ("export", "export a model to ONNX"),
    "serve": ("serve", "an HTTP service and a page to drop photos on (pip install \"hyperface[serve]\")"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the sub-command named in ``argv`` (default ``sys.argv[1:]``) gets its arguments."""
    parser = argparse.ArgumentParser(prog="hyperface", description="Multi-task face analysis after HyperFace.")
    parser.add_argument("--version", action="version", version=f"hyperface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen command's module is imported to add its arguments.
        if name in argv:
            _module(module).add_arguments(p)
    return parser


def _module(name: str):
    return importlib.import_module(f"hyperface.cli.{name}")


def _missing_extra(exc: ModuleNotFoundError, command: str) -> int | None:
    """Exit status 1 with a one-line hint when ``exc`` is a package of an extra (:data:`EXTRAS`), else None."""
    extra = EXTRAS.get((exc.name or "").split(".")[0])
    if extra is None:
        return None
    print(f"hyperface {command}: needs {exc.name}, which this install lacks: pip install \"hyperface[{extra}]\"",
          file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run ``hyperface`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status. ``sys.argv`` is
    left alone; commands that record their command line read ``args.argv``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), "")
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        args.argv = argv
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
        if args.command is None:
            parser.print_help()
            return 2
        status = int(_module(COMMANDS[args.command][0]).run(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe is found here, not at interpreter exit
    except BrokenPipeError:
        return _stdout_gone()
    except ModuleNotFoundError as exc:
        status = _missing_extra(exc, command)
        if status is None:
            raise
    return status


def _stdout_gone() -> int:
    """The reader of standard output went away (``hyperface models --json | head -1``): end quietly.

    Python's documented recipe (the ``signal`` module's note on SIGPIPE): point standard output at
    devnull so that the interpreter's final flush does not raise again.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture): nothing to flush later
        return BROKEN_PIPE_STATUS
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return BROKEN_PIPE_STATUS


if __name__ == "__main__":
    sys.exit(main())
