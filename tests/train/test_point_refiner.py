"""The detector's point stage: its training crops, targets, loss, checkpoints and collected faces."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hyperface.inference.crops import sample_crops
from hyperface.boxes import scale_boxes
from hyperface.models.point_refiner import hyperface_point_refiner
from hyperface.train.checkpoint import CheckpointError
from hyperface.train.point_refiner import (
    MIRROR, STORE_SCALE, STORE_SIZE, FaceCrops, PointTrainOptions, _crop_theta, _cut, box_of_face, collect_faces, point_loss,
    random_crops, train_point_refiner, validate,
)

FIVE = np.array([[-0.2, -0.15], [0.2, -0.15], [0.0, 0.05], [-0.15, 0.25], [0.17, 0.25]], np.float32)  # box units


def dotted_face(points: np.ndarray) -> np.ndarray:
    """A stored face (96, 96, 3) with a white dot at each of ``points`` (box units)."""
    img = np.zeros((STORE_SIZE, STORE_SIZE, 3), np.uint8)
    yy, xx = np.mgrid[:STORE_SIZE, :STORE_SIZE]
    for u, v in points:
        x, y = (u / STORE_SCALE + 0.5) * STORE_SIZE - 0.5, (v / STORE_SCALE + 0.5) * STORE_SIZE - 0.5
        img[(xx - x) ** 2 + (yy - y) ** 2 <= 4.0] = 255
    return img


def _centroid(gray: np.ndarray) -> np.ndarray:
    w = np.clip(gray - 60.0, 0, None)
    yy, xx = np.mgrid[: gray.shape[0], : gray.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


def test_random_crops_move_the_targets_with_the_pixels_through_scale_shift_rotation_and_mirror():
    net = hyperface_point_refiner()
    size, context = net.config.input_size, net.config.arch_kwargs["context"]
    n = 40
    dot = np.arange(n) % 5  # face i shows point dot[i] alone
    stored = torch.from_numpy(np.stack([dotted_face(FIVE[[j]]) for j in dot])).permute(0, 3, 1, 2)
    targets = torch.from_numpy(np.stack([FIVE] * n))
    opts = PointTrainOptions(scale_jitter=0.1, shift_jitter=0.08, rotation=15.0, photometric=0.0)
    x, v = random_crops(stored, targets, net, opts, torch.Generator().manual_seed(3))
    crops = (x.mean(dim=1).numpy() + 1) * 127.5
    swapped, errors = 0, []
    for i, j in enumerate(dot):
        pixels = (v[i].numpy() / context + 0.5) * size - 0.5  # box units -> crop pixels
        if not ((pixels[[j, MIRROR[j]]] > 3) & (pixels[[j, MIRROR[j]]] < size - 4)).all():
            continue  # the box moved off the dot: no whole dot in the crop to find
        seen = _centroid(crops[i])
        own, partner = np.linalg.norm(seen - pixels[j]), np.linalg.norm(seen - pixels[MIRROR[j]])
        assert min(own, partner) < 1.0, (i, j, own, partner)  # the dot is where a target says, up to resampling
        errors.append(seen - pixels[j] if own < partner else seen - pixels[MIRROR[j]])
        swapped += int(j != MIRROR[j] and partner < own)  # mirrored: the target's left eye is the other eye
    assert 6 <= swapped <= 26  # about half of the 32 faces with a side were mirrored
    assert len(errors) >= 30 and np.abs(np.mean(errors, axis=0)).max() < 0.2  # no offset in either axis


def test_a_training_crop_without_jitter_is_the_crop_inference_cuts():
    rng = np.random.default_rng(0)
    image = cv2_blur(rng.integers(0, 255, (240, 320, 3)).astype(np.uint8), 2.0)
    box = np.array([[100.0, 60.0, 180.0, 150.0]], np.float32)
    net = hyperface_point_refiner()
    size, context = net.config.input_size, net.config.arch_kwargs["context"]
    c, wh = (box[:, :2] + box[:, 2:]) / 2, box[:, 2:] - box[:, :2]
    stored = sample_crops(image, np.concatenate([c - wh, c + wh], axis=1), STORE_SIZE)
    train = _cut(torch.from_numpy(stored).permute(0, 3, 1, 2), _crop_theta(1, context), net)
    train = ((train[0].permute(1, 2, 0).numpy() + 1) * 127.5)
    served = sample_crops(image, scale_boxes(box, context), size)[0].astype(np.float64)
    assert np.abs(train - served).mean() < 0.5 * np.abs(train - np.roll(served, 1, axis=1)).mean()  # not a pixel off
    assert np.abs(train - served).mean() < 1.5  # the same pixels up to resampling blur


def cv2_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), sigma)


def test_the_loss_is_the_nme_and_falls_when_fitting_faces():
    truth = torch.from_numpy(np.stack([FIVE] * 4))
    eyes = float(np.linalg.norm(FIVE[0] - FIVE[1]))
    assert float(point_loss(truth + torch.tensor([0.04, 0.0]), truth)) == pytest.approx(0.04 / eyes, rel=1e-5)
    rng = np.random.default_rng(1)
    shapes = FIVE[None] + rng.normal(0, 0.04, (48, 5, 2)).astype(np.float32)
    faces = FaceCrops(np.stack([dotted_face(s) for s in shapes]), shapes)
    torch.manual_seed(0)
    net = hyperface_point_refiner()
    before = validate(net, faces)
    opts = PointTrainOptions(photometric=0.0)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    stored, targets = torch.from_numpy(faces.crops).permute(0, 3, 1, 2), torch.from_numpy(faces.targets)
    for _ in range(40):
        x, v = random_crops(stored, targets, net, opts, gen)
        loss = point_loss(net(x)["landmarks"], v)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert validate(net, faces) < 0.5 * before


def test_training_checkpoints_stops_at_the_time_limit_resumes_and_writes_the_weights(tmp_path):
    faces = FaceCrops(np.stack([dotted_face(FIVE)] * 8), np.stack([FIVE] * 8))
    opts = PointTrainOptions(steps=4, batch_size=4, save_every=2)
    first = train_point_refiner(faces, faces, tmp_path, opts, time_limit=0.0, data=["stub:faces"])
    assert first == tmp_path / "last.safetensors" and not (tmp_path / "hyperface-point-refiner.safetensors").exists()
    done = train_point_refiner(faces, faces, tmp_path, opts, resume=True, data=["stub:faces"])
    assert done == tmp_path / "hyperface-point-refiner.safetensors"
    from hyperface.models.weights import load_model

    model = load_model(done)
    assert model.config.arch == "hyperface-point-refiner" and model.config.meta["training"]["steps"] == 4
    straight = train_point_refiner(faces, faces, tmp_path / "straight", opts, data=["stub:faces"])  # no stop
    assert torch.equal(load_model(straight).points.weight, model.points.weight)
    longer = PointTrainOptions(steps=6, batch_size=4, save_every=2)
    with pytest.raises(CheckpointError, match="steps 4, now 6"):  # a resume is the same run, or an error
        train_point_refiner(faces, faces, tmp_path / "straight", longer, resume=True, data=["stub:faces"])


def test_init_starts_from_a_trained_file_and_a_resume_checks_it(tmp_path):
    from hyperface.models.weights import load_model

    faces = FaceCrops(np.stack([dotted_face(FIVE)] * 8), np.stack([FIVE] * 8))
    trained = load_model(train_point_refiner(faces, faces, tmp_path / "a", PointTrainOptions(steps=6, batch_size=4),
                                             data=["stub:faces"])).points.weight
    # one step at a learning rate too small to move a weight: the file's weights, not fresh ones
    opts = PointTrainOptions(steps=1, batch_size=4, lr=1e-9, init=str(tmp_path / "a" / "hyperface-point-refiner.safetensors"))
    started_model = load_model(train_point_refiner(faces, faces, tmp_path / "b", opts, data=["stub:faces"]))
    started = started_model.points.weight
    # its record says where it started: the file, and what that file had been trained on
    assert started_model.config.meta["training"]["init"] == {
        "file": "hyperface-point-refiner.safetensors", "training": {"steps": 6, "data": ["stub:faces"]}}
    fresh = load_model(train_point_refiner(faces, faces, tmp_path / "c", PointTrainOptions(steps=1, batch_size=4, lr=1e-9),
                                           data=["stub:faces"])).points.weight
    assert torch.allclose(started, trained, atol=1e-6) and not torch.allclose(fresh, trained, atol=1e-3)
    with pytest.raises(CheckpointError, match="init"):  # a resume from other weights is another run
        train_point_refiner(faces, faces, tmp_path / "b", PointTrainOptions(steps=1, batch_size=4, lr=1e-9),
                            resume=True, data=["stub:faces"])


def test_box_of_face_takes_the_best_box_holding_the_points_centre():
    boxes = np.array([[0, 0, 10, 10], [40, 40, 90, 90], [30, 30, 100, 100]], np.float32)
    assert box_of_face(boxes, FIVE * 50 + 65) == 1
    assert box_of_face(boxes, FIVE * 50 + 200) is None


def test_an_unreadable_image_is_reported_and_skipped(tmp_path, caplog):
    (tmp_path / "broken.jpg").write_bytes(b"not a picture")
    (tmp_path / "broken.pts").write_text("\n".join(f"{10 + i} {20 + i}" for i in range(68)))

    class NoFaces:
        def faces(self, image, points=True):
            raise AssertionError("no image should reach the detector")

    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="no face with five or 68 points"):
        collect_faces([f"pts:{tmp_path}"], NoFaces(), "all")
    assert "broken.jpg" in caplog.text


DATA = os.environ.get("HYPERFACE_DATA", str(Path(__file__).resolve().parents[3] / "shared" / "data"))


@pytest.mark.skipif(not (Path(DATA) / "mtfl" / "training.txt").is_file(),
                    reason="needs MTFL in HYPERFACE_DATA (../shared/data)")
def test_collected_mtfl_faces_hold_their_points_where_a_face_has_them():
    from hyperface.inference.proposals import create_proposals

    faces = collect_faces([f"mtfl:{DATA}/mtfl?split=training"], create_proposals("detector", points=None), "val",
                          limit=12)
    assert len(faces) >= 10 and faces.crops.shape[1:] == (STORE_SIZE, STORE_SIZE, 3)
    t = faces.targets
    assert (np.abs(t) < 1.0).all()  # about the box's centre, in box sizes
    assert (t[:, 0, 0] < t[:, 1, 0]).all() and (t[:, :2, 1].max(1) < t[:, 3:, 1].min(1)).all()  # eyes over mouth


def test_the_cli_names_what_is_wrong(tmp_path, capsys):
    from hyperface.cli.main import main as cli_main

    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["train-point-refiner", "--data", f"pts:{empty}", "--out", str(tmp_path / "run"),
                     "--detector", "fast"]) == 2
    assert "learns from a 'detector' source" in capsys.readouterr().err
    assert cli_main(["train-point-refiner", "--data", f"pts:{empty}", "--out", str(tmp_path / "run"),
                     "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert cli_main(["train-point-refiner", "--data", f"pts:{empty}", "--out", str(tmp_path / "run"),
                     "--init", str(tmp_path / "missing.safetensors")]) == 2
    assert "--init" in (err := capsys.readouterr().err) and "missing.safetensors" in err
    assert cli_main(["train-point-refiner", "--data", f"pts:{empty}", "--out", str(tmp_path / "run")]) == 2
    assert "no face with five or 68 points" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert cli_main(["train-point-refiner", "--data", f"pts:{empty}", "--out", str(tmp_path / "a-file")]) == 2
    assert "is a file" in capsys.readouterr().err  # said before the detector reads any photo
