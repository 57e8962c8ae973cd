"""AFLW: the ``aflw.sqlite`` annotation database and its image folder (21 points, pose, gender).

Tables used (hyperface.md section 6): ``faces(face_id, file_id)``, ``faceimages(file_id,
filepath)``, ``facerect(face_id, x, y, w, h)``, ``facepose(face_id, roll, pitch, yaw)`` in radians,
``facemetadata(face_id, sex)`` with 'm'/'f', ``featurecoords(face_id, feature_id, x, y)`` with
``feature_id`` 1..21. A point is visible exactly when its ``featurecoords`` row exists; the others
are NaN with visibility False. Faces sharing a ``file_id`` are one image; every face of an AFLW
image is annotated, so ``all_faces_annotated`` is True (False for an image one of whose faces had to
be skipped as bad).
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hyperface.data.readers._files import walk_files
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["AFLW_TABLES", "AflwReader"]

# table -> the columns this reader reads from it
AFLW_TABLES: dict[str, tuple[str, ...]] = {
    "faces": ("face_id", "file_id"),
    "faceimages": ("file_id", "filepath"),
    "facerect": ("face_id", "x", "y", "w", "h"),
    "facepose": ("face_id", "roll", "pitch", "yaw"),
    "facemetadata": ("face_id", "sex"),
    "featurecoords": ("face_id", "feature_id", "x", "y"),
}
_NUM_POINTS = 21
_SEX = {"m": 0, "f": 1}


def _finite(*values: object) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


class AflwReader(DatasetReader):
    """``aflw.sqlite`` (the file, or a folder holding it) plus the image root ``images``
    (default: the sqlite's folder / ``flickr``), where ``faceimages.filepath`` is relative to it."""

    format = "aflw"
    description = "AFLW aflw.sqlite + image folder: 21 points with visibility, pose, gender"

    def __init__(self, path: str | Path, *, verify_images: bool = False, images: str | None = None) -> None:
        super().__init__(path, verify_images=verify_images)
        self.sqlite = self._find_sqlite(self.path)
        self.images = Path(images) if images is not None else self.sqlite.parent / "flickr"
        if not self.images.is_dir():
            raise DatasetError(f"aflw: image folder {self.images} does not exist (give it with images=PATH)")
        with closing(self._connect()) as db:
            self._check_schema(db)

    @staticmethod
    def _find_sqlite(path: Path) -> Path:
        if path.is_file():
            return path
        if (path / "aflw.sqlite").is_file():
            return path / "aflw.sqlite"
        found = walk_files(path, (".sqlite",), recursive=False)
        if len(found) == 1:
            return found[0]
        raise DatasetError(f"aflw: no aflw.sqlite in {path}"
                           + (f" (several .sqlite files: {', '.join(p.name for p in found)})" if found else ""))

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(f"{self.sqlite.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise DatasetError(f"aflw: {self.sqlite}: cannot open sqlite ({exc})") from None

    def _check_schema(self, db: sqlite3.Connection) -> None:
        try:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
            tables = {r[0].lower() for r in rows}
            missing = sorted(set(AFLW_TABLES) - tables)
            if missing:
                raise DatasetError(f"aflw: {self.sqlite}: missing table(s) {', '.join(missing)} "
                                   f"(an AFLW sqlite has {', '.join(AFLW_TABLES)})")
            for table, columns in AFLW_TABLES.items():
                have = {r[1].lower() for r in db.execute(f"PRAGMA table_info({table})")}
                lacking = [c for c in columns if c not in have]
                if lacking:
                    raise DatasetError(f"aflw: {self.sqlite}: table {table} lacks column(s) {', '.join(lacking)}")
        except sqlite3.DatabaseError as exc:
            raise DatasetError(f"aflw: {self.sqlite}: not a readable sqlite database ({exc})") from None

    def _load(self) -> tuple[list, dict, dict, dict, dict, dict]:
        with closing(self._connect()) as db:
            try:
                faces = db.execute("SELECT face_id, file_id FROM faces ORDER BY face_id").fetchall()
                files = dict(db.execute("SELECT file_id, filepath FROM faceimages"))
                rects = {r[0]: r[1:] for r in db.execute("SELECT face_id, x, y, w, h FROM facerect")}
                poses = {r[0]: r[1:] for r in db.execute("SELECT face_id, roll, pitch, yaw FROM facepose")}
                sexes = dict(db.execute("SELECT face_id, sex FROM facemetadata"))
                coords: dict = {}
                for face_id, feature_id, x, y in db.execute(
                        "SELECT face_id, feature_id, x, y FROM featurecoords ORDER BY face_id, feature_id"):
                    coords.setdefault(face_id, []).append((feature_id, x, y))
            except sqlite3.DatabaseError as exc:
                raise DatasetError(f"aflw: {self.sqlite}: cannot read the annotation tables ({exc})") from None
        return faces, files, rects, poses, sexes, coords

    def _face(self, face_id, rect, pose, sex, coords) -> FaceRecord | None:
        where = f"face_id {face_id}"
        if rect is None:
            self.report(self.sqlite, f"{where}: no facerect row (no box)")
            return None
        x, y, w, h = rect
        if not _finite(x, y, w, h) or w <= 0 or h <= 0:
            self.report(self.sqlite, f"{where}: bad facerect {rect}")
            return None
        landmarks = visibility = None
        if coords:
            landmarks = np.full((_NUM_POINTS, 2), np.nan)
            visibility = np.zeros(_NUM_POINTS, dtype=bool)
            for feature_id, px, py in coords:
                if not isinstance(feature_id, int) or not 1 <= feature_id <= _NUM_POINTS:
                    self.report(self.sqlite, f"{where}: featurecoords feature_id {feature_id!r} is not in 1..21; "
                                             f"point ignored")
                elif not _finite(px, py):
                    self.report(self.sqlite, f"{where}: featurecoords feature_id {feature_id}: bad coordinate "
                                             f"({px!r}, {py!r}); point taken as invisible")
                else:
                    landmarks[feature_id - 1] = (px, py)
                    visibility[feature_id - 1] = True
            if not visibility.any():  # no usable row: the face has no landmark annotation
                landmarks = visibility = None
        face_pose = None
        if pose is not None:
            if _finite(*pose):
                # AFLW stores (roll, pitch, yaw) in radians. AFLW2000-3D derives from AFLW and its
                # Pose_Para is in the evaluation convention's signs (hyperface.md section 6), so the
                # sqlite's angles are taken to have the same signs: only radians -> degrees here.
                # (An assumption, not verified on the real sqlite: there, faces whose points 1, 7, 13
                # and 18 lack featurecoords rows should mostly have yaw > 0.)
                face_pose = np.degrees(np.asarray(pose, dtype=np.float64))
            else:
                self.report(self.sqlite, f"{where}: facepose has a non-number {pose}; pose left out")
        gender = _SEX.get(str(sex).strip().lower()) if sex is not None else None
        return FaceRecord(box=np.array([x, y, x + w, y + h], dtype=np.float64), landmarks=landmarks,
                          point_set="aflw21" if landmarks is not None else None, visibility=visibility,
                          pose=face_pose, gender=gender, attributes={"face_id": face_id})

    def _records(self) -> Iterator[ImageRecord]:
        faces, files, rects, poses, sexes, coords = self._load()
        by_file: dict = {}
        for face_id, file_id in faces:
            by_file.setdefault(file_id, []).append(face_id)
        ordered = sorted(by_file.items(), key=lambda kv: str(files.get(kv[0], kv[0])))
        for file_id, face_ids in ordered:
            filepath = files.get(file_id)
            if filepath is None:
                self.report(self.sqlite, f"file_id {file_id!r}: no faceimages row (faces {face_ids}); skipped")
                continue
            image = self.images / str(filepath).replace("\\", "/")
            if self.check_image(image) is None:
                continue
            records = [self._face(fid, rects.get(fid), poses.get(fid), sexes.get(fid), coords.get(fid))
                       for fid in face_ids]
            kept = tuple(r for r in records if r is not None)
            # With a face skipped, part of the image is an unannotated face: not usable as non-face.
            yield ImageRecord(image=image, faces=kept, source=self.source, group=str(filepath).replace("\\", "/"),
                              all_faces_annotated=len(kept) == len(records))
