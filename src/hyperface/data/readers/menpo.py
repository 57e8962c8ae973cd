"""menpo-style folders: images with ``.pts`` and/or menpo ``.ljson`` landmark files beside them.

An ``.ljson`` file is menpo's JSON landmark format. Version 3 (menpo >= 0.5) keeps named groups::

    {"version": 3, "groups": {"LJSON": {"landmarks": {"points": [[y, x], ...], "connectivity": ...},
                                        "labels": [...]}, "pupils": {...}}}

versions 1 and 2 keep one unnamed group under ``"landmarks"``. Points are (y, x), in menpo's 0-based
pixel coordinates; a ``[null, null]`` point is one the annotator did not place: it becomes NaN with
visibility False. ``.ljson`` files are 0-based, as records are; iBUG ``.pts`` files are 1-based and
have 1 subtracted (:data:`hyperface.data.readers.pts.PTS_ORIGIN`), as menpo does when it imports one,
so both files of one face give the same points.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from hyperface.data.readers.pts import POINT_SET_BY_COUNT, AnnotationError, PtsReader

__all__ = ["parse_ljson", "MenpoReader", "LjsonReader"]

# Preference among groups of an .ljson file: the first group with the most useful point count.
_COUNT_PREFERENCE = (68, 21, 5)


def _group_points(name: str, group: object) -> list:
    if not isinstance(group, dict) or not isinstance(group.get("landmarks"), dict) \
            or not isinstance(group["landmarks"].get("points"), list):
        label = f"group {name!r}" if name else "file"
        raise AnnotationError(f"{label} has no 'landmarks': {{'points': [...]}}")
    return group["landmarks"]["points"]


def _to_xy(name: str, raw: list) -> tuple[np.ndarray, np.ndarray]:
    pts = np.full((len(raw), 2), np.nan)
    vis = np.ones(len(raw), dtype=bool)
    for i, p in enumerate(raw):
        if not isinstance(p, list) or len(p) != 2:
            raise AnnotationError(f"group {name!r} point {i}: expected [y, x], got {str(p)[:40]}")
        if p[0] is None or p[1] is None:
            vis[i] = False
            continue
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p):
            raise AnnotationError(f"group {name!r} point {i}: not a number in {str(p)[:40]}")
        try:
            y, x = float(p[0]), float(p[1])
        except OverflowError:  # a JSON integer too large for a float
            y = x = math.inf
        if not (math.isfinite(x) and math.isfinite(y)):
            raise AnnotationError(f"group {name!r} point {i}: non-finite coordinate {str(p)[:40]}")
        pts[i] = (x, y)
    return pts, vis


def parse_ljson(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    """(points (N, 2) as (x, y), visibility or None, other groups) of a menpo ``.ljson`` file.

    The main group is the first with 68 points (else 21, else 5). Visibility is given only when
    some point is null; other groups (e.g. ``pupils``) come back as ``{name: (M, 2) x, y}``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"not valid JSON ({exc.msg})", exc.lineno) from None
    except RecursionError:
        raise AnnotationError("not valid JSON (nested too deeply)") from None
    except UnicodeDecodeError:
        raise AnnotationError("not a text file") from None
    except OSError as exc:
        raise AnnotationError(f"cannot read file ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise AnnotationError("not a menpo ljson object")
    if isinstance(data.get("groups"), dict):
        raw = {name: _group_points(name, g) for name, g in data["groups"].items()}
    elif "landmarks" in data:
        raw = {"": _group_points("", data)}
    else:
        raise AnnotationError("no 'groups' (version 3) or 'landmarks' (versions 1, 2) in the file")
    main = next((name for count in _COUNT_PREFERENCE for name, pts in raw.items() if len(pts) == count), None)
    if main is None:
        counts = ", ".join(f"{n or 'landmarks'}: {len(p)}" for n, p in raw.items()) or "no groups"
        known = ", ".join(str(n) for n in POINT_SET_BY_COUNT)
        raise AnnotationError(f"no group with a known number of points ({known}); found {counts}")
    points, visibility = _to_xy(main, raw[main])
    others = {}
    for name, pts in raw.items():
        if name != main:
            others[name] = _to_xy(name, pts)[0]
    return points, (None if visibility.all() else visibility), others


class MenpoReader(PtsReader):
    """A folder of images with ``.pts`` and/or ``.ljson`` files (one face each), like menpo's assets.

    ``prefer`` picks the file used when one image has both (``pts`` or ``ljson``).
    """

    format = "menpo"
    description = "images with iBUG .pts and/or menpo .ljson landmarks (68 points) beside them"
    annotation_suffixes = (".pts", ".ljson")

    def __init__(self, path: str | Path, *, verify_images: bool = False, prefer: str = "pts") -> None:
        if prefer not in ("pts", "ljson"):
            raise ValueError(f"menpo: prefer={prefer!r}; choose 'pts' or 'ljson'")
        super().__init__(path, verify_images=verify_images)
        self.prefer = prefer

    def _choose(self, files: list[Path]) -> Path:
        for f in files:
            if f.suffix.lower() == f".{self.prefer}":
                return f
        return files[0]

    def _parse(self, path: Path) -> tuple[np.ndarray, np.ndarray | None, dict, tuple[int, ...] | None]:
        if path.suffix.lower() == ".ljson":
            points, visibility, others = parse_ljson(path)
            return points, visibility, ({"ljson_groups": others} if others else {}), None
        return super()._parse(path)


class LjsonReader(MenpoReader):
    """One menpo ``.ljson`` file, or a folder of them, each next to an image with the same stem."""

    format = "ljson"
    pixel_origin = 0.0  # menpo's .ljson files are 0-based
    description = "menpo .ljson landmark files (points as (y, x), null = not placed) next to images"
    annotation_suffixes = (".ljson",)

    def __init__(self, path: str | Path, *, verify_images: bool = False) -> None:
        super().__init__(path, verify_images=verify_images, prefer="ljson")

