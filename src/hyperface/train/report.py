"""Reports on training runs: the study's comparisons as PNG figures and markdown tables.

Reads each run folder's ``config.yaml`` and ``metrics.csv`` (the main stage; stage one's in
``stage1/`` is summarised in the table). Runs of the same name (one experiment trained with several
seeds, e.g. ``runs/study-cpu/seed-*/exp2a``) form one group: figures draw each seed thin and the
mean thick, tables give the mean and the spread (sample standard deviation) over seeds. A figure
holds, per task, the training (solid) and validation (dashed) loss per epoch of every group it
compares, the landmark accuracy per epoch (share of faces with NME under the point set's limit:
0.08 for 68 points, 0.10 for 5, :data:`~hyperface.evaluate.metrics.NME_LIMITS`) and the cumulative
error curve at the best epoch. A run that started from another run's best weights (``model.init``,
as experiment 5 does) has that run's best epoch drawn as its epoch 0. The
study's comparisons are drawn for the runs named after its experiments (``exp1`` ... ``exp5``);
every report also has one figure of all runs together, and one picture per group of the landmarks
it predicted on fixed validation faces after each epoch (``landmark_snapshots/``, one row per epoch).

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, no global backend).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hyperface import fileio
from hyperface.evaluate.metrics import NME_LIMITS
from hyperface.points import get_point_set
from hyperface.tasks import EXTRA_LOSS_TERMS, LOSS_TERMS
from hyperface.train.engine import NME_THRESHOLDS, landmark_metric
from hyperface.train.logs import read_csv
from hyperface.train.snapshots import read_snapshots

__all__ = ["Run", "COMPARISONS", "load_run", "group_runs", "plot_comparison", "plot_snapshots", "markdown_table",
           "results_table", "paired_differences", "loss_changes", "write_report"]

log = logging.getLogger("hyperface.train")

# (file stem, title, run names): the study's comparisons (docs/method.md, section 5)
COMPARISONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("exp1_vs_exp2a", "Random initialisation (1) vs two stages from the face classifier (2a)", ("exp1", "exp2a")),
    ("exp1_long_vs_exp2a", "Random initialisation trained as long as both stages of 2(a) (1-long) vs 2(a)",
     ("exp1-long", "exp2a")),
    ("exp2a_vs_exp2b", "Stage-one non-faces from the face photos (2a) vs CIFAR-10 / photos (2b)", ("exp2a", "exp2b")),
    ("exp2a_vs_exp3", "With (2a) and without (3) the pose and gender tasks", ("exp2a", "exp3")),
    ("exp1_vs_exp4", "All tasks (1) vs 68 points and pose on faces only (4)", ("exp1", "exp4")),
    ("exp5", "Further training on the landmark loss alone, every branch logged (5)", ("exp5",)),
    ("exp5_weighting", "Further training: landmarks alone (5), all tasks at fixed weights, uncertainty weighting, "
                       "landmarks + pose", ("exp5", "exp5-all", "exp5-uncertainty", "exp5-subset")),
)

Group = tuple[str, list["Run"]]  # (name, the runs of that name: one per seed)


@dataclass
class Run:
    """One run folder's logs."""

    name: str
    folder: Path
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    stage1_rows: list[dict[str, Any]] = field(default_factory=list)
    start_row: dict[str, Any] | None = None  # the best epoch of the run whose weights it started from

    @property
    def tasks(self) -> list[str]:
        return list(self.config.get("model", {}).get("tasks", []))

    @property
    def optimised(self) -> list[str]:
        return list(self.config.get("loss", {}).get("optimise") or self.tasks)

    @property
    def seed(self) -> int:
        return int(self.config.get("run", {}).get("seed", 0))

    def column(self, key: str, *, with_start: bool = False) -> tuple[list[float], list[float]]:
        """(epochs, values) of a metrics column where it has a finite value; ``with_start`` adds
        the starting weights' value as epoch 0 when the run continued another run."""
        xs, ys = [], []
        rows = ([{**self.start_row, "epoch": 0.0}] if with_start and self.start_row else []) + self.rows
        for row in rows:
            v = row.get(key)
            if isinstance(v, float) and math.isfinite(v):
                xs.append(row["epoch"])
                ys.append(v)
        return xs, ys

    def landmark_set(self) -> str | None:
        """The point set ("ibug68" or "five") whose NME this run reports, if any."""
        for point_set in NME_LIMITS:
            if any(_val_landmark("nme", point_set) in r for r in self.rows):
                return point_set
        return None

    def best_row(self) -> dict[str, Any] | None:
        """The epoch with the lowest landmark NME (else the lowest validation loss)."""
        point_set = self.landmark_set()
        key = _val_landmark("nme", point_set) if point_set else "val_loss_total"
        rows = [r for r in self.rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
        return min(rows, key=lambda r: r[key]) if rows else (self.rows[-1] if self.rows else None)


def _val_landmark(name: str, point_set: str, threshold: float | None = None) -> str:
    """The metrics.csv column of a validation landmark metric, e.g. ``val_acc68@0.08``."""
    return "val_" + landmark_metric(name, point_set, threshold)


def _start_row(config: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics row of the weights ``model.init`` names, when they are another run's best."""
    init = config.get("model", {}).get("init") or ""
    if not init:
        return None
    folder = Path(init).parent
    try:
        done = json.loads((folder / "done.json").read_text(encoding="utf-8"))
        epoch = int(done["best"]["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    rows = [r for r in read_csv(folder / "metrics.csv") if r.get("epoch") == float(epoch)]
    return rows[-1] if rows else None


def load_run(folder: str | Path) -> Run:
    """A run folder written by ``hyperface train``; a clear error when it is not one."""
    folder = Path(folder)
    cfg_path, metrics = folder / "config.yaml", folder / "metrics.csv"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder}: not a run folder (no config.yaml)")
    with open(cfg_path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    rows = read_csv(metrics)
    if not rows:
        raise ValueError(f"{folder}: no finished epoch in {metrics.name} yet")
    name = config.get("run", {}).get("name") or folder.name
    return Run(name, folder, config, rows, read_csv(folder / "stage1" / "metrics.csv"), _start_row(config))


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs of the same name together (seeds of one experiment), in first-seen order, by seed."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.name, []).append(run)
    return [(name, sorted(members, key=lambda r: r.seed)) for name, members in groups.items()]


def _figure(ncols: int, nrows: int, width: float = 4.2, height: float = 3.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _mean_curve(curves: list[tuple[list[float], list[float]]]) -> tuple[list[float], list[float]]:
    """The mean over runs at the epochs every run has."""
    common = sorted(set.intersection(*(set(xs) for xs, _ in curves))) if curves else []
    maps = [dict(zip(xs, ys)) for xs, ys in curves]
    return common, [sum(m[x] for m in maps) / len(maps) for x in common]


def _draw(ax, runs: list[Run], key: str, colour: str, label: str, *, style: str = "-", scale: float = 1.0,
          alpha: float = 1.0) -> None:
    """Each seed thin, their mean thick (one run: just the run)."""
    curves = [c for c in (r.column(key, with_start=True) for r in runs) if c[0]]
    if not curves:
        return
    xs, ys = _mean_curve(curves)
    if len(curves) > 1:
        for cx, cy in curves:
            ax.plot(cx, [scale * y for y in cy], style, color=colour, lw=0.6, alpha=0.35 * alpha)
        label += f" (mean of {len(curves)})"
    ax.plot(xs, [scale * y for y in ys], style, color=colour, lw=1.8, marker="o" if len(xs) < 3 else None,
            label=label, alpha=alpha)


def plot_comparison(groups: list[Group], title: str, path: str | Path) -> Path:
    """One PNG: per-task train/val loss per epoch, landmark accuracy per epoch, error curves."""
    runs = [r for _, members in groups for r in members]
    tasks = [t for t in LOSS_TERMS if any(r.column(f"train_loss_{t}")[0] or r.column(f"val_loss_{t}")[0] for r in runs)]
    point_sets = [ps for ps in NME_LIMITS if any(r.landmark_set() == ps for r in runs)]
    panels = len(tasks) + 2 * len(point_sets)
    ncols = min(4, max(1, panels))
    nrows = max(1, math.ceil(panels / ncols))
    fig = _figure(ncols, nrows)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(panels)]
    colours = [f"C{i}" for i in range(10)]
    for ax, task in zip(axes, tasks):
        for i, (name, members) in enumerate(groups):
            optimised = EXTRA_LOSS_TERMS.get(task, task) in members[0].optimised  # an extra term: its task's
            for split, style in (("train", "-"), ("val", "--")):
                _draw(ax, members, f"{split}_loss_{task}", colours[i % 10],
                      f"{name} {split}" + ("" if optimised else " (not optimised)"), style=style,
                      alpha=1.0 if optimised else 0.6)
        ax.set_title(f"{task} loss")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    rest = axes[len(tasks):]
    for k, point_set in enumerate(point_sets):
        limit = NME_LIMITS[point_set]
        points = get_point_set(point_set).num_points
        ax = rest[2 * k]
        for i, (name, members) in enumerate(groups):
            _draw(ax, members, _val_landmark("acc", point_set, limit), colours[i % 10], name, scale=100.0)
        ax.set_title(f"{points} pts: faces with NME <= {limit:.2f} (val)")
        ax.set_ylim(0, 100)
        ax.set_xlabel("epoch")
        ax.set_ylabel("% of faces")
        ax.legend(fontsize=7)
        ax = rest[2 * k + 1]
        for i, (name, members) in enumerate(groups):
            curves = []
            for run in members:
                best = run.best_row() or {}
                ys = [best.get(_val_landmark("acc", point_set, t)) for t in NME_THRESHOLDS]
                if all(isinstance(y, float) for y in ys):
                    curves.append([0.0, *(100 * y for y in ys)])
            if curves:
                mean = [sum(c[j] for c in curves) / len(curves) for j in range(len(curves[0]))]
                label = f"{name} (best epoch" + (f", mean of {len(curves)})" if len(curves) > 1 else ")")
                ax.plot([0.0, *NME_THRESHOLDS], mean, color=colours[i % 10], label=label)
        ax.axvline(limit, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{points} pts: cumulative error (val, best epoch)")
        ax.set_ylim(0, 100)
        ax.set_xlabel("NME")
        ax.set_ylabel("% of faces")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, Path(path))


def plot_snapshots(run: Run, path: str | Path, *, max_rows: int = 10) -> Path | None:
    """The run's landmarks on its fixed validation faces, one row per epoch (evenly thinned to
    ``max_rows``), one column per face; labelled points green, predicted red. None without snapshots."""
    snaps = read_snapshots(run.folder)
    if not snaps:
        return None
    if len(snaps) > max_rows:
        keep = {round(i * (len(snaps) - 1) / (max_rows - 1)) for i in range(max_rows)}
        snaps = [s for i, s in enumerate(snaps) if i in keep]
    cols = snaps[0].images.shape[0]
    fig = _figure(cols, len(snaps), width=1.3, height=1.3)
    for r, snap in enumerate(snaps):
        for c in range(cols):
            ax = fig.add_subplot(len(snaps), cols, r * cols + c + 1)
            ax.imshow(snap.images[c])
            ax.scatter(snap.truth[c, :, 0], snap.truth[c, :, 1], s=2, c="lime", linewidths=0)
            ax.scatter(snap.pred[c, :, 0], snap.pred[c, :, 1], s=2, c="red", linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"epoch {snap.epoch}", fontsize=7)
    fig.suptitle(f"{run.name} (seed {run.seed}): predicted (red) and labelled (green) landmarks over training",
                 fontsize=8)
    return _save(fig, Path(path))


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower() or "png"
    options = {"pil_kwargs": {"quality": 85}} if fmt in ("jpg", "jpeg") else {}  # photos: JPEG, a fifth of PNG
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format=fmt, **options)
    return path


def _fmt(value: Any, pct: bool = False) -> str:
    if not isinstance(value, float) or not math.isfinite(value):
        return "-"
    return f"{100 * value:.1f}" if pct else f"{value:.4g}"


def _spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """``mean ± sd`` over seeds (sample standard deviation), or the one value."""
    values = [scale * v for v in values if isinstance(v, float) and math.isfinite(v)]
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def results_table(groups: list[Group]) -> str:
    """The study's results, one row per experiment, mean ± sd over seeds at each run's best epoch:
    68-point NME and the share of failures over its limit, 0.08 (%), pose MAE (degrees), detection
    accuracy (%), and the best epoch."""
    limit = NME_LIMITS["ibug68"]
    within = _val_landmark("acc", "ibug68", limit)
    head = ["experiment", "seeds", "68-pt NME (%)", f"NME > {limit:g} (%)", "pose MAE (deg)", "detection acc (%)",
            "best epoch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, members in groups:
        best = [r.best_row() or {} for r in members]
        fail = [1.0 - b[within] for b in best if isinstance(b.get(within), float)]
        lines.append("| " + " | ".join([
            name, ", ".join(str(r.seed) for r in members),
            _spread([b.get(_val_landmark("nme", "ibug68")) for b in best], 100.0), _spread(fail, 100.0, 1),
            _spread([b.get("val_pose_mae") for b in best]), _spread([b.get("val_detection_acc") for b in best], 100.0, 1),
            _spread([b.get("epoch") for b in best], 1.0, 1)]) + " |")
    return "\n".join(lines) + "\n"


# (label, metrics column, scale) of the study's headline numbers, each at a run's best epoch
_HEADLINE = (("68-pt NME (%)", _val_landmark("nme", "ibug68"), 100.0), ("pose MAE (deg)", "val_pose_mae", 1.0),
             ("detection acc (%)", "val_detection_acc", 100.0))


def paired_differences(first: Group, second: Group) -> str:
    """How ``second`` differs from ``first`` on the headline numbers, per seed both were trained
    with (same seed: same data order, augmentation and initial draws, so the difference is paired),
    and the mean ± sd of those differences: a difference smaller than its spread is not shown to be real."""
    (name_a, runs_a), (name_b, runs_b) = first, second
    by_seed = {r.seed: r for r in runs_a}
    pairs = [(by_seed[r.seed], r) for r in runs_b if r.seed in by_seed]
    if not pairs:
        return ""
    head = ["metric (best epoch)", f"{name_a}", f"{name_b}", f"{name_b} − {name_a} per seed", "mean ± sd of the differences"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key, scale in _HEADLINE:
        a = [(ra.best_row() or {}).get(key) for ra, _ in pairs]
        b = [(rb.best_row() or {}).get(key) for _, rb in pairs]
        if not all(isinstance(v, float) for v in a + b):
            continue
        diffs = [y - x for x, y in zip(a, b)]
        lines.append("| " + " | ".join([label, _spread(a, scale), _spread(b, scale),
                                        ", ".join(f"{scale * d:+.2f}" for d in diffs), _spread(diffs, scale)]) + " |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def loss_changes(groups: list[Group]) -> str:
    """For runs that continued another run's weights (experiment 5): each task's training and
    validation loss at the start (the starting run's best epoch) and at the end, mean ± sd over seeds."""
    tasks = [t for t in LOSS_TERMS if any(f"val_loss_{t}" in r for _, m in groups for run in m for r in run.rows)]
    head = ["run", "optimised"] + [f"{t} {split} start → end" for t in tasks for split in ("train", "val")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, members in groups:
        members = [r for r in members if r.start_row]
        if not members:
            continue
        row = [name, ", ".join(members[0].optimised)]
        for t in tasks:
            for split in ("train", "val"):
                key = f"{split}_loss_{t}"
                start = [r.start_row.get(key) for r in members]
                end = [r.rows[-1].get(key) for r in members]
                row.append(f"{_spread(start, 1.0, 4)} → {_spread(end, 1.0, 4)}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def markdown_table(runs: list[Run]) -> str:
    """One row per run: setup, best epoch's landmark metrics, last epoch's validation losses, time."""
    tasks = [t for t in LOSS_TERMS if any(f"val_loss_{t}" in r for run in runs for r in run.rows)]
    limits = "/".join(f"{v:.2f}" for v in NME_LIMITS.values())
    head = (["run", "seed", "arch", "tasks (optimised)", "stage 1", "epochs", "best epoch", "val NME",
             f"acc@{limits} %", "AUC"] + [f"val {t}" for t in tasks] + ["s/epoch"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        model = run.config.get("model", {})
        point_set = run.landmark_set()
        best = run.best_row() or {}
        last = run.rows[-1]
        tasks_txt = ", ".join(f"**{t}**" if t in run.optimised else t for t in run.tasks)
        stage1 = run.config.get("stage1", {})
        s1 = "-"
        if stage1.get("enabled"):
            negatives = stage1.get("negatives") or []
            s1 = stage1.get("arch", "") + (" (non-faces: " + ", ".join(Path(p).name for p in negatives) + ")"
                                           if negatives else " (own non-faces)")
            if stage1.get("init"):
                s1 += f", from {Path(stage1['init']).parent.parent.name}"
            if run.stage1_rows:
                acc = run.stage1_rows[-1].get("val_detection_acc")
                s1 += f", face acc {_fmt(acc, pct=True)}%"
        times = [r["epoch_time_s"] for r in run.rows if isinstance(r.get("epoch_time_s"), float)]
        row = [run.name, str(run.seed), str(model.get("arch", "")), tasks_txt, s1, str(int(last["epoch"])),
               str(int(best["epoch"])) if best else "-",
               _fmt(best.get(_val_landmark("nme", point_set))) + f" ({get_point_set(point_set).num_points} pts)"
               if point_set else "-",
               _fmt(best.get(_val_landmark("acc", point_set, NME_LIMITS[point_set])), pct=True) if point_set else "-",
               _fmt(best.get(_val_landmark("auc", point_set))) if point_set else "-"]
        row += [_fmt(last.get(f"val_loss_{t}")) for t in tasks]
        row.append(f"{sum(times) / len(times):.1f}" if times else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_report(run_dirs: list[str | Path], out: str | Path) -> list[Path]:
    """Figures and ``report.md`` for ``run_dirs`` in ``out``; returns the files written.

    A folder that is not a finished-epoch run is reported and skipped; no usable run is an error.
    """
    out = Path(out)
    runs: list[Run] = []
    for folder in run_dirs:
        try:
            runs.append(load_run(folder))
        except (FileNotFoundError, ValueError) as exc:
            log.warning("skipped: %s", exc)
    if not runs:
        raise ValueError("no run folder with a finished epoch among " + ", ".join(map(str, run_dirs)))
    groups = group_runs(runs)
    by_name = dict(groups)
    written: list[Path] = []
    sections: list[str] = []
    for stem, title, members in COMPARISONS:
        if all(m in by_name for m in members):
            chosen = [(m, by_name[m]) for m in members]
            written.append(plot_comparison(chosen, title, out / f"{stem}.png"))
            tables = [paired_differences(chosen[0], other) for other in chosen[1:]]
            if any(r.start_row for _, runs_ in chosen for r in runs_):
                tables.append("Loss at the start (the weights it continued) and at the end:\n\n" + loss_changes(chosen))
            sections.append(f"### {title}\n\n![{stem}]({stem}.png)\n\n" + "\n".join(t for t in tables if t))
    written.append(plot_comparison(groups, "All runs", out / "all_runs.png"))
    sections.append("### All runs\n\n![all runs](all_runs.png)\n")
    pictures: list[str] = []
    for name, members in groups:
        picture = plot_snapshots(members[0], out / f"landmarks_{name}.jpg")
        if picture is not None:
            written.append(picture)
            pictures.append(f"![landmarks over training, {name}](landmarks_{name}.jpg)\n")
    if pictures:
        sections.append("### Landmarks over training (fixed validation faces, one row per epoch)\n\n"
                        + "\n".join(pictures))
    text = ("# Training report\n\n" + "Runs: " + ", ".join(f"`{r.folder}`" for r in runs) + "\n\n"
            "Landmark NME per face in crop terms: 68 points / outer-eye-corner distance, 5 points / eye-centre "
            "distance; accuracy = share of validation faces under "
            + " or ".join(f"{v:.2f} ({get_point_set(ps).num_points})" for ps, v in NME_LIMITS.items())
            + " at the best epoch; "
            "losses of the last epoch. **Bold** tasks are optimised, the others only logged.\n\n"
            "## Results (mean ± sd over seeds, each run at its best epoch)\n\n" + results_table(groups) +
            "\n## Runs\n\n" + markdown_table(runs) + "\n" + "\n".join(sections))
    report = fileio.write_text(out / "report.md", text)
    written.append(report)
    return written
