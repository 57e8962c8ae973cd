"""Benchmark ``hyperface analyze`` over a folder of photos: ``--workers 2`` against one worker, and a run
killed with SIGKILL then continued with ``--resume``.

The photos are generated: the bundled astronaut photo pasted at varied sizes and places on 640 x 480
canvases of varied colours (one face each), in a temporary folder. Each run is the real CLI in a
child process with the default settings (bundled models, ``detector`` candidates, stage two).

Rows:

* ``workers 1`` and ``workers 2``: seconds to the first line, images per second over the whole
  command (start-up, model loading and worker start included) and once a tenth of the lines are
  written (every worker is running by then: the steady rate), the
  best of ``--repeats`` runs each (worker counts alternate, so a busy spell hits both); the ratio
  is of those best rates, and each repeat's own ratio is printed under the table;
* ``kill -9 + resume``: the process killed once about half the lines are in the partial file, then
  the same command with ``--resume``: whether every photo is in the final JSON exactly once and
  whether its lines are identical to the uninterrupted one-worker run's.

    python benchmarks/analyze_throughput.py [--images 200] [--repeats 2] [--keep DIR]

Prints a markdown table with the machine's cores and load average (run it on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FACE = ROOT / "src" / "hyperface" / "assets" / "astronaut.jpg"


def make_photos(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    face = Image.open(FACE).convert("RGB")
    for i in range(n):
        side = 90 + (i * 37) % 260
        canvas = Image.new("RGB", (640, 480), ((i * 53) % 256, (i * 97) % 256, (i * 31) % 256))
        canvas.paste(face.resize((side, side)), ((i * 71) % (640 - side), (i * 43) % (480 - side)))
        canvas.save(folder / f"photo{i:04d}.jpg", quality=90)


def command(folder: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hyperface.cli.main", "analyze", str(folder), "--json", str(out),
            "--no-progress", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _lines_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def timed_run(folder: Path, out: Path, n: int, *extra: str) -> tuple[float, float, float]:
    """(images per second over the whole command, images per second once a tenth of the lines are
    written (every worker is running by then), seconds to the first line)."""
    partial = out.with_name(out.name + ".partial")
    marks: dict[str, float] = {}
    tenth = max(1, n // 10)
    start = time.perf_counter()
    proc = subprocess.Popen(command(folder, out, *extra), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

    def watch() -> None:
        while proc.poll() is None and "tenth" not in marks:
            lines = _lines_in(partial)
            if lines:
                marks.setdefault("first", time.perf_counter())
            if lines >= tenth:
                marks["tenth"] = time.perf_counter()
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    _, err = proc.communicate()
    end = time.perf_counter()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"analyze failed ({proc.returncode}):\n{err}")
    steady = (n - tenth) / (end - marks["tenth"]) if "tenth" in marks else float("nan")
    return n / (end - start), steady, marks.get("first", end) - start


def kill_and_resume(folder: Path, out: Path, n: int) -> tuple[int, bool, bool]:
    """(lines in the partial file when killed, every photo once, lines identical to ``reference``)."""
    partial = out.with_name(out.name + ".partial")
    proc = subprocess.Popen(command(folder, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and _lines_in(partial) < n // 2:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _lines_in(partial)
    subprocess.run(command(folder, out, "--resume"), env=_env(), check=True, capture_output=True)
    inputs = [json.loads(line)["input"] for line in out.read_text().splitlines()]
    once = sorted(inputs) == sorted(str(p) for p in folder.iterdir())
    return killed_at, once, killed_at < n


def compare_workers(folder: Path, work: Path, n: int, repeats: int):
    """Best (whole, steady, first-line) per worker count, each repeat's ratios, and whether --workers 2
    wrote the same lines as one worker; worker counts alternate within a repeat."""
    best: dict[int, tuple[float, float, float]] = {}
    ratios = []
    for r in range(repeats):
        rates = {}
        for workers in (1, 2):
            out = work / f"w{workers}-{r}.jsonl"
            out.unlink(missing_ok=True)
            rates[workers] = timed_run(folder, out, n, "--workers", str(workers))
            old = best.get(workers, (0.0, 0.0, float("inf")))
            best[workers] = (max(old[0], rates[workers][0]), max(old[1], rates[workers][1]),
                             min(old[2], rates[workers][2]))
        ratios.append((rates[2][0] / rates[1][0], rates[2][1] / rates[1][1]))
    same = all((work / f"w2-{r}.jsonl").read_text() == (work / "w1-0.jsonl").read_text() for r in range(repeats))
    return best, ratios, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each worker count, the best shown (0: only the kill -9 row)")
    parser.add_argument("--keep", type=Path, help="keep the photos and outputs in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="hyperface-throughput-"))
    try:
        folder = work / "photos"
        make_photos(folder, args.images)
        load = os.getloadavg()
        best, ratios, same = compare_workers(folder, work, args.images, args.repeats)
        reference = work / "w1-0.jsonl"
        if not args.repeats:
            reference.unlink(missing_ok=True)
            best[1] = timed_run(folder, reference, args.images)
        resumed = work / "resumed.jsonl"
        resumed.unlink(missing_ok=True)
        killed_at, once, was_cut = kill_and_resume(folder, resumed, args.images)
        identical = resumed.read_text() == reference.read_text()
        end_load = os.getloadavg()

        print(f"hyperface analyze on {args.images} generated 640x480 photos; {os.cpu_count()} cores; load average "
              f"{load[0]:.2f} at the start, {end_load[0]:.2f} at the end (other processes share the cores)\n")
        print("| run | s to first line | img/s (whole command) | img/s (after the first tenth) "
              "| vs workers 1 (whole / steady) | check |")
        print("|---|---:|---:|---:|---:|---|")
        for workers in sorted(best):
            whole, steady, first = best[workers]
            ratio = f"{whole / best[1][0]:.2f}x / {steady / best[1][1]:.2f}x"
            check = "" if workers == 1 else f"same lines as workers 1: {'yes' if same else 'NO'}"
            print(f"| workers {workers} | {first:.1f} | {whole:.2f} | {steady:.2f} | {ratio} | {check} |")
        print(f"| kill -9 at {killed_at} lines + --resume | | | | | every photo once: {'yes' if once else 'NO'}; "
              f"identical to the uninterrupted run: {'yes' if identical else 'NO'}; killed mid-run: "
              f"{'yes' if was_cut else 'NO'} |")
        if ratios:
            print("\nratios per repeat (whole / steady): " + ", ".join(f"{w:.2f}x / {s:.2f}x" for w, s in ratios))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
