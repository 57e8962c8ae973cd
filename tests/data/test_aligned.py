"""Stage two's training samples: aligned crops whose labels follow the alignment."""

from itertools import islice

import cv2
import numpy as np
import pytest

from hyperface.alignment import DEFAULT_TEMPLATE
from hyperface.data.aligned import sample_aligned
from hyperface.data.images import load_image
from hyperface.data.readers import open_dataset
from hyperface.data.records import FaceRecord, ImageRecord
from hyperface.data.shards import relative_to_crop
from hyperface.pose import wrap_degrees


@pytest.fixture(scope="module")
def lfpw_record(shared_data):
    return next(islice(open_dataset(f"pts:{shared_data / '300w/lfpw/trainset'}"), 3, None))


def _rotated(record: ImageRecord, degrees: float) -> tuple[np.ndarray, ImageRecord]:
    """The record's image turned ``degrees`` clockwise on screen about its centre, with its points."""
    image = load_image(record.image)
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -degrees, 1.0)
    turned = cv2.warpAffine(image, m, (w, h))
    face = record.faces[0]
    pts = face.landmarks @ m[:, :2].T + m[:, 2]
    new = FaceRecord(box=face.box, landmarks=pts, point_set=face.point_set)
    return turned, ImageRecord(image=record.image, faces=(new,), source=record.source, group=record.group)


def test_labels_are_window_relative_and_the_five_points_sit_on_the_template(lfpw_record):
    image = load_image(lfpw_record.image)
    crops, rows = sample_aligned(image, lfpw_record, point_set="ibug68", crop_size=120, context=1.25)
    assert crops.shape == (1, 120, 120, 3) and rows.shape == (1,)
    row = rows[0]
    assert row["landmarks_mask"].all() and row["landmarks5_mask"].all() and row["pose_mask"]
    assert not row["detection_mask"] and not row["gender_mask"]
    # least squares over five points: each within a few percent of the window of its template place
    assert np.abs(row["landmarks5"] - np.asarray(DEFAULT_TEMPLATE)).max() < 0.08
    assert np.abs(row["landmarks5"] - np.asarray(DEFAULT_TEMPLATE)).mean() < 0.03
    assert abs(float(row["pose"][0])) < 8.0  # upright once aligned
    # the window holds the face: every labelled point inside the stored crop
    pix = relative_to_crop(row["landmarks"], 1.25, 120)
    assert (pix > 0).all() and (pix < 119).all()


def test_a_turned_photo_gives_the_same_sample(lfpw_record):
    base_img, base_rec = _rotated(lfpw_record, 0.0)
    turned_img, turned_rec = _rotated(lfpw_record, 25.0)
    a_crops, a = sample_aligned(base_img, base_rec, point_set="ibug68", crop_size=120, context=1.25)
    b_crops, b = sample_aligned(turned_img, turned_rec, point_set="ibug68", crop_size=120, context=1.25)
    np.testing.assert_allclose(a["landmarks"], b["landmarks"], atol=1e-4)
    assert wrap_degrees(a["pose"] - b["pose"]).max() < 2.0  # PnP's perspective differs a little
    centre = (slice(30, 90), slice(30, 90))
    diff = np.abs(a_crops[0][centre].astype(int) - b_crops[0][centre].astype(int)).mean()
    assert diff < 12  # the same face, resampled


def test_faces_without_points_need_a_teacher(lfpw_record):
    image = load_image(lfpw_record.image)
    truth = lfpw_record.faces[0]
    gender_only = FaceRecord(box=truth.box, gender=1)
    record = ImageRecord(image=lfpw_record.image, faces=(gender_only,), source="x", group="g")
    crops, rows = sample_aligned(image, record, point_set="ibug68", crop_size=120, context=1.25)
    assert len(rows) == 0
    from hyperface.alignment import five_points

    calls = []

    def teacher(img, box):
        calls.append(box)
        return five_points(truth.landmarks, "ibug68")

    crops, rows = sample_aligned(image, record, point_set="ibug68", crop_size=120, context=1.25, teacher=teacher)
    assert len(calls) == 1 and np.allclose(calls[0], truth.box)
    assert rows[0]["gender_mask"] and rows[0]["gender"] == 1 and not rows[0]["landmarks_mask"].any()
    with_points, _ = sample_aligned(image, lfpw_record, point_set="ibug68", crop_size=120, context=1.25)
    np.testing.assert_array_equal(crops, with_points)  # aligned by the teacher's (here: the true) points


