"""300-VW: videos with one iBUG ``.pts`` file per annotated frame.

Layout (as distributed)::

    ROOT/001/vid.avi
    ROOT/001/annot/000001.pts    # 1-based frame number, 6 digits
    ROOT/002/...

``ROOT`` may also be one video folder. Each kept frame is one :class:`ImageRecord` whose ``image``
is the video file and ``frame`` the 0-based frame index; ``group`` is the video folder, so all frames
of a video land in the same split. Frames are decoded later (prepare) with
:func:`hyperface.data.video.read_video_frame`; here the video is opened and its frame count checked
against the annotation (and, with ``verify_images``, every kept frame decoded).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hyperface.data.images import ImageReadError
from hyperface.data.readers.base import DatasetError, DatasetReader
from hyperface.data.readers.pts import PTS_ORIGIN, AnnotationError, point_set_for, read_pts_pixels
from hyperface.data.records import FaceRecord, ImageRecord, box_from_points
from hyperface.data.video import VIDEO_SUFFIXES, VideoFrames

__all__ = ["Vw300Reader"]


class Vw300Reader(DatasetReader):
    """300-VW video folders (``vid.avi`` + ``annot/NNNNNN.pts``); ``every=N`` keeps every Nth
    annotated frame (the study used 10)."""

    format = "300vw"
    pixel_origin = PTS_ORIGIN
    description = "300-VW videos: FOLDER/vid.avi + FOLDER/annot/NNNNNN.pts (1-based frame numbers)"
    folder_only = True

    def __init__(self, path: str | Path, *, verify_images: bool = False, every: int = 1) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"300vw: every={every!r}; it must be a whole number >= 1")
        super().__init__(path, verify_images=verify_images)
        self.every = every
        self.root = self.path
        if (self.path / "annot").is_dir():
            self.folders = [self.path]
        else:
            self.folders = sorted(d for d in self.path.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not any((d / "annot").is_dir() for d in self.folders):
            raise DatasetError(f"300vw: no video folder with an annot/ folder in {self.path}")

    def _find_video(self, folder: Path) -> Path | None:
        videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        named = [p for p in videos if p.stem == "vid"]
        return (named or videos or [None])[0]

    def _records(self) -> Iterator[ImageRecord]:
        for folder in self.folders:
            video = self._find_video(folder)
            if not (folder / "annot").is_dir():
                if video is not None:
                    self.report(folder, "video folder has no annot/ folder")
                continue
            if video is None:
                self.report(folder, f"no video file (vid.avi or another of {', '.join(sorted(VIDEO_SUFFIXES))})")
                continue
            yield from self._video_records(folder, video)

    def _annotations(self, folder: Path) -> list[tuple[int, Path]]:
        """(0-based frame, .pts path) of every well-named annotation, in frame order."""
        out = []
        for p in self.list_files(folder / "annot", (".pts",), recursive=False):
            if not (p.stem.isascii() and p.stem.isdigit()):
                self.report(p, "annotation name is not a frame number (expected NNNNNN.pts, 1-based)")
            elif int(p.stem) < 1:
                self.report(p, "frame numbers are 1-based: 0 is not a frame")
            else:
                out.append((int(p.stem) - 1, p))
        return sorted(out)

    def _video_records(self, folder: Path, video_path: Path) -> Iterator[ImageRecord]:
        try:
            video = VideoFrames(video_path)
        except ImageReadError as exc:
            self.report(video_path, str(exc).removeprefix(f"{video_path}: "))
            return
        group = folder.relative_to(self.root).as_posix() if folder != self.root else folder.name
        with video:
            count = video.frame_count
            self.note_size(video_path, video.size)
            for frame, ann in self._annotations(folder)[:: self.every]:
                if count and frame >= count:
                    self.report(ann, f"annotates frame {frame + 1} (1-based) but {video_path.name} has "
                                     f"{count} frames", frame=frame)
                    continue
                try:
                    points, lines = read_pts_pixels(ann)
                    point_set = point_set_for(len(points))
                except AnnotationError as exc:
                    self.report(ann, exc.message, line=exc.line, frame=frame)
                    continue
                try:
                    if self.verify_images:
                        video.read(frame)
                    else:
                        video.check_size(frame)  # the pixel budget, from the container: nothing decoded
                except ImageReadError as exc:
                    message = str(exc).removeprefix(f"{video_path}: ").removeprefix(f"frame {frame}: ")
                    self.report(video_path, message, frame=frame)
                    continue
                face = FaceRecord(box=box_from_points(points), landmarks=points, point_set=point_set,
                                  annotation=ann, lines=lines)
                yield ImageRecord(image=video_path, faces=(face,), source=self.source, group=group, frame=frame)
