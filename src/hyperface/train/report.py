"""Reports on training runs: the study's comparisons as PNG figures and a markdown table.

Reads each run folder's ``config.yaml`` and ``metrics.csv`` (the main stage; stage one's in
``stage1/`` is summarised in the table). A figure holds, per task, the training (solid) and
validation (dashed) loss per epoch of every run it compares, the landmark accuracy per epoch (share
of faces with NME under 0.08 for 68 points, 0.10 for 5) and the cumulative error curve at each run's
best epoch. The study's comparisons are drawn for the runs named after its experiments
(``exp1`` ... ``exp5``); every report also has one figure of all runs together.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, no global backend).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hyperface import fileio
from hyperface.tasks import TASKS
from hyperface.train.engine import AUC_LIMITS, NME_THRESHOLDS
from hyperface.train.logs import read_csv

__all__ = ["Run", "COMPARISONS", "load_run", "plot_comparison", "markdown_table", "write_report"]

log = logging.getLogger("hyperface.train")

# (file stem, title, run names): the study's comparisons (../shared/docs/hyperface.md, section 5)
COMPARISONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("exp1_vs_exp2a", "Random initialisation (1) vs two stages from the face classifier (2a)", ("exp1", "exp2a")),
    ("exp2a_vs_exp2b", "Stage-one non-faces from the face photos (2a) vs CIFAR-10 / photos (2b)", ("exp2a", "exp2b")),
    ("exp2a_vs_exp3", "With (2a) and without (3) the pose and gender tasks", ("exp2a", "exp3")),
    ("exp1_vs_exp4", "All tasks (1) vs 68 points and pose on faces only (4)", ("exp1", "exp4")),
    ("exp5", "Further training on the landmark loss alone, every branch logged (5)", ("exp5",)),
)


@dataclass
class Run:
    """One run folder's logs."""

    name: str
    folder: Path
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    stage1_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        return list(self.config.get("model", {}).get("tasks", []))

    @property
    def optimised(self) -> list[str]:
        return list(self.config.get("loss", {}).get("optimise") or self.tasks)

    def column(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of a metrics column where it has a finite value."""
        xs, ys = [], []
        for row in self.rows:
            v = row.get(key)
            if isinstance(v, float) and math.isfinite(v):
                xs.append(row["epoch"])
                ys.append(v)
        return xs, ys

    def landmark_kind(self) -> str | None:
        """"68" or "5": the NME this run reports, if any."""
        for kind in ("68", "5"):
            if any(f"val_nme{kind}" in r for r in self.rows):
                return kind
        return None

    def best_row(self) -> dict[str, Any] | None:
        """The epoch with the lowest landmark NME (else the lowest validation loss)."""
        kind = self.landmark_kind()
        key = f"val_nme{kind}" if kind else "val_loss_total"
        rows = [r for r in self.rows if isinstance(r.get(key), float) and math.isfinite(r[key])]
        return min(rows, key=lambda r: r[key]) if rows else (self.rows[-1] if self.rows else None)


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
    return Run(name, folder, config, rows, read_csv(folder / "stage1" / "metrics.csv"))


def _figure(ncols: int, nrows: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_comparison(runs: list[Run], title: str, path: str | Path) -> Path:
    """One PNG: per-task train/val loss per epoch, landmark accuracy per epoch, error curves."""
    tasks = [t for t in TASKS if any(r.column(f"train_loss_{t}")[0] or r.column(f"val_loss_{t}")[0] for r in runs)]
    kinds = sorted({k for r in runs if (k := r.landmark_kind())}, reverse=True)
    panels = len(tasks) + 2 * len(kinds)
    ncols = min(4, max(1, panels))
    nrows = max(1, math.ceil(panels / ncols))
    fig = _figure(ncols, nrows)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(panels)]
    colours = [f"C{i}" for i in range(10)]
    for ax, task in zip(axes, tasks):
        for i, run in enumerate(runs):
            c = colours[i % 10]
            optimised = task in run.optimised
            for split, style in (("train", "-"), ("val", "--")):
                xs, ys = run.column(f"{split}_loss_{task}")
                if xs:
                    label = f"{run.name} {split}" + ("" if optimised else " (not optimised)")
                    ax.plot(xs, ys, style, color=c, marker="o" if len(xs) < 3 else None, label=label,
                            alpha=1.0 if optimised else 0.6)
        ax.set_title(f"{task} loss")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    rest = axes[len(tasks):]
    for k, kind in enumerate(kinds):
        limit = AUC_LIMITS[kind]
        ax = rest[2 * k]
        for i, run in enumerate(runs):
            xs, ys = run.column(f"val_acc{kind}@{limit:.2f}")
            if xs:
                ax.plot(xs, [100 * y for y in ys], color=colours[i % 10], marker="o" if len(xs) < 3 else None,
                        label=run.name)
        ax.set_title(f"{kind} pts: faces with NME <= {limit:.2f} (val)")
        ax.set_ylim(0, 100)
        ax.set_xlabel("epoch")
        ax.set_ylabel("% of faces")
        ax.legend(fontsize=7)
        ax = rest[2 * k + 1]
        for i, run in enumerate(runs):
            best = run.best_row()
            if best is None:
                continue
            ys = [best.get(f"val_acc{kind}@{t:.2f}") for t in NME_THRESHOLDS]
            if all(isinstance(y, float) for y in ys):
                ax.plot([0.0, *NME_THRESHOLDS], [0.0, *(100 * y for y in ys)], color=colours[i % 10],
                        label=f"{run.name} (epoch {int(best['epoch'])})")
        ax.axvline(limit, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{kind} pts: cumulative error (val, best epoch)")
        ax.set_ylim(0, 100)
        ax.set_xlabel("NME")
        ax.set_ylabel("% of faces")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, Path(path))


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    return path


def _fmt(value: Any, pct: bool = False) -> str:
    if not isinstance(value, float) or not math.isfinite(value):
        return "-"
    return f"{100 * value:.1f}" if pct else f"{value:.4g}"


def markdown_table(runs: list[Run]) -> str:
    """One row per run: setup, best epoch's landmark metrics, last epoch's validation losses, time."""
    tasks = [t for t in TASKS if any(f"val_loss_{t}" in r for run in runs for r in run.rows)]
    head = (["run", "arch", "tasks (optimised)", "stage 1", "epochs", "best epoch", "val NME", "acc@0.08/0.10 %",
             "AUC"] + [f"val {t}" for t in tasks] + ["s/epoch"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        model = run.config.get("model", {})
        kind = run.landmark_kind()
        best = run.best_row() or {}
        last = run.rows[-1]
        tasks_txt = ", ".join(f"**{t}**" if t in run.optimised else t for t in run.tasks)
        stage1 = run.config.get("stage1", {})
        s1 = "-"
        if stage1.get("enabled"):
            negatives = stage1.get("negatives") or []
            s1 = stage1.get("arch", "") + (" (non-faces: " + ", ".join(Path(p).name for p in negatives) + ")"
                                           if negatives else " (own non-faces)")
            if run.stage1_rows:
                acc = run.stage1_rows[-1].get("val_detection_acc")
                s1 += f", face acc {_fmt(acc, pct=True)}%"
        times = [r["epoch_time_s"] for r in run.rows if isinstance(r.get("epoch_time_s"), float)]
        row = [run.name, str(model.get("arch", "")), tasks_txt, s1, str(int(last["epoch"])),
               str(int(best["epoch"])) if best else "-",
               _fmt(best.get(f"val_nme{kind}")) + (f" ({kind} pts)" if kind else ""),
               _fmt(best.get(f"val_acc{kind}@{AUC_LIMITS[kind]:.2f}"), pct=True) if kind else "-",
               _fmt(best.get(f"val_auc{kind}")) if kind else "-"]
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
    names = [r.name for r in runs]
    if len(set(names)) != len(names):  # two runs of the same config: tell them apart by folder
        for r in runs:
            r.name = f"{r.name} ({r.folder.parent.name})"
    by_name = {r.name: r for r in runs}
    written: list[Path] = []
    sections: list[str] = []
    for stem, title, members in COMPARISONS:
        chosen = [by_name[m] for m in members if m in by_name]
        if len(chosen) == len(members):
            written.append(plot_comparison(chosen, title, out / f"{stem}.png"))
            sections.append(f"### {title}\n\n![{stem}]({stem}.png)\n")
    written.append(plot_comparison(runs, "All runs", out / "all_runs.png"))
    sections.append("### All runs\n\n![all runs](all_runs.png)\n")
    text = ("# Training report\n\n" + "Runs: " + ", ".join(f"`{r.folder}`" for r in runs) + "\n\n"
            "Landmark NME per face in crop terms: 68 points / outer-eye-corner distance, 5 points / eye-centre "
            "distance; accuracy = share of validation faces under 0.08 (68) or 0.10 (5) at the best epoch; "
            "losses of the last epoch. **Bold** tasks are optimised, the others only logged.\n\n"
            + markdown_table(runs) + "\n" + "\n".join(sections))
    report = fileio.write_text(out / "report.md", text)
    written.append(report)
    return written
