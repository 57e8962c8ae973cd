"""Stage two's cost per face on onnxruntime, by landmark head: the regression branch (``fc``, the
bundled one) against the x and y bins (``bins``, SimCC-style), and with ``flip_average`` (the face
and its mirror image in one call of two crops, as :class:`hyperface.inference.stage_two.StageTwo`
runs them). Prints a markdown table.

    python benchmarks/stage2_head_cost.py
    python benchmarks/stage2_head_cost.py --weights src/hyperface/assets/hyperface-aligned.safetensors \
        runs/ablation/bins/last.safetensors
    python benchmarks/stage2_head_cost.py --weights src/hyperface/assets/hyperface-aligned.safetensors --flip

Each network runs as the analyzer runs it (``hyperface.runtime.load_runtime``: exported in memory,
uint8 pixels in, onnxruntime) on one face, one thread, the networks alternating for ``--rounds`` rounds of ``--calls`` calls; the table gives the
median milliseconds per call, parameters, and the ratio against the first network. Without
``--weights`` both heads are built with fresh weights (the cost does not depend on the values).
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
import torch

from hyperface.models import create_model, load_model
from hyperface.runtime import RuntimeOptions, load_runtime
from timing import alternating_ms


def face_call(model: torch.nn.Module, crops: int = 1):
    """One face through the network as the analyzer runs it: exported in memory, onnxruntime, one thread;
    ``crops=2`` is the face and its mirror image in one call (``flip_average``)."""
    runtime = load_runtime(model.eval(), RuntimeOptions("onnx", "cpu", threads=1), batch_size=crops)
    size = model.config.input_size
    pixels = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    pixels = np.concatenate([pixels, pixels[:, :, ::-1]][:crops])
    return lambda: runtime(pixels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="*", default=None, help="stage-two weights files (default: fresh fc and bins)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--flip", action="store_true", help="also time each network with flip_average")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.weights:
        models = {w: load_model(w) for w in args.weights}
    else:
        models = {"fc (regression)": create_model("hyperface-aligned"),
                  "bins": create_model("hyperface-aligned", landmark_head="bins")}
    calls = {name: face_call(m) for name, m in models.items()}
    if args.flip:
        for name, m in list(models.items()):
            models[f"{name}, flip_average"] = m
            calls[f"{name}, flip_average"] = face_call(m, crops=2)
    times = alternating_ms(calls, args.rounds, args.calls)
    print(f"\nStage two, one face, onnxruntime {ort.__version__}, one thread; median of {args.rounds} rounds "
          f"of {args.calls} calls, alternating:\n")
    print("| network | landmark head | params (M) | ms / face | ratio |")
    print("|---|---|---:|---:|---:|")
    base = next(iter(times.values()))
    for name, m in models.items():
        ms = times[name]
        head = m.config.arch_kwargs.get("landmark_head", "fc")
        params = sum(p.numel() for p in m.parameters()) / 1e6
        print(f"| {name} | {head} | {params:.2f} | {ms:.2f} | {ms / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
