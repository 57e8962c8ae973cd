"""Peak memory of the hostile inputs of issue 25 (item 4), each beside its budget and target.

Every case runs the real command (the CLI, or one library call) in a child process; its peak is the
kernel's high-water mark of the child's resident memory (``ru_maxrss`` from ``wait4``, which also
covers any process the child waited for). The ``startup`` rows import what a case's command imports
and do nothing else (torch and its libraries alone are most of a gigabyte of RSS): ``above startup``
is what the case itself allocates.

Cases (inputs generated into a temporary folder; simple content, so the files are small):

* ``analyze`` of a folder of four 13000 x 13000 PNGs, default settings (target <= 1.5 GB);
* ``analyze`` of one 4000 x 3000 photo with 5000 given boxes (``--proposals boxes:FILE``; over the
  analyzer's budget of 2,000 boxes per image: that image's failure), and with 2,000 (the most allowed);
* ``analyze`` of a video of two 8000 x 8000 frames, at the default pixel budget and at a budget of
  16 M pixels (frames over it are refused from the container's size, before decoding);
* a 67 KB weights file whose metadata asks for ``fc_channels: 2000000`` (a 32 GB layer), through
  ``load_model`` and through ``analyze --weights`` (target: refused before 100 MB);
* ``train --print-config`` of a 600-byte YAML alias bomb in ``model.arch_kwargs`` (refused at once).

    python benchmarks/memory.py [--keep DIR] [--only NAME ...] [--timeout S]

Prints a markdown table (no assertions; times are for orientation only). Linux (``wait4``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    name: str
    command: list[str]
    budget: str
    target: str
    baseline: str = ""  # the startup row this case is compared with ("": it is a startup row)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    peak_mb: float
    status: int
    seconds: float
    said: str


def run(case: Case, timeout: float) -> Result:
    """Run ``case`` in a child process; its peak RSS (MB), exit status, wall time and last line of output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""), **case.env}
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(case.command, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen not to wait again
        out.seek(0)
        lines = [line for line in out.read().decode("utf-8", "replace").splitlines() if line.strip()]
    said = lines[-1].strip() if lines else ""
    return Result(usage.ru_maxrss / 1024, proc.returncode, seconds, said)


# -- inputs -----------------------------------------------------------------------------------------

def write_png(path: Path, width: int, height: int) -> Path:
    """An RGB PNG of grey bands written row by row (the image never sits in memory): a few hundred KB."""
    rows = [b"\x00" + bytes([60 + 40 * k, 90, 120 + 20 * k]) * width for k in range(4)]
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(rows[(y // 500) % 4]) for y in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def write_video(path: Path, side: int, frames: int) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (side, side))
    frame = np.full((side, side, 3), 120, np.uint8)
    frame[:: side // 40] = 30
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return path


def write_boxes(path: Path, image: str, count: int, size: tuple[int, int]) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    w, h = size
    side = rng.uniform(24, 400, count)
    x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
    path.write_text("".join(f"{image} {a:.1f} {b:.1f} {a + s:.1f} {b + s:.1f}\n" for a, b, s in zip(x0, y0, side)))
    return path


def write_hostile_weights(path: Path, fc_channels: int) -> Path:
    """The bundled compact model's tensors under a config that asks for an ``fc_channels``-wide layer."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from hyperface.inference.assets import resolve_weights
    from hyperface.models.weights import CONFIG_KEY

    with safe_open(str(resolve_weights(None)), framework="pt") as f:
        config = json.loads(f.metadata()[CONFIG_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config["arch_kwargs"]["fc_channels"] = fc_channels
    save_file(tensors, str(path), metadata={CONFIG_KEY: json.dumps(config)})
    return path


def alias_bomb(path: Path) -> Path:
    levels = "abcdefghi"
    lines = ["data: {train: [a]}", "model:", "  arch: hyperface-compact", "  arch_kwargs:",
             "    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"    {b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip(levels, levels[1:])]
    path.write_text("\n".join(lines) + "\n")
    return path


def generate(work: Path) -> None:
    """Write every input into ``work`` (run in its own process: see :func:`cases`)."""
    from hyperface.data.images import MAX_IMAGE_PIXELS

    big = work / "big"
    big.mkdir(parents=True, exist_ok=True)
    first = write_png(big / "a.png", 13000, 13000)
    for name in ("b.png", "c.png", "d.png"):
        shutil.copyfile(first, big / name)
    write_png(work / "photo.png", 4000, 3000)
    write_boxes(work / "boxes.txt", "photo.png", 5000, (4000, 3000))
    write_boxes(work / "boxes2000.txt", "photo.png", 2000, (4000, 3000))
    video = write_video(work / "v8000.avi", 8000, 2)
    weights = write_hostile_weights(work / "huge-layer.safetensors", 2_000_000)
    bomb = alias_bomb(work / "bomb.yaml")
    sizes = (f"PNG {first.stat().st_size // 1024} KB each; video {video.stat().st_size // 1024} KB; weights "
             f"{weights.stat().st_size // 1024} KB; YAML {bomb.stat().st_size} B")
    (work / "inputs.json").write_text(json.dumps({"sizes": sizes, "max_image_pixels": MAX_IMAGE_PIXELS}))


def cases(work: Path) -> list[Case]:
    """The cases, after writing their inputs in a child process.

    This process stays small (standard library only): a child's peak RSS as the kernel reports it
    includes what its parent held when it was forked, so a parent that had imported torch would add
    a gigabyte to every row.
    """
    subprocess.run([sys.executable, __file__, "--generate", str(work)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")})
    info = json.loads((work / "inputs.json").read_text())
    print(f"inputs in {work}: {info['sizes']}\n", file=sys.stderr)
    py, cli = sys.executable, [sys.executable, "-m", "hyperface.cli.main"]
    analyze = [*cli, "analyze", "--no-progress"]
    default_budget = f"{info['max_image_pixels']:,} px per image"
    big, photo, boxes, video = work / "big", work / "photo.png", work / "boxes.txt", work / "v8000.avi"
    weights, bomb = work / "huge-layer.safetensors", work / "bomb.yaml"
    return [
        Case("startup: analyze's imports", [py, "-c", "import hyperface.cli.analyze, hyperface.inference.analyzer"],
             "-", "-"),
        Case("startup: load_model's imports (PyTorch)",
             [py, "-c", "import hyperface.models.weights, hyperface.models.registry as r; r.register_architectures()"],
             "-", "-"),
        Case("startup: train's config imports", [py, "-c", "import hyperface.cli.train, hyperface.train.config"],
             "-", "-"),
        Case("analyze: folder of four 13000x13000 PNGs", [*analyze, str(big), "--json", str(work / "big.jsonl")],
             default_budget, "<= 1.5 GB", "startup: analyze's imports"),
        Case("analyze: one 4000x3000 photo, 5000 given boxes",
             [*analyze, str(photo), "--proposals", f"boxes:{boxes}", "--json", str(work / "boxes.jsonl")],
             "2,000 boxes per image", "that image's failure", "startup: analyze's imports"),
        Case("analyze: the same photo, 2000 given boxes",
             [*analyze, str(photo), "--proposals", f"boxes:{work / 'boxes2000.txt'}", "--json",
              str(work / "boxes2000.jsonl")], "2,000 boxes per image", "-", "startup: analyze's imports"),
        Case("analyze: video, two 8000x8000 frames", [*analyze, str(video), "--json", str(work / "v1.jsonl")],
             default_budget + " (64 M px frames: analysed)", "-", "startup: analyze's imports"),
        Case("analyze: the same video, budget 16 M px", [*analyze, str(video), "--json", str(work / "v2.jsonl")],
             "16,000,000 px per frame: refused before decoding", "frames refused", "startup: analyze's imports",
             env={"HYPERFACE_MAX_IMAGE_PIXELS": "16000000"}),
        Case("load_model: metadata asks for a 32 GB layer",
             [py, "-c", f"from hyperface.models import load_model; load_model({str(weights)!r})"],
             "layer shapes from metadata = the file's tensors", "refused, < 100 MB",
             "startup: load_model's imports (PyTorch)"),
        Case("analyze --weights: the same file", [*analyze, "--example", "--weights", str(weights)],
             "layer shapes from metadata = the file's tensors", "refused, < 100 MB",
             "startup: load_model's imports (PyTorch)"),
        Case("train --print-config: 600-byte YAML alias bomb", [*cli, "train", "--config", str(bomb), "--print-config"],
             "1 MB file, 100,000 values after aliases", "refused at once", "startup: train's config imports"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="generate the inputs here and keep them (default: a temp folder)")
    parser.add_argument("--only", nargs="*", default=None, help="run only cases whose name contains one of these")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per case before it is killed")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # the child that writes the inputs
    args = parser.parse_args()
    if args.generate is not None:
        generate(args.generate)
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="hyperface-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        chosen = [c for c in cases(work) if args.only is None or not c.baseline
                  or any(key in c.name for key in args.only)]
        print("| case | budget | target | peak RSS MB | above startup MB | exit | s | last line of output |")
        print("|---|---|---|---:|---:|---:|---:|---|")
        startup: dict[str, float] = {}
        for case in chosen:
            r = run(case, args.timeout)
            if not case.baseline:
                startup[case.name] = r.peak_mb
            above = f"{r.peak_mb - startup[case.baseline]:,.0f}" if case.baseline else "-"
            said = r.said.replace("|", "/")[:150]
            print(f"| {case.name} | {case.budget} | {case.target} | {r.peak_mb:,.0f} | {above} | {r.status} "
                  f"| {r.seconds:.1f} | {said} |", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
