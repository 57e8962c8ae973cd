"""FaceAnalyzer: batch == one by one, inputs, scaled large images, no face, missing tasks, bad weights."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from hyperface.data.images import ImageReadError
from hyperface.inference import Face, FaceAnalyzer
from hyperface.data.images import load_image
from hyperface.inference.analyzer import DEFAULT_SCORE_THRESHOLD, FUSED_SCORE_THRESHOLD, SOURCE_WEIGHT
from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path
from hyperface.inference.proposals import FastProposals, ProposalSource

from inference_stubs import BlobNet, blob_image, expected_box


def assert_same_faces(a: list[Face], b: list[Face], atol: float = 1e-3) -> None:
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        np.testing.assert_allclose(fa.box, fb.box, atol=atol)
        assert fa.score == pytest.approx(fb.score, abs=1e-4)
        np.testing.assert_allclose(fa.landmarks, fb.landmarks, atol=atol)
        assert fa.gender == fb.gender
        for name in ("pose", "visibility"):
            if getattr(fa, name) is not None or getattr(fb, name) is not None:
                np.testing.assert_allclose(getattr(fa, name), getattr(fb, name), atol=atol)


@pytest.fixture
def analyzer(proposal_weights):
    source = FastProposals(proposal_weights, min_face=32, max_candidates=100, refine=None)
    return FaceAnalyzer(BlobNet(), proposals=source, irp_rounds=3, irp_threshold=0.05, score_threshold=0.5)


def test_finds_each_blob_with_its_fitted_box(analyzer):
    blobs = [(60, 50, 18), (170, 90, 24)]
    faces = analyzer(blob_image(240, 160, blobs))
    assert len(faces) == 2
    found = sorted(faces, key=lambda f: f.box[0])
    for face, (cx, cy, r) in zip(found, blobs):
        np.testing.assert_allclose(face.box, expected_box(cx, cy, r), atol=3.0)
        assert face.point_set == "five" and face.landmarks.shape == (5, 2)
        assert face.pose is not None and face.visibility.shape == (5,) and face.gender in ("male", "female")
    assert faces[0].score >= faces[1].score
    assert set(analyzer.last_timings) == {"load", "candidates", "network", "irp", "lnms", "stage_two"}


def test_batch_equals_one_by_one(analyzer):
    images = [blob_image(200, 150, [(70, 60, 20)]), blob_image(160, 160, []),
              blob_image(300, 200, [(80, 80, 16), (220, 120, 30)])]
    together = analyzer.batch(images)
    assert [len(f) for f in together] == [1, 0, 2]
    for image, faces in zip(images, together):
        assert_same_faces(analyzer(image), faces)


def test_no_face_is_an_empty_list(analyzer):
    assert analyzer(np.zeros((120, 160, 3), dtype=np.uint8)) == []
    assert analyzer(np.zeros((120, 160, 3), dtype=np.uint8), boxes=np.zeros((0, 4))) == []


def test_path_pil_array_and_grey_give_the_same(analyzer, tmp_path):
    image = blob_image(200, 150, [(90, 70, 22)])
    path = tmp_path / "blob.png"
    Image.fromarray(image).save(path)
    ref = analyzer(image)
    assert len(ref) == 1
    assert_same_faces(analyzer(path), ref)
    assert_same_faces(analyzer(str(path)), ref)
    assert_same_faces(analyzer(Image.open(path)), ref)
    assert_same_faces(analyzer(image[:, :, 0]), ref)  # grey H x W


def test_bad_inputs_are_named(analyzer, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        analyzer(bad)
    with pytest.raises(ValueError, match="H x W"):
        analyzer(np.zeros((10, 10, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        analyzer(np.full((10, 10, 3), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="numeric dtype"):
        analyzer(np.zeros((10, 10, 3), dtype=object))
    with pytest.raises(TypeError, match="path, a numpy array or a PIL image"):
        analyzer(42)
    with pytest.raises(ValueError, match="color_order"):
        analyzer.batch([np.zeros((10, 10, 3), np.uint8)], color_order="rgba")


def test_large_image_is_scaled_and_answers_mapped_back(proposal_weights):
    """A 2400 x 1800 image analysed at max_side 600: boxes (given in original pixels) are scaled
    down for the network and the answers come back in original pixels."""
    blob = (1500.0, 900.0, 120.0)
    image = blob_image(2400, 1800, [blob])
    source = FastProposals(proposal_weights, min_face=32, refine=None)
    an = FaceAnalyzer(BlobNet(), proposals=source, max_side=600, irp_rounds=3)
    given = np.array([[1350.0, 760, 1660, 1070]])
    faces = an(image, boxes=given)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, expected_box(*blob), atol=8.0)  # 1 working pixel = 4 px
    assert np.abs(faces[0].landmarks[2] - blob[:2]).max() < 8.0
    # the fast source runs on the scaled image; its answer is mapped back the same way
    faces = an(image)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, expected_box(*blob), atol=8.0)


def test_missing_tasks_are_none_and_json_ready(proposal_weights):
    an = FaceAnalyzer(BlobNet(tasks=("detection", "landmarks")), proposals=FastProposals(proposal_weights, refine=None))
    faces = an(blob_image(200, 150, [(90, 70, 22)]))
    assert len(faces) == 1
    f = faces[0]
    assert f.visibility is None and f.pose is None and f.gender is None and f.gender_probability is None
    d = json.loads(json.dumps(f.to_dict()))
    assert d["pose"] is None and d["gender"] is None and len(d["landmarks"]) == 5
    back = Face.from_dict(d)
    np.testing.assert_allclose(back.box, f.box, atol=0.01)


def test_face_to_dict_schema():
    f = Face(box=[1, 2, 3, 4], score=0.9, landmarks=np.zeros((5, 2)), point_set="five", visibility=np.ones(5),
             pose=[1.0, -2.0, 3.0], gender="female", gender_probability=0.8)
    d = f.to_dict()
    assert set(d) == {"box", "score", "landmarks", "point_set", "visibility", "pose", "gender", "gender_probability",
                      "sources"}
    assert d["pose"] == {"roll": 1.0, "pitch": -2.0, "yaw": 3.0} and f.yaw == 3.0
    assert Face.from_dict(d).to_dict() == d


def test_weights_errors_are_clear(tmp_path):
    from safetensors.torch import load_file, save_file

    from hyperface.models.registry import create_model
    from hyperface.models.weights import CONFIG_KEY, save_weights

    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        FaceAnalyzer(tmp_path / "nothing.safetensors")
    path = save_weights(create_model("hyperface-compact", input_size=32, num_points=21), tmp_path / "w.safetensors")
    from hyperface.models.weights import read_config

    cfg = read_config(path)
    cfg.num_points, cfg.point_set = 68, "ibug68"
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(path), bad, metadata={"format": "pt", CONFIG_KEY: cfg.to_json()})
    with pytest.raises(ValueError, match=r"weights do not fit architecture hyperface-compact.*landmarks"):
        FaceAnalyzer(bad, proposals="selective-search")


def test_settings_are_validated(proposal_weights):
    with pytest.raises(ValueError, match="unknown candidate source"):
        FaceAnalyzer(BlobNet(), proposals="haar")
    with pytest.raises(ValueError, match="boxes:path"):
        FaceAnalyzer(BlobNet(), proposals="boxes")
    with pytest.raises(ValueError, match="backend"):
        FaceAnalyzer(BlobNet(), proposals=FastProposals(proposal_weights, refine=None), backend="tensorrt")
    with pytest.raises(ValueError, match="score_threshold"):
        FaceAnalyzer(BlobNet(), proposals=FastProposals(proposal_weights, refine=None), score_threshold=2)


def test_compact_model_runs_end_to_end(tmp_path):
    """The real hyperface-compact architecture (random weights) through the whole pipeline."""
    from hyperface.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("hyperface-compact", input_size=32, num_points=68)
    an = FaceAnalyzer(model, proposals="selective-search", score_threshold=0.0, irp_rounds=1)
    image = blob_image(160, 120, [(80, 60, 20)])
    boxes = np.array([[50.0, 30, 110, 90], [10, 10, 50, 50]])
    faces = an(image, boxes=boxes)
    assert len(faces) == 2  # one face per given box, whatever the random network scores them
    assert faces[0].landmarks.shape == (68, 2) and faces[0].point_set == "ibug68"
    assert an.batch([image, image], boxes=[boxes, boxes])[1][0].score == pytest.approx(faces[0].score, abs=1e-4)


def test_a_missing_bundled_pipeline_is_explained(no_bundled_files):
    with pytest.raises(FileNotFoundError, match=f"{no_bundled_files}.*manifest.json: no pipeline manifest"):
        FaceAnalyzer()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        FaceAnalyzer(BlobNet(), proposals="selective-search", stage_two="bundled")
    assert FaceAnalyzer(BlobNet(), proposals="selective-search").stage_two is None  # auto: none to add


class _ScoredBoxes(ProposalSource):
    """Fixed boxes with the source's own face probabilities (as the ``detector`` source gives)."""

    name = "scored-test"
    scores_boxes = True

    def __init__(self, boxes: np.ndarray, scores: np.ndarray) -> None:
        self.boxes, self.scores = boxes, scores

    def __call__(self, image, key=None):
        return self.boxes

    def scored(self, image, key=None):
        return self.boxes, self.scores


