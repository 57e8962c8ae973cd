"""Stage two: aligned crops in, answers mapped back to the image; options, backends and the analyzer."""

import numpy as np
import pytest
import torch

from hyperface.alignment import DEFAULT_TEMPLATE, align, five_points
from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path
from hyperface.inference.stage_two import StageTwo
from hyperface.models import create_model
from hyperface.points import get_point_set
from hyperface.runtime import RuntimeOptions, load_runtime


def stage_two(model, backend: str = "torch", **options) -> StageTwo:
    """Stage two around ``model`` run by ``backend``."""
    return StageTwo(load_runtime(model, RuntimeOptions(backend)), **options)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = create_model("hyperface-aligned", tasks=("landmarks", "pose", "gender"), num_points=68)
    for p in m.parameters():  # non-trivial outputs from a random network
        p.data.add_(0.01 * torch.randn_like(p))
    return m.eval()


def _symmetric_shape() -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = rng.uniform(-0.4, 0.4, size=(68, 2))
    mirrored = get_point_set("ibug68").flip_values(shape.T).T * [-1, 1]
    return (shape + mirrored) / 2


def _face(turn_degrees: float) -> np.ndarray:
    """68 'points' whose five alignment points are the template turned and placed in a 400 px image."""
    c, s = np.cos(np.radians(turn_degrees)), np.sin(np.radians(turn_degrees))
    pts = np.zeros((68, 2))
    five = np.asarray(DEFAULT_TEMPLATE) * 160 @ np.array([[c, -s], [s, c]]).T + [200.0, 210.0]
    pts[36:42], pts[42:48], pts[30], pts[48], pts[54] = five[0], five[1], five[2], five[3], five[4]
    return pts


def _fake(stage, outputs):
    calls = []

    def network(crops):
        calls.append(crops.shape)
        return {k: np.repeat(np.asarray(v, dtype=np.float64)[None], len(crops), axis=0) for k, v in outputs.items()}

    stage._network = network
    return calls


def _fake_main(stage, outputs):
    """Fake the network of ``stage`` (a :class:`StageTwo`): its main network's answers."""
    return _fake(stage.main, outputs)


def test_answers_are_mapped_back_through_the_alignment(model):
    stage = stage_two(model, pose_from="branch")
    shape = _symmetric_shape()
    _fake_main(stage, {"landmarks": shape, "pose": [0.0, 0.0, 0.0], "gender": [0.2, 0.8]})
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    pts = _face(-30.0)  # a face turned 30 degrees counter-clockwise on screen
    out = stage([image], pts[None], "ibug68", np.array([0]))
    al = stage.main.align(five_points(pts, "ibug68")[None])[0]
    np.testing.assert_allclose(out.landmarks[0], al.to_image(shape), atol=1e-9)
    assert al.angle == pytest.approx(30.0, abs=1e-6)
    np.testing.assert_allclose(out.pose[0], [-30.0, 0.0, 0.0], atol=1e-6)  # the face's roll comes back
    np.testing.assert_allclose(out.gender[0], [0.2, 0.8])


def test_flip_average_cancels_a_left_right_bias(model):
    shape = _symmetric_shape()
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    pts = _face(0.0)
    plain, averaged = stage_two(model, pose_from="branch"), stage_two(model, flip_average=True, pose_from="branch")
    for stage in (plain, averaged):
        _fake_main(stage, {"landmarks": shape + [0.02, 0.0], "pose": [4.0, 0.0, 6.0]})
    al = plain.main.align(five_points(pts, "ibug68")[None])[0]
    biased = plain([image], pts[None], "ibug68", np.array([0]))
    fixed = averaged([image], pts[None], "ibug68", np.array([0]))
    np.testing.assert_allclose(biased.landmarks[0], al.to_image(shape + [0.02, 0.0]), atol=1e-9)
    np.testing.assert_allclose(fixed.landmarks[0], al.to_image(shape), atol=1e-9)
    np.testing.assert_allclose(fixed.pose[0][[0, 2]], [0.0, 0.0], atol=1e-9)  # roll and yaw bias cancel


