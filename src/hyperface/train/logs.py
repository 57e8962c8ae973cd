"""Run logs: a CSV per epoch (``metrics.csv``), a CSV of training steps (``steps.csv``), TensorBoard.

``metrics.csv`` is rewritten whole (atomically) after each epoch; ``steps.csv`` is appended to and,
on ``--resume``, cut back to the checkpoint's step so no row appears twice. TensorBoard is optional:
without the package, or with ``run.tensorboard: false``, only the CSVs are written. TensorBoard's x
axis is the optimiser step everywhere (epoch metrics at the step that ended the epoch).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hyperface import fileio

__all__ = ["read_csv", "write_csv", "RunLog"]

log = logging.getLogger("hyperface.train")


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV with numbers parsed (empty cells dropped); ``[]`` if the file is missing."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out: dict[str, Any] = {}
            for k, v in row.items():
                if v is None or v == "":
                    continue
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
            rows.append(out)
    return rows


def write_csv(path: str | Path, rows: list[Mapping[str, Any]]) -> None:
    """All ``rows`` to ``path`` (columns in order of first appearance), atomically."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    fileio.write_bytes(path, buffer.getvalue().encode("utf-8"))


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


class RunLog:
    """The epoch and step logs of one stage folder (main process only).

    ``resume_step``: the checkpoint step being resumed (rows after it are dropped), or None for a
    fresh stage.
    """

    def __init__(self, folder: str | Path, *, tensorboard: bool, resume_step: int | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.folder / "metrics.csv"
        self.steps_path = self.folder / "steps.csv"
        if resume_step is None:
            self.rows: list[dict[str, Any]] = []
            for p in (self.metrics_path, self.steps_path):
                if p.exists():
                    p.unlink()
        else:
            self.rows = [r for r in read_csv(self.metrics_path) if r.get("step", 0) <= resume_step]
            write_csv(self.metrics_path, self.rows)
            steps = [r for r in read_csv(self.steps_path) if r.get("step", 0) <= resume_step]
            write_csv(self.steps_path, steps) if steps else self.steps_path.unlink(missing_ok=True)
        self._step_columns: list[str] | None = None
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional dependency
                log.info("tensorboard is not installed: logging to CSV only (pip install tensorboard)")
            else:
                purge = None if resume_step is None else resume_step + 1
                self.writer = SummaryWriter(log_dir=str(self.folder / "tb"), purge_step=purge)

    def step(self, row: Mapping[str, Any]) -> None:
        """Append one row to steps.csv (columns fixed by the first row) and TensorBoard."""
        new = not self.steps_path.exists()
        if new:
            self._step_columns = list(row)
        elif self._step_columns is None:  # appending after a resume: keep the file's columns
            with open(self.steps_path, newline="", encoding="utf-8") as fh:
                self._step_columns = next(csv.reader(fh), list(row))
        with open(self.steps_path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self._step_columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        if self.writer is not None:
            step = int(row["step"])
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"step/{k}", v, step)

    def epoch(self, row: Mapping[str, Any]) -> None:
        """Add one epoch's row to metrics.csv (rewritten) and TensorBoard."""
        self.rows.append(dict(row))
        write_csv(self.metrics_path, self.rows)
        if self.writer is not None:
            step = int(row["step"])
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                    group = "val" if k.startswith("val_") else "train" if k.startswith("train_") else "epoch"
                    self.writer.add_scalar(f"{group}/{k.split('_', 1)[1] if group != 'epoch' else k}", v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