class _Unscored(ProposalSource):
    name = "unscored-test"

    def __init__(self, boxes: np.ndarray) -> None:
        self.boxes = boxes

    def __call__(self, image, key=None):
        return self.boxes


def test_a_scoring_source_is_fused_with_the_network_by_weighted_geometric_mean():
    blobs = [(60, 50, 18), (170, 90, 24)]
    image = blob_image(240, 160, blobs)
    boxes = np.stack([expected_box(*b) for b in blobs]).astype(np.float32)
    source = _ScoredBoxes(boxes, np.array([0.81, 0.04], np.float32))
    alone = FaceAnalyzer(BlobNet(), proposals=source, irp_rounds=0, score_threshold=0.0, fuse_scores=False)(image)
    fused = FaceAnalyzer(BlobNet(), proposals=source, irp_rounds=0, score_threshold=0.0)(image)
    net = {round(float(f.box[0])): f.score for f in alone}
    got = {round(float(f.box[0])): f.score for f in fused}
    assert sorted(net) == sorted(got) and len(got) == 2
    left, right = sorted(net)
    w = SOURCE_WEIGHT
    assert got[left] == pytest.approx(0.81 ** w * net[left] ** (1 - w), abs=1e-4)
    assert got[right] == pytest.approx(0.04 ** w * net[right] ** (1 - w), abs=1e-4)
    even = FaceAnalyzer(BlobNet(), proposals=source, irp_rounds=0, score_threshold=0.0, source_weight=0.5)(image)
    assert sorted(f.score for f in even) == pytest.approx(sorted([np.sqrt(net[left] * 0.81),
                                                                  np.sqrt(net[right] * 0.04)]), abs=1e-4)
    with pytest.raises(ValueError, match="source_weight"):
        FaceAnalyzer(BlobNet(), proposals=source, source_weight=0.0)
    # at the default threshold the face the source doubts (0.04 < 0.6^(1/w)) is dropped, the other kept
    # with the same answer, and the doubted box never reaches the network
    analyzer, crops = FaceAnalyzer(BlobNet(), proposals=source, irp_rounds=0), []
    network = analyzer.stage_one.runtime
    analyzer.stage_one.runtime = lambda x: crops.append(len(x)) or network(x)
    kept = analyzer(image)
    assert len(kept) == 1 and kept[0].box[0] < 120 and kept[0].score == pytest.approx(got[left], abs=1e-6)
    assert crops == [1]
    # in one batch, faces in given boxes keep the network's score beside fused ones from the source
    fused_batch, given_batch = FaceAnalyzer(BlobNet(), proposals=source, irp_rounds=0, score_threshold=0.0).batch(
        [image, image], boxes=[None, boxes])
    assert sorted(f.score for f in fused_batch) == pytest.approx(sorted(got.values()), abs=1e-6)
    assert sorted(f.score for f in given_batch) == pytest.approx(sorted(net.values()), abs=1e-6)


