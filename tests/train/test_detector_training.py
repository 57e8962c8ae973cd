"""Single-pass detector training: target assignment, samples, loss, and a short run that resumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hyperface.inference.proposals.detector import decode_detections
from hyperface.models import geometry
from hyperface.models.detector import STRIDES, cell_centres, hyperface_detector
from hyperface.models.weights import load_model
from hyperface.train.detector import (
    DetectorTrainOptions, Photo, assign_targets, detector_loss, draw_sample, load_photos, paired_iou,
    quality_focal_loss, train_detector,
)
from hyperface.train.checkpoint import find_checkpoint

CROP = 256


def _level(targets, stride):
    """(label, weight, box target) of the level at ``stride``."""
    return targets[STRIDES.index(stride)][:3]


def test_a_face_is_a_positive_at_the_levels_whose_range_holds_its_size():
    box = np.array([[108, 108, 148, 148]], np.float32)  # 40 px: stride 8 (0-40) and 16 (26-80)
    targets = assign_targets(box, np.array([False]), True, CROP)
    for stride in (8, 16):
        label, weight, target = _level(targets, stride)
        pos = label > 0
        assert pos.sum() >= 1
        centres = cell_centres(CROP // stride, CROP // stride, stride).numpy()[pos]
        assert np.all(np.abs(centres - 128) <= 1.5 * stride)  # only the centre region
        np.testing.assert_allclose(target[pos], np.repeat(box, pos.sum(), 0))
        assert weight[pos].min() == 1 and weight[~pos].min() == 1  # exhaustive: background counts
    label32, weight32, _ = _level(targets, 32)
    assert label32.sum() == 0 and weight32.min() == 0  # 40 px is just under 51 px: no loss, not negative
    label64, weight64, _ = _level(targets, 64)
    assert label64.sum() == 0 and weight64.min() == 1  # far outside the range: a plain negative


def test_ignored_and_cut_off_faces_give_no_loss_and_no_positive():
    boxes = np.array([[20, 20, 50, 50], [230, 100, 290, 160]], np.float32)  # second: half outside the crop
    for ignore in ([True, False], [True, True]):
        targets = assign_targets(boxes, np.array(ignore), True, CROP)
        for label, weight, *_ in targets[:2]:
            assert label.sum() == 0
            assert weight.min() == 0 and weight.max() == 1


def test_photos_with_unannotated_faces_only_count_cells_near_the_annotated_ones():
    box = np.array([[100, 100, 130, 130]], np.float32)
    label, weight, _ = _level(assign_targets(box, np.array([False]), False, CROP), 8)
    centres = cell_centres(CROP // 8, CROP // 8, 8).numpy()
    far = ~((centres >= 70) & (centres <= 160)).all(1)  # the box grown by its size on each side
    assert label.sum() >= 1 and weight[far].max() == 0 and weight[~far].min() == 1


def test_a_cell_shared_by_two_faces_belongs_to_the_smaller():
    boxes = np.array([[100, 100, 160, 160], [120, 120, 150, 150]], np.float32)  # sizes 60 and 30
    label, _, target = _level(assign_targets(boxes, np.array([False, False]), True, CROP), 16)
    shared = (label > 0) & (target[:, 0] == 120)
    assert shared.any()


def _photo(rng, exhaustive=True):
    img = rng.integers(0, 255, size=(300, 400, 3), dtype=np.uint8)
    boxes = np.array([[50, 60, 110, 130], [250, 100, 290, 150]], np.float32)
    return Photo(img, boxes, np.array([False, False]), [None, None], [None, None], exhaustive, "p")


def test_draw_sample_moves_the_boxes_with_the_pixels():
    rng = np.random.default_rng(0)
    photo = _photo(rng)
    photo.image[60:130, 50:110] = 255  # the first face: a white block the boxes must stay on
    opts = DetectorTrainOptions(photometric=0.0, mask=0.0)
    seen = 0
    for _ in range(20):
        img, boxes, ignore, exhaustive, _ = draw_sample(photo, rng, opts)
        assert img.shape == (CROP, CROP, 3) and exhaustive
        x0, y0, x1, y1 = boxes[0]
        if x1 - x0 > 12 and 2 <= x0 and x1 <= CROP - 3 and 2 <= y0 and y1 <= CROP - 3:
            inner = img[int(y0) + 2: int(y1) - 1, int(x0) + 2: int(x1) - 1].astype(float)
            assert inner.mean() > 150  # brightness jitter is at most x1.3 - 25 of white
            seen += 1
    assert seen >= 2


def _one_batch():
    """A fresh detector, a batch of two noise images with one face each, its targets, and an optimiser."""
    torch.manual_seed(0)
    net = hyperface_detector().train()
    x = torch.randn(2, 3, CROP, CROP)
    boxes = np.array([[100, 90, 140, 140]], np.float32)
    per_level = assign_targets(boxes, np.array([False]), True, CROP)
    targets = [tuple(torch.from_numpy(np.stack([p, p])) for p in level) for level in per_level]
    return net, x, targets, torch.optim.Adam(net.parameters(), 3e-3)


def test_the_loss_falls_when_fitting_one_batch():
    net, x, targets, opt = _one_batch()
    losses = []
    for _ in range(25):
        loss, parts = detector_loss(net.dense(x), targets, 2.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert parts["positives"] > 0
    assert losses[-1] < 0.5 * losses[0]


def test_paired_iou_is_torchvisions_diagonal():
    from torchvision.ops import box_iou

    g = torch.Generator().manual_seed(0)
    a = torch.rand(50, 2, generator=g) * 100
    b = a + torch.randn(50, 2, generator=g) * 10
    a = torch.cat([a, a + 5 + torch.rand(50, 2, generator=g) * 40], 1)
    b = torch.cat([b, b + 5 + torch.rand(50, 2, generator=g) * 40], 1)
    torch.testing.assert_close(paired_iou(a, b), box_iou(a, b).diagonal())
    empty = torch.tensor([[3.0, 3, 3, 8]])
    assert paired_iou(empty, empty).item() == 0.0


def test_quality_focal_loss_is_zero_only_where_the_score_is_its_target():
    logit = torch.tensor([[-2.0, 0.0, 1.5]])
    target = torch.sigmoid(logit).clone()
    assert quality_focal_loss(logit, target).abs().max() < 1e-6  # every score equals its soft target
    off = quality_focal_loss(logit, torch.tensor([[0.0, 0.9, 0.2]]))
    assert (off > 0).all()
    # the further a score from its target, the more it costs (the |p - y| ** 2 factor on top of the BCE)
    near, far = quality_focal_loss(torch.tensor([[0.0]]), torch.tensor([[0.6]])), quality_focal_loss(
        torch.tensor([[0.0]]), torch.tensor([[0.95]]))
    assert far > near


def test_quality_targets_teach_the_score_the_boxes_iou():
    """With ``quality``, a positive cell's score learns the IoU of its own predicted box: fitting one batch, the
    positives' probabilities end near their boxes' IoU with the face, not near 1."""
    net, x, targets, opt = _one_batch()
    for _ in range(60):
        loss, parts = detector_loss(net.dense(x), targets, 0.0, quality=True)  # boxes not trained: IoU stays low
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        levels = net.dense(x)
    probs, ious = [], []
    for k, (logit, dist, *_) in enumerate(levels):
        label, _, target = (t[0] for t in targets[k][:3])
        pos = label > 0
        if not pos.any():
            continue
        h, w = logit.shape[-2:]
        centre = cell_centres(h, w, STRIDES[k])[pos]
        d = dist[0].reshape(4, -1).T[pos]
        pred = torch.cat([centre - d[:, :2], centre + d[:, 2:]], 1)
        probs.append(torch.sigmoid(logit[0].reshape(-1)[pos]))
        ious.append(paired_iou(pred, target[pos]))
    probs, ious = torch.cat(probs), torch.cat(ious)
    assert ious.max() < 0.9  # untrained boxes: a target well under 1
    assert (probs - ious).abs().mean() < 0.15 and probs.mean() < 0.9


def test_decode_puts_boxes_where_the_cells_point():
    n = 8
    prob = np.zeros((n, n), np.float32)
    prob[3, 5] = 0.9
    dist = np.full((4, n, n), 8.0, np.float32)
    levels = [(prob, dist)] + [(np.zeros((n // 2 ** k, n // 2 ** k), np.float32), np.ones((4, n // 2 ** k, n // 2 ** k),
                                                                                          np.float32))
                               for k in (1, 2, 3)]
    found = decode_detections(levels, 0.5, 0.5, 10)
    boxes, scores = found.boxes, found.scores
    cx, cy = 5 * 8 + 3.5, 3 * 8 + 3.5
    assert boxes.dtype == scores.dtype == np.float32
    np.testing.assert_allclose(boxes, [[cx - 8, cy - 8, cx + 8, cy + 8]])
    np.testing.assert_allclose(scores, [0.9])
    # a second face at the next level, overlapping the first: suppression across levels keeps the better
    levels[1][0][1, 2] = 0.95
    levels[1][1][:] = 10.0
    found = decode_detections(levels, 0.5, 0.3, 10)
    boxes, scores = found.boxes, found.scores
    np.testing.assert_allclose(scores, [0.95])
    np.testing.assert_allclose(boxes, [[39.5 - 10, 23.5 - 10, 39.5 + 10, 23.5 + 10]])
    found = decode_detections(levels, 0.99, 0.5, 10)
    boxes, scores = found.boxes, found.scores
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_training_and_inference_put_the_cells_at_the_same_points():
    for h, w, stride in ((4, 6, 8), (3, 5, 64), (1, 1, 16)):
        every = geometry.cell_centres(h, w, stride)
        np.testing.assert_array_equal(cell_centres(h, w, stride).numpy(), every)
        np.testing.assert_array_equal(every[0], [(stride - 1) / 2] * 2)
        some = np.array([h * w - 1, 0])
        np.testing.assert_array_equal(geometry.cell_centres(h, w, stride, cells=some), every[some])


def _voc(root, n=6):
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        img = rng.integers(0, 80, size=(160, 200, 3), dtype=np.uint8)
        img[40:90, 60:110] = 220
        Image.fromarray(img).save(root / "JPEGImages" / f"p{i}.jpg")
        (root / "Annotations" / f"p{i}.xml").write_text(
            f"<annotation><filename>p{i}.jpg</filename><object><name>face</name><bndbox><xmin>60</xmin>"
            "<ymin>40</ymin><xmax>110</xmax><ymax>90</ymax></bndbox></object></annotation>")
    return f"voc:{root}"


def test_training_checkpoints_resumes_and_writes_the_weights(tmp_path, caplog):
    spec = _voc(tmp_path / "voc")
    assert sum(len(p) for p in load_photos([spec], 800, 0.0)) == 6
    opts = DetectorTrainOptions(steps=4, batch_size=2, crop=128, save_every=2, warmup=1)
    out = tmp_path / "run"
    first = train_detector([spec], out, opts, time_limit=0.0)  # stops at the first checkpoint
    assert first.name == "last.safetensors"
    assert find_checkpoint(out).state["info"]["step"] == 2
    final = train_detector([spec], out, opts, resume=True)
    assert final.name == "hyperface-detector.safetensors"
    net = load_model(final)
    assert net.config.arch == "hyperface-detector" and net.config.meta["training"]["steps"] == 4
    assert net.config.meta["training"]["score_loss"] == "focal"
    quality = train_detector([spec], tmp_path / "quality", DetectorTrainOptions(steps=1, batch_size=2, crop=128,
                                                                                 warmup=1, quality=True))
    assert load_model(quality).config.meta["training"]["score_loss"] == "quality focal"


def test_a_crop_that_is_not_a_multiple_of_64_is_refused(tmp_path):
    with pytest.raises(ValueError, match="multiple of 64"):
        train_detector(["voc:nowhere"], tmp_path, DetectorTrainOptions(crop=100))


def test_five_points_move_with_the_face_and_keep_their_roles_when_flipped():
    """A face's five points follow its box through the warp, and a mirrored face still lists its image-left
    eye first (the roles are swapped back)."""
    rng = np.random.default_rng(1)
    photo = _photo(rng)
    x0, y0, x1, y1 = photo.boxes[0]
    rel = np.array([[0.25, 0.3], [0.75, 0.3], [0.5, 0.55], [0.3, 0.8], [0.7, 0.8]], np.float32)
    others = [np.full((5, 2), np.nan, np.float32)] * (len(photo.boxes) - 1)
    photo.five = np.stack([[x0, y0] + rel * [x1 - x0, y1 - y0], *others]).astype(np.float32)
    opts = DetectorTrainOptions(photometric=0.0, mask=0.0)
    for _ in range(20):
        _, boxes, _, _, points = draw_sample(photo, rng, opts)
        assert np.isnan(points[1:]).all()
        bx0, by0, bx1, by1 = boxes[0]
        want = [bx0, by0] + rel * [bx1 - bx0, by1 - by0]  # the same place in the moved box, flipped or not
        np.testing.assert_allclose(points[0], want, atol=1e-2 * max(bx1 - bx0, 1.0))


def test_the_point_loss_falls_when_fitting_one_batch():
    torch.manual_seed(0)
    net = hyperface_detector(tasks=("detection", "landmarks"), point_set="five").train()
    x = torch.randn(2, 3, CROP, CROP)
    boxes = np.array([[100, 90, 140, 140]], np.float32)
    five = np.array([[[110, 105], [130, 105], [120, 118], [112, 130], [128, 130]]], np.float32)
    per_level = assign_targets(boxes, np.array([False]), True, CROP, five)
    assert any(level[4].sum() > 0 for level in per_level)  # positives that carry the points
    targets = [tuple(torch.from_numpy(np.stack([p, p])) for p in level) for level in per_level]
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    first = None
    for _ in range(30):
        loss, parts = detector_loss(net.levels(x), targets, 2.0, 1.0)
        first = parts["points"] if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["points"] < 0.5 * first


def test_a_wider_detector_grows_from_a_trained_one_with_its_answers(tmp_path):
    """--init with --widths / --fpn larger than the file's: the wider network starts with the file's
    outputs (Net2Net growth), trains from there, and writes its own widths; a narrower one is refused."""
    from hyperface.models.weights import save_weights
    from hyperface.train.detector import _init

    torch.manual_seed(0)
    small = hyperface_detector(tasks=("detection", "landmarks"), point_set="five").train()
    with torch.no_grad():
        for _ in range(2):  # running statistics that are not 0 / 1
            small.levels(torch.rand(2, 3, 128, 128))
    small.eval()
    path = save_weights(small, tmp_path / "small.safetensors")
    wide = hyperface_detector(tasks=("detection", "landmarks"), point_set="five",
                              widths=(24, 32, 48, 96, 128, 192), fpn=64)
    _init(wide, path)
    x = torch.rand(1, 3, 128, 128)
    for (a, b, c), (d, e, f) in zip(small.levels(x), wide.eval().levels(x)):
        for old, new in ((a, d), (b, e), (c, f)):
            torch.testing.assert_close(new, old, rtol=1e-4, atol=1e-4)
    narrow = hyperface_detector(widths=(8, 24, 32, 64, 96, 128))
    with pytest.raises(ValueError, match="small.safetensors.*only grow"):
        _init(narrow, path)
    with pytest.raises(ValueError, match="small.safetensors.*--points"):  # its point head has nowhere to go
        _init(hyperface_detector(), path)

    spec = _voc(tmp_path / "voc")
    opts = DetectorTrainOptions(steps=2, batch_size=2, crop=128, save_every=2, warmup=1, points=True,
                                widths=(24, 32, 48, 96, 128, 192), fpn=64)
    trained = load_model(train_detector([spec], tmp_path / "run", opts, init=path))
    assert trained.config.arch_kwargs == {"widths": [24, 32, 48, 96, 128, 192], "fpn": 64}


def test_the_box_point_head_places_points_in_units_of_the_cells_own_box():
    """point_head="box": each cell's points are its predicted box's centre plus the head's raw output times
    the box's width and height, as pixel offsets from the cell (the contract decode_detections reads)."""
    torch.manual_seed(0)
    net = hyperface_detector(tasks=("detection", "landmarks"), point_set="five", point_head="box").eval()
    raw = torch.tensor([-0.2, -0.1, 0.2, -0.1, 0.0, 0.05, -0.15, 0.25, 0.15, 0.25])
    with torch.no_grad():
        net.points[-1].weight.zero_()
        net.points[-1].bias.copy_(raw)
    for _, dist, points in net.levels(torch.rand(1, 3, 128, 128)):
        left, top, right, bottom = dist[0]
        centre = torch.stack([(right - left) / 2, (bottom - top) / 2])
        size = torch.stack([left + right, top + bottom])
        want = centre[None] + raw.view(5, 2)[:, :, None, None] * size[None]
        torch.testing.assert_close(points[0].view(5, 2, *dist.shape[-2:]), want)
    with pytest.raises(ValueError, match="point_head"):
        hyperface_detector(tasks=("detection", "landmarks"), point_set="five", point_head="heatmap")


