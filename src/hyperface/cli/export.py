"""``hyperface export --weights W --onnx OUT.onnx``: ONNX with a dynamic batch axis, outputs named by
task, checked against PyTorch after export (the largest absolute difference per output is printed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hyperface.cli.outputs import Inputs, UsageError, check_output_file
from hyperface.onnx_io import OPSET


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="hyperface weights file (.safetensors); default: the bundled model")
    parser.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx", help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest accepted absolute difference between ONNX and PyTorch outputs")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")


def run(args: argparse.Namespace) -> int:
    import hyperface.models  # noqa: F401
    from hyperface.export import export_onnx
    from hyperface.inference.assets import resolve_weights
    from hyperface.models.weights import load_model

    try:
        path = resolve_weights(args.weights)
    except (FileNotFoundError, ValueError) as exc:
        print(f"hyperface export: {exc}", file=sys.stderr)
        return 1
    inputs = Inputs()
    inputs.add_files([path], "the --weights file")
    try:
        check_output_file(args.onnx, "--onnx", inputs)
    except UsageError as exc:
        print(f"hyperface export: {exc}", file=sys.stderr)
        return 2
    try:
        model = load_model(path)
    except (FileNotFoundError, ValueError) as exc:
        print(f"hyperface export: {exc}", file=sys.stderr)
        return 1
    try:
        diffs = export_onnx(model, args.onnx, opset=args.opset, check=not args.no_check)
    except ImportError as exc:
        print(f"hyperface export: {exc}", file=sys.stderr)
        return 1
    cfg = model.config
    print(f"wrote {args.onnx}: {cfg.arch}, input (batch, 3, {cfg.input_size}, {cfg.input_size}), "
          f"outputs {', '.join(cfg.tasks)}")
    if diffs:
        worst = max(diffs.values())
        for task, d in diffs.items():
            print(f"  {task:<11} max abs diff vs PyTorch: {d:.3g}")
        if worst > args.tolerance:
            print(f"hyperface export: ONNX differs from PyTorch by {worst:.3g} > {args.tolerance}", file=sys.stderr)
            return 1
    return 0
