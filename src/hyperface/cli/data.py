"""``hyperface data check FORMAT:PATH ...``: what each dataset holds and every problem in it;
``hyperface data formats``: the dataset formats and their options."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from hyperface.data.check import check_dataset
from hyperface.data.images import MAX_IMAGE_PIXELS, pixel_limits
from hyperface.data.readers import READERS, format_options, open_dataset

__all__ = ["add_arguments", "run", "pixel_count"]


def pixel_count(text: str) -> int:
    """argparse type of the pixel-budget options: a whole number >= 1 (1e8 and 100_000_000 accepted)."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        value = 0.0
    if not (value >= 1 and value == int(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel count (a whole number >= 1, e.g. 4e8)")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check", help="read datasets and report their contents and problems",
        description="Read each dataset, print what it holds (images, faces, labels) and every problem "
                    "(file:line: message). Exit status 1 when a dataset cannot be opened at all; "
                    "problems with single items are reported but not fatal.")
    check.add_argument("datasets", nargs="+", metavar="FORMAT:PATH",
                       help="dataset spec, e.g. pts:300w/lfpw/trainset or 300vw:300VW?every=10 "
                            f"(formats: {', '.join(READERS)})")
    check.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    check.add_argument("--verify-images", action=argparse.BooleanOptionalAction, default=True,
                       help="decode every image fully to find truncated files (default: on; "
                            "--no-verify-images reads image headers only)")
    check.add_argument("--max-image-pixels", type=pixel_count, default=None, metavar="N",
                       help="largest image accepted, width x height (default: $HYPERFACE_MAX_IMAGE_PIXELS or "
                            f"{MAX_IMAGE_PIXELS:,}); larger ones are reported as problems")
    sub.add_parser("formats", help="list the dataset formats and their options",
                   description="List the dataset formats, what each reads, and its options.")


def _formats() -> int:
    for name, cls in READERS.items():
        options = {k: v for k, v in format_options(name).items() if k != "verify_images"}
        opts = "  options: " + ", ".join(f"{k}={v}" for k, v in options.items()) if options else ""
        print(f"{name:10s} {cls.description}{opts}")
    return 0


def _check(args: argparse.Namespace) -> int:
    reports, errors = [], []
    for spec in args.datasets:
        try:
            reader = open_dataset(spec, verify_images=args.verify_images)
            report = check_dataset(reader)
        except (ValueError, OSError) as exc:  # DatasetError is a ValueError
            errors.append({"dataset": spec, "error": str(exc)})
            if not args.json:
                print(f"{spec}: cannot read dataset: {exc}", file=sys.stderr)
            continue
        reports.append(report)
        if not args.json:
            print(report.format_text())
    if args.json:
        json.dump({"datasets": [r.to_dict() for r in reports], "errors": errors}, sys.stdout, indent=2)
        print()
    return 1 if errors else 0


def run(args: argparse.Namespace) -> int:
    if args.data_command == "formats":
        return _formats()
    # Every problem is printed by the command itself; the readers' per-problem log warnings would
    # repeat each one on stderr, so they are shown only with --verbose.
    data_logger = logging.getLogger("hyperface.data")
    previous = data_logger.level
    if not getattr(args, "verbose", False):
        data_logger.setLevel(logging.ERROR)
    try:
        with pixel_limits(image=args.max_image_pixels):
            return _check(args)
    finally:
        data_logger.setLevel(previous)