def test_a_source_leaves_out_boxes_under_the_floor_by_default():
    boxes = np.array([[10, 10, 50, 50], [60, 10, 90, 40]], np.float32)
    got, probs = _ScoredBoxes(boxes, np.array([0.81, 0.04], np.float32)).scored_above(None, None, 0.5)
    np.testing.assert_array_equal(got, boxes[:1])
    np.testing.assert_array_equal(probs, np.array([0.81], np.float32))
    # a source that does not score its boxes gives all of them
    got, probs = _Unscored(boxes).scored_above(None, None, 0.5)
    assert probs is None
    np.testing.assert_array_equal(got, boxes)


def test_the_analyzer_asks_the_source_only_for_boxes_that_can_reach_its_threshold():
    image = blob_image(240, 160, [(60, 50, 18)])
    source, floors = _ScoredBoxes(np.array([expected_box(60, 50, 18)], np.float32), np.array([0.9], np.float32)), []
    source.scored_above = lambda im, key=None, floor=0.0: floors.append(floor) or ProposalSource.scored_above(
        source, im, key, floor)
    FaceAnalyzer(BlobNet(), proposals=source, irp_rounds=0, score_threshold=0.5, source_weight=0.8)(image)
    FaceAnalyzer(BlobNet(), proposals=source, irp_rounds=0, score_threshold=0.5, fuse_scores=False)(image)
    assert floors == pytest.approx([0.5 ** (1 / 0.8), 0.0])