def _pts(root, n=6):
    """A pts folder: n photos of one bright face square with 68 points inside it."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(n):
        img = rng.integers(0, 80, size=(160, 200, 3), dtype=np.uint8)
        img[40:100, 60:120] = 220
        Image.fromarray(img).save(root / f"p{i}.jpg")
        pts = rng.uniform([65, 45], [115, 95], size=(68, 2))
        (root / f"p{i}.pts").write_text("version: 1\nn_points: 68\n{\n"
                                        + "".join(f"{x:.2f} {y:.2f}\n" for x, y in pts) + "}\n")
    return f"pts:{root}"


def test_points_only_training_keeps_the_detector_and_learns_a_new_box_head(tmp_path):
    """--points-only on an --init file with v0.7's shared head: the box head starts fresh (the file's head
    is dropped), trains, and every other tensor (running statistics too) stays the file's exactly."""
    from hyperface.models.weights import read_state_dict, save_weights

    torch.manual_seed(0)
    v07 = hyperface_detector(tasks=("detection", "landmarks"), point_set="five").eval()
    path = save_weights(v07, tmp_path / "v07.safetensors")
    opts = DetectorTrainOptions(steps=3, batch_size=2, crop=128, save_every=3, warmup=1, lr=1e-2, points=True,
                                point_head="box", points_only=True)
    out = train_detector([_pts(tmp_path / "faces")], tmp_path / "run", opts, init=path)
    before, after = read_state_dict(path), read_state_dict(out)
    assert "points.weight" not in after and "points.2.weight" in after
    assert load_model(out).config.arch_kwargs["point_head"] == "box"
    for name, tensor in before.items():
        if not name.startswith("points."):
            torch.testing.assert_close(after[name], tensor, rtol=0, atol=0, msg=name)
    fresh = hyperface_detector(tasks=("detection", "landmarks"), point_set="five", point_head="box")
    assert not torch.equal(after["points.2.bias"], fresh.state_dict()["points.2.bias"])  # it learned
    with pytest.raises(ValueError, match="--points and --init"):
        train_detector([_pts(tmp_path / "more")], tmp_path / "run2", DetectorTrainOptions(points_only=True))
    from hyperface.train.detector import _init

    with pytest.raises(ValueError, match="--point-head box"):  # continuing it with the other form of head
        _init(hyperface_detector(tasks=("detection", "landmarks"), point_set="five"), out)


@pytest.mark.parametrize("flag", [[], ["--quality-focal"]])
def test_the_cli_asks_for_the_quality_focal_loss_only_when_told(monkeypatch, tmp_path, flag):
    import argparse

    import hyperface.train.detector as training
    from hyperface.cli import train_detector as cli

    seen = {}

    def fake(specs, out, opts, **kwargs):
        seen["opts"] = opts
        return tmp_path / "hyperface-detector.safetensors"

    monkeypatch.setattr(training, "train_detector", fake)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--data", "pts:somewhere", "--out", str(tmp_path), *flag])) == 0
    assert seen["opts"].quality is bool(flag)
