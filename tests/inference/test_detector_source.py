"""The ``detector`` candidate source: working size, padding, box mapping, backends, names and options."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from hyperface.inference.bundle import Bundle
from hyperface.inference.proposals import DetectorProposals, FastProposals, SourceContext, create_proposals
from hyperface.boxes import box_iou, box_size
from hyperface.evaluate.metrics import match_matrix
from hyperface.inference.proposals.detector import (COARSE_SMALLEST, MAX_CANDIDATES, MAX_WORKING_SIDE, PASSES,
                                                    RESCORE_WEIGHT, working_scale)
from hyperface.inference.proposals.refine import RefineScorer
from hyperface.models.detector import hyperface_detector
from hyperface.models.registry import create_model
from hyperface.models.weights import save_weights
from hyperface.runtime import RuntimeOptions, load_runtime

from inference_stubs import BlobNet, blob_image

TORCH = RuntimeOptions("torch")

DIST = (8.0, 16.0, 24.0, 12.0)  # the probe networks' stride-8 box: left, top, right, bottom (working pixels)


def _passthrough(block: torch.nn.Sequential) -> None:
    """A depthwise-separable block that copies channel 0 (the depthwise conv's centre tap)."""
    depthwise, pointwise = block[0], block[1]
    depthwise[0].weight[0, 0, 1, 1] = 1.0
    depthwise[1].weight[0] = 1.0
    pointwise[0].weight[0, 0] = 1.0
    pointwise[1].weight[0] = 1.0


def probe_net(sign: float = 1.0, dist: tuple[float, ...] = DIST, points: np.ndarray | None = None):
    """A hand-set detector: a stride-8 cell (i, j) scores ~1 where the working image at (8 i, 8 j) is
    bright (``sign`` 1) or dark (``sign`` -1), ~0 elsewhere and at every coarser level; its box is
    ``dist`` (left, top, right, bottom) from the cell's point, in working pixels; with ``points`` (5, 2),
    the five points' offsets from the cell's point, in working pixels."""
    landmarks = {} if points is None else {"tasks": ("detection", "landmarks"), "point_set": "five"}
    net = hyperface_detector(**landmarks).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.stem[0].weight[0, :, 1, 1] = sign / 3  # +-(normalised grey value) of the pixel under the tap
        net.stem[1].weight[0] = 1.0
        for block in (*net.s4, *net.s8, net.smooth[0], net.head):
            _passthrough(block)
        net.lateral[0].weight[0, 0] = 1.0  # coarser levels stay zero
        net.score.weight[0, 0] = 20.0
        net.score.bias.fill_(-10.0)
        net.box.bias.copy_(torch.log(torch.tensor(dist) / 8.0))
        net.box_scale.fill_(1.0)
        if points is not None:
            net.points.bias.copy_(torch.as_tensor(np.asarray(points, np.float32).reshape(-1) / 8.0))
    return net


def random_net(seed: int = 0, **kwargs):
    """A randomly initialised detector whose scores spread over 0..1 (no ties between backends)."""
    torch.manual_seed(seed)
    net = hyperface_detector(**kwargs).eval()
    with torch.no_grad():
        net.score.weight.mul_(20.0)
        net.score.bias.zero_()
        net.box.weight.mul_(5.0)
    return net


def _to_original(u: np.ndarray, scale: float) -> np.ndarray:
    return (u + 0.5) / scale - 0.5


def _sorted(boxes: np.ndarray) -> np.ndarray:
    return boxes[np.lexsort(boxes.T[::-1])]


def test_working_scale_rule():
    assert working_scale(640, 480, 24) == pytest.approx(16 / 24)  # a 24-pixel face becomes 16 pixels
    assert working_scale(640, 480, 24, smallest=12) == pytest.approx(0.5)
    assert working_scale(640, 480, 24, smallest=18) == pytest.approx(0.75)
    assert working_scale(100, 80, 3) == 2.0  # never enlarged more than twice
    assert working_scale(4000, 3000, 20) == pytest.approx(MAX_WORKING_SIDE / 4000) == 0.32  # longer side capped
    assert working_scale(1024, 768, 10) == pytest.approx(1.25)  # min_face 10 on a 1024-pixel photo: 12.8 px
    src = DetectorProposals(probe_net(), min_face=10, max_side=300, options=TORCH)
    canvas, sx, sy = src.working_image(np.zeros((700, 1000, 3), np.uint8))
    assert canvas.shape == (1, 256, 320, 3) and canvas.dtype == np.uint8  # 300 x 210 padded to 64s
    assert (sx, sy) == (300 / 1000, 210 / 700)


@pytest.mark.parametrize("w, h, min_face, ww, wh", [(253, 187, 30, 101, 75), (151, 97, 9, 201, 129)])
def test_boxes_land_in_original_pixels(w, h, min_face, ww, wh):
    """Two bright patches under known stride-8 cells give exactly their boxes, mapped back with the
    per-axis scale of the resize (shrinking and enlarging), the one at the left edge clipped."""
    sx, sy = ww / w, wh / h
    cells = [(4, 6), (7, 0)]  # (row, column) of stride-8 cells
    image = np.full((h, w, 3), 20, np.uint8)
    for i, j in cells:  # bright over working pixels 8j +- 3, 8i +- 3 (the neighbours' taps stay dark)
        x0, x1 = _to_original(np.array([8 * j - 3, 8 * j + 3]), sx)
        y0, y1 = _to_original(np.array([8 * i - 3, 8 * i + 3]), sy)
        image[max(0, math.floor(y0)): math.ceil(y1) + 1, max(0, math.floor(x0)): math.ceil(x1) + 1] = 250
    src = DetectorProposals(probe_net(), min_face=min_face, smallest=12, options=TORCH)
    assert src.working_image(image)[0].shape[1:3] == (math.ceil(wh / 64) * 64, math.ceil(ww / 64) * 64)
    boxes, scores = src.detect(image)
    expected = []
    for i, j in cells:
        cx, cy = 8 * j + 3.5, 8 * i + 3.5
        box = np.array([_to_original(cx - DIST[0], sx), _to_original(cy - DIST[1], sy),
                        _to_original(cx + DIST[2], sx), _to_original(cy + DIST[3], sy)])
        expected.append(np.clip(box, -0.5, [w - 0.5, h - 0.5, w - 0.5, h - 0.5]))
    assert boxes.dtype == np.float32 and boxes.shape == (2, 4)
    np.testing.assert_allclose(_sorted(boxes), _sorted(np.array(expected)), atol=1e-3)
    assert np.all(scores > 0.99)
    assert _sorted(boxes)[0, 0] == -0.5  # the edge cell's box starts left of the image: clipped
    np.testing.assert_array_equal(src(image), boxes)


def test_padding_is_the_mean_colour():
    """A dark-cell probe with far-reaching boxes finds only the dark patch: the padding (28 columns,
    58 rows here) reads as the mean colour, which it does not see as dark, nor as anything."""
    image = np.full((70, 100, 3), 128, np.uint8)
    image[21:28, 37:44] = 0  # under the tap of cell (3, 5): pixel (40, 24)
    src = DetectorProposals(probe_net(sign=-1.0, dist=(32.0,) * 4), min_face=12, smallest=12, options=TORCH)
    canvas, sx, sy = src.working_image(image)
    assert canvas.shape == (1, 128, 128, 3) and (sx, sy) == (1.0, 1.0)
    assert np.all(canvas[0, 70:, :] == 128) and np.all(canvas[0, :, 100:] == 128)  # 0.5 of 255, rounded
    np.testing.assert_array_equal(canvas[0, :70, :100], image)
    boxes = src(image)
    np.testing.assert_allclose(boxes, [[43.5 - 32, -0.5, 43.5 + 32, 27.5 + 32]], atol=1e-3)
    black_padding = canvas.copy()  # the probe would see black padding
    black_padding[0, 70:], black_padding[0, :, 100:] = 0, 0
    assert len(src._decode(black_padding, src.threshold)) > 1


def test_max_face_drops_larger_boxes():
    image = np.full((120, 160, 3), 20, np.uint8)
    image[29:36, 45:52] = 250  # cell (4, 6): a 32 x 28 box
    image[53:60, 0:4] = 250  # cell (7, 0): the same box clipped at the left edge, 28 x 28
    kw = dict(min_face=12, smallest=12, options=TORCH)
    boxes = DetectorProposals(probe_net(), **kw)(image)
    sizes = box_size(boxes)
    np.testing.assert_allclose(np.sort(sizes), [28.0, np.sqrt(32 * 28)], atol=1e-3)
    kept = DetectorProposals(probe_net(), max_face=29, **kw)(image)
    np.testing.assert_allclose(kept, boxes[np.isclose(sizes, 28.0)])
    assert len(DetectorProposals(probe_net(), max_face=27, **kw)(image)) == 0
    # the analyzer's fusion reads the same boxes with the detector's probabilities ...
    plain = DetectorProposals(probe_net(), rescore=None, **kw)
    scored_boxes, scores = plain.scored(image)
    np.testing.assert_array_equal(scored_boxes, boxes)
    np.testing.assert_array_equal(scores, plain.detect(image)[1])
    # ... or with their weighted geometric mean with the refine network's probability of the same boxes
    # (best first by the fused probability: the passes are merged on it)
    second = RefineScorer(SourceContext(TORCH).network("refine"))(image, boxes)[1]  # the bundled one
    w = RESCORE_WEIGHT
    for weight, want in ((w, scores ** (1 - w) * second ** w), (0.5, np.sqrt(scores * second))):
        fused_boxes, fused = DetectorProposals(probe_net(), rescore_weight=weight, **kw).scored(image)
        assert np.all(np.diff(fused) <= 0)
        order = [int(np.flatnonzero((boxes == b).all(axis=1))[0]) for b in fused_boxes]
        assert sorted(order) == list(range(len(boxes)))
        np.testing.assert_allclose(fused, want[order], rtol=1e-5)
        assert not np.allclose(fused, scores[order])
    with pytest.raises(ValueError, match="rescore_weight"):
        DetectorProposals(probe_net(), rescore_weight=1.5, **kw)


def test_scored_above_leaves_out_only_what_cannot_reach_the_floor():
    image = np.full((120, 160, 3), 20, np.uint8)
    for k, grey in enumerate((250, 200, 170, 165, 160)):  # detector probabilities from ~1 down to ~0.007
        y, x = 29 + 24 * (k // 3), 45 + 40 * (k % 3)
        image[y:y + 7, x:x + 7] = grey
    src = DetectorProposals(probe_net(), min_face=12, smallest=12, threshold=0.005, options=TORCH)
    boxes, scores = src.scored(image)
    floor = 0.05
    rescorer, seen = src._rescorer, []
    src._rescorer = lambda im, b: seen.append(len(b)) or rescorer(im, b)
    kept_boxes, kept = src.scored_above(image, None, floor)
    # the same boxes and probabilities as scored() from the floor up ...
    assert len(boxes) == 5 and 0 < len(kept) < len(boxes)
    np.testing.assert_array_equal(kept_boxes, boxes[scores >= floor])
    np.testing.assert_allclose(kept, scores[scores >= floor], rtol=1e-6)
    # ... and only the boxes whose detector probability could get there were re-scored
    could = int((src.detect(image)[1] >= floor ** (1 / (1 - RESCORE_WEIGHT))).sum())
    assert seen == [could] and len(kept) <= could < len(boxes)


def test_torch_and_onnx_give_the_same_boxes():
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    image = blob_image(203, 150, [(60, 50, 20), (150, 100, 35)])
    image = np.clip(image.astype(int) + rng.integers(-60, 60, image.shape), 0, 255).astype(np.uint8)
    net = random_net()
    got = {}
    for backend in ("torch", "onnx"):
        src = DetectorProposals(net, min_face=16, threshold=0.5, max_candidates=10_000,
                                options=RuntimeOptions(backend))
        assert src.runtime.engine == backend
        got[backend] = src.detect(image)
    boxes, scores = got["torch"]
    assert len(boxes) >= 5 and np.all(np.diff(scores) <= 0)  # best first
    assert boxes.shape == got["onnx"][0].shape
    np.testing.assert_allclose(_sorted(got["onnx"][0]), _sorted(boxes), atol=1e-3)
    np.testing.assert_allclose(np.sort(got["onnx"][1]), np.sort(scores), atol=1e-5)


def test_torch_and_onnx_give_the_same_points_from_the_box_point_head():
    pytest.importorskip("onnxruntime")
    image = blob_image(203, 150, [(60, 50, 20), (150, 100, 35)])
    net = random_net(tasks=("detection", "landmarks"), point_set="five", point_head="box")
    with torch.no_grad():
        net.points[-1].bias.copy_(torch.tensor([-0.2, -0.1, 0.2, -0.1, 0.0, 0.05, -0.15, 0.25, 0.15, 0.25]))
    got = {}
    for backend in ("torch", "onnx"):
        src = DetectorProposals(net, min_face=16, threshold=0.5, max_candidates=50, options=RuntimeOptions(backend),
                                points=None)  # the head's own points, not a point stage's
        assert src.gives_points
        got[backend] = src.faces(image)
    assert len(got["torch"].boxes) >= 5
    order = {k: np.lexsort(np.round(v.boxes, 2).T[::-1]) for k, v in got.items()}  # ties may come in any order
    np.testing.assert_allclose(got["onnx"].boxes[order["onnx"]], got["torch"].boxes[order["torch"]], atol=1e-3)
    np.testing.assert_allclose(got["onnx"].points[order["onnx"]], got["torch"].points[order["torch"]], atol=1e-3)


def test_weights_that_are_not_a_detector_name_the_file(proposal_weights, tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(proposal_weights))):
        DetectorProposals(proposal_weights)
    with pytest.raises(ValueError, match=r"pipeline has no detector network \(it has none\)"):
        DetectorProposals(context=SourceContext(TORCH, Bundle(tmp_path, {})))
    with pytest.raises(ValueError, match="min_face"):
        DetectorProposals(probe_net(), min_face=0)


def test_an_installation_without_the_bundled_detector_says_so(no_bundled_files):
    with pytest.raises(FileNotFoundError, match="manifest.json: no pipeline manifest"):
        DetectorProposals()
    DetectorProposals(probe_net(), rescore=None)  # a detector of one's own needs no bundled file


def test_detector_path_is_a_file_or_a_folder(tmp_path):
    net = random_net(2)
    path = save_weights(net, tmp_path / "hyperface-detector.safetensors")
    image = blob_image(130, 90, [(60, 40, 15)])
    want = DetectorProposals(net, options=TORCH, threshold=0.5)(image)
    assert len(want) > 0
    for spec in (f"detector:{path}", f"detector:{tmp_path}"):
        src = create_proposals(spec, SourceContext(TORCH), threshold=0.5)
        assert isinstance(src, DetectorProposals) and src.runtime.source == str(path)
        assert str(path) in map(str, src.files())
        np.testing.assert_allclose(src(image), want, atol=1e-4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no hyperface-detector.safetensors there"):
        create_proposals(f"detector:{tmp_path / 'empty'}")
    with pytest.raises(FileNotFoundError, match="no such network file or folder"):
        create_proposals(f"detector:{tmp_path / 'missing.safetensors'}")
    with pytest.raises(ValueError, match="needs a network file or folder"):
        create_proposals("detector:")
    with pytest.raises(ValueError, match=r"candidate source 'detector'.*min_fce"):
        create_proposals(f"detector:{path}", SourceContext(TORCH), min_fce=30)  # a misspelt option is named


def test_unknown_source_lists_detector():
    with pytest.raises(ValueError, match=r"choose from: .*detector, detector:PATH"):
        create_proposals("haar")


def test_analyzer_and_cli_pass_their_options_to_the_detector(tmp_path):
    from hyperface.cli.analyzer_options import build_analyzer
    from hyperface.cli.main import build_parser
    from hyperface.inference import FaceAnalyzer

    path = save_weights(random_net(3), tmp_path / "hyperface-detector.safetensors")
    threads = torch.get_num_threads()
    try:
        an = FaceAnalyzer(BlobNet(), proposals=f"detector:{path}", backend="torch", threads=2,
                          proposal_options={"min_face": 33})
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    src = an.proposals
    assert isinstance(src, DetectorProposals) and src.runtime.source == str(path)
    assert (src.runtime.engine, an.options.threads, an.device, src.min_face) == ("torch", 2, "cpu", 33.0)
    assert src._rescorer.runtime.engine == "torch"  # the bundled re-scorer runs on the analyzer's engine too
    torch.manual_seed(0)
    weights = save_weights(create_model("hyperface-compact", input_size=32, num_points=5, point_set="five"),
                           tmp_path / "compact.safetensors")
    for source, kind in ((f"detector:{tmp_path}", DetectorProposals), ("fast", FastProposals)):
        argv = ["analyze", "--weights", str(weights), "--proposals", source, "--min-face", "30",
                "--backend", "torch", "--stage-two", "none"]
        analyzer = build_analyzer(build_parser(argv).parse_args(argv))
        assert isinstance(analyzer.proposals, kind) and analyzer.proposals.min_face == 30.0
    argv = ["analyze", "--weights", str(weights), "--proposals", f"detector:{tmp_path}", "--detector-passes",
            "0.5,1", "--max-candidates", "7", "--backend", "torch", "--stage-two", "none"]
    source = build_analyzer(build_parser(argv).parse_args(argv)).proposals
    assert (source.passes, source.max_candidates, source.flip) == ((1.0, 0.5), 7, False)
    source = build_analyzer(build_parser(argv + ["--detector-flip"]).parse_args(argv + ["--detector-flip"])).proposals
    assert source.flip is True
    for option, bad in (("--detector-passes", "1,x"), ("--detector-passes", "1,"), ("--max-candidates", "0"),
                        ("--max-candidates", "2.5")):  # a usage error naming the option, before any network loads
        with pytest.raises(SystemExit):
            build_parser(argv[:4] + [option, bad]).parse_args(argv[:4] + [option, bad])
    argv = ["evaluate", "--data", "pts:nowhere", "--detector-passes", "1", "--max-candidates", "300"]
    from hyperface.cli.evaluate import _models

    source = _models(build_parser(argv).parse_args(argv))[0].default.proposals
    assert (source.passes, source.max_candidates) == ((1.0,), 300)


def test_equal_detector_networks_share_one_export(exports):
    first, second = (DetectorProposals(probe_net(), min_face=12, options=RuntimeOptions("onnx")) for _ in range(2))
    assert exports == ["FaceDetectorNet"]  # the bundled re-scorer ships as ONNX: never exported
    image = np.full((70, 100, 3), 20, np.uint8)
    image[29:36, 45:52] = 250
    np.testing.assert_array_equal(first(image), second(image))
    assert len(first(image)) == 1 and exports == ["FaceDetectorNet"]


def test_coarser_passes_add_only_their_large_faces():
    """A bright block the probe boxes at 64 working pixels in every pass: the half-size pass adds its
    128-pixel box, the quarter-size one its 256-pixel box; with 24-pixel boxes
    (under COARSE_SMALLEST) the coarser passes add nothing and the answer is the single pass's."""
    image = np.full((384, 384, 3), 20, np.uint8)
    image[116:140, 116:140] = 250
    kw = dict(min_face=16, smallest=16, options=TORCH, rescore=None)
    single = DetectorProposals(probe_net(dist=(32.0,) * 4), passes=(1.0,), **kw)(image)
    np.testing.assert_allclose(box_size(single), 64.0, atol=1e-3)
    assert COARSE_SMALLEST == 32.0 and PASSES == (1.0, 0.25)
    merged = DetectorProposals(probe_net(dist=(32.0,) * 4), passes=(1.0, 0.5, 0.25), **kw)(image)
    sizes = box_size(merged)
    assert np.isclose(sizes, 128.0, atol=1e-3).any() and np.isclose(sizes, 256.0, atol=1e-3).any()
    iou = box_iou(merged, merged) - np.eye(len(merged))
    assert iou.max() <= 0.5  # one set: no two boxes overlap more than nms_iou
    small = dict(dist=(12.0,) * 4)
    np.testing.assert_array_equal(DetectorProposals(probe_net(**small), passes=(1.0, 0.5, 0.25), **kw)(image),
                                  DetectorProposals(probe_net(**small), passes=(1.0,), **kw)(image))


def test_a_face_filling_the_photo_is_found_by_the_coarser_passes():
    """The bundled detector on the example's face cut close and enlarged to fill a 900 x 960 photo (a
    face of about 530 pixels, 420 working pixels): alone, the first pass boxes only parts of it, unsure
    (0.38 here); the quarter-size pass sees the face at a size it was trained on."""
    import cv2

    from hyperface.data.images import load_image
    from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

    image = cv2.resize(load_image(asset_path(EXAMPLE_IMAGE))[60:220, 150:300], (900, 960))
    one = DetectorProposals(passes=(1.0,), rescore=None, options=TORCH).detect(image)
    boxes, scores = DetectorProposals(rescore=None, options=TORCH).detect(image)
    assert one[1].max() < 0.5
    assert scores[0] > 0.8 and box_size(boxes[:1])[0] > 450
    assert match_matrix(boxes[:1], np.array([[190.0, 120.0, 730.0, 660.0]])).all()  # the face, as drawn


def test_passes_merge_on_the_refine_networks_second_opinion(shared_data):
    """A 384 x 306 HELEN photo that is all face: the quarter-size pass boxes its left half at 0.80, surer
    than the first pass's box of the whole face (0.68), and would suppress it; merged on the rescored
    probabilities the whole face's box stays (the direct pipeline, which takes the detector's boxes as
    faces, lost this face before the fix)."""
    from hyperface.data.images import load_image

    image = load_image(shared_data / "300w/helen/trainset/2191845292_1.jpg")
    whole = np.array([[94.0, 96.0, 312.0, 306.0]])  # the tight box of its 68 annotated points
    src = DetectorProposals(options=TORCH)
    boxes, scores = src.detect(image)  # the detector's own probabilities: the half box first
    assert scores[0] > 0.75 and box_iou(boxes[:1], whole)[0, 0] < 0.6
    assert not (box_iou(boxes, whole)[:, 0] > 0.8).any()  # the whole face's box is suppressed
    boxes, scores = src.scored(image)
    assert box_iou(boxes[:1], whole)[0, 0] > 0.8 and scores[0] > 0.6


def test_a_crowd_of_more_than_a_hundred_faces_is_found_whole():
    """The example's face tiled 12 x 12 (144 faces of 48 pixels): the default analyzer finds every one,
    one face a tile. Capped at 100 candidates (the default before 0.15), the crowd is cut to 100."""
    import cv2

    from hyperface.data.images import load_image
    from hyperface.inference import FaceAnalyzer
    from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path

    tile = cv2.resize(load_image(asset_path(EXAMPLE_IMAGE))[58:205, 151:298], (48, 48), interpolation=cv2.INTER_AREA)
    crowd = np.tile(tile, (12, 12, 1))
    assert MAX_CANDIDATES >= 1000
    faces = FaceAnalyzer()(crowd)
    centres = np.array([(f.box[:2] + f.box[2:]) / 2 for f in faces])
    tiles = (centres[:, 1] // 48).astype(int) * 12 + (centres[:, 0] // 48).astype(int)
    assert len(faces) == 144 and len(set(tiles.tolist())) == 144
    assert len(FaceAnalyzer(proposal_options={"max_candidates": 100})(crowd)) == 100


def test_the_mirrored_view_makes_the_answer_mirror_symmetric():
    """With ``flip`` each pass also runs on its mirror image, so the faces of a mirrored photo are the
    photo's faces mirrored, boxes and points (left and right points swapped) alike; one view alone is
    not: its boxes move by a pixel or two."""
    from hyperface.data.images import load_image
    from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path
    from hyperface.points import get_point_set

    image = load_image(asset_path(EXAMPLE_IMAGE))
    mirror = np.ascontiguousarray(image[:, ::-1])
    width = image.shape[1]

    def mirrored_back(found):
        boxes = found.boxes.copy()
        boxes[:, [0, 2]] = (width - 1) - found.boxes[:, [2, 0]]
        return boxes, get_point_set("five").flip(found.points, width)

    for flip in (True, False):
        src = DetectorProposals(flip=flip, points=None, options=TORCH)  # the detector's own points
        found, seen = src.faces(image, threshold=0.5), src.faces(mirror, threshold=0.5)
        assert len(found) == len(seen) == 1
        boxes, points = mirrored_back(seen)
        symmetric = np.allclose(found.boxes, boxes, atol=1e-3) and np.allclose(found.points, points, atol=1e-3)
        assert symmetric == flip
        np.testing.assert_allclose(found.scores, seen.scores, atol=1e-5 if flip else 0.05)


def test_the_two_views_faces_pair_into_one_and_alone_count_half():
    """A face both views box (IoU >= nms_iou) becomes their score-weighted mean box with the mean
    probability; a face one view alone boxes keeps its box at half its probability (the other view saw
    under the threshold); the closest boxes pair, whatever order the views list them in."""
    from hyperface.inference.proposals.detections import Detections, flip_merged

    found = Detections(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [100, 0, 120, 20]], np.float32),
                       np.array([0.9, 0.8, 0.6], np.float32))
    mirrored = Detections(np.array([[2, 0, 12, 10], [49, 50, 60, 60], [200, 0, 210, 10]], np.float32),
                          np.array([0.3, 0.8, 0.5], np.float32))
    merged = flip_merged(found, mirrored, 0.5)
    np.testing.assert_allclose(merged.scores, [0.8, 0.6, 0.3, 0.25])
    np.testing.assert_allclose(merged.boxes, [[49.5, 50, 60, 60], [0.5, 0, 10.5, 10], [100, 0, 120, 20],
                                              [200, 0, 210, 10]])
    swapped = flip_merged(mirrored, found, 0.5)
    np.testing.assert_allclose(swapped.scores, merged.scores)
    np.testing.assert_allclose(swapped.boxes, merged.boxes)
    # a box of one view near two of the other pairs with the closer (the same box, mean 0.35), not the
    # surer (which would give 0.7); the surer, alone at 0.45, then suppresses the pair
    near = Detections(np.array([[0, 0, 10, 10], [1, 0, 11, 10]], np.float32), np.array([0.9, 0.2], np.float32))
    one = Detections(np.array([[1, 0, 11, 10]], np.float32), np.array([0.5], np.float32))
    merged = flip_merged(near, one, 0.5)
    np.testing.assert_allclose(merged.scores, [0.45])
    np.testing.assert_allclose(merged.boxes, [[0, 0, 10, 10]])


@pytest.mark.parametrize("flip", ["yes", 1, None])
def test_flip_must_be_true_or_false(flip):
    with pytest.raises(ValueError, match="flip"):
        DetectorProposals(probe_net(), flip=flip, options=TORCH)


@pytest.mark.parametrize("cap", [0, -3, 2.5, True])
def test_max_candidates_must_be_a_positive_whole_number(cap):
    with pytest.raises(ValueError, match="max_candidates"):
        DetectorProposals(probe_net(), max_candidates=cap, options=TORCH)


@pytest.mark.parametrize("passes", [(0.5,), (1.0, 0.0), (1.0, 1.0), (1.0, 2.0), "fast", ()])
def test_passes_must_be_scales_with_the_working_size(passes):
    with pytest.raises(ValueError, match="passes"):
        DetectorProposals(probe_net(), passes=passes, options=TORCH)
    assert DetectorProposals(probe_net(), passes=[0.25, 1, 0.5], options=TORCH).passes == (1.0, 0.5, 0.25)


def test_mild_shrinking_is_bilinear_and_strong_shrinking_averages():
    """As training's windows (bilinear warps) down to half size; area averaging below, against aliasing."""
    import cv2

    image = np.random.default_rng(3).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    for min_face, interpolation in ((20, cv2.INTER_LINEAR), (40, cv2.INTER_AREA)):  # scales 0.8 and 0.4
        canvas, sx, sy = DetectorProposals(probe_net(), min_face=min_face, options=TORCH).working_image(image)
        ww, wh = round(120 * sx), round(100 * sy)
        want = cv2.resize(image, (ww, wh), interpolation=interpolation)
        np.testing.assert_array_equal(canvas[0, :wh, :ww], want)


def test_the_refine_scorer_sees_roi_align_crops():
    """Its crops are sampled as its training crops were (torchvision's roi_align): its probabilities and
    boxes are the network's on those crops, up to the one grey level the sampling may differ by."""
    from torchvision.ops import roi_align

    from hyperface.models.deploy import deployable

    torch.manual_seed(4)
    model = create_model("hyperface-proposal-refine").eval()
    with torch.no_grad():  # answers that change with the crop's content
        model.score.weight.mul_(30.0)
        model.box.weight.mul_(10.0)
    image = np.random.default_rng(4).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    scorer = RefineScorer(load_runtime(model, TORCH))
    whole = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    boxes = np.array([[10.3, 20.7, 40.2, 60.9], [70, 12, 100, 50.5],  # inside
                      [-0.5, -0.5, 30, 35], [100, 60, 129.5, 89.5],  # at the corners
                      [5, 5, 6.5, 7]], np.float32)  # tiny
    crops = roi_align(whole, [torch.from_numpy(boxes)], (24, 24), 1.0, 2, aligned=False).round_().clamp_(0, 255)
    with torch.inference_mode():
        prob, reg = deployable(model)(crops.permute(0, 2, 3, 1).to(torch.uint8))
    refined, got = scorer(image, boxes)
    assert got.dtype == refined.dtype == np.float32 and refined.shape == (5, 4)
    np.testing.assert_allclose(got, prob.numpy(), atol=5e-3)  # a crop one pixel off: 0.05
    wh, centre = boxes[:, 2:] - boxes[:, :2], (boxes[:, :2] + boxes[:, 2:]) / 2
    want = np.concatenate([centre + reg.numpy()[:, :2] * wh, centre + reg.numpy()[:, 2:] * wh], axis=1)
    np.testing.assert_allclose(refined, want, atol=0.05)
    assert scorer(image, boxes[:0])[0].shape == (0, 4)
    with pytest.raises(ValueError, match="not a refine network"):
        RefineScorer(load_runtime(probe_net(), TORCH))


FIVE_IN_BOX = np.array([[-0.2, -0.15], [0.2, -0.15], [0.0, 0.05], [-0.15, 0.25], [0.17, 0.25]], np.float32)


def constant_point_stage(tmp_path):
    """A point stage that answers ``FIVE_IN_BOX`` (box units about its centre) whatever it sees, as a file."""
    from hyperface.models.point_refiner import hyperface_point_refiner

    net = hyperface_point_refiner().eval()
    with torch.no_grad():
        net.points.weight.zero_()
        net.points.bias.copy_(torch.from_numpy(FIVE_IN_BOX.reshape(-1)))
    return save_weights(net, tmp_path / "points.safetensors")


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_point_stage_reads_five_points_in_each_box_only_where_asked(tmp_path, backend):
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    image = np.full((120, 160, 3), 20, np.uint8)
    image[40:47, 50:57] = image[70:77, 110:117] = 250
    options = dict(min_face=12, smallest=12, threshold=0.5, rescore=None, options=RuntimeOptions(backend))
    src = DetectorProposals(probe_net(), points=constant_point_stage(tmp_path), **options)
    assert src.gives_points and str(tmp_path / "points.safetensors") in map(str, src.files())
    found = src.faces(image)
    assert len(found) == 2
    c = (found.boxes[:, None, :2] + found.boxes[:, None, 2:]) / 2
    wh = found.boxes[:, None, 2:] - found.boxes[:, None, :2]
    np.testing.assert_allclose(found.points, c + FIVE_IN_BOX * wh, atol=1e-3)
    runs = []
    stage = src._point_stage.runtime
    src._point_stage.runtime = lambda crops: runs.append(len(crops)) or stage(crops)
    assert src.faces(image, points=False).points is None and src.found(image, 0.5).points is None and runs == []
    np.testing.assert_allclose(src.found(image, 0.5, points=True).points, found.points, atol=1e-3)
    assert runs == [2]  # on the faces found, once
    headless = DetectorProposals(probe_net(), points=None, **options)
    assert not headless.gives_points and headless.faces(image).points is None


def test_weights_that_are_not_a_point_stage_name_the_file(proposal_weights):
    with pytest.raises(ValueError, match="is not a point stage"):
        DetectorProposals(probe_net(), points=proposal_weights, rescore=None)
