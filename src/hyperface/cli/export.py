"""``hyperface export --out DIR``: every network an analyzer uses, as ONNX, with the manifest that names them.

``FaceAnalyzer(weights=DIR)`` (``hyperface analyze --weights DIR``) then gives the same faces as the
analyzer of the exported weights, on onnxruntime alone. Each network's role takes the bundled weights
unless named (``--weights`` stage one, ``--stage-two``, ``--detector``, ``--refine``, ``--proposal``, ``--points``,
``--fine``); stage two and its fine landmark network are the bundled ones with the bundled stage one (the
fine network with the bundled stage two), else only when named, as the analyzer does.
``--onnx OUT.onnx`` exports one network (``--weights``, the bundled stage one by default). Each export
is checked against PyTorch (the largest absolute difference per output is printed). Needs PyTorch
(``pip install "hyperface[train]"``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hyperface.cli.outputs import Inputs, UsageError, check_output_file, check_output_folder

#: Command-line option of each network role (stage one is ``--weights``).
_ROLE_OPTIONS = {"stage_one": "weights", "stage_two": "stage_two", "detector": "detector", "refine": "refine",
                 "proposal": "proposal", "points": "points", "fine": "fine"}

#: Roles whose bundled network is used only with the bundled networks of these roles (a stage two is
#: trained on its stage one's faces, a fine landmark network on its stage two's points).
_FOLLOWS = {"stage_two": ("stage_one",), "fine": ("stage_one", "stage_two")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, metavar="DIR", help="write the whole pipeline here (ONNX + manifest.json)")
    target.add_argument("--onnx", type=Path, metavar="OUT.onnx", help="write one network (--weights) as ONNX")
    parser.add_argument("--weights", help="stage-one weights (.safetensors); default: the bundled hyperface-compact")
    parser.add_argument("--stage-two", help="stage-two weights (default: the bundled one with the bundled stage one)")
    parser.add_argument("--detector", help="detector weights (default: the bundled one)")
    parser.add_argument("--refine", help="refine network weights (default: the bundled one)")
    parser.add_argument("--proposal", help="proposal network weights of the fast source (default: the bundled one)")
    parser.add_argument("--points", help="the detector's point stage (train-point-refiner; default: the bundled one)")
    parser.add_argument("--fine", help="stage two's fine landmark network (default: the bundled one with the bundled "
                                       "stage two)")
    parser.add_argument("--no-weights", action="store_true",
                        help="--out: do not copy the safetensors beside the ONNX files (the folder then runs on "
                             "onnxruntime only)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest accepted absolute difference between ONNX and PyTorch outputs (default 1e-3)")
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")


def _sources(args: argparse.Namespace) -> dict[str, Path]:
    """The weights file of each role to export."""
    from hyperface.inference.assets import ASSETS, BUNDLED_ROLES, resolve_weights

    out: dict[str, Path] = {}
    for role, option in _ROLE_OPTIONS.items():
        given = getattr(args, option)
        if given is not None:
            out[role] = resolve_weights(given)
        elif not any(getattr(args, _ROLE_OPTIONS[r]) is not None for r in _FOLLOWS.get(role, ())):
            path = ASSETS / BUNDLED_ROLES[role]
            if path.is_file():
                out[role] = path
    if "fine" in out and "stage_two" not in out:
        raise ValueError("--fine needs a stage two in the pipeline (the fine landmark network is aligned by its "
                         "points): pass --stage-two too")
    if "stage_one" not in out:
        raise FileNotFoundError(f"no stage-one weights: pass --weights (the bundled {BUNDLED_ROLES['stage_one']} "
                                f"is not in this installation)")
    return out


def run(args: argparse.Namespace) -> int:
    from hyperface.export import export_onnx, export_pipeline  # PyTorch and onnx: cli.main names the extra
    from hyperface.models.weights import load_model

    try:
        sources = _sources(args)
        if args.onnx is not None:
            sources = {"stage_one": sources["stage_one"]}
    except (FileNotFoundError, ValueError) as exc:
        print(f"hyperface export: {exc}", file=sys.stderr)
        return 1
    try:
        inputs = Inputs()
        inputs.add_files(sources.values(), "a weights file to export")
        if args.onnx is not None:
            check_output_file(args.onnx, "--onnx", inputs)
        else:
            check_output_folder(args.out, "--out", inputs)
    except UsageError as exc:
        print(f"hyperface export: {exc}", file=sys.stderr)
        return 2
    try:
        models = {role: load_model(path) for role, path in sources.items()}
        if args.onnx is not None:
            diffs = {"stage_one": export_onnx(models["stage_one"], args.onnx, check=not args.no_check)}
            print(f"wrote {args.onnx}: {models['stage_one'].config.arch}")
        else:
            diffs = export_pipeline(args.out, models, None if args.no_weights else sources, check=not args.no_check)
            print(f"wrote {args.out}: " + ", ".join(f"{role} ({m.config.arch})" for role, m in models.items()))
    except (ImportError, FileNotFoundError, ValueError) as exc:
        print(f"hyperface export: {exc}", file=sys.stderr)
        return 1
    worst = 0.0
    for role, per_output in diffs.items():
        for name, d in per_output.items():
            print(f"  {role:<10} {name:<11} max abs diff vs PyTorch: {d:.3g}")
            worst = max(worst, d)
    if worst > args.tolerance:
        print(f"hyperface export: ONNX differs from PyTorch by {worst:.3g} > {args.tolerance}", file=sys.stderr)
        return 1
    return 0
