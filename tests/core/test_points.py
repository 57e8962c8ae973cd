import numpy as np
import pytest

from hyperface.points import POINT_SETS, convert_matrix, convert_points, get_point_set


@pytest.mark.parametrize("name", sorted(POINT_SETS))
def test_flip_twice_is_identity(name):
    ps = get_point_set(name)
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, size=(ps.num_points, 2))
    np.testing.assert_allclose(ps.flip(ps.flip(pts, 100), 100), pts)


def test_ibug68_flip_swaps_eye_corners_and_keeps_nose_tip():
    ps = get_point_set("ibug68")
    pts = np.zeros((68, 2))
    pts[36] = (10, 50)  # outer corner, image left
    pts[45] = (90, 50)  # outer corner, image right
    pts[30] = (40, 60)
    flipped = ps.flip(pts, image_width=101)
    # After mirroring, the point on the image left is again index 36, at the mirrored position of 45.
    np.testing.assert_allclose(flipped[36], (10, 50))
    np.testing.assert_allclose(flipped[45], (90, 50))
    np.testing.assert_allclose(flipped[30], (60, 60))


def test_aflw21_flip_pairs_follow_the_documentation():
    perm = np.asarray(get_point_set("aflw21").flip_permutation) + 1  # 1-based
    expected = {1: 6, 2: 5, 3: 4, 7: 12, 8: 11, 9: 10, 13: 17, 14: 16, 18: 20, 15: 15, 19: 19, 21: 21}
    for a, b in expected.items():
        assert perm[a - 1] == b and perm[b - 1] == a


def test_68_to_5_uses_eye_means_nose_and_mouth_corners():
    pts = np.arange(136, dtype=float).reshape(68, 2)
    five, vis = convert_points(pts, None, "ibug68", "five")
    np.testing.assert_allclose(five[0], pts[36:42].mean(0))
    np.testing.assert_allclose(five[1], pts[42:48].mean(0))
    np.testing.assert_allclose(five[2:], pts[[30, 48, 54]])
    assert vis.all()


def test_68_to_21_marks_ears_unavailable_and_propagates_visibility():
    pts = np.random.default_rng(1).uniform(0, 50, size=(68, 2))
    vis68 = np.ones(68, bool)
    vis68[38] = False  # part of the left eye
    p21, v21 = convert_points(pts, vis68, "ibug68", "aflw21")
    names = get_point_set("aflw21").names
    for ear in ("LeftEar", "RightEar"):
        i = names.index(ear)
        assert np.isnan(p21[i]).all() and not v21[i]
    assert not v21[names.index("LeftEyeCenter")]  # mean over 36-41 includes the hidden point
    assert v21[names.index("LeftEyeLeftCorner")]
    np.testing.assert_allclose(p21[names.index("ChinCenter")], pts[8])
    np.testing.assert_allclose(p21[names.index("MouthCenter")], pts[[62, 66]].mean(0))


def test_conversion_commutes_with_flip():
    """Converting then flipping equals flipping then converting: the permutations agree."""
    rng = np.random.default_rng(2)
    pts = rng.uniform(0, 200, size=(68, 2))
    for target in ("five", "aflw21"):
        tgt = get_point_set(target)
        a, va = convert_points(get_point_set("ibug68").flip(pts, 200), None, "ibug68", target)
        b, vb = convert_points(pts, None, "ibug68", target)
        b = tgt.flip(b, 200)
        np.testing.assert_allclose(a[va], b[tgt.flip_values(vb)])


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="known"):
        get_point_set("dlib194")
    with pytest.raises(ValueError, match="no conversion"):
        convert_matrix("five", "ibug68")


def test_nme_has_one_implementation_on_the_point_set():
    """The normalising pair is a fact of the point set; training (torch) and evaluation (numpy)
    compute the same NME through it."""
    import torch

    from hyperface.evaluate.metrics import nme_5, nme_68
    from hyperface.points import mean_point_error
    from hyperface.train.engine import landmark_nme

    assert get_point_set("ibug68").normalising_pair == (36, 45)
    assert get_point_set("five").normalising_pair == (0, 1)
    assert get_point_set("aflw21").normalising_pair is None  # measured after conversion to five points
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.2, 0.8, size=(68, 2))
    pred = truth + rng.normal(0, 0.01, size=(68, 2))
    mask = np.ones(68, dtype=bool)
    mask[:5] = False
    truth_nan = truth.copy()
    truth_nan[:5] = np.nan  # evaluation's missing points
    assert mean_point_error(pred, truth_nan, mask) == pytest.approx(
        np.linalg.norm(pred[5:] - truth[5:], axis=1).mean(), rel=1e-12)
    t = {"landmarks": torch.tensor(truth[None]), "landmarks_mask": torch.tensor(mask[None])}
    nme, valid = landmark_nme(torch.tensor(pred[None]), t, "ibug68")["ibug68"]
    assert bool(valid[0]) and float(nme[0]) == pytest.approx(nme_68(pred, truth_nan), rel=1e-6)
    t5 = {"landmarks": torch.tensor(truth[None, :5]), "landmarks_mask": torch.ones(1, 5, dtype=torch.bool)}
    nme5, _ = landmark_nme(torch.tensor(pred[None, :5]), t5, "five")["five"]
    assert float(nme5[0]) == pytest.approx(nme_5(pred[:5], truth[:5]), rel=1e-6)


def test_the_five_point_box_factor_is_named_once():
    from hyperface.data.boxes import five_point_box
    from hyperface.inference.boxfit import fit_boxes
    from hyperface.points import FIVE_POINT_BOX_FACTOR

    pts = np.array([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]])
    box = five_point_box(pts)
    d_em = np.linalg.norm(pts[:2].mean(0) - pts[3:].mean(0))
    assert box[2] - box[0] == pytest.approx(2 * FIVE_POINT_BOX_FACTOR * max(40.0, d_em))
    np.testing.assert_allclose(fit_boxes(pts[None], "five")[0], box, rtol=1e-6)


def test_to_five_gives_a_faces_five_points_or_nan_where_they_cannot_be_had():
    from hyperface.points import convert_points, to_five

    rng = np.random.default_rng(0)
    marks = rng.uniform(0, 100, (68, 2))
    np.testing.assert_allclose(to_five(marks, "ibug68"), convert_points(marks, None, "ibug68", "five")[0])
    five = rng.uniform(0, 100, (5, 2))
    np.testing.assert_allclose(to_five(five, "five"), five)
    assert np.isnan(to_five(None, "ibug68")).all() and np.isnan(to_five(marks, None)).all()
    assert np.isnan(to_five(marks, "no-such-set")).all()
    marks[36] = np.nan  # an outer eye corner: the eye centre made from it is missing, not a wrong number
    got = to_five(marks, "ibug68")
    assert np.isnan(got).any() and np.isfinite(got[2:]).all()


def test_ibug68_parts_cover_every_point_once_and_mirror_onto_themselves():
    ps = get_point_set("ibug68")
    indices = [i for _, idx in ps.parts for i in idx]
    assert sorted(indices) == list(range(68))
    for name, idx in ps.parts:  # a mirrored face's jaw is still its jaw
        assert sorted(ps.flip_permutation[i] for i in idx) == sorted(idx), name
    from hyperface.points import PointSet

    with pytest.raises(ValueError, match="outside 0..1"):
        PointSet("two", ("a", "b"), (1, 0), parts=(("all", (0, 1, 2)),))