def test_iterations_realign_on_the_refined_points(model):
    stage = stage_two(model, iterations=3)
    calls = _fake_main(stage, {"landmarks": _symmetric_shape()})
    images = [np.zeros((400, 400, 3), np.uint8)] * 2
    out = stage(images, np.stack([_face(0.0), _face(20.0)]), "ibug68", np.array([0, 1]))
    assert len(calls) == 3 and calls[0][0] == 2
    assert out.landmarks.shape == (2, 68, 2)
    with pytest.raises(ValueError, match="iterations"):
        stage_two(model, iterations=0)


def test_the_fine_network_reads_each_face_aligned_by_stage_twos_points(model):
    torch.manual_seed(1)
    fine_model = create_model("hyperface-aligned", tasks=("landmarks",), num_points=68).eval()
    stage = stage_two(model, fine=load_runtime(fine_model, RuntimeOptions("torch")))
    coarse, fine = _symmetric_shape(), _symmetric_shape() * 0.9 + [0.0, 0.01]
    main_calls = _fake_main(stage, {"landmarks": coarse, "pose": [0.0, 0.0, 0.0], "gender": [0.5, 0.5]})
    fine_calls = _fake(stage.fine, {"landmarks": fine})
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    pts = _face(12.0)
    out = stage([image], pts[None], "ibug68", np.array([0]))
    assert len(main_calls) == len(fine_calls) == 1
    first = stage.main.align(five_points(pts, "ibug68")[None])[0]
    second = stage.fine.align(five_points(first.to_image(coarse), "ibug68")[None])[0]
    np.testing.assert_allclose(out.landmarks[0], second.to_image(fine), atol=1e-9)
    assert not np.allclose(out.landmarks[0], first.to_image(coarse), atol=0.5)
    assert out.gender is not None and out.pose.shape == (1, 3)  # the other answers stay stage two's
    five = create_model("hyperface-aligned", tasks=("landmarks",), num_points=5, point_set="five").eval()
    with pytest.raises(ValueError, match="fine landmark network"):
        stage_two(model, fine=load_runtime(five, RuntimeOptions("torch")))


def test_no_faces_give_empty_answers_and_leave_the_batch_alone(model):
    from hyperface.inference.batch import Batch

    stage = stage_two(model)
    out = stage([np.zeros((40, 40, 3), np.uint8)], np.zeros((0, 68, 2)), "ibug68", np.zeros(0, np.int64))
    assert out.landmarks.shape == (0, 68, 2) and out.pose.shape == (0, 3) and out.gender.shape == (0, 2)
    assert out.visibility is None  # a task this network lacks
    batch = Batch([np.zeros((40, 40, 3), np.uint8)], [(1.0, 1.0)], [None], [False])
    assert stage.apply(batch) is batch and batch.faces is None and set(batch.sources.values()) == {"stage1"}


def test_stage_two_refuses_a_stage_one_network():
    with pytest.raises(ValueError, match="hyperface-aligned"):
        stage_two(create_model("hyperface-compact", num_points=68))


def test_onnx_and_torch_give_the_same_answers(model):
    pytest.importorskip("onnxruntime")
    from hyperface.data.images import load_image

    image = load_image(asset_path(EXAMPLE_IMAGE))
    pts = _face(10.0) + [40.0, 20.0]
    a = stage_two(model, "torch", flip_average=True)([image], pts[None], "ibug68", np.array([0]))
    b = stage_two(model, "onnx", flip_average=True)([image], pts[None], "ibug68", np.array([0]))
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.02)
    np.testing.assert_allclose(a.pose, b.pose, atol=0.02)
    np.testing.assert_allclose(a.gender, b.gender, atol=1e-4)


