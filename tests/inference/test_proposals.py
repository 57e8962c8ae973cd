"""Candidate sources: the boxes file formats, the fast pyramid, selective search, and the name table."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hyperface.inference.proposals import (
    SOURCES, BoxesProposals, FastProposals, SelectiveSearchProposals, SourceContext, create_proposals, read_boxes_file,
)
from hyperface.inference.proposals.fast import pack_levels, pyramid_scales
from hyperface.models.proposal import STRIDE, WINDOW, hyperface_proposal
from hyperface.runtime import RuntimeOptions

TORCH = RuntimeOptions("torch")

from inference_stubs import blob_image


def test_boxes_file_formats(tmp_path):
    j = tmp_path / "b.json"
    j.write_text(json.dumps({"a.jpg": [[1, 2, 30, 40]], "dir/b.png": [[0, 0, 10, 10], [5, 5, 20, 20]]}))
    got = read_boxes_file(j)
    assert got["a.jpg"].shape == (1, 4) and got["dir/b.png"].shape == (2, 4)
    jl = tmp_path / "b.jsonl"  # our own --json output read back, with a video frame
    jl.write_text(json.dumps({"input": "v.mp4", "frame": 3, "faces": [{"box": [1, 1, 9, 9], "score": 1}]}) + "\n"
                  + json.dumps({"input": "c.jpg", "frame": None, "boxes": []}) + "\n")
    got = read_boxes_file(jl)
    np.testing.assert_allclose(got["v.mp4#3"], [[1, 1, 9, 9]])
    assert got["c.jpg"].shape == (0, 4)
    t = tmp_path / "b.txt"
    t.write_text('# detector output\n"my photo.jpg" 10, 20, 50, 60 0.9\nother.jpg 1 2 3 4\n\n')
    got = read_boxes_file(t)
    np.testing.assert_allclose(got["my photo.jpg"], [[10, 20, 50, 60]])


def test_boxes_file_errors_name_the_line(tmp_path):
    t = tmp_path / "bad.txt"
    t.write_text("a.jpg 1 2 3 4\nb.jpg 5 6 1\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        read_boxes_file(t)
    t.write_text("a.jpg 10 10 5 20\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: box .* is empty"):
        read_boxes_file(t)
    j = tmp_path / "bad.jsonl"
    j.write_text('{"input": "a.jpg", "boxes": []}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        read_boxes_file(j)


def test_boxes_lookup_by_path_or_name(tmp_path):
    src = BoxesProposals({str(tmp_path / "x" / "a.jpg"): [[0, 0, 5, 5]], "y/a.jpg": [[1, 1, 6, 6]],
                          "b.jpg": [[2, 2, 7, 7]], "v.mp4#2": [[3, 3, 8, 8]]})
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    np.testing.assert_allclose(src(image, str(tmp_path / "x" / "a.jpg")), [[0, 0, 5, 5]])
    np.testing.assert_allclose(src(image, "/elsewhere/b.jpg"), [[2, 2, 7, 7]])  # by file name
    np.testing.assert_allclose(src(image, "/videos/v.mp4#2"), [[3, 3, 8, 8]])
    assert src(image, "unknown.jpg").shape == (0, 4)
    with pytest.raises(ValueError, match="ambiguous"):
        src(image, "/other/a.jpg")
    with pytest.raises(ValueError, match="needs the image's path"):
        src(image, None)


def test_source_names():
    assert set(SOURCES) == {"fast", "detector", "selective-search", "boxes"}
    assert isinstance(create_proposals("selective-search"), SelectiveSearchProposals)
    for bad, msg in (("haar", "unknown candidate source"), ("boxes", "needs a file"),
                     ("selective-search:x", "takes no ':' argument")):
        with pytest.raises(ValueError, match=msg):
            create_proposals(bad)
    with pytest.raises(TypeError, match="a name or a ProposalSource"):
        create_proposals(42)
    source = SelectiveSearchProposals()
    assert create_proposals(source) is source and source.files() == []


def test_each_source_decides_which_options_it_takes(tmp_path, proposal_weights):
    assert create_proposals("selective-search", max_proposals=7).max_proposals == 7
    boxes = tmp_path / "b.txt"
    boxes.write_text("a.jpg 1 2 30 40\n")
    assert create_proposals(f"boxes:{boxes}").files() == [str(boxes)]
    for spec in ("selective-search", f"boxes:{boxes}"):  # sources without a network take no min_face
        with pytest.raises(ValueError, match=f"candidate source '{spec.partition(':')[0]}' has no option "
                                             r"'min_face' \(it takes: .*\)"):
            create_proposals(spec, min_face=30)
    with pytest.raises(ValueError, match=r"'selective-search' has no option 'max_candidates' \(it takes: .*max_proposals"):
        create_proposals("selective-search", max_candidates=5)
    with pytest.raises(ValueError, match="candidate source 'fast'.*min_fce"):
        create_proposals("fast", SourceContext(TORCH), weights=proposal_weights, min_fce=30)
    assert create_proposals("fast", SourceContext(TORCH), weights=proposal_weights, min_face=30).min_face == 30.0
    for cap in (0, -3, 2.5):  # a slice by them would return nothing, or drop the last candidates
        with pytest.raises(ValueError, match="the fast source's max_candidates"):
            create_proposals("fast", SourceContext(TORCH), weights=proposal_weights, max_candidates=cap)


def test_fast_from_a_train_proposals_folder(tmp_path, proposal_weights):
    """``fast:DIR`` loads the networks ``train-proposals --out DIR`` wrote (refine only when there)."""
    with pytest.raises(FileNotFoundError, match="hyperface-proposal.safetensors"):
        create_proposals(f"fast:{tmp_path}")
    shutil.copy(proposal_weights, tmp_path / "hyperface-proposal.safetensors")
    src = create_proposals(f"fast:{tmp_path}", SourceContext(TORCH))
    assert isinstance(src, FastProposals) and src.refiner is None
    assert src.runtime.source == str(tmp_path / "hyperface-proposal.safetensors") and src.runtime.engine == "torch"
    assert src.files() == [str(tmp_path / "hyperface-proposal.safetensors")]
    image = blob_image(200, 150, [(120, 70, 30)])
    np.testing.assert_allclose(src(image), FastProposals(proposal_weights, refine=None, options=TORCH)(image))
    shutil.copy(proposal_weights, tmp_path / "hyperface-proposal-refine.safetensors")  # the wrong network there
    with pytest.raises(ValueError, match="not a refine network"):
        create_proposals(f"fast:{tmp_path}", SourceContext(TORCH))


def test_pyramid_scales():
    s = pyramid_scales(640, 480, min_face=20, scale_factor=0.5)
    assert s[0] == pytest.approx(WINDOW / 20)
    assert all(480 * x >= WINDOW for x in s) and 480 * s[-1] * 0.5 < WINDOW
    assert pyramid_scales(640, 480, 20, 0.5, max_face=80)[-1] >= WINDOW / 80 * 0.5
    with pytest.raises(ValueError):
        pyramid_scales(640, 480, 0, 0.7)


def test_fast_finds_the_bright_windows_same_in_torch_and_onnx(proposal_weights):
    pytest.importorskip("onnxruntime")
    image = blob_image(200, 150, [(120, 70, 30)])
    boxes = {}
    for backend in ("torch", "onnx"):
        src = FastProposals(proposal_weights, min_face=40, refine=None, options=RuntimeOptions(backend))
        assert src.runtime.engine == backend
        boxes[backend] = src(image)
    assert len(boxes["torch"]) > 0
    np.testing.assert_allclose(boxes["torch"], boxes["onnx"], atol=1e-3)
    centres = (boxes["torch"][:, :2] + boxes["torch"][:, 2:]) / 2
    assert np.all(np.hypot(centres[:, 0] - 120, centres[:, 1] - 70) < 30)  # all on the blob
    assert len(FastProposals(proposal_weights, refine=None)(np.zeros((100, 100, 3), np.uint8))) == 0


def _level_sizes(w: int, h: int, min_face: float = 20, scale_factor: float = 0.709) -> list[tuple[int, int]]:
    return [(max(WINDOW, round(w * s)), max(WINDOW, round(h * s)))
            for s in pyramid_scales(w, h, min_face, scale_factor)]


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1920, 1080), (100, 100), (3000, 200)])
def test_pack_levels_keeps_levels_apart_on_the_stride_grid(size):
    sizes = _level_sizes(*size)
    cw, ch, corners = pack_levels(sizes)
    rects = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes)]
    for x0, y0, x1, y1 in rects:
        assert x0 % STRIDE == 0 and y0 % STRIDE == 0
        assert x0 >= 0 and y0 >= 0 and x1 <= cw and y1 <= ch
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:  # a gap of at least one window along x or along y
            assert b[0] - a[2] >= WINDOW or a[0] - b[2] >= WINDOW or b[1] - a[3] >= WINDOW or a[1] - b[3] >= WINDOW
    area = sum(w * h for w, h in sizes)
    assert cw * ch < (1.2 if min(size) >= 480 else 1.6) * area  # little waste besides the gaps
    assert pack_levels([(37, 21)]) == (37, 21, [(0, 0)])


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_packed_scan_gives_the_per_level_windows(backend):
    """Every window (threshold 0) of a random network on noise: one call on the canvas = one call per level."""
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = hyperface_proposal()
    rng = np.random.default_rng(0)
    for w, h in ((203, 151), (62, 300), (30, 17)):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        got = {}
        for packed in (True, False):
            src = FastProposals(net, min_face=16, threshold=0.0, refine=None, options=RuntimeOptions(backend),
                                packed=packed)
            got[packed] = src.scan(image)
        (win, box, score, level), (win1, box1, score1, level1) = got[True], got[False]
        n_levels = len(pyramid_scales(w, h, 16, 0.709))
        assert len(win) == len(win1) > 0 and level.max().item() == n_levels - 1
        np.testing.assert_array_equal(level, level1)
        np.testing.assert_allclose(win, win1, atol=1e-4)
        np.testing.assert_allclose(box, box1, atol=1e-3)
        np.testing.assert_allclose(score, score1, atol=1e-5)
        assert score.std() > 1e-3  # a network whose answers differ from window to window


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_packed_and_per_level_find_faces_at_the_first_and_last_level(proposal_weights, backend):
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    # levels at scales 0.8, 0.4, 0.2, 0.1: the small disk fills a window only at the first, the large
    # one also at the last
    image = blob_image(300, 300, [(50, 50, 10), (190, 190, 90)])
    found = {}
    for packed in (True, False):
        src = FastProposals(proposal_weights, min_face=20, scale_factor=0.5, refine=None,
                            options=RuntimeOptions(backend), packed=packed)
        win, _, score, level = src.scan(image)
        centres = (win[:, :2] + win[:, 2:]) / 2
        small = np.hypot(centres[:, 0] - 50, centres[:, 1] - 50) < 15
        large = np.hypot(centres[:, 0] - 190, centres[:, 1] - 190) < 90
        assert (small | large).all()
        assert set(level[small].tolist()) == {0}
        assert 3 in level[large].tolist()
        found[packed] = src(image)
    np.testing.assert_allclose(found[True], found[False], atol=1e-4)


def test_selective_search_gives_boxes_in_the_image():
    image = blob_image(160, 120, [(50, 60, 20), (120, 40, 15)])
    boxes = SelectiveSearchProposals(max_proposals=50)(image)
    assert 0 < len(boxes) <= 50
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 160).all() and (boxes[:, 3] <= 120).all()


def test_levels_are_packed_by_default_with_pytorch_only(proposal_weights):
    onnx = RuntimeOptions("onnx")
    assert FastProposals(proposal_weights, refine=None, options=TORCH).packed
    assert not FastProposals(proposal_weights, refine=None, options=onnx).packed
    assert FastProposals(proposal_weights, refine=None, options=onnx, packed=True).packed
