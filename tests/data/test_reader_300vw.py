"""300-VW reader and read_video_frame on a tiny generated MJPG video with per-frame .pts files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hyperface.data.images import ImageReadError
from hyperface.data.readers import DatasetError, open_dataset
from hyperface.data.readers.vw300 import Vw300Reader
from hyperface.data.video import VideoFrames, read_video_frame, video_info

FRAMES = 12
SIZE = (64, 48)  # width, height


def _frame_bgr(i: int) -> np.ndarray:
    """Frame i: blue channel 0, green = 20 * i, red 200 (BGR order as OpenCV writes)."""
    img = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    img[..., 1] = 20 * i
    img[..., 2] = 200
    return img


def _write_video(path: Path, frames: int = FRAMES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(_frame_bgr(i))
    writer.release()
    return path


def _video_folder(root: Path, name: str, gen, annotated=range(1, FRAMES + 1)) -> Path:
    folder = root / name
    _write_video(folder / "vid.avi")
    for n in annotated:
        gen.pts(folder / "annot" / f"{n:06d}.pts", gen.points(68, offset=(n, 2)))
    return folder


def test_read_video_frame_seeks_and_returns_rgb(tmp_path):
    video = _write_video(tmp_path / "v.avi")
    frame = read_video_frame(video, 7)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    r, g, b = frame[..., 0].mean(), frame[..., 1].mean(), frame[..., 2].mean()
    assert abs(r - 200) < 6 and abs(g - 140) < 6 and b < 6  # RGB order, frame 7 (0-based)
    assert video_info(video) == (FRAMES, SIZE)
    with VideoFrames(video) as frames:  # sequential, then backwards seek
        greens = [frames.read(i)[..., 1].mean() for i in (0, 1, 2, 9, 3)]
    np.testing.assert_allclose(greens, [0, 20, 40, 180, 60], atol=6)


def test_read_video_frame_errors_name_file_and_frame(tmp_path):
    video = _write_video(tmp_path / "v.avi")
    with pytest.raises(ImageReadError, match=r"v\.avi: frame 40"):
        read_video_frame(video, 40)
    with pytest.raises(ImageReadError, match="not found"):
        read_video_frame(tmp_path / "missing.avi", 0)
    (tmp_path / "junk.avi").write_bytes(b"not a video at all" * 10)
    with pytest.raises(ImageReadError, match="junk.avi"):
        read_video_frame(tmp_path / "junk.avi", 0)


def test_frames_are_zero_based_and_every_keeps_every_nth(tmp_path, gen):
    _video_folder(tmp_path, "001", gen)
    _video_folder(tmp_path, "002", gen, annotated=range(1, 6))
    reader = open_dataset(f"300vw:{tmp_path}?every=5")
    records = list(reader)
    assert reader.problems == []
    assert [(r.group, r.frame) for r in records] == [("001", 0), ("001", 5), ("001", 10), ("002", 0)]
    first = records[1]
    assert first.image == tmp_path / "001" / "vid.avi" and first.key.endswith("vid.avi#5")
    assert first.faces[0].point_set == "ibug68" and first.faces[0].box[0] == 6  # from 000006.pts
    assert len(list(Vw300Reader(tmp_path))) == FRAMES + 5  # every=1 by default


def test_one_video_folder_can_be_the_root(tmp_path, gen):
    folder = _video_folder(tmp_path, "017", gen, annotated=range(1, 4))
    assert [(r.group, r.frame) for r in Vw300Reader(folder)] == [("017", 0), ("017", 1), ("017", 2)]


def test_bad_frames_and_videos_are_reported_with_frame(tmp_path, gen):
    folder = _video_folder(tmp_path, "001", gen, annotated=[1, 2, 3, 20])  # frame 20 > 12 frames
    (folder / "annot" / "000002.pts").write_text("version: 1\nn_points: 68\n{\n1 2\nnan 3\n")
    (folder / "annot" / "notes.pts").write_text("1 2\n")
    novideo = tmp_path / "002" / "annot"
    novideo.mkdir(parents=True)
    gen.pts(novideo / "000001.pts", gen.points(68))
    broken = tmp_path / "003"
    (broken / "annot").mkdir(parents=True)
    (broken / "vid.avi").write_bytes(b"garbage" * 50)
    gen.pts(broken / "annot" / "000001.pts", gen.points(68))

    reader = Vw300Reader(tmp_path, verify_images=True)
    records = list(reader)
    assert [(r.group, r.frame) for r in records] == [("001", 0), ("001", 2)]
    problems = {(Path(p.path).name, p.frame): p for p in reader.problems}
    assert set(problems) == {("notes.pts", None), ("000002.pts", 1), ("000020.pts", 19), ("002", None),
                             ("vid.avi", None)}
    assert problems[("000002.pts", 1)].line == 5
    assert "12 frames" in problems[("000020.pts", 19)].message
    assert "(frame 19)" in str(problems[("000020.pts", 19)])
    assert "no video" in problems[("002", None)].message
    assert "cannot open" in problems[("vid.avi", None)].message


def test_root_without_video_folders_is_a_dataset_error(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetError, match="annot"):
        Vw300Reader(tmp_path)
    with pytest.raises(ValueError, match="every"):
        Vw300Reader(tmp_path, every=0)


def test_frames_over_the_pixel_budget_are_reported_by_file_and_frame_and_skipped(tmp_path, gen, monkeypatch):
    from hyperface.data.images import ImageTooLargeError
    from hyperface.data.prepare import PrepareOptions, prepare

    video = _video_folder(tmp_path / "vw", "001", gen, annotated=range(1, 4)) / "vid.avi"
    with VideoFrames(video, max_pixels=3000) as frames, pytest.raises(ImageTooLargeError) as info:
        frames.read(2)
    assert str(info.value).startswith(f"{video}: frame 2: frame too large (64x48 = 3,072 pixels; the limit is 3,000)")
    assert VideoFrames(video, max_pixels=3072).read(2).shape == (48, 64, 3)  # at the budget: read

    monkeypatch.setenv("HYPERFACE_MAX_IMAGE_PIXELS", "3000")  # the budget images obey, frames too
    for verify in (True, False):
        reader = open_dataset(f"300vw:{tmp_path / 'vw'}", verify_images=verify)
        assert list(reader) == []
        assert [(p.path, p.frame) for p in reader.problems] == [(video, 0), (video, 1), (video, 2)]
        assert all(p.message.startswith("frame too large (64x48") for p in reader.problems)
    opts = PrepareOptions(crop_size=32, ss_mode="none", images_per_shard=8, min_box=6, val_fraction=0.0)
    manifest = prepare([f"300vw:{tmp_path / 'vw'}"], tmp_path / "out", opts, progress=False)
    assert manifest["complete"] and manifest["counts"].get("samples", 0) == 0
    assert [(s["frame"], "frame too large" in s["message"]) for s in manifest["skipped"]] == [
        (0, True), (1, True), (2, True)]
