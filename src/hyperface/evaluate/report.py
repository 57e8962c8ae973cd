"""The evaluation report: one table with a row per model (and mode), as markdown and as JSON.

The table holds each dataset's headline numbers (NME mean and median, AUC and failure rate, head
pose MAE, MTFL's Spearman correlation, gender accuracy, detection recall / precision / AP and the most
recall at precision >= 90%); the markdown then gives each dataset's breakdowns (by pose class, per
gender, by yaw, gender and faces found by group), and the JSON keeps every summary in full. Files are
written atomically.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyperface import fileio
from hyperface.evaluate.metrics import RECALL_AT_PRECISION

__all__ = ["Column", "table_columns", "build_table", "to_markdown", "report_dict", "write_report_json"]


def _pct(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}"


def _num(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


class Column:
    """A table column: its header and how to read the cell from one run's summary."""

    def __init__(self, dataset: str, header: str, getter) -> None:
        self.dataset = dataset
        self.header = header
        self.getter = getter

    @property
    def title(self) -> str:
        return f"{self.dataset}: {self.header}"

    def cell(self, summary: dict | None) -> str:
        if summary is None:
            return "—"
        try:
            return self.getter(summary)
        except (KeyError, TypeError):
            return "—"


def _landmark_columns(dataset: str, point_set: str, limit: float) -> list[Column]:
    name = {"ibug68": "NME68", "five": "NME5"}[point_set]

    def lm(s):
        return s["landmarks"][point_set]
    return [
        Column(dataset, f"{name} found", lambda s: f"{lm(s)['found']}/{lm(s)['faces']}"),
        Column(dataset, f"{name} mean %", lambda s: _pct(lm(s)["mean"])),
        Column(dataset, f"{name} median %", lambda s: _pct(lm(s)["median"])),
        Column(dataset, f"{name} AUC@{limit:g}", lambda s: _num(lm(s)["auc"])),
        Column(dataset, f"{name} failure %", lambda s: _pct(lm(s)["failure"], 1)),
    ]


def _pose_cell(block: dict) -> str:
    if block["mean"] is None:
        return "—"
    return f"{block['roll']:.1f}/{block['pitch']:.1f}/{block['yaw']:.1f} ({block['mean']:.2f})"


def table_columns(summaries: Sequence[dict]) -> list[Column]:
    """The columns the data calls for, dataset by dataset, in the order datasets were given."""
    datasets: list[str] = []
    for s in summaries:
        if s["dataset"] not in datasets:
            datasets.append(s["dataset"])
    columns: list[Column] = []
    for ds in datasets:
        runs = [s for s in summaries if s["dataset"] == ds]
        for point_set in ("ibug68", "five"):
            limits = [s["landmarks"][point_set]["limit"] for s in runs if point_set in s.get("landmarks", {})]
            if limits:
                columns += _landmark_columns(ds, point_set, limits[0])
        for source, label in (("annotated", "pose MAE r/p/y (mean) °"), ("pnp", "pose MAE vs PnP r/p/y (mean) °")):
            if any(source in s.get("pose", {}) for s in runs):
                columns.append(Column(ds, label, lambda s, src=source: _pose_cell(s["pose"][src])))
        if any("pose_class_spearman" in s for s in runs):
            columns.append(Column(ds, "Spearman(-yaw, pose class)",
                                  lambda s: _num(s["pose_class_spearman"]["rho"])))
        if any("gender" in s for s in runs):
            columns += [
                Column(ds, "gender acc %", lambda s: _pct(s["gender"]["accuracy"], 1)),
                Column(ds, "gender acc found %", lambda s: _pct(s["gender"]["accuracy_found"], 1)),
            ]
        if any("detection" in s for s in runs):
            columns += [
                Column(ds, "det recall %", lambda s: _pct(s["detection"]["recall"], 1)),
                Column(ds, "det precision %", lambda s: _pct(s["detection"]["precision"], 1)),
                Column(ds, "det AP", lambda s: _num(s["detection"]["ap"])),
                Column(ds, f"det recall at P >= {_pct(RECALL_AT_PRECISION, 0)}% %",
                       lambda s: _pct((s["detection"].get("recall_at_precision") or {}).get("recall"), 1)),
            ]
    return columns


