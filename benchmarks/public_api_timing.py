"""Time hyperface's default call through its public API only, for comparisons across versions.

Run with the hyperface to time on the path (e.g. ``PYTHONPATH=other/src``); prints one JSON object:
``{"version", "median_ms", "cpu_ms", "faces", "construct_s", "first_call_s"}``. Uses nothing but
``hyperface.FaceAnalyzer()``, ``analyzer(image)`` and ``hyperface.__version__``, which every version has.

    python benchmarks/public_api_timing.py IMAGE [--repeats 20] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    image = np.asarray(Image.open(args.image).convert("RGB"))
    t0 = time.perf_counter()
    import hyperface

    analyzer = hyperface.FaceAnalyzer()
    t1 = time.perf_counter()
    faces = analyzer(image)
    t2 = time.perf_counter()
    for _ in range(args.warmup):
        analyzer(image)
    wall, cpu = [], []
    for _ in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        faces = analyzer(image)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(json.dumps({"version": hyperface.__version__, "median_ms": 1000 * statistics.median(wall),
                      "cpu_ms": 1000 * statistics.median(cpu), "faces": len(faces), "construct_s": t1 - t0,
                      "first_call_s": t2 - t1}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
