"""Benchmark ``hyperface prepare``: images per second and peak memory on the 300-W pool.

Runs the real CLI in a child process for each configuration and samples the memory of its whole
process tree (the main process and its spawned workers) from /proc every 0.2 s:

* 300-W (LFPW + HELEN training folders), 1 worker;
* the same with one worker per core;
* the same pool given twice (each folder as two --source entries), 1 worker: twice the images and
  samples, to show that memory does not grow with the dataset (shards are written as they finish
  and nothing accumulates).

Memory columns: peak of the tree's summed RSS (counts shared library pages once per process),
peak of the tree's summed anonymous memory (heap and other non-file pages: what the job itself
allocates, unaffected by which other processes share the libraries), and the largest single
process's peak RSS. Linux only (reads /proc).

    python benchmarks/prepare.py [--data ../shared/data] [--ss-mode single] [--keep DIR]

Prints a markdown table. Takes minutes: run it in the background with a log.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    """pid and all its descendants, from /proc/*/stat."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parent[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [pid], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        tree += kids
        frontier += kids
    return tree


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, anonymous) bytes of one process, from smaps_rollup."""
    rss = anon = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key == "Rss":
                    rss = int(rest.split()[0]) * 1024
                elif key == "Anonymous":
                    anon = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return rss, anon


class TreeSampler(threading.Thread):
    """Samples the summed RSS and anonymous memory of a process tree until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_anon = self.peak_process = 0
        self.peak_procs = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            tree = _children(self.pid)
            mem = [_memory(p) for p in tree]
            self.peak_rss = max(self.peak_rss, sum(m[0] for m in mem))
            self.peak_anon = max(self.peak_anon, sum(m[1] for m in mem))
            self.peak_process = max([self.peak_process] + [m[0] for m in mem])
            self.peak_procs = max(self.peak_procs, len(tree))
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def run_config(name: str, sources: list[str], workers: int, extra: list[str], work: Path) -> dict:
    out = work / name.replace(" ", "_")
    cmd = [sys.executable, "-m", "hyperface.cli.main", "prepare", "--out", str(out), "--workers", str(workers),
           "--no-progress", *extra]
    for s in sources:
        cmd += ["--source", s]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{name}: prepare failed ({proc.returncode}):\n{stderr[-2000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    return {"name": name, "workers": workers, "images": counts["images"], "samples": counts["samples"],
            "wall_s": wall, "images_per_s": counts["images"] / wall,
            "peak_tree_rss": sampler.peak_rss, "peak_tree_anon": sampler.peak_anon,
            "max_process_rss": sampler.peak_process, "processes": sampler.peak_procs,
            "out": out}


def _import_cost() -> int:
    """Anonymous memory of a bare Python that imported the prepare job (torch, torchvision, OpenCV)."""
    code = ("import hyperface.data.prepare\n"
            "print(sum(int(l.split()[1]) for l in open('/proc/self/smaps_rollup') "
            "if l.startswith('Anonymous:')) * 1024)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(r.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("HYPERFACE_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="'all cores' configuration")
    parser.add_argument("--ss-mode", default="single", help="as the README command (the CLI default is fast)")
    parser.add_argument("--crop-size", type=int, default=160)
    parser.add_argument("--keep", type=Path, help="keep the prepared folders here (default: a temp dir, removed)")
    args = parser.parse_args()
    pool = [args.data / "300w" / "lfpw" / "trainset", args.data / "300w" / "helen" / "trainset"]
    for p in pool:
        if not p.is_dir():
            raise SystemExit(f"{p}: not found (give --data)")
    sources = [f"pts:{p}" for p in pool]
    extra = ["--ss-mode", args.ss_mode, "--crop-size", str(args.crop_size)]
    work = args.keep or Path(tempfile.mkdtemp(prefix="hf-bench-prepare-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows = [
            run_config("300-W, 1 worker", sources, 1, extra, work),
            run_config(f"300-W, {args.workers} workers", sources, args.workers, extra, work),
            run_config("300-W x2, 1 worker", sources + sources, 1, extra, work),
        ]
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    mib = 1024 * 1024
    print(f"\n`hyperface prepare` on {', '.join(str(p) for p in pool)}; --ss-mode {args.ss_mode}, "
          f"--crop-size {args.crop_size}; {os.cpu_count()} CPU cores (shared: timings are pessimistic); "
          f"importing the job costs {_import_cost() / mib:.0f} MiB anonymous memory per process (torch, torchvision, OpenCV)\n")
    print("| run | workers | images | samples | wall s | images/s | peak tree RSS MiB | peak tree anonymous MiB "
          "| largest process RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['workers']} | {r['images']} | {r['samples']} | {r['wall_s']:.1f} | "
              f"{r['images_per_s']:.2f} | {r['peak_tree_rss'] / mib:.0f} | {r['peak_tree_anon'] / mib:.0f} | {r['max_process_rss'] / mib:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