def test_a_degenerate_face_is_skipped_not_fatal(lfpw_record):
    image = load_image(lfpw_record.image)
    bad = FaceRecord(box=np.array([10.0, 10.0, 50.0, 50.0]), landmarks=np.full((68, 2), 100.0), point_set="ibug68")
    record = ImageRecord(image=lfpw_record.image, faces=(bad, lfpw_record.faces[0]), source="x", group="g")
    crops, rows = sample_aligned(image, record, point_set="ibug68", crop_size=120, context=1.25)
    assert len(rows) == 1 and rows[0]["face"] == 1


def test_pipeline_alignment_is_stage_two_s_and_the_labels_stay_the_face_s_own(lfpw_record):
    from hyperface.alignment import align, five_points
    from hyperface.data.aligned import PipelineAligner
    from hyperface.inference.analyzer import FaceAnalyzer

    image = load_image(lfpw_record.image)
    truth = lfpw_record.faces[0].landmarks
    found = [five_points(f.landmarks, f.point_set)
             for f in FaceAnalyzer(fine=None, flip_average=False, threads=1)(image)]
    stage_two = min(found, key=lambda p: np.linalg.norm(p - five_points(truth, "ibug68"), axis=1).mean())
    aligner = PipelineAligner()
    crops, rows = sample_aligned(image, lfpw_record, point_set="ibug68", crop_size=120, context=1.25, aligner=aligner)
    assert aligner.counts == {"found": 1, "box": 0, "own": 0}
    al = align(stage_two, 120, 1.25)
    np.testing.assert_allclose(rows[0]["landmarks"], al.to_relative(truth), atol=1e-5)  # the true points
    np.testing.assert_array_equal(crops[0], al.warp(image))                              # stage two's window
    _, own = sample_aligned(image, lfpw_record, point_set="ibug68", crop_size=120, context=1.25)
    shift = np.abs(rows[0]["landmarks"] - own[0]["landmarks"]).mean()
    assert 1e-4 < shift < 0.05  # stage two's alignment errs a little, not wildly


def test_pipeline_alignment_is_an_option_of_aligned_mode_only():
    from hyperface.data.sampling import PrepareOptions

    assert PrepareOptions(mode="aligned", align_by="pipeline").align_by == "pipeline"
    with pytest.raises(ValueError, match="align_by"):
        PrepareOptions(mode="aligned", align_by="stage-one")
    with pytest.raises(ValueError, match="is for mode aligned"):
        PrepareOptions(mode="candidates", align_by="pipeline")


def test_prepare_align_by_pipeline_from_the_command_line(shared_data, tmp_path, monkeypatch, capsys):
    from hyperface.cli.main import main
    from hyperface.data.shards import load_manifest

    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("image_0005", "image_0011"):  # two 300-W faces, linked
        for suffix in (".jpg", ".pts"):
            (folder / f"{name}{suffix}").symlink_to(shared_data / "300w/lfpw/trainset" / f"{name}{suffix}")
    labels = {}
    for align_by in ("points", "pipeline"):
        out = tmp_path / align_by
        monkeypatch.setattr("sys.argv", ["hyperface"])
        assert main(["prepare", "--mode", "aligned", "--align-by", align_by, "--crop-size", "120", "--context", "1.25",
                     "--val-fraction", "0", "--no-progress", "--source", f"pts:{folder}", "--out", str(out)]) == 0
        manifest, _ = load_manifest(out)
        assert manifest["options"]["align_by"] == align_by
        printed = capsys.readouterr().out
        if align_by == "pipeline":  # how each face was aligned, summed over the shards and printed
            assert manifest["counts"]["alignment"] == {"found": 2, "box": 0, "own": 0}
            assert "aligned by the pipeline's stage two: 2 faces as found, 0 by stage two" in printed
        else:
            assert "alignment" not in manifest["counts"] and "pipeline's stage two" not in printed
        labels[align_by] = np.concatenate([np.load(f, allow_pickle=False)["landmarks"]
                                           for f in sorted(out.glob("shards/*/labels.npy"))])
    assert labels["points"].shape == labels["pipeline"].shape == (2, 68, 2)
    shift = np.abs(labels["points"] - labels["pipeline"]).mean(axis=(1, 2))
    assert (shift > 1e-4).all() and (shift < 0.05).all()  # each face aligned anew, a little off its own points
