"""Timing the tools users compare hyperface with, on the same image, for ``analyze_speed.py``.

Each peer is timed the way its users call it on a photo, the whole call: MediaPipe's face mesh in
static-image mode (its face detector, then 468 points with the iris model off), MediaPipe's short-range
face detector alone, and dlib's HOG detector, upsampling once as its examples do, with its 68-point
shape predictor: ``--dlib-predictor shape_predictor_68_face_landmarks.dat``, else the copy in the
``face_recognition_models`` package when it is installed. A peer that is not installed is skipped.
``benchmarks/peers-requirements.txt`` pins a set that installs from PyPI on Linux x86-64 (dlib from
the ``dlib-bin`` wheels), in a virtual environment of its own:

    python -m venv peers && peers/bin/pip install -r benchmarks/peers-requirements.txt
    python benchmarks/analyze_speed.py --peer-python peers/bin/python

Peers often need package versions that clash with hyperface's (MediaPipe pins protobuf and numpy),
so ``analyze_speed.py --peer-python PY`` runs this file with another interpreter, in the same
benchmark run, on the same image (passed as a .png), and reads its JSON:

    python benchmarks/peers.py IMAGE.png --repeats 20 --warmup 3 [--dlib-predictor FILE]

Each entry: ``{"name", "median_ms", "cpu_ms", "faces"}``; CPU ms is the median process CPU time of a
call (all threads).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from collections.abc import Callable

import numpy as np

__all__ = ["time_peer", "peer_timings"]


def time_peer(fn: Callable[[], int], repeats: int, warmup: int) -> tuple[float, float, int]:
    """Median wall ms, median CPU ms and the face count of the last call."""
    for _ in range(warmup):
        fn()
    wall, cpu, faces = [], [], 0
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        faces = fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu), faces


def _mediapipe(image: np.ndarray) -> list[tuple[str, Callable[[], int]]]:
    try:
        import mediapipe as mp
    except ImportError:
        return []
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=10, refine_landmarks=False)
    detector = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)

    def run_mesh() -> int:
        out = mesh.process(image)
        return len(out.multi_face_landmarks or [])

    def run_detector() -> int:
        out = detector.process(image)
        return len(out.detections or [])

    version = getattr(mp, "__version__", "?")
    return [(f"MediaPipe {version} face mesh (detector + 468 points)", run_mesh),
            (f"MediaPipe {version} face detector", run_detector)]


def _packaged_predictor() -> str | None:
    """dlib's 68-point model from the ``face_recognition_models`` package (PyPI), when it is installed."""
    try:
        import face_recognition_models
    except ImportError:
        return None
    return face_recognition_models.pose_predictor_model_location()


def _dlib(image: np.ndarray, predictor_path: str | None) -> list[tuple[str, Callable[[], int]]]:
    try:
        import dlib
    except ImportError:
        return []
    detector = dlib.get_frontal_face_detector()
    predictor_path = predictor_path or _packaged_predictor()
    predictor = dlib.shape_predictor(predictor_path) if predictor_path else None

    def run() -> int:
        rects = detector(image, 1)
        if predictor is not None:
            for r in rects:
                predictor(image, r)
        return len(rects)

    what = "HOG + 68 points" if predictor is not None else "HOG detector (no predictor file given)"
    return [(f"dlib {dlib.__version__} {what}", run)]


def peer_timings(image: np.ndarray, repeats: int, warmup: int, dlib_predictor: str | None = None) -> list[dict]:
    """Timings of every installed peer on the RGB ``image``."""
    image = np.ascontiguousarray(image)
    rows = []
    for name, fn in _mediapipe(image) + _dlib(image, dlib_predictor):
        ms, cpu, faces = time_peer(fn, repeats, warmup)
        rows.append({"name": name, "median_ms": ms, "cpu_ms": cpu, "faces": faces})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="time the installed peers on one image; JSON on stdout")
    parser.add_argument("image", help="RGB image file (PNG keeps it lossless)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dlib-predictor", help="dlib's shape_predictor_68_face_landmarks.dat "
                        "(default: face_recognition_models' copy, when installed)")
    args = parser.parse_args(argv)
    if args.dlib_predictor and not Path(args.dlib_predictor).is_file():
        print(f"peers: {args.dlib_predictor}: no such file (dlib's 68-point shape predictor)", file=sys.stderr)
        return 2
    import cv2

    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        print(f"peers: cannot read {args.image}", file=sys.stderr)
        return 2
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    json.dump(peer_timings(rgb, args.repeats, args.warmup, args.dlib_predictor), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
