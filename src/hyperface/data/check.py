"""What a dataset holds, label by label, and what was wrong with it: ``hyperface data check``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hyperface.data.readers.base import DatasetReader, Problem
from hyperface.data.records import GENDERS

__all__ = ["CheckReport", "check_dataset", "LABELS"]

# Labels counted per face, in report order.
LABELS = ("landmarks", "visibility", "pose", "pose_class", "gender")


@dataclass
class CheckReport:
    """Counts over one dataset: images (or video frames), faces, faces per point set, faces carrying
    each label, faces per gender class, and every problem the reader reported."""

    format: str
    path: str
    images: int = 0
    groups: int = 0
    images_without_faces: int = 0
    faces: int = 0
    point_sets: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LABELS, 0))
    genders: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GENDERS, 0))
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "format": self.format,
            "path": self.path,
            "images": self.images,
            "groups": self.groups,
            "images_without_faces": self.images_without_faces,
            "faces": self.faces,
            "point_sets": dict(self.point_sets),
            "labels": dict(self.labels),
            "genders": dict(self.genders),
            "problems": [p.to_dict() for p in self.problems],
        }

    def format_text(self) -> str:
        """Human-readable summary, one problem a line (``file:line: message``)."""
        lines = [f"{self.format}:{self.path}",
                 f"  images: {self.images} ({self.groups} groups, {self.images_without_faces} without faces)",
                 f"  faces: {self.faces}"]
        if self.point_sets:
            sets = ", ".join(f"{name} {n}" for name, n in sorted(self.point_sets.items()))
            lines.append(f"  point sets: {sets}")
        labels = ", ".join(f"{name} {self.labels[name]}" for name in LABELS)
        lines.append(f"  faces with labels: {labels}")
        if self.labels["gender"]:
            lines.append("  gender: " + ", ".join(f"{g} {n}" for g, n in self.genders.items()))
        lines.append(f"  problems: {len(self.problems)}")
        lines.extend(f"    {p}" for p in self.problems)
        return "\n".join(lines)


def check_dataset(reader: DatasetReader) -> CheckReport:
    """Read the whole dataset once and count what it holds; problems are collected, not raised.

    A :class:`~hyperface.data.readers.base.DatasetError` raised while reading (the dataset as a
    whole is unreadable) propagates.
    """
    report = CheckReport(format=reader.format, path=str(reader.path))
    point_sets: Counter[str] = Counter()
    groups: set[str] = set()
    for record in reader:
        report.images += 1
        groups.add(record.group)
        if not record.faces:
            report.images_without_faces += 1
        for face in record.faces:
            report.faces += 1
            if face.landmarks is not None:
                report.labels["landmarks"] += 1
                point_sets[face.point_set] += 1
            if face.visibility is not None:
                report.labels["visibility"] += 1
            if face.pose is not None:
                report.labels["pose"] += 1
            if face.pose_class is not None:
                report.labels["pose_class"] += 1
            if face.gender is not None:
                report.labels["gender"] += 1
                report.genders[GENDERS[face.gender]] += 1
    report.groups = len(groups)
    report.point_sets = dict(point_sets)
    report.problems = list(reader.problems)
    return report
