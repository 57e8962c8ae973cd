"""Occluders hide the points they cover and only those; degradations hide nothing; the training
augmentation turns hidden points into visibility labels; the options are checked and previewed."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from train_helpers import template68

from hyperface.alignment import MEAN_SHAPE68, five_points
from hyperface.data.preview import draw_tile
from hyperface.data.shards import relative_to_crop
from hyperface.points import convert_matrix
from hyperface.train.augment import augment_kwargs, augment_sample
from hyperface.train.config import AugmentConfig, ConfigError, augment_config, load_config
from hyperface.train.occlusion import (
    OCCLUDERS,
    OCCLUSIONS,
    PHOTOMETRIC,
    apply_occlusions,
    draw_hand,
    draw_mask,
    draw_sunglasses,
    face_shape68,
)

SIZE = 64
MOUTH, EYES, BROWS, NOSE_BASE = slice(48, 68), slice(36, 48), slice(17, 27), slice(31, 36)


def face_crop(size: int = SIZE, side: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured face on grey with its 68 points (pixels), the face box ``side`` of the crop."""
    pts = template68() * side * size + (size - 1) / 2
    img = np.full((size, size, 3), 110, np.uint8)
    c = (size - 1) / 2
    cv2.ellipse(img, (round(c), round(c)), (round(0.47 * side * size), round(0.55 * side * size)), 0, 0, 360,
                (205, 160, 130), -1)
    for group in (slice(36, 42), slice(42, 48), slice(48, 60)):
        cv2.polylines(img, [pts[group].round().astype(np.int32)], True, (40, 25, 20), 1)
    return img, pts


def _pixel(img: np.ndarray, point: np.ndarray) -> np.ndarray:
    x, y = np.round(point).astype(int)
    return img[y, x].astype(int)


@pytest.mark.parametrize("seed", range(6))
def test_mask_hides_nose_base_mouth_and_jaw_not_eyes(seed):
    img, pts = face_crop()
    out, hidden = draw_mask(img, pts, "ibug68", np.random.default_rng(seed))
    assert hidden.shape == (68,) and hidden.dtype == bool
    assert hidden[MOUTH].all() and hidden[NOSE_BASE].all() and hidden[3:14].all()
    assert not hidden[EYES].any() and not hidden[BROWS].any() and not hidden[[0, 16, 27]].any()
    mouth, eye = pts[MOUTH].mean(axis=0), pts[EYES].mean(axis=0)
    assert np.abs(_pixel(out, mouth) - _pixel(img, mouth)).sum() > 20  # painted over
    np.testing.assert_array_equal(out[: round(pts[27, 1])], img[: round(pts[27, 1])])  # nothing above the nose
    assert img.shape == out.shape and out.dtype == np.uint8


@pytest.mark.parametrize("seed", range(6))
def test_sunglasses_hide_eyes_not_mouth(seed):
    img, pts = face_crop()
    out, hidden = draw_sunglasses(img, pts, "ibug68", np.random.default_rng(seed))
    assert hidden[EYES].all()
    assert not hidden[MOUTH].any() and not hidden[NOSE_BASE].any() and not hidden[:17].any()
    for c in (pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)):
        assert _pixel(out, c).max() < 110  # dark lenses
    np.testing.assert_array_equal(out[round(pts[33, 1]):], img[round(pts[33, 1]):])  # nothing below the nose


def test_face_shape68_fits_the_mean_shape_to_five_and_21_points():
    mean = np.asarray(MEAN_SHAPE68)
    angle = np.radians(12)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    face = mean @ rot.T * 50 + [30, 34]
    np.testing.assert_allclose(face_shape68(five_points(face, "ibug68"), "five"), face, atol=1e-6)
    w, available = convert_matrix("ibug68", "aflw21")
    pts21 = w @ face
    pts21[~available] = np.nan  # the ears: unlabelled
    pts21[3] = np.nan
    np.testing.assert_allclose(face_shape68(pts21, "aflw21"), face, atol=1e-6)
    # A 68-point face keeps its own points; unlabelled ones are filled in from the fitted mean.
    partial = face.copy()
    partial[5] = np.nan
    np.testing.assert_allclose(face_shape68(partial, "ibug68"), face, atol=1e-6)
    assert face_shape68(None, "five") is None
    assert face_shape68(np.full((5, 2), np.nan), "five") is None
    with pytest.raises(ValueError, match="point set 'five'"):
        face_shape68(face, "five")


