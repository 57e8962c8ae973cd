"""``composite``: synthetic detection photos, faces of other datasets pasted at many sizes into face-free images.

``composite:BACKGROUNDS?faces=FORMAT:PATH&images=N&per_image=K&min_face=PX&max_face=PX&seed=S``

``BACKGROUNDS`` is a folder of face-free images (listed as ``negatives:`` lists them); ``faces``
names the donor datasets, ordinary ``FORMAT:PATH`` specs without options of their own (several:
comma-separated, ``faces=pts:A,mtfl:B``). Every face (not marked ``ignore``) of a still image is a
donor. Photo ``i`` (of ``images``, default one per background) is background ``i`` mod their number,
shrunk so that its longer side is at most ``max_side``, with 1 to ``per_image`` faces, each cut from
its donor image (an ellipse of ``context`` x the face box, 1.6 by default: opaque over the box,
fading out beyond it), scaled so that its box is ``min_face`` to ``max_face`` pixels tall
(log-uniform; 12 to 200 by default) and placed, box inside the photo, where its box overlaps no
earlier face's box by IoU over ``max_iou`` nor its cut covers more than that share of one (ten
tries, else the face is left out). A pasted face keeps its donor's labels, box and landmarks moved
as its pixels (pose is unchanged: a paste only scales and shifts); ``ignore_below`` marks faces
shorter than that ``ignore``, as ``voc``'s ``min_face`` does. Photo ``i`` depends only on ``seed``,
``i`` and the inputs, so prepare's resume, ``--shard i/n`` and its hash split (``group``
``composite/<background>/<i>``) hold; its pixels are made when it is loaded
(:class:`~hyperface.data.compositing.CompositeImage`), never written. Every face of a photo is
annotated (``all_faces_annotated``), as long as the donor cuts hold no unannotated face (a smaller
``context`` takes less of a crowded donor photo).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperface.data.compositing import CompositeImage, Paste
from hyperface.data.images import IMAGE_SUFFIXES, ImageReadError, SyntheticImage, image_size
from hyperface.boxes import box_iou
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.records import FaceRecord, ImageRecord

__all__ = ["CompositeReader", "split_face_specs"]

logger = logging.getLogger("hyperface.data")

_TRIES = 10         # placements tried per face before it is left out
_MAX_OUTSIDE = 0.1  # a donor face with more of its box than this outside its image is not used
_NEXT_SPEC = re.compile(r",(?=[A-Za-z0-9_-]+:)")  # a comma that starts another FORMAT:PATH


def split_face_specs(text: str) -> list[str]:
    """``faces=`` -> its ``FORMAT:PATH`` specs (comma-separated; a comma inside a path stays)."""
    return [s.strip() for s in _NEXT_SPEC.split(str(text)) if s.strip()]


@dataclass(frozen=True)
class _Donor:
    image: Path | SyntheticImage
    face: FaceRecord


def _whole(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"composite: {name}={value!r} must be a whole number >= {least}")
    return int(value)


def _pixels(name: str, value: Any, *, positive: bool = True) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ValueError(f"composite: {name}={value!r} must be a number of pixels {'> 0' if positive else '>= 0'}")
    return float(value)


def _intersection(a: np.ndarray, b: np.ndarray) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


class CompositeReader(DatasetReader):
    """Synthetic photos: donor faces pasted into face-free backgrounds; one record per photo."""

    format = "composite"
    description = ("synthetic photos: faces of other datasets (faces=FORMAT:PATH) pasted at many sizes into "
                   "PATH's face-free images")
    folder_only = True

    def __init__(self, path: str | Path, *, verify_images: bool = False, faces: str = "", images: int = 0,
                 per_image: int = 6, min_face: float = 12.0, max_face: float = 200.0, max_side: int = 640,
                 max_iou: float = 0.1, ignore_below: float = 0.0, context: float = 1.6, seed: int = 0) -> None:
        super().__init__(path, verify_images=verify_images)
        self.images = _whole("images", images, 0)
        self.per_image = _whole("per_image", per_image, 1)
        self.max_side = _whole("max_side", max_side, 16)
        self.seed = _whole("seed", seed, 0)
        self.min_face = _pixels("min_face", min_face)
        self.max_face = _pixels("max_face", max_face)
        if self.max_face < self.min_face:
            raise ValueError(f"composite: min_face={min_face} is larger than max_face={max_face}")
        self.ignore_below = _pixels("ignore_below", ignore_below, positive=False)
        if isinstance(max_iou, bool) or not isinstance(max_iou, (int, float)) or not 0 <= max_iou <= 1:
            raise ValueError(f"composite: max_iou={max_iou!r} must be a number in [0, 1]")
        self.max_iou = float(max_iou)
        if isinstance(context, bool) or not isinstance(context, (int, float)) or not 1.5 <= context <= 4:
            raise ValueError(f"composite: context={context!r} must be a number in [1.5, 4] (cut = face box x context)")
        self.context = float(context)
        self.face_specs = split_face_specs(faces)
        if not self.face_specs:
            raise ValueError("composite: faces= is required: the dataset(s) whose faces are pasted, "
                             "e.g. composite:BACKGROUNDS?faces=pts:PATH")
        self.donor_readers = [self._open_donor(spec) for spec in self.face_specs]
        self._donor_ok: dict[int, bool] = {}

    def _open_donor(self, spec: str) -> DatasetReader:
        from hyperface.data.readers import open_dataset

        if "?" in spec:
            raise ValueError(f"composite: faces={spec!r}: a donor dataset takes no options of its own (no '?')")
        try:
            return open_dataset(spec, verify_images=self.verify_images)
        except ValueError as exc:  # DatasetError is one too: keep its kind, name the option
            raise type(exc)(f"composite: faces={spec}: {exc}") from None

    def _backgrounds(self) -> list[tuple[Path, tuple[int, int]]]:
        """The face-free images with their output sizes (longer side at most ``max_side``)."""
        found = []
        for image in self.list_files(self.path, IMAGE_SUFFIXES):
            size = self.check_image(image)
            if size is None:
                continue
            w, h = size
            shrink = min(1.0, self.max_side / max(w, h))
            found.append((image, (max(1, round(w * shrink)), max(1, round(h * shrink)))))
        if not found:
            raise DatasetError(f"composite: no usable image in {self.path} (the face-free backgrounds)")
        return found

    def _donors(self) -> list[_Donor]:
        donors: list[_Donor] = []
        frames = 0
        for reader in self.donor_readers:
            for record in sorted(reader, key=lambda r: (str(r.image), -1 if r.frame is None else r.frame)):
                if record.frame is not None:
                    frames += 1
                    continue
                donors += [_Donor(record.image, f) for f in record.faces if not f.attributes.get("ignore")]
            self.problems.extend(reader.problems)
        if frames:
            logger.warning("composite: %d video frames left out: only still images are donors", frames)
        if not donors:
            raise DatasetError(f"composite: no face with a box in faces={','.join(self.face_specs)} "
                               f"(ignored faces and video frames are not donors)")
        return donors

    def _records(self) -> Iterator[ImageRecord]:
        self._donor_ok = {}
        donors = self._donors()
        backgrounds = self._backgrounds()
        count = self.images or len(backgrounds)
        digits = max(6, len(str(count - 1)))
        for i in range(count):
            background, size = backgrounds[i % len(backgrounds)]
            yield self._compose(i, background, size, donors, digits)

    def _usable(self, k: int, donor: _Donor) -> bool:
        """Whether donor ``k``'s face lies (nearly) inside its image; its header is read once."""
        if k not in self._donor_ok:
            try:
                w, h = image_size(donor.image)
            except ImageReadError as exc:
                self.report(Path(donor.image), str(exc).removeprefix(f"{donor.image}: ") + "; not used as a donor")
                w = h = 0
            box = donor.face.box
            inside = np.array([max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)])
            area = (box[2] - box[0]) * (box[3] - box[1])
            self._donor_ok[k] = bool(_intersection(box, inside) >= (1 - _MAX_OUTSIDE) * area) if w else False
        return self._donor_ok[k]

    def _place(self, donor: _Donor, rng: np.random.Generator, size: tuple[int, int]) -> Paste | None:
        """A random scale (log-uniform box height) and position with the whole box inside the photo."""
        x0, y0, x1, y1 = donor.face.box
        w, h = x1 - x0, y1 - y0
        width, height = size
        most = min(self.max_face, height, width * h / w)
        if most < self.min_face:
            return None
        tall = float(np.clip(math.exp(rng.uniform(math.log(self.min_face), math.log(most))), self.min_face, most))
        s = tall / h
        left, top = rng.uniform(0, width - w * s), rng.uniform(0, height - tall)
        half = self.context / 2
        return Paste(donor.image, centre=((x0 + x1) / 2, (y0 + y1) / 2), axes=(half * w, half * h), scale=s,
                     shift=(left - s * x0, top - s * y0), opaque=math.sqrt(2) / self.context)  # the box's corners

    def _free(self, box: np.ndarray, paste: Paste, placed: list[np.ndarray]) -> bool:
        """No earlier box overlaps ``box`` by IoU over ``max_iou`` or is covered that much by the paste."""
        if placed and box_iou(box, np.array(placed)).max() > self.max_iou:
            return False
        region = paste.region()
        return all(_intersection(region, other) <= self.max_iou * (other[2] - other[0]) * (other[3] - other[1])
                   for other in placed)

    def _face(self, face: FaceRecord, paste: Paste) -> FaceRecord:
        box = paste.apply(face.box.reshape(2, 2)).reshape(4)
        attributes = dict(face.attributes)
        if box[3] - box[1] < self.ignore_below:
            attributes["ignore"] = True
        return FaceRecord(box=box, landmarks=None if face.landmarks is None else paste.apply(face.landmarks),
                          point_set=face.point_set, visibility=face.visibility, pose=face.pose, gender=face.gender,
                          pose_class=face.pose_class, attributes=attributes)

    def _compose(self, i: int, background: Path, size: tuple[int, int], donors: list[_Donor],
                 digits: int) -> ImageRecord:
        """Photo ``i``: its faces from a generator seeded by (seed, i) alone."""
        rng = np.random.default_rng([self.seed, i])
        pastes: list[Paste] = []
        faces: list[FaceRecord] = []
        for _ in range(int(rng.integers(1, self.per_image + 1))):
            for _ in range(_TRIES):
                k = int(rng.integers(len(donors)))
                paste = self._place(donors[k], rng, size) if self._usable(k, donors[k]) else None
                if paste is None:
                    continue
                face = self._face(donors[k].face, paste)
                if self._free(face.box, paste, [f.box for f in faces]):
                    pastes.append(paste)
                    faces.append(face)
                    break
        rel = background.relative_to(self.path).as_posix()
        name = str(self.path / f"composite-{i:0{digits}d}" / rel)
        image = CompositeImage(name=name, background=background, size=size, pastes=tuple(pastes))
        return ImageRecord(image=image, faces=tuple(faces), source=self.source, group=f"composite/{rel}/{i}",
                           all_faces_annotated=True)
