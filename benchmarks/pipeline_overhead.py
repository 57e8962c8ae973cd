"""The pipeline's own work between its networks: the default call with every network's answer cached.

A whole call is the networks plus what hyperface does between them in numpy and OpenCV (the working
image, decoding, suppression, crops and warps, the alignments' fits, L-NMS, the pose's PnP). The second
part is ours to make fast, and on a 2-core machine it is a quarter of the call, so it is timed alone here:
each network runs once per input shape and its answer is replayed (copied) after that, so what is left is
the pipeline's own time, stage by stage (``FaceAnalyzer.last_timings``).

``--compare SRC`` times another checkout's ``src`` folder the same way in its own process, the two
alternating ``--rounds`` times (each round a fresh process per side), and prints the ratio:

    python benchmarks/pipeline_overhead.py --compare OTHER_CHECKOUT/src [--rounds 6] [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hyperface
from hyperface.runtime import Runtime

from analyze_speed import test_image


@contextmanager
def replayed_networks() -> Iterator[None]:
    """Within it, each network runs once per input shape and later calls get a copy of that answer (callers
    change answers in place); the pipeline around the networks runs as usual."""
    answers: dict[tuple[int, tuple[int, ...]], dict] = {}
    run = Runtime.__call__

    def replay(self, pixels):
        key = (id(self), pixels.shape)
        if key not in answers:
            answers[key] = run(self, pixels)
        return {name: value.copy() for name, value in answers[key].items()}

    Runtime.__call__ = replay
    try:
        yield
    finally:
        Runtime.__call__ = run


def measure(calls: int) -> dict[str, float]:
    """Median milliseconds of the default call and of each stage, networks' answers replayed (this process's
    ``hyperface``)."""
    image = test_image()
    analyzer = hyperface.FaceAnalyzer()
    totals, stages = [], {}
    with replayed_networks():
        for _ in range(30):
            analyzer(image)
        for _ in range(calls):
            t = time.perf_counter()
            analyzer(image)
            totals.append(time.perf_counter() - t)
            for stage, seconds in analyzer.last_timings.items():
                stages.setdefault(stage, []).append(seconds)
    out = {"call": 1000 * statistics.median(totals)}
    out.update({stage: 1000 * statistics.median(v) for stage, v in stages.items()})
    out["version"] = hyperface.__version__
    return out


def _in_process(src: str | None, calls: int) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run([sys.executable, __file__, "--worker", "--calls", str(calls)], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"pipeline_overhead: the measurement of {src or 'this checkout'} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="SRC", help="another checkout's src folder, timed the same way")
    parser.add_argument("--rounds", type=int, default=6, help="fresh processes per side (default 6)")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per process (default 300)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.calls)))
        return
    if args.compare and not (Path(args.compare) / "hyperface" / "__init__.py").is_file():
        parser.error(f"--compare {args.compare}: no hyperface package there (give a checkout's src folder)")
    sides = {"this checkout": None} | ({args.compare: args.compare} if args.compare else {})
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, src in sides.items():
            results[name].append(_in_process(src, args.calls))
    columns = [c for c in results["this checkout"][0] if c != "version"]
    print(f"Default call on the speed test image with every network's answer cached: median ms over {args.rounds} "
          f"processes of {args.calls} calls each, the sides alternated.\n")
    print("| code | " + " | ".join(columns) + " | call: processes' range | vs this checkout |")
    print("|---|" + "---:|" * (len(columns) + 2))
    base = statistics.median(r["call"] for r in results["this checkout"])
    for name, rows in results.items():
        cells = [statistics.median(r[c] for r in rows) for c in columns]
        calls = [r["call"] for r in rows]
        label = f"{name} (hyperface {rows[0]['version']})"
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in cells)
              + f" | {min(calls):.3f}-{max(calls):.3f} | {cells[0] / base:.2f}x |")


if __name__ == "__main__":
    main()