def test_the_default_threshold_follows_whether_scores_are_fused():
    boxes = np.array([[10, 10, 50, 50]], np.float32)
    scoring, plain = _ScoredBoxes(boxes, np.array([0.9], np.float32)), FastProposals()
    fused = FaceAnalyzer(BlobNet(), proposals=scoring)
    assert fused.score_threshold == FUSED_SCORE_THRESHOLD != DEFAULT_SCORE_THRESHOLD
    assert fused.stage_one.irp_threshold == DEFAULT_SCORE_THRESHOLD  # IRP looks at the network's own score
    assert FaceAnalyzer(BlobNet(), proposals=scoring, fuse_scores=False).score_threshold == DEFAULT_SCORE_THRESHOLD
    assert FaceAnalyzer(BlobNet(), proposals=plain).score_threshold == DEFAULT_SCORE_THRESHOLD
    chosen = FaceAnalyzer(BlobNet(), proposals=scoring, score_threshold=0.3)
    assert chosen.score_threshold == chosen.stage_one.irp_threshold == 0.3


# -- given boxes, inputs, pickling: what a user of another detector or of OpenCV expects -----------------------------
EXAMPLE = str(asset_path(EXAMPLE_IMAGE))


@pytest.fixture(scope="module")
def bundled_analyzer() -> FaceAnalyzer:
    return FaceAnalyzer()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    from hyperface.boxes import box_iou

    return float(box_iou(a[None], b[None])[0, 0])


