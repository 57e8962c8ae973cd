"""Two models' landmark errors face by face: is the new one better, or is the difference noise?

A mean NME over 162 faces moves by a few hundredths from one model to the next; on the same faces the
per-face differences tell the two apart far better than the means do. Give two ``hyperface evaluate
--per-face --json`` files of the same data (same ``--split``, ``--data`` and ``--mode``); the table
gives, per dataset, both means, the share of faces the second model does better on, and the mean
difference with a paired bootstrap 95% interval (an interval that excludes 0 is a difference the
faces support).

    hyperface evaluate --weights bundled --split val --mode full --data ... --per-face --json old.json
    hyperface evaluate --weights bundled --fine NEW.safetensors ... --per-face --json new.json
    python benchmarks/paired_nme.py old.json new.json
    python benchmarks/paired_nme.py old.json new.json --by-pose   # ... and by head pose

``--by-pose`` splits each dataset by the data's own pose bin where it has one (MTFL's pose class:
frontal, half-profile, profile) and otherwise by the reference pose's |yaw| (300-W's PnP of its 68
points: under 15, 15-30, 30 degrees and over): where a change helps, turned faces or frontal ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def read_faces(path: Path) -> dict[tuple[str, str, int], dict]:
    """``(dataset, image, face) -> per-face record`` of an ``evaluate --per-face --json`` file."""
    data = json.loads(path.read_text())
    out = {}
    for run in data.get("results", []):
        if "per_face" not in run:
            raise SystemExit(f"{path}: {run.get('dataset')!r} has no per-face results (run evaluate with --per-face)")
        for face in run["per_face"]:
            out[(run["dataset"], face["image"], int(face.get("face", 0)))] = face
    return out


def errors_of(faces: dict[tuple[str, str, int], dict]) -> dict[tuple[str, str, int], float]:
    """The NME of every found face of :func:`read_faces`' records."""
    return {key: float(face["nme"]) for key, face in faces.items() if face.get("nme") is not None}


def face_errors(path: Path) -> dict[tuple[str, str, int], float]:
    """``(dataset, image, face) -> NME`` of every found face in an ``evaluate --per-face --json`` file."""
    return errors_of(read_faces(path))


YAW_EDGES = (15.0, 30.0)  # --by-pose bins of the reference |yaw| where the data has no pose bin


def pose_group(face: dict) -> str | None:
    """The data's pose bin, else a bin of the reference pose's |yaw|; None without either."""
    if face.get("pose_bin"):
        return str(face["pose_bin"])
    ref = face.get("pose_ref")
    if ref is None or not np.isfinite(ref[2]):
        return None
    yaw = abs(float(ref[2]))
    low = max((e for e in YAW_EDGES if e <= yaw), default=0.0)
    high = min((e for e in YAW_EDGES if e > yaw), default=None)
    return f"yaw +-{low:g}-{high:g}" if high is not None else f"yaw +-{low:g} and over"


def paired(old: np.ndarray, new: np.ndarray, rounds: int = 2000, seed: int = 0) -> dict[str, float]:
    """Means, the share of faces ``new`` errs less on, and the mean difference new - old with a paired
    bootstrap 95% interval (faces resampled with replacement, the pairs kept)."""
    diff = new - old
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (rounds, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"faces": len(diff), "old": float(old.mean()), "new": float(new.mean()),
            "better": float(np.mean(diff < 0)), "diff": float(diff.mean()), "low": float(low), "high": float(high)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="evaluate --per-face --json of the reference model")
    parser.add_argument("new", type=Path, help="the same for the model compared with it")
    parser.add_argument("--rounds", type=int, default=2000, help="bootstrap rounds")
    parser.add_argument("--by-pose", action="store_true", help="a row per head-pose group of each dataset too")
    args = parser.parse_args(argv)
    reference = read_faces(args.old)  # read once: its errors and, for --by-pose, its faces' pose groups
    old, new = errors_of(reference), face_errors(args.new)
    groups = {key: pose_group(face) for key, face in reference.items()} if args.by_pose else {}
    datasets = sorted({key[0] for key in old} | {key[0] for key in new})
    if not datasets:
        print("no per-face NME in either file", file=sys.stderr)
        return 1
    print("| dataset | faces in both | NME old | NME new | faces better | new - old (95% interval) |")
    print("|---|---:|---:|---:|---:|---|")
    for name in datasets:
        keys = sorted(k for k in old if k[0] == name and k in new)
        if not keys:
            print(f"| {name} | 0 | | | | |")
            continue
        rows = [(name, keys)]
        if args.by_pose:
            found = sorted({groups.get(k) for k in keys} - {None})
            rows += [(f"{name}, {g}", [k for k in keys if groups.get(k) == g]) for g in found]
        for label, part in rows:
            r = paired(np.array([old[k] for k in part]), np.array([new[k] for k in part]), args.rounds)
            print(f"| {label} | {r['faces']} | {100 * r['old']:.2f}% | {100 * r['new']:.2f}% | {100 * r['better']:.0f}% | "
                  f"{100 * r['diff']:+.3f} ({100 * r['low']:+.3f} to {100 * r['high']:+.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
