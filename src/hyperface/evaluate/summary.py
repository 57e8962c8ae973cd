"""From collected per-face results to the reported numbers of ``evaluation.md``.

One summary per (model, dataset, mode): landmarks per point set (with the pose breakdown where the
data says, and part by part: jaw, brows, nose, eyes, mouth for 68 points), head pose per reference source (with errors by reference yaw), MTFL's Spearman
correlation, gender, detection. A block is absent when the data (or the model) has nothing for it.
"""

from __future__ import annotations

import numpy as np

from hyperface.data.records import GENDERS
from hyperface.evaluate import metrics as M
from hyperface.evaluate.references import POSE_BINS
from hyperface.evaluate.results import FaceResult, RunResult

__all__ = ["YAW_BIN_EDGES", "summarize", "landmark_errors", "pose_by_yaw"]

# Bins of the reference yaw (degrees) for the pose-error-by-yaw breakdown; the end bins are open.
YAW_BIN_EDGES = (-90.0, -60.0, -45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0, 60.0, 90.0)


def landmark_errors(faces: list[FaceResult], point_set: str) -> np.ndarray:
    """Per-face NMEs on ``point_set`` (NaN = missed)."""
    return np.array([f.nme for f in faces if f.nme_set == point_set and f.nme is not None], dtype=np.float64)


def _landmarks(faces: list[FaceResult]) -> dict:
    out = {}
    for point_set, limit in M.NME_LIMITS.items():
        sel = [f for f in faces if f.nme_set == point_set and f.nme is not None]
        if not sel:
            continue
        block = M.landmark_summary([f.nme for f in sel], limit)
        by_pose = {}
        for name in POSE_BINS:
            part = [f.nme for f in sel if f.pose_bin == name]
            if part:
                by_pose[name] = M.landmark_summary(part, limit)
        if by_pose:
            block["by_pose"] = by_pose
        parts = [f.nme_parts for f in sel if f.nme_parts]
        if parts:  # found faces: each part's NME, the mean over the faces that have it
            block["by_part"] = {name: float(np.mean([p[name] for p in parts if name in p]))
                                for name in dict.fromkeys(k for p in parts for k in p)}
        out[point_set] = block
    return out