def test_given_boxes_give_one_face_each_in_order_whatever_their_score(bundled_analyzer):
    (found,) = bundled_analyzer(EXAMPLE)
    centre, size = (found.box[:2] + found.box[2:]) / 2, found.box[2:] - found.box[:2]
    loose = np.r_[centre - 0.75 * size, centre + 0.75 * size]  # another detector's box, 1.5 x the face
    background = np.array([10.0, 10, 90, 100])  # sky and spacecraft, no face
    given = [background, loose, found.box, found.box]
    faces = bundled_analyzer(EXAMPLE, boxes=given)
    assert len(faces) == 4  # no threshold, no L-NMS: the duplicate stays too
    assert faces[0].score < 0.1 <= 0.9 < min(f.score for f in faces[1:])  # in the order given, each with its score
    assert _iou(faces[0].box, background) > 0.3 and _iou(faces[0].box, found.box) == 0
    for face in faces[1:]:  # IRP moved the loose box onto the face; the face's own box stays on it
        assert _iou(face.box, found.box) > 0.85
        # the same face analysed: its points within 5% of the face's size of the ones found
        assert np.abs(face.landmarks - found.landmarks).mean() < 0.05 * size.mean()
        assert face.sources["landmarks"] == "stage2" and face.landmarks.shape == (68, 2)
    np.testing.assert_allclose(faces[2].box, faces[3].box)
    # in one batch with a found face: the given image's faces in order, the other's as found
    both = bundled_analyzer.batch([EXAMPLE, EXAMPLE], boxes=[None, given[:2]])
    assert len(both[0]) == 1 and len(both[1]) == 2
    np.testing.assert_allclose(both[0][0].box, found.box, atol=1e-3)
    np.testing.assert_allclose(both[1][1].box, faces[1].box, atol=1e-3)


def test_a_boxes_file_gives_one_face_per_box_in_its_order(bundled_analyzer, tmp_path):
    """Boxes from another detector's file are faces, as boxes handed to the call are (the file's order)."""
    (found,) = bundled_analyzer(EXAMPLE)
    boxes = tmp_path / "boxes.txt"
    boxes.write_text(f"{EXAMPLE} 10 10 90 100\n{EXAMPLE} " + " ".join(f"{v:.2f}" for v in found.box) + "\n")
    from_file = FaceAnalyzer(proposals=f"boxes:{boxes}")(EXAMPLE)
    handed = bundled_analyzer(EXAMPLE, boxes=[[10, 10, 90, 100], found.box])
    assert len(from_file) == 2 and from_file[0].score < 0.1 < 0.9 < from_file[1].score
    for a, b in zip(from_file, handed):
        np.testing.assert_allclose(a.box, b.box, atol=0.02)


def test_irp_runs_by_default_after_window_sources_and_on_given_boxes_not_after_the_detector(monkeypatch):
    """IRP_ROUNDS: the detector's candidates go through stage one's network once; boxes given to the call
    are refined by one IRP round (a second network call); ``irp_rounds`` given applies to both."""
    calls = []

    def counted(analyzer):
        evaluate = analyzer.stage_one.evaluate
        monkeypatch.setattr(analyzer.stage_one, "evaluate", lambda *a: calls.append(len(a[1])) or evaluate(*a))
        return analyzer

    default = counted(FaceAnalyzer())
    assert (default.stage_one.irp_rounds, default.stage_one.given_irp_rounds) == (0, 1)
    (face,) = default(EXAMPLE)
    assert len(calls) == 1
    calls.clear()
    default(EXAMPLE, boxes=[face.box])
    assert calls == [1, 1]  # the box, then its IRP round
    calls.clear()
    paper = counted(FaceAnalyzer(irp_rounds=1))
    assert (paper.stage_one.irp_rounds, paper.stage_one.given_irp_rounds) == (1, 1)
    paper(EXAMPLE)
    assert len(calls) == 2
    assert FaceAnalyzer(proposals="fast").stage_one.irp_rounds == 1


