"""What a new user gets from ``pip install .`` (inference only): disk, packages, start-up times.

Makes a fresh virtual environment, installs this checkout into it as the README's first command does
(``pip install -c constraints.txt .``, no extras), then measures, each the median of ``--repeats`` runs
in new processes:

* the environment's size on disk and whether ``torch`` is among its packages;
* ``python -c "import hyperface"`` (and whether it imported torch);
* ``FaceAnalyzer()`` construction and its first call on the evaluation document's test image
  (benchmarks/public_api_timing.py, which also times the steady call);
* ``hyperface analyze --help`` and ``hyperface analyze --example`` (the README's first command).

    python benchmarks/install_footprint.py [--repeats 3] [--keep DIR]

Prints a markdown table (no assertions). Needs network access to the package index (or its cache).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def _timed(cmd: list[str], repeats: int, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    times, done = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
        times.append(time.perf_counter() - t)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    return statistics.median(times), done


def _test_image(folder: Path) -> Path:
    """The evaluation document's test image (the astronaut on a 640 x 480 grey canvas), as a PNG."""
    from PIL import Image

    astronaut = Image.open(ROOT / "src" / "hyperface" / "assets" / "astronaut.jpg").convert("RGB")
    canvas = Image.new("RGB", (640, 480), (128, 128, 128))
    canvas.paste(astronaut.resize((480, 480), Image.Resampling.BOX), (80, 0))
    path = folder / "test_image.png"
    canvas.save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="make the environment here and keep it")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="hyperface-install-"))
    work.mkdir(parents=True, exist_ok=True)
    venv = work / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py, hf = venv / "bin" / "python", venv / "bin" / "hyperface"
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip>=24"], check=True,
                       capture_output=True)
        t = time.perf_counter()
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(ROOT)],
                       check=True, capture_output=True)
        install_s = time.perf_counter() - t
        packages = json.loads(subprocess.run([str(py), "-m", "pip", "list", "--format", "json"], check=True,
                                             capture_output=True, text=True).stdout)
        names = sorted(p["name"].lower() for p in packages)
        size = _du_mb(venv)
        probe = ("import sys, time; t = time.perf_counter(); import hyperface; "
                 "print(time.perf_counter() - t, 'torch' in sys.modules)")
        _, done = _timed([str(py), "-c", probe], 1, work)
        imported_torch = done.stdout.split()[1] == "True"
        import_s, _ = _timed([str(py), "-c", "import hyperface"], args.repeats, work)
        image = _test_image(work)
        runs = [json.loads(_timed([str(py), str(ROOT / "benchmarks" / "public_api_timing.py"), str(image)], 1,
                                  work)[1].stdout) for _ in range(args.repeats)]
        help_s, _ = _timed([str(hf), "analyze", "--help"], args.repeats, work)
        example_s, _ = _timed([str(hf), "analyze", "--example", "--json", str(work / "example.jsonl")],
                              args.repeats, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in runs) for k in ("construct_s", "first_call_s", "median_ms")}
    print(f"Fresh venv, `pip install -c constraints.txt .` of this checkout ({install_s:.0f} s); medians of "
          f"{args.repeats} runs in new processes.\n")
    print("| what | measured |\n|---|---:|")
    print(f"| venv size on disk | {size:,.0f} MB |")
    print(f"| packages | {len(names)}: {', '.join(names)} |")
    print(f"| torch installed | {'yes' if 'torch' in names else 'no'} |")
    print(f"| `import hyperface` | {import_s:.2f} s (imports torch: {'yes' if imported_torch else 'no'}) |")
    print(f"| `import hyperface` then `FaceAnalyzer()` | {med['construct_s']:.2f} s |")
    print(f"| its first call (640x480 test image) | {med['first_call_s']:.3f} s |")
    print(f"| a later call | {med['median_ms']:.1f} ms |")
    print(f"| `hyperface analyze --help` | {help_s:.2f} s |")
    print(f"| `hyperface analyze --example --json OUT` | {example_s:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