def pose_by_yaw(faces: list[FaceResult], edges=YAW_BIN_EDGES) -> list[dict]:
    """MAE per angle in bins of the reference yaw (found faces; end bins take everything beyond)."""
    sel = [f for f in faces if f.pose_ref is not None and f.pose_pred is not None and np.all(np.isfinite(f.pose_pred))]
    if not sel:
        return []
    ref = np.array([f.pose_ref for f in sel])
    err = M.pose_errors(np.array([f.pose_pred for f in sel]), ref)
    idx = np.clip(np.searchsorted(edges, ref[:, 2], side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        e = err[idx == b]
        row = {"yaw_from": edges[b], "yaw_to": edges[b + 1], "faces": len(e)}
        row.update({k: (float(v) if len(e) else None) for k, v in
                    zip(("roll", "pitch", "yaw"), e.mean(axis=0) if len(e) else (0, 0, 0))})
        rows.append(row)
    return rows


def _pose(faces: list[FaceResult]) -> dict:
    out = {}
    for source in ("annotated", "pnp"):
        sel = [f for f in faces if f.pose_source == source and f.pose_pred is not None]
        if not sel:
            continue
        errors = M.pose_errors(np.array([f.pose_pred for f in sel]), np.array([f.pose_ref for f in sel]))
        block = M.pose_summary(errors)
        block["by_yaw"] = pose_by_yaw(sel)
        out[source] = block
    return out


def _spearman(faces: list[FaceResult]) -> dict | None:
    sel = [f for f in faces if f.pose_class is not None and f.pose_pred is not None]
    if not sel:
        return None
    yaw = np.array([f.pose_pred[2] for f in sel], dtype=np.float64)
    return {"faces": len(sel), "found": int(np.isfinite(yaw).sum()),
            "rho": M.spearman_yaw_class(yaw, [f.pose_class for f in sel])}


#: The attributes of a face (where its dataset gives them) by which gender accuracy is told apart.
GENDER_GROUPS = ("age", "race")
#: Age bands (years) of gender accuracy, FairFace's bins: children (0-2, 3-9) are reported apart.
AGE_BANDS = (0, 3, 10, 20, 30, 40, 50, 60, 70)


def _age_band(age: float) -> str:
    k = int(np.searchsorted(AGE_BANDS, float(age), side="right")) - 1
    return f">={AGE_BANDS[-1]}" if k == len(AGE_BANDS) - 1 else f"{AGE_BANDS[k]}-{AGE_BANDS[k + 1] - 1}"


def gender_by(faces: list[FaceResult], found_only: bool = False) -> dict[str, dict[str, list[int]]]:
    """Gender right and scored, ``[right, total]`` (a missed face counts wrong; with ``found_only`` the
    found faces alone), by true gender, by age band and by race where the faces carry them: whom the
    gender answer fails."""
    out: dict[str, dict[str, list[int]]] = {}
    for f in faces:
        if f.gender_true is None or f.gender_pred is None or (found_only and f.gender_pred < 0):
            continue
        keys = {"gender": GENDERS[f.gender_true]}
        if "age" in f.groups:
            keys["age"] = _age_band(f.groups["age"])
        if "race" in f.groups:
            keys["race"] = str(f.groups["race"])
        for name, value in keys.items():
            counts = out.setdefault(name, {}).setdefault(value, [0, 0])
            counts[0] += int(f.gender_pred == f.gender_true)
            counts[1] += 1
    bands = {b: k for k, b in enumerate(_age_band(a) for a in AGE_BANDS)}
    return {name: dict(sorted(groups.items(), key=lambda kv: bands.get(kv[0], 0) if name == "age" else kv[0]))
            for name, groups in out.items()}


def _gender(faces: list[FaceResult]) -> dict | None:
    sel = [f for f in faces if f.gender_true is not None and f.gender_pred is not None]
    if not sel:
        return None
    out = M.gender_summary([f.gender_pred for f in sel], [f.gender_true for f in sel], GENDERS)
    out["by"] = gender_by(sel)
    out["by_found"] = gender_by(sel, found_only=True)
    out["found_by"] = found_by_group(out["by"], out["by_found"])
    return out


def found_by_group(by: dict[str, dict[str, list[int]]],
                   by_found: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, list[int]]]:
    """Faces found, ``[found, total]``, per group of :func:`gender_by` (true gender, age band, race), from
    its counts over all faces (``by``) and over the found ones (``by_found``): whom the detection misses."""
    return {name: {group: [by_found.get(name, {}).get(group, [0, 0])[1], total] for group, (_, total) in groups.items()}
            for name, groups in by.items()}


#: Face heights (pixels) by which detection recall is told apart.
HEIGHT_BINS = (0.0, 10.0, 20.0, 40.0, 80.0, float("inf"))


def found_by(faces: list[tuple[dict, float, bool]]) -> dict[str, dict[str, list[int]]]:
    """Faces found and annotated, ``[found, total]``, by face height and by each attribute the faces carry
    (WIDER's blur, occlusion, pose ...): where a detector loses faces."""
    out: dict[str, dict[str, list[int]]] = {"height": {}}
    for lo, hi in zip(HEIGHT_BINS[:-1], HEIGHT_BINS[1:]):
        inside = [found for _, h, found in faces if lo <= h < hi]
        if inside:
            out["height"][f"{lo:g}-{hi:g}" if hi < float("inf") else f">={lo:g}"] = [sum(inside), len(inside)]
    for attributes, _, found in faces:
        for name, value in attributes.items():
            if name == "ignore":
                continue
            counts = out.setdefault(name, {}).setdefault(str(value), [0, 0])
            counts[0] += int(found)
            counts[1] += 1
    return {name: dict(sorted(groups.items())) if name != "height" else groups for name, groups in out.items()}


def summarize(run: RunResult) -> dict:
    """The metrics of one run as a JSON-ready dict."""
    out: dict = {"model": run.model, "dataset": run.dataset, "mode": run.mode, "images": run.images,
                 "faces": len(run.faces), "seconds": round(run.seconds, 2)}
    landmarks = _landmarks(run.faces)
    if landmarks:
        out["landmarks"] = landmarks
    pose = _pose(run.faces)
    if pose:
        out["pose"] = pose
    spearman = _spearman(run.faces)
    if spearman:
        out["pose_class_spearman"] = spearman
    gender = _gender(run.faces)
    if gender:
        out["gender"] = gender
    if run.detections:
        out["detection"] = M.detection_summary(run.detections, run.score_threshold,
                                               at_threshold=run.detections_default or None)
        if run.found_faces:
            out["detection"]["found_by"] = found_by(run.found_faces)
    if run.problems:
        out["problems"] = list(run.problems)
    return out