def test_given_boxes_on_blobs_are_faces_in_their_order(analyzer):
    image = blob_image(240, 160, [(60, 50, 18), (170, 90, 24)])
    boxes = np.array([expected_box(170, 90, 24), [100, 120, 140, 158], expected_box(60, 50, 18)])
    faces = analyzer(image, boxes=boxes)
    assert len(faces) == 3
    np.testing.assert_allclose(faces[0].box, expected_box(170, 90, 24), atol=3.0)
    np.testing.assert_allclose(faces[2].box, expected_box(60, 50, 18), atol=3.0)
    assert faces[1].score < analyzer.score_threshold < min(faces[0].score, faces[2].score)
    with pytest.raises(ValueError, match="box 1"):
        analyzer(image, boxes=[[0, 0, 10, 10], [5, 5, 5, 9]])
    with pytest.raises(ValueError, match=r"\(K, 4\)"):
        analyzer(image, boxes=[[0, 0, 10]])
    with pytest.raises(ValueError, match="2 box arrays for 1 images"):
        analyzer.batch([image], boxes=[boxes, boxes])


def test_an_empty_batch_is_an_empty_list(analyzer):
    assert analyzer.batch([]) == [] and analyzer.batch([], boxes=[]) == []
    assert set(analyzer.last_timings) == {"load", "candidates", "network", "irp", "lnms", "stage_two"}


def test_opencv_arrays_are_read_as_bgr_when_told(bundled_analyzer):
    bgr = cv2.imread(EXAMPLE)
    (want,) = bundled_analyzer(EXAMPLE)
    (got,) = FaceAnalyzer(color_order="bgr")(bgr)
    np.testing.assert_allclose(got.box, want.box, atol=1e-3)
    np.testing.assert_allclose(got.landmarks, want.landmarks, atol=1e-3)
    assert got.gender == want.gender and got.gender_probability == pytest.approx(want.gender_probability, abs=1e-3)
    (per_call,) = bundled_analyzer.batch([bgr], color_order="bgr")[0]
    np.testing.assert_allclose(per_call.box, want.box, atol=1e-3)
    (swapped,) = bundled_analyzer(bgr)  # the same array read as RGB: another face (red and blue swapped)
    assert np.abs(swapped.box - want.box).max() > 0.5
    # paths carry their own order: a BGR analyzer reads files the same
    np.testing.assert_allclose(FaceAnalyzer(color_order="bgr")(EXAMPLE)[0].box, want.box, atol=1e-3)
    with pytest.raises(ValueError, match="color_order"):
        FaceAnalyzer(color_order="hsv")


def test_every_array_pillow_would_take_gives_the_same_faces(bundled_analyzer):
    rgb = load_image(EXAMPLE)
    want = bundled_analyzer(rgb)
    assert len(want) == 1
    for array in (rgb.astype(np.uint16) * 257,  # 16 bits
                  rgb.astype(np.float32) / 255,  # 0..1
                  rgb.astype(np.float64),  # 0..255
                  rgb.astype(np.int32),
                  np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])):  # opaque RGBA
        assert_same_faces(bundled_analyzer(array), want)
    grey = rgb[:, :, 1]
    want_grey = bundled_analyzer(grey)
    assert len(want_grey) >= 1
    for array in (grey[:, :, None], np.dstack([grey, np.full_like(grey, 255)]),  # H x W x 1, grey + alpha
                  grey.astype(np.uint16) * 257, grey.astype(np.float32) / 255):
        assert_same_faces(bundled_analyzer(array), want_grey)


def test_an_analyzer_pickles_by_its_settings(bundled_analyzer, proposal_weights, tmp_path):
    analyzer = FaceAnalyzer(proposals="fast", proposal_options={"min_face": 30}, score_threshold=0.55,
                            color_order="bgr", threads=1)
    copy = pickle.loads(pickle.dumps(analyzer))
    assert copy is not analyzer and isinstance(copy, FaceAnalyzer)
    assert (copy.score_threshold, copy.color_order, copy.options, copy.proposals.min_face) == (0.55, "bgr",
                                                                                                analyzer.options, 30.0)
    bgr = cv2.imread(EXAMPLE)
    assert len(analyzer(bgr)) >= 1
    assert_same_faces(copy(bgr), analyzer(bgr))
    with pytest.raises(TypeError, match=r"built from objects \(weights, proposals\)"):
        pickle.dumps(FaceAnalyzer(BlobNet(), proposals=FastProposals(proposal_weights, refine=None)))
