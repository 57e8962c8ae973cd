"""Stage two's cost per face on onnxruntime, by landmark head: the regression branch (``fc``, the
bundled one) against the x and y bins (``bins``, SimCC-style). Prints a markdown table.

    python benchmarks/stage2_head_cost.py
    python benchmarks/stage2_head_cost.py --weights src/hyperface/assets/hyperface-aligned.safetensors \
        runs/ablation/bins/last.safetensors

Each network is exported as the package exports it (uint8 pixels in) and run on one face, one
thread, the networks alternating for ``--rounds`` rounds of ``--calls`` calls; the table gives the
median milliseconds per call, parameters, and the ratio against the first network. Without
``--weights`` both heads are built with fresh weights (the cost does not depend on the values).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
import torch

from hyperface.export import onnx_bytes
from hyperface.models import create_model, load_model


def session(model: torch.nn.Module) -> tuple[ort.InferenceSession, dict[str, np.ndarray]]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes(model.eval()), options, providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in sess.get_inputs():
        shape = [1 if not isinstance(d, int) else d for d in inp.shape]
        dtype = np.uint8 if "uint8" in inp.type else np.float32
        feeds[inp.name] = np.random.default_rng(0).integers(0, 255, shape).astype(dtype)
    return sess, feeds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="*", default=None, help="stage-two weights files (default: fresh fc and bins)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.weights:
        models = {w: load_model(w) for w in args.weights}
    else:
        models = {"fc (regression)": create_model("hyperface-aligned"),
                  "bins": create_model("hyperface-aligned", landmark_head="bins")}
    runs = {name: session(m) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for name, (sess, feeds) in runs.items():  # warm-up
        for _ in range(20):
            sess.run(None, feeds)
    for _ in range(args.rounds):
        for name, (sess, feeds) in runs.items():
            t = time.perf_counter()
            for _ in range(args.calls):
                sess.run(None, feeds)
            times[name].append(1000 * (time.perf_counter() - t) / args.calls)
    print(f"\nStage two, one face, onnxruntime {ort.__version__}, one thread; median of {args.rounds} rounds "
          f"of {args.calls} calls, alternating:\n")
    print("| network | landmark head | params (M) | ms / face | ratio |")
    print("|---|---|---:|---:|---:|")
    base = statistics.median(next(iter(times.values())))
    for name, m in models.items():
        ms = statistics.median(times[name])
        head = m.config.arch_kwargs.get("landmark_head", "fc")
        params = sum(p.numel() for p in m.parameters()) / 1e6
        print(f"| {name} | {head} | {params:.2f} | {ms:.2f} | {ms / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