def test_the_analyzer_reports_which_stage_answered(model):
    from hyperface import FaceAnalyzer

    path = str(asset_path(EXAMPLE_IMAGE))
    one = FaceAnalyzer(stage_two=None)
    two = FaceAnalyzer(stage_two=model)
    first, second = one(path), two(path)
    assert len(first) == len(second) >= 1
    assert first[0].sources["landmarks"] == "stage1" and second[0].sources["landmarks"] == "stage2"
    assert second[0].sources["box"] == "stage1" and second[0].to_dict()["sources"]["gender"] == "stage2"
    np.testing.assert_allclose(first[0].box, second[0].box)
    # stage two on stage one's landmarks, called directly, gives the analyzer's answer
    from hyperface.data.images import load_image

    direct = two.stage_two([load_image(path)], first[0].landmarks[None], "ibug68", np.array([0]))
    np.testing.assert_allclose(second[0].landmarks, direct.landmarks[0], atol=1e-3)
    # a fine landmark network needs stage two; "auto" takes none with a stage two of the caller's
    assert two.stage_two.fine is None
    with pytest.raises(ValueError, match="needs stage two"):
        FaceAnalyzer(stage_two=None, fine=model)
    # "auto" follows the pipeline whose stage two runs: the bundled stage two brings the bundled fine network
    assert FaceAnalyzer(stage_two="bundled").stage_two.fine is not None
    assert FaceAnalyzer(stage_two=None).stage_two is None  # and no stage two, no fine network
    given = two(path, boxes=[first[0].box])  # faces in given boxes go through stage two too
    assert given[0].sources["landmarks"] == "stage2"


def test_pose_from_the_refined_landmarks(model, shared_data):
    from itertools import islice

    from hyperface.data.images import load_image
    from hyperface.data.readers import open_dataset
    from hyperface.pose import pose_from_landmarks

    record = next(islice(open_dataset(f"pts:{shared_data / '300w/lfpw/trainset'}"), 2, None))
    image, truth = load_image(record.image), record.faces[0].landmarks
    al = align(five_points(truth, "ibug68"), 96)
    stages = {how: stage_two(model, pose_from=how) for how in ("branch", "landmarks", "mean")}
    for stage in stages.values():  # a network that answers the true points and a fixed pose
        _fake_main(stage, {"landmarks": al.to_relative(truth), "pose": [0.0, 10.0, 20.0]})
    out = {how: s([image], truth[None], "ibug68", np.array([0])) for how, s in stages.items()}
    size = (image.shape[1], image.shape[0])
    np.testing.assert_allclose(out["landmarks"].pose[0], pose_from_landmarks(truth, size), atol=1e-3)
    np.testing.assert_allclose(out["mean"].pose[0], (out["landmarks"].pose[0] + out["branch"].pose[0]) / 2)
    with pytest.raises(ValueError, match="pose_from"):
        stage_two(model, pose_from="guess")
    assert stage_two(model).pose_from == "landmarks"  # auto: the PnP of 68 points, measured the better


def test_collapsed_points_take_the_pose_branch_instead_of_failing_the_image(model):
    """SQPnP refuses points that nearly coincide (a face of a few pixels in a crowd photo): that face takes
    the branch's pose, the other faces keep theirs, and nothing raises."""
    image = np.full((400, 400, 3), 120, np.uint8)
    faces = np.stack([_face(0.0), _face(30.0)])
    branch, pnp = stage_two(model, pose_from="branch"), stage_two(model, pose_from="landmarks")
    for stage in (branch, pnp):  # every answered point at the crop's centre: collapsed landmarks
        _fake_main(stage, {"landmarks": np.zeros((68, 2)), "pose": [0.0, 10.0, 20.0]})
    want = branch([image], faces, "ibug68", np.array([0, 0])).pose
    got = pnp([image], faces, "ibug68", np.array([0, 0])).pose
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_model_specs_name_both_stages():
    from hyperface.inference.assets import parse_model_spec

    assert parse_model_spec("bundled") == (None, "auto")
    assert parse_model_spec("a.safetensors") == ("a.safetensors", None)
    assert parse_model_spec("a.safetensors+b.safetensors") == ("a.safetensors", "b.safetensors")
    for bad in ("+b.safetensors", "a.safetensors+"):
        with pytest.raises(ValueError, match="STAGE1"):
            parse_model_spec(bad)