def test_occluders_from_five_and_21_points():
    img, pts = face_crop()
    pts5 = five_points(pts, "ibug68")
    _, hidden = draw_mask(img, pts5, "five", np.random.default_rng(0))
    assert hidden.tolist() == [False, False, True, True, True]
    _, hidden = draw_sunglasses(img, pts5, "five", np.random.default_rng(0))
    assert hidden.tolist() == [True, True, False, False, False]
    w, available = convert_matrix("ibug68", "aflw21")
    pts21 = w @ pts
    pts21[~available] = np.nan
    _, hidden = draw_mask(img, pts21, "aflw21", np.random.default_rng(1))
    assert np.flatnonzero(hidden).tolist() == [13, 14, 15, 17, 18, 19, 20]  # nose, mouth, chin
    _, hidden = draw_sunglasses(img, pts21, "aflw21", np.random.default_rng(1))
    assert np.flatnonzero(hidden).tolist() == [6, 7, 8, 9, 10, 11]  # the eyes


def test_unlabelled_points_are_never_hidden_and_no_points_no_face_occluder():
    img, pts = face_crop()
    pts[MOUTH] = np.nan
    _, hidden = draw_mask(img, pts, "ibug68", np.random.default_rng(0))
    assert not hidden[MOUTH].any() and hidden[NOSE_BASE].all()
    for fn in (draw_mask, draw_sunglasses):
        out, hidden = fn(img, None, None, np.random.default_rng(0))
        np.testing.assert_array_equal(out, img)
        assert hidden.shape == (0,)
    out, hidden = draw_hand(img, None, None, np.random.default_rng(0))  # a hand needs no face
    assert hidden.shape == (0,) and np.abs(out.astype(int) - img).sum() > 0


def test_hand_hides_what_it_covers():
    img, pts = face_crop()
    covered = 0
    for seed in range(12):
        out, hidden = draw_hand(img, pts, "ibug68", np.random.default_rng(seed))
        covered += hidden.any()
        changed = np.abs(out.astype(int) - img).sum(axis=2) > 0
        for p, h in zip(pts, hidden):
            if h:  # a hidden point sits on changed pixels
                x, y = np.round(p).astype(int)
                assert changed[y, x]
    assert covered >= 6