def build_table(summaries: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): a row per (model, mode), a column per dataset metric."""
    columns = table_columns(summaries)
    keys: list[tuple[str, str]] = []
    for s in summaries:
        if (s["model"], s["mode"]) not in keys:
            keys.append((s["model"], s["mode"]))
    header = ["model", "mode", *[c.title for c in columns]]
    rows = []
    for model, mode in keys:
        by_ds = {s["dataset"]: s for s in summaries if s["model"] == model and s["mode"] == mode}
        rows.append([model, mode, *[c.cell(by_ds.get(c.dataset)) for c in columns]])
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(text: str) -> str:
        return str(text).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _shares(groups: dict[str, list[int]]) -> str:
    """``{group: [k, n]}`` as ``group: k/n (share%); ...; spread X points`` (the best share less the worst)."""
    rates = {g: 100 * k / n for g, (k, n) in groups.items()}
    text = "; ".join(f"{g}: {k}/{n} ({rates[g]:.1f}%)" for g, (k, n) in groups.items())
    return f"{text}; spread {max(rates.values()) - min(rates.values()):.1f} points"


def _details(summaries: Sequence[dict]) -> list[str]:
    out: list[str] = []
    for s in summaries:
        parts = []
        for point_set, block in s.get("landmarks", {}).items():
            for name, b in block.get("by_pose", {}).items():
                parts.append(f"- {point_set} {name}: {b['found']}/{b['faces']} found, NME mean "
                             f"{_pct(b['mean'])}%, AUC {_num(b['auc'])}, failure {_pct(b['failure'], 1)}%")
            if block.get("by_part"):
                text = ", ".join(f"{name} {_pct(v)}%" for name, v in block["by_part"].items())
                parts.append(f"- {point_set} NME by part (found faces): {text}")
        g = s.get("gender")
        if g:
            per = ", ".join(f"{k} {_pct(v, 1)}%" if v is not None else f"{k} —" for k, v in g["per_class"].items())
            parts.append(f"- gender per class (misses wrong): {per}; faces {g['found']}/{g['faces']} found")
            for key, counted in (("by", "misses wrong"), ("by_found", "found faces")):
                parts += [f"- gender by {name} ({counted}): {_shares(groups)}"
                          for name, groups in g.get(key, {}).items() if name != "gender" and len(groups) > 1]
            parts += [f"- faces found by {name}: {_shares(groups)}"
                      for name, groups in g.get("found_by", {}).items() if len(groups) > 1]
        for source, block in s.get("pose", {}).items():
            bins = [b for b in block.get("by_yaw", []) if b["faces"]]
            if bins:
                text = "; ".join(f"[{b['yaw_from']:g}, {b['yaw_to']:g}) n={b['faces']}: "
                                 f"{b['roll']:.1f}/{b['pitch']:.1f}/{b['yaw']:.1f}" for b in bins)
                parts.append(f"- pose MAE r/p/y by reference yaw ({source}): {text}")
        d = s.get("detection")
        if d:
            at = d.get("recall_at_precision") or {}
            best = "" if at.get("recall") is None else (
                f"; recall {_pct(at['recall'], 1)}% at precision >= {_pct(at['precision'], 0)}%"
                + ("" if at["score"] is None else f" (scores >= {at['score']:.2f})"))
            parts.append(f"- detection: {d['true_positives']}/{d['ground_truth']} faces found with "
                         f"{d['detections']} detections at threshold {d['threshold']}, AP {_num(d['ap'])}{best}")
            for name, groups in d.get("found_by", {}).items():
                text = "; ".join(f"{g}{' px' if name == 'height' else ''}: {k}/{n} ({100 * k / n:.0f}%)"
                                 for g, (k, n) in groups.items())
                parts.append(f"- found by {'face height' if name == 'height' else name}: {text}")
        if s.get("problems"):
            parts.append(f"- {len(s['problems'])} problem(s), e.g. {s['problems'][0]}")
        if parts:
            out.append(f"\n**{s['model']}**, {s['dataset']}, {s['mode']} ({s['images']} images, "
                       f"{s['seconds']:.1f} s):\n")
            out += parts
    return out


def to_markdown(summaries: Sequence[dict], title: str = "Evaluation") -> str:
    """The table, then each run's breakdowns."""
    header, rows = build_table(summaries)
    lines = [f"## {title}", "", _md_table(header, rows)]
    details = _details(summaries)
    if details:
        lines += ["", "### Details", *details]
    return "\n".join(lines) + "\n"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_dict(summaries: Sequence[dict], **context: Any) -> dict:
    """Everything for ``--json``: the context (command, split, models), the table, the summaries."""
    header, rows = build_table(summaries)
    return _clean({**context, "table": {"header": header, "rows": rows}, "results": list(summaries)})


def write_report_json(path: str | Path, report: dict) -> Path:
    """The report as indented JSON (no NaN), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return fileio.write_text(path, json.dumps(report, indent=2, allow_nan=False) + "\n")
