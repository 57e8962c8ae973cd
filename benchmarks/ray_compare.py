"""Ray Data against one process on the same images: are the JSON lines identical, and how long each takes.

The single-process path is the analyzer called image by image (what ``hyperface analyze`` does);
the Ray path is :func:`hyperface.cluster.analyze_with_ray` on a local Ray with ``--cpus`` CPUs (one
actor per CPU, one thread each). Both use the same settings (``threads=1``). Lines are compared
as parsed JSON, order aside. Times are wall seconds: the analyzer's construction and Ray's start
are shown apart from the analysis, since a long run pays them once.

    python benchmarks/ray_compare.py [FOLDER] [--count 20] [--cpus 2]

Default FOLDER: the face-mask photos of the development data ($HYPERFACE_DATA/masks/images), the
first ``--count`` by name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from hyperface.data.images import IMAGE_SUFFIXES, load_image

SETTINGS = {"threads": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(os.environ.get("HYPERFACE_DATA", "../shared/data")) / "masks" / "images"
    parser.add_argument("folder", nargs="?", type=Path, default=default)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.count]
    if not paths:
        raise SystemExit(f"{args.folder}: no images")

    import ray

    from hyperface.cluster import analyze_with_ray
    from hyperface.inference import FaceAnalyzer

    t0 = time.perf_counter()
    analyzer = FaceAnalyzer(**SETTINGS)
    t1 = time.perf_counter()
    single = []
    for path in paths:
        image = load_image(path)
        single.append({"input": str(path), "frame": None, "width": image.shape[1], "height": image.shape[0],
                       "faces": [f.to_dict() for f in analyzer(image)]})
    t2 = time.perf_counter()

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    t3 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = analyze_with_ray(paths, Path(tmp) / "faces.jsonl", settings=SETTINGS)
        lines = [json.loads(line) for line in (Path(tmp) / "faces.jsonl").read_text().splitlines()]
    t4 = time.perf_counter()
    ray.shutdown()

    def key(line: dict) -> str:
        return json.dumps(line, sort_keys=True)

    same = sorted(map(key, single)) == sorted(map(key, lines))
    n_faces = sum(len(line["faces"]) for line in single)
    print(f"{len(paths)} images from {args.folder}, {n_faces} faces (single process); Ray: {args.cpus} CPUs, "
          f"{run.images} images, {run.faces} faces, {run.failures} failures\n")
    print("| path | setup s | analysis s | total s | images/s (analysis) | lines identical |")
    print("|---|---|---|---|---|---|")
    print(f"| one process, analyzer per image | {t1 - t0:.1f} (analyzer) | {t2 - t1:.1f} | {t2 - t0:.1f} | "
          f"{len(paths) / (t2 - t1):.2f} | (reference) |")
    print(f"| Ray Data, {args.cpus} actors x 1 thread | {t3 - t2:.1f} (ray.init) | {t4 - t3:.1f} (actors' start "
          f"included) | {t4 - t2:.1f} | {len(paths) / (t4 - t3):.2f} | {'yes' if same else 'NO'} |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