@pytest.mark.parametrize("name", list(OCCLUSIONS))
def test_same_seed_same_picture(name):
    img, pts = face_crop()
    fn = OCCLUSIONS[name]
    a, ha = fn(img, pts, "ibug68", np.random.default_rng(5))
    b, hb = fn(img, pts, "ibug68", np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ha, hb)
    if name != "greyscale":  # the only one without a random draw
        c, _ = fn(img, pts, "ibug68", np.random.default_rng(6))
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", list(PHOTOMETRIC))
def test_photometric_changes_pixels_and_hides_nothing(name):
    img, pts = face_crop()
    img = cv2.add(img, np.random.default_rng(0).integers(0, 30, img.shape, dtype=np.uint8))  # texture to blur
    out, hidden = PHOTOMETRIC[name](img, pts, "ibug68", np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() > 1.0
    assert hidden.shape == (68,) and not hidden.any()
    assert PHOTOMETRIC[name](img, None, None, np.random.default_rng(1))[1].shape == (0,)
    if name == "greyscale":
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    if name == "low_light":
        assert out.mean() < 0.8 * img.mean()


def test_apply_occlusions_off_draws_nothing_and_bad_options_fail():
    img, pts = face_crop()
    rng = np.random.default_rng(3)
    out, hidden, painted = apply_occlusions(img, pts, "ibug68", rng, {k: 0.0 for k in OCCLUSIONS})
    np.testing.assert_array_equal(out, img)
    assert not hidden.any() and not painted
    assert rng.random() == np.random.default_rng(3).random()  # no random number used
    out, hidden, painted = apply_occlusions(img, pts, "ibug68", np.random.default_rng(0), {"mask": 1.0, "blur": 1.0})
    assert painted and hidden[MOUTH].all() and not hidden[EYES].any()
    _, _, painted = apply_occlusions(img, pts, "ibug68", np.random.default_rng(0), {"noise": 1.0})
    assert not painted
    with pytest.raises(ValueError, match="unknown occlusion option"):
        apply_occlusions(img, pts, "ibug68", rng, {"scarf": 1.0})
    with pytest.raises(ValueError, match="'mask' is a probability"):
        apply_occlusions(img, pts, "ibug68", rng, {"mask": 2.0})
    with pytest.raises(ValueError, match="uint8 H x W x 3"):
        apply_occlusions(img[..., 0], pts, "ibug68", rng, {"mask": 1.0})


# -- in the training augmentation --------------------------------------------------------------------

CONTEXT, CROP = 1.25, 80


def landmark_sample(n_labelled: int = 68) -> dict:
    """A stored crop (context 1.25) of the drawn face, its candidate-relative points and labels."""
    box = CROP / CONTEXT
    img, _ = face_crop(CROP, side=0.8 * box / CROP)
    rel = template68() * 0.8
    mask = np.arange(68) < n_labelled
    return {"image": img, "landmarks": rel.astype(np.float32), "landmarks_mask": mask,
            "visibility": np.zeros(68, np.float32), "visibility_mask": np.zeros(68, bool),
            "landmarks5": five_points(rel, "ibug68").astype(np.float32), "landmarks5_mask": np.ones(5, bool),
            "detection": np.int64(1), "detection_mask": np.bool_(True)}


def test_relative_points_meet_the_painted_face():
    """The crop helper and the sample agree: the template's pixels hold the drawn mouth line."""
    s = landmark_sample()
    px = relative_to_crop(s["landmarks"], CONTEXT, CROP)
    assert _pixel(s["image"], px[48]).max() < 60  # the mouth corner is drawn dark


def test_augment_sample_with_mask_labels_visibility():
    sample = landmark_sample(n_labelled=60)  # the inner lip unlabelled
    kwargs = dict(context=CONTEXT, out_size=48, point_set="ibug68", scale=0.05, shift=0.03)
    out = augment_sample(sample, np.random.default_rng(0), occlusion={"mask": 1.0}, **kwargs)
    np.testing.assert_array_equal(out["visibility_mask"], sample["landmarks_mask"])
    vis = out["visibility"]
    assert vis.dtype == np.float32 and vis.shape == (68,)
    assert (vis[48:60] == 0).all() and (vis[36:48] == 1).all() and (vis[17:27] == 1).all()
    assert (vis[60:] == 0).all() and not out["visibility_mask"][60:].any()  # unlabelled: no label invented
    plain = augment_sample(sample, np.random.default_rng(0), **kwargs)
    np.testing.assert_array_equal(plain["landmarks"], out["landmarks"])  # same geometry, painted after
    assert not np.array_equal(plain["image"], out["image"])
    # Labels a point already had stay: an eye labelled invisible stays invisible.
    sample["visibility_mask"][36] = True
    out = augment_sample(sample, np.random.default_rng(0), occlusion={"mask": 1.0}, **kwargs)
    assert out["visibility"][36] == 0 and out["visibility"][37] == 1


def test_augment_sample_without_occluder_keeps_labels():
    sample = landmark_sample()
    kwargs = dict(context=CONTEXT, out_size=48, point_set="ibug68", flip=0.5, scale=0.05, shift=0.03, brightness=0.2)
    base = augment_sample(sample, np.random.default_rng(4), **kwargs)
    off = augment_sample(sample, np.random.default_rng(4), occlusion={k: 0.0 for k in OCCLUSIONS}, **kwargs)
    for key in base:
        np.testing.assert_array_equal(off[key], base[key], err_msg=key)
    blurred = augment_sample(sample, np.random.default_rng(4), occlusion={"blur": 1.0, "jpeg": 1.0}, **kwargs)
    assert not blurred["visibility_mask"].any()  # degradations hide nothing: no labels
    # Only five points labelled: the mask is placed by them, the own points get no labels.
    five_only = dict(sample, landmarks_mask=np.zeros(68, bool))
    out = augment_sample(five_only, np.random.default_rng(4), occlusion={"mask": 1.0}, **kwargs)
    assert not out["visibility_mask"].any() and not np.array_equal(out["image"], base["image"])
    # No landmarks at all (a non-face): a hand still goes somewhere.
    nonface = {"image": sample["image"], "detection": np.int64(0)}
    out = augment_sample(nonface, np.random.default_rng(4), occlusion={"hand": 1.0, "mask": 1.0}, **kwargs)
    assert "visibility" not in out and not np.array_equal(out["image"], base["image"])


# -- config and preview -----------------------------------------------------------------------------

def test_config_keys_default_off_and_are_checked(tmp_path):
    cfg = AugmentConfig()
    assert all(getattr(cfg, k) == 0.0 for k in OCCLUSIONS)
    assert augment_kwargs(cfg)["occlusion"] == {k: 0.0 for k in OCCLUSIONS}
    assert augment_kwargs(None) == {}
    path = tmp_path / "c.yaml"
    path.write_text("data: {train: [a]}\n")
    assert load_config(path, ["augment.sunglasses=0.3"]).augment.sunglasses == 0.3
    with pytest.raises(ConfigError, match=r"augment\.mask is a probability in \[0, 1\], got 1\.5"):
        load_config(path, ["augment.mask=1.5"])
    with pytest.raises(ConfigError, match=r"augment\.jpeg is a probability"):
        load_config(path, ["augment.jpeg=-0.1"])
    with pytest.raises(ConfigError, match="augment.noise: expected a number"):
        load_config(path, ["augment.noise=lots"])
    a = augment_config({"mask": 1.0})
    assert a.mask == 1.0 and a.flip == 0.0 and a.scale == 0.0  # everything else off
    with pytest.raises(ConfigError, match="--augment: unknown key 'augment.masks'"):
        augment_config({"masks": 1.0}, "--augment")
    with pytest.raises(ConfigError, match="augment.blur is a probability"):
        AugmentConfig(blur=3.0).validate()


def test_draw_tile_draws_hidden_points_red():
    sample = landmark_sample()
    sample["visibility_mask"][:] = True
    sample["visibility"][:] = 1.0
    sample["visibility"][48:68] = 0.0
    sample.update(gender=np.int64(0), gender_mask=np.bool_(False), pose=np.zeros(3, np.float32),
                  pose_mask=np.bool_(False))
    tile = draw_tile(sample, {"iou": 1.0, "pose_source": ""}, CONTEXT, 160)[:160]
    red = (tile[..., 0] > 200) & (tile[..., 1] < 80) & (tile[..., 2] < 80)
    green = (tile[..., 1] > 180) & (tile[..., 0] < 80)
    px = (relative_to_crop(sample["landmarks"], CONTEXT, CROP) + 0.5) * 160 / CROP - 0.5
    ys, xs = np.nonzero(red[4:-4, 4:-4])  # inside the frame
    assert len(xs) > 20
    assert ys.min() + 4 >= px[48:68, 1].min() - 2  # red only at the mouth
    assert green[round(px[36, 1]), round(px[36, 0])]


class _Prepared:
    """Stands in for a prepared folder (PreparedDataset's interface) with three drawn faces."""

    crop_size, context, point_set = CROP, CONTEXT, "ibug68"

    def __init__(self, roots, split=None) -> None:
        base = landmark_sample()
        base.update(gender=np.int64(0), gender_mask=np.bool_(False), pose=np.zeros(3, np.float32),
                    pose_mask=np.bool_(False))
        self.samples = [dict(base, image=np.roll(base["image"], k, axis=1)) for k in range(3)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return dict(self.samples[i])

    def info(self, i: int) -> dict:
        return {"iou": 1.0, "pose_source": ""}

    def labels(self) -> np.ndarray:
        rows = np.zeros(len(self), dtype=[("detection", "<i8"), ("detection_mask", "?"), ("landmarks_mask", "?", (68,))])
        rows["detection"], rows["detection_mask"], rows["landmarks_mask"][1] = 1, True, True
        return rows


def test_preview_cli_draws_augmented_samples(tmp_path, monkeypatch, capsys):
    from hyperface.cli.main import main

    monkeypatch.setattr("hyperface.data.preview.PreparedDataset", _Prepared)
    sheets = {}
    for name, extra in (("plain", []), ("mask", ["--augment", "mask=1,noise=1"])):
        sheets[name] = tmp_path / f"{name}.png"
        argv = ["prepare", "preview", "prepared", "--out", str(sheets[name]), "--split", "all", "--tile", "64"]
        assert main(argv + extra) == 0
        assert json.loads(capsys.readouterr().out)["samples"] == 3
    plain, masked = (np.asarray(Image.open(sheets[k])).astype(int) for k in ("plain", "mask"))
    assert plain.shape == masked.shape and np.abs(plain - masked).mean() > 3
    red = lambda img: ((img[..., 0] > 200) & (img[..., 1] < 80) & (img[..., 2] < 80)).sum()  # noqa: E731
    assert red(masked) > red(plain) + 20  # the hidden points
    argv = ["prepare", "preview", "prepared", "--out", str(tmp_path / "x.png"), "--split", "all"]
    assert main(argv + ["--augment", "mask=2"]) == 1
    assert "--augment" in capsys.readouterr().err
    assert main(argv + ["--augment", "mask"]) == 1
    assert "expected KEY=NUMBER" in capsys.readouterr().err
    assert main(argv + ["--only", "landmarks"]) == 0  # one sample has landmarks
    assert json.loads(capsys.readouterr().out)["samples"] == 1
    assert main(argv + ["--only", "nonface"]) == 1
    assert "no nonface samples" in capsys.readouterr().err


def test_training_set_passes_the_config_through():
    from hyperface.train.data import TrainingSet

    ds = _Prepared(None)
    cfg = AugmentConfig(flip=0.0, scale=0.0, shift=0.0, brightness=0.0, contrast=0.0, saturation=0.0)
    plain = TrainingSet([(ds, np.arange(3))], input_size=40, num_points=68, point_set="ibug68", augment=cfg)[1]
    cfg.sunglasses = 1.0
    ts = TrainingSet([(ds, np.arange(3))], input_size=40, num_points=68, point_set="ibug68", augment=cfg)
    s = ts[(0, 1)]
    assert s["visibility_mask"].all() and s["visibility"].dtype == np.float32
    assert (s["visibility"][36:48] == 0).all() and (s["visibility"][48:] == 1).all()
    assert not plain["visibility_mask"].any()
    np.testing.assert_array_equal(s["landmarks"], plain["landmarks"])
