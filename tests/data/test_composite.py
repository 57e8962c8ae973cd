"""The composite reader: donor faces pasted into face-free images, on tiny generated data: boxes and
landmarks follow the pixels, sizes in range, no heavy overlap, deterministic, bad options refused,
and prepare takes its photos like any other source."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyperface.data.images import SyntheticImage, image_size, load_image
from hyperface.data.prepare import PrepareOptions, prepare
from hyperface.data.readers import READERS, DatasetError, DatasetReader, open_dataset
from hyperface.data.readers.composite import split_face_specs
from hyperface.data.records import FaceRecord, ImageRecord

GREY = (90, 90, 90)
RED, GREEN, BLUE = (200, 30, 30), (0, 255, 0), (0, 0, 255)
# left eye, right eye, nose, mouth corners: a 30 x 28 px tight box (45, 50, 75, 78)
POINTS = np.array([[45.0, 50.0], [75.0, 50.0], [60.0, 62.0], [48.0, 78.0], [72.0, 78.0]])
NOSE, LEFT_EYE = 2, 0


def _donors(root: Path, n: int = 3) -> Path:
    """``n`` red 120 x 120 images with a green square on the nose and a blue one on the left eye."""
    root.mkdir(parents=True)
    for i in range(n):
        img = np.full((120, 120, 3), RED, dtype=np.uint8)
        for (x, y), colour in ((POINTS[NOSE], GREEN), (POINTS[LEFT_EYE], BLUE)):
            img[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4] = colour
        Image.fromarray(img).save(root / f"d{i}.png")
        body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in POINTS + 1)  # .pts files are 1-based
        (root / f"d{i}.pts").write_text(f"version: 1\nn_points: 5\n{{\n{body}\n}}\n")
    return root


def _backgrounds(root: Path, sizes=((320, 240), (300, 300))) -> Path:
    root.mkdir(parents=True)
    for i, size in enumerate(sizes):
        Image.new("RGB", size, GREY).save(root / f"bg{i}.png")
    return root


@pytest.fixture
def pool(tmp_path) -> tuple[Path, Path]:
    return _backgrounds(tmp_path / "bg"), _donors(tmp_path / "donors")


def _spec(pool, **options) -> str:
    bg, donors = pool
    query = "&".join([f"faces=pts:{donors}", *(f"{k}={v}" for k, v in options.items())])
    return f"composite:{bg}?{query}"


def test_boxes_cover_the_changed_pixels_and_landmarks_carry_the_markers(pool):
    records = list(open_dataset(_spec(pool, images=6, per_image=3, min_face=60, max_face=80)))
    assert len(records) == 6 and sum(len(r.faces) for r in records) >= 6
    for record in records:
        image = load_image(record.image).astype(int)
        assert image.shape[:2][::-1] == record.image.size == image_size(record.image)
        changed = np.abs(image - GREY).max(axis=2) > 0
        allowed = np.zeros_like(changed)
        for paste in record.image.pastes:
            x0, y0, x1, y1 = paste.region()
            allowed[max(0, int(y0) - 1):int(y1) + 2, max(0, int(x0) - 1):int(x1) + 2] = True
        assert not (changed & ~allowed).any()  # nothing changed outside the pastes
        for face, paste in zip(record.faces, record.image.pastes):
            x0, y0, x1, y1 = np.round(face.box).astype(int)
            assert changed[y0:y1, x0:x1].mean() > 0.95  # the box is where the face went
            np.testing.assert_allclose(face.landmarks, POINTS * paste.scale + paste.shift)
            assert face.point_set == "five"
            # the green marker's centre in the output is the transformed nose point (pixel centres at integers)
            nx, ny = face.landmarks[NOSE]
            r = int(4 * paste.scale)
            win = image[int(ny) - r:int(ny) + r + 1, int(nx) - r:int(nx) + r + 1]
            ys, xs = np.nonzero((win[..., 1] > 128) & (win[..., 0] < 100))
            assert len(xs) > 9
            assert abs(xs.mean() + int(nx) - r - nx) < 0.6 and abs(ys.mean() + int(ny) - r - ny) < 0.6
            ex, ey = np.round(face.landmarks[LEFT_EYE]).astype(int)
            assert image[ey, ex, 2] > 200 and image[ey, ex, 1] < 60  # blue at the left eye


def test_the_paste_fades_into_the_background(pool):
    (record, *_) = open_dataset(_spec(pool, images=1, per_image=1, min_face=100, max_face=100))
    image = load_image(record.image).astype(float)
    (face,) = record.faces
    (paste,) = record.image.pastes
    cy = int(round(paste.apply([60.0, 72.0])[1]))  # a row of the face between the markers
    row = np.abs(image[cy] - GREY).sum(axis=1) / np.abs(np.subtract(RED, GREY)).sum()  # 0 grey .. 1 red
    assert row.max() > 0.95 and row.min() == 0
    assert np.abs(np.diff(row)).max() < 0.3  # no hard edge anywhere along the row
    assert ((row > 0.1) & (row < 0.9)).sum() >= 5  # a ramp of several pixels


def test_face_sizes_overlaps_counts_groups_and_resizing(tmp_path):
    bg = _backgrounds(tmp_path / "bg", sizes=((320, 240), (1000, 400)))
    donors = _donors(tmp_path / "donors")
    records = list(open_dataset(f"composite:{bg}?faces=pts:{donors}&images=30&per_image=8"
                                f"&min_face=20&max_face=60&max_iou=0.1"))
    assert len(records) == 30
    assert [r.group for r in records[:3]] == ["composite/bg0.png/0", "composite/bg1.png/1", "composite/bg0.png/2"]
    assert len({str(r.image) for r in records}) == 30
    assert all(r.all_faces_annotated for r in records)
    assert records[1].image.size == (640, 256) and load_image(records[1].image).shape == (256, 640, 3)
    heights = [f.box[3] - f.box[1] for r in records for f in r.faces]
    assert min(heights) >= 20 - 1e-9 and max(heights) <= 60 + 1e-9
    assert max(heights) - min(heights) > 20  # many scales
    counts = [len(r.faces) for r in records]
    assert max(counts) >= 4 and min(counts) >= 1
    for r in records:
        w, h = r.image.size
        for a, b in combinations([f.box for f in r.faces], 2):
            inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
            union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
            assert inter / union <= 0.1 + 1e-9
        assert all(f.box[0] >= 0 and f.box[1] >= 0 and f.box[2] <= w and f.box[3] <= h for f in r.faces)


def test_same_seed_same_photos_other_seed_other_photos(pool):
    def read(seed):
        return list(open_dataset(_spec(pool, images=3, seed=seed)))

    a, b, c = read(5), read(5), read(6)
    for ra, rb in zip(a, b):
        assert ra.group == rb.group and str(ra.image) == str(rb.image) and ra.image == rb.image
        np.testing.assert_array_equal([f.box for f in ra.faces], [f.box for f in rb.faces])
        np.testing.assert_array_equal(load_image(ra.image), load_image(rb.image))
    assert any(len(ra.faces) != len(rc.faces) or not np.allclose(ra.faces[0].box, rc.faces[0].box)
               for ra, rc in zip(a, c))
    assert not np.array_equal(load_image(a[0].image), load_image(c[0].image))
    # photo i depends on (seed, i) only: asking for more photos leaves the first ones as they were
    more = list(open_dataset(_spec(pool, images=5, seed=5)))
    np.testing.assert_array_equal([f.box for f in more[2].faces], [f.box for f in a[2].faces])
    # a record travels to prepare's workers: it pickles, and a copy renders the same pixels
    pickle.dumps(a[0])
    np.testing.assert_array_equal(load_image(copy.deepcopy(a[0].image)), load_image(a[0].image))
    assert isinstance(a[0].image, SyntheticImage)


class _LabelledDonors(DatasetReader):
    """An in-memory donor dataset: one image, two faces with every label (one marked ignore)."""

    format = "labelled-test"
    description = "test donors"

    def _records(self) -> Iterator[ImageRecord]:
        path = next(self.path.glob("*.png"))
        faces = (FaceRecord(box=[40, 40, 80, 80], landmarks=POINTS, point_set="five", visibility=[1, 1, 0, 1, 1],
                            pose=[1.0, -2.0, 30.0], gender=1, pose_class=4, attributes={"smile": True}),
                 FaceRecord(box=[0, 0, 30, 30], attributes={"ignore": True}))
        yield ImageRecord(image=path, faces=faces, source=self.source, group="x")


def test_labels_travel_with_the_face_and_small_faces_can_be_ignored(tmp_path, monkeypatch):
    monkeypatch.setitem(READERS, "labelled-test", _LabelledDonors)
    bg = _backgrounds(tmp_path / "bg")
    Image.new("RGB", (120, 120), RED).save(_backgrounds(tmp_path / "donor", sizes=()) / "d.png")
    reader = open_dataset(f"composite:{bg}?faces=labelled-test:{tmp_path / 'donor'}&images=20&per_image=4"
                          f"&min_face=12&max_face=60&ignore_below=30")
    faces = [f for r in reader for f in r.faces]
    assert faces and all(f.box[2] - f.box[0] == pytest.approx(f.box[3] - f.box[1]) for f in faces)  # donor box 40x40
    for f in faces:
        np.testing.assert_array_equal(f.pose, [1.0, -2.0, 30.0])
        np.testing.assert_array_equal(f.visibility, [1, 1, 0, 1, 1])
        assert (f.gender, f.pose_class, f.attributes.get("smile")) == (1, 4, True)
        assert bool(f.attributes.get("ignore")) == (f.box[3] - f.box[1] < 30)
    assert {bool(f.attributes.get("ignore")) for f in faces} == {True, False}


def test_several_donor_datasets_in_one_option(tmp_path, pool):
    bg, donors = pool
    other = _donors(tmp_path / "more,donors", n=1)  # a comma inside a path is kept
    assert split_face_specs(f"pts:{donors},pts:{other}") == [f"pts:{donors}", f"pts:{other}"]
    reader = open_dataset(f"composite:{bg}?faces=pts:{donors},pts:{other}&images=40&per_image=6")
    used = {Path(p.donor).parent.name for r in reader for p in r.image.pastes}
    assert used == {"donors", "more,donors"}


@pytest.mark.parametrize("query, error, match", [
    ("", ValueError, "faces= is required"),
    ("faces=pts:{donors}&min_face=50&max_face=20", ValueError, "min_face=50 is larger than max_face=20"),
    ("faces=pts:{donors}&per_image=0", ValueError, "per_image=0 must be a whole number >= 1"),
    ("faces=pts:{donors}&images=-1", ValueError, "images=-1"),
    ("faces=pts:{donors}&min_face=0", ValueError, "min_face=0 must be a number of pixels > 0"),
    ("faces=pts:{donors}&max_iou=2", ValueError, "max_iou=2"),
    ("faces=pts:{donors}&context=0.5", ValueError, "context=0.5"),
    ("faces=pts:{donors}&colour=red", ValueError, "unknown option.*colour"),
    ("faces=pts:{bg}/nowhere", DatasetError, "composite: faces=pts:.*nowhere.*does not exist"),
    ("faces=jpeg:{donors}", ValueError, "faces=jpeg:.*unknown dataset format 'jpeg'"),
    ("faces=mtfl:{donors}?split=testing", ValueError, "takes no options of its own"),
])
def test_bad_options_are_refused_naming_the_option(pool, query, error, match):
    bg, donors = pool
    with pytest.raises(error, match=match):
        open_dataset(f"composite:{bg}?" + query.format(bg=bg, donors=donors))


def test_missing_or_empty_folders_and_no_donor_faces(tmp_path, pool):
    bg, donors = pool
    with pytest.raises(DatasetError, match="composite: .*nowhere does not exist"):
        open_dataset(f"composite:{tmp_path / 'nowhere'}?faces=pts:{donors}")
    with pytest.raises(DatasetError, match="not a folder"):
        open_dataset(f"composite:{bg / 'bg0.png'}?faces=pts:{donors}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no usable image in .*empty"):
        list(open_dataset(f"composite:{tmp_path / 'empty'}?faces=pts:{donors}"))
    with pytest.raises(DatasetError, match="no face with a box in faces=negatives:"):
        list(open_dataset(f"composite:{bg}?faces=negatives:{bg}"))


def test_a_donor_face_mostly_outside_its_image_is_not_used(tmp_path):
    bg = _backgrounds(tmp_path / "bg")
    donors = _donors(tmp_path / "donors", n=1)
    outside = POINTS + [0, 50]  # the mouth 8 px below a 120 px image: 29 % of the box outside
    (donors / "d0.pts").write_text("version: 1\nn_points: 5\n{\n" + "\n".join(f"{x} {y}" for x, y in outside + 1) + "\n}\n")
    records = list(open_dataset(f"composite:{bg}?faces=pts:{donors}&images=3"))
    assert records and all(not r.faces for r in records)


def test_prepare_takes_composite_photos_as_face_samples(pool, tmp_path):
    opts = PrepareOptions(crop_size=24, context=1.25, point_set="five", ss_mode="none", images_per_shard=2,
                          min_box=6, val_fraction=0.3)
    spec = _spec(pool, images=5, per_image=3, min_face=16, max_face=60)
    manifest = prepare([spec], tmp_path / "out", opts, progress=False)
    assert manifest["complete"] and not manifest["skipped"]
    assert manifest["plan"]["images"] == 5
    counts = manifest["counts"]
    assert counts["train"]["face"] + counts["val"]["face"] > 0
    assert counts["train"]["non_face"] + counts["val"]["non_face"] > 0
    assert counts["train"]["landmarks5"] + counts["val"]["landmarks5"] > 0
    images = [i for s in manifest["shards"] for i in
              json.loads((tmp_path / "out" / s["path"] / "shard.json").read_text())["images"]]
    assert sorted(images) == [f"composite-{i:06d}/bg{i % 2}.png" for i in range(5)]
    done: list[str] = []
    again = prepare([spec], tmp_path / "out", opts, progress=False, on_shard=done.append)  # resume: nothing to do
    assert done == [] and again["plan"]["fingerprint"] == manifest["plan"]["fingerprint"]


def test_data_formats_and_data_check_know_it(pool, capsys):
    from hyperface.cli.main import main

    assert main(["data", "formats"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("composite "))
    assert "face-free" in line and "faces=" in line and "per_image=6" in line
    assert main(["data", "check", _spec(pool, images=4, per_image=2), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["datasets"]
    assert report["images"] == 4 and report["groups"] == 4 and 4 <= report["faces"] <= 8
    assert report["problems"] == []
