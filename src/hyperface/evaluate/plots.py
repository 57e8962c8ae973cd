"""Evaluation plots (PNG, rendered by matplotlib's Agg canvas): cumulative error curves with a curve
per model, precision-recall curves, head-pose error by reference yaw.

Figures are plain :class:`matplotlib.figure.Figure` objects with an Agg canvas, never pyplot, so
importing this module changes no global matplotlib state. One file per dataset (and mode, and point
set or pose reference); each is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hyperface import fileio
from hyperface.evaluate import metrics as M
from hyperface.evaluate.results import RunResult
from hyperface.evaluate.summary import landmark_errors, pose_by_yaw

__all__ = ["write_plots", "plot_ced", "plot_pr", "plot_pose_by_yaw"]

_SET_NAMES = {"ibug68": "68-point", "five": "5-point"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "data"


def _figure(**kwargs) -> Figure:
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def plot_ced(runs: Sequence[RunResult], point_set: str, path: Path, title: str) -> Path | None:
    """Cumulative error curves (share of all faces, misses included, with NME <= x), one per run."""
    limit = M.NME_LIMITS[point_set]
    fig = _figure(figsize=(6, 4.5))
    ax = fig.subplots()
    drawn = False
    for run in runs:
        errors = landmark_errors(run.faces, point_set)
        if len(errors) == 0:
            continue
        t, frac = M.ced_curve(errors, limit)
        s = M.landmark_summary(errors, limit)
        ax.plot(t * 100, frac, label=f"{run.model} (AUC {s['auc']:.3f}, fail {100 * s['failure']:.1f}%)")
        drawn = True
    if not drawn:
        return None
    ax.set_xlim(0, limit * 100)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"{_SET_NAMES[point_set]} NME (%)")
    ax.set_ylabel("share of faces")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_pr(runs: Sequence[RunResult], path: Path, title: str) -> Path | None:
    """Precision-recall curves over all reported detections, the default operating point marked."""
    fig = _figure(figsize=(6, 4.5))
    ax = fig.subplots()
    drawn = False
    for run in runs:
        if not run.detections:
            continue
        recall, precision, _ = M.detection_curve(run.detections)
        s = M.detection_summary(run.detections, run.score_threshold, at_threshold=run.detections_default or None)
        (line,) = ax.plot(recall, precision, label=f"{run.model} (AP {s['ap'] if s['ap'] is not None else 0:.3f})")
        if s["recall"] is not None and s["precision"] is not None:
            ax.plot([s["recall"]], [s["precision"]], "o", color=line.get_color())
        drawn = True
    if not drawn:
        return None
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title + " (dot: default threshold)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_pose_by_yaw(runs: Sequence[RunResult], source: str, path: Path, title: str) -> Path | None:
    """MAE of roll, pitch and yaw per bin of the reference yaw, a line per model."""
    fig = _figure(figsize=(13, 4))
    axes = fig.subplots(1, 3, sharey=True)
    drawn = False
    for run in runs:
        rows = [r for r in pose_by_yaw([f for f in run.faces if f.pose_source == source]) if r["faces"]]
        if not rows:
            continue
        centres = [(r["yaw_from"] + r["yaw_to"]) / 2 for r in rows]
        for ax, angle in zip(axes, ("roll", "pitch", "yaw")):
            ax.plot(centres, [r[angle] for r in rows], marker="o", label=run.model)
        drawn = True
    if not drawn:
        return None
    for ax, angle in zip(axes, ("roll", "pitch", "yaw")):
        ax.set_title(f"{angle} error")
        ax.set_xlabel(f"reference yaw (degrees, {source})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean absolute error (degrees)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def write_plots(runs: Sequence[RunResult], folder: str | Path) -> list[Path]:
    """All plots the runs call for, into ``folder``; returns the files written."""
    folder = Path(folder)
    groups: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for run in runs:
        groups[(run.dataset, run.mode)].append(run)
    written: list[Path] = []
    for (dataset, mode), group in groups.items():
        slug = f"{_slug(dataset)}_{mode}"
        for point_set in M.NME_LIMITS:
            p = plot_ced(group, point_set, folder / f"ced_{_SET_NAMES[point_set]}_{slug}.png",
                         f"{dataset}, {mode}: {_SET_NAMES[point_set]} cumulative error")
            written += [p] if p else []
        if mode == "full":
            p = plot_pr(group, folder / f"pr_{slug}.png", f"{dataset}: detection")
            written += [p] if p else []
        for source in ("annotated", "pnp"):
            if any(f.pose_source == source for run in group for f in run.faces):
                p = plot_pose_by_yaw(group, source, folder / f"pose_by_yaw_{source}_{slug}.png",
                                     f"{dataset}, {mode}: head-pose error by yaw ({source} reference)")
                written += [p] if p else []
    return written
