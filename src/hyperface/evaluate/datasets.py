"""The evaluation data: ``[LABEL=]FORMAT:PATH`` specs, the train/validation selection, a limit.

Several specs with the same label are one dataset (e.g. ``300w=pts:.../lfpw/trainset`` and
``300w=pts:.../helen/trainset``). ``--split val`` keeps exactly the images ``hyperface prepare`` put in
its validation split: the same hash of ``ImageRecord.group`` (:func:`hyperface.data.splits.split_of`)
with the same validation fraction (read from a prepared folder's manifest, or given).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hyperface.data.readers import DatasetReader, open_dataset
from hyperface.data.readers import parse_spec as _parse_reader_spec
from hyperface.data.records import ImageRecord
from hyperface.data.shards import SPLITS, load_manifest
from hyperface.data.splits import DEFAULT_VAL_FRACTION, split_of  # prepare's split, without prepare

__all__ = ["SPLIT_CHOICES", "DEFAULT_VAL_FRACTION", "DataSpec", "EvalDataset", "parse_data_specs",
           "val_fraction_from_prepared"]

log = logging.getLogger("hyperface.evaluate")

SPLIT_CHOICES = ("val", "train", "all")
_LABEL = re.compile(r"[A-Za-z0-9_.+-]+")


@dataclass(frozen=True)
class DataSpec:
    """One ``--data`` argument: the dataset label it belongs to and its reader spec."""

    label: str
    spec: str


_GENERIC_NAMES = frozenset({"trainset", "testset", "train", "test", "training", "testing", "val", "valid",
                            "validation", "images", "imgs", "data", "annotations"})


def _default_label(spec: str) -> str:
    """The last part of the path (without suffix), with its parent when that part says little."""
    _, path, _ = _parse_reader_spec(spec)
    p = Path(path)
    name = p.stem if p.suffix else p.name
    if (name.lower() in _GENERIC_NAMES or not name) and p.parent.name:
        name = f"{p.parent.name}/{name}" if name else p.parent.name
    return name or path


def parse_data_specs(values: Sequence[str]) -> list[DataSpec]:
    """Parse ``--data`` values ``[LABEL=]FORMAT:PATH[?opts]``; a ValueError says what is wrong."""
    out = []
    for value in values:
        head, eq, rest = value.partition("=")
        if eq and _LABEL.fullmatch(head) and ":" in rest:
            label, spec = head, rest
        else:
            label, spec = None, value
        _parse_reader_spec(spec)  # validates FORMAT:PATH
        out.append(DataSpec(label or _default_label(spec), spec))
    return out


def val_fraction_from_prepared(folder: str | Path) -> float:
    """The validation fraction a prepared folder was made with (its manifest's options)."""
    manifest, _ = load_manifest(folder)
    options = manifest.get("options", {})
    if "val_fraction" not in options:
        raise ValueError(f"{folder}: the manifest records no val_fraction")
    return float(options["val_fraction"])


@dataclass
class EvalDataset:
    """The records of one labelled dataset, restricted to a split and a count."""

    label: str
    specs: list[str]
    split: str = "all"
    val_fraction: float = DEFAULT_VAL_FRACTION
    limit: int | None = None
    readers: list[DatasetReader] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.split not in SPLIT_CHOICES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_CHOICES)}, got {self.split!r}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {self.val_fraction}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be a positive number of images, got {self.limit}")
        self.readers = [open_dataset(s) for s in self.specs]

    def _selected(self) -> Iterator[ImageRecord]:
        want = None if self.split == "all" else SPLITS.index(self.split)
        for reader in self.readers:
            for record in reader:
                if want is None or split_of(record.group, self.val_fraction) == want:
                    yield record

    def __iter__(self) -> Iterator[ImageRecord]:
        return itertools.islice(self._selected(), self.limit)

    @property
    def problems(self) -> list[str]:
        """What the readers skipped (filled while iterating)."""
        return [str(p) for r in self.readers for p in r.problems]
