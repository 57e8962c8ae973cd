"""Library surface that moved out of the CLI or got one owner: the video API, the ONNX plumbing, the fast
source's cached exports, ``main(argv)`` without global state."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hyperface.cli.main import main
from hyperface.data.video import VideoFrames
from hyperface.inference import FaceAnalyzer
from hyperface.inference.proposals.boxes import BoxesProposals

from inference_stubs import BlobNet, write_video


def _analyzer(boxes_by_frame: dict[int, list[float]], path) -> FaceAnalyzer:
    """BlobNet with given candidates per frame (key PATH#FRAME), so every frame has its known face."""
    source = BoxesProposals({f"{path}#{i}": np.array([b], dtype=np.float32) for i, b in boxes_by_frame.items()})
    return FaceAnalyzer(BlobNet(), proposals=source, score_threshold=0.0, irp_rounds=0)


def test_video_yields_each_frame_with_its_time_and_faces(tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video, 6)
    boxes = {i: [14 + 4 * i, 16, 46 + 4 * i, 48] for i in range(6)}
    analyzer = _analyzer(boxes, video)
    frames = list(analyzer.video(video, batch_size=4))
    assert [f.index for f in frames] == list(range(6))
    assert [f.time for f in frames] == pytest.approx([i / 10 for i in range(6)])  # written at 10 fps
    with VideoFrames(video) as reader:
        for f in frames:
            assert f.error is None and len(f.faces) == 1
            np.testing.assert_array_equal(f.image, reader.read(f.index))
            (alone,) = analyzer(f.image, boxes=np.array([boxes[f.index]], dtype=np.float32))
            np.testing.assert_allclose(f.faces[0].box, alone.box, atol=1e-3)
    # the blob moves 4 pixels a frame: raw boxes follow it, smoothed ones lag behind but move the same way
    raw_x = [f.faces[0].box[0] for f in frames]
    smooth_x = [f.faces[0].box[0] for f in analyzer.video(video, smooth=True)]
    assert smooth_x[0] == pytest.approx(raw_x[0])
    assert all(s < r for s, r in zip(smooth_x[1:], raw_x[1:])) and smooth_x == sorted(smooth_x)


def test_video_reports_a_broken_frame_and_goes_on(tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video, 5, broken=2)
    analyzer = _analyzer({i: [14 + 4 * i, 16, 46 + 4 * i, 48] for i in range(5)}, video)
    frames = list(analyzer.video(video, batch_size=2))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert frames[2].image is None and frames[2].faces == [] and "clip.avi: frame 2" in frames[2].error
    assert all(f.error is None and len(f.faces) == 1 for i, f in enumerate(frames) if i != 2)


def test_main_leaves_sys_argv_alone(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["the-callers-program", "--its-own-flag"])
    assert main(["models", "--json"]) == 0
    assert sys.argv == ["the-callers-program", "--its-own-flag"]
    assert '"hyperface-compact"' in capsys.readouterr().out


def test_onnx_plumbing_has_one_owner(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    from hyperface import export, onnx_io
    from hyperface.inference import network
    from hyperface.models import weights

    assert weights.CONFIG_KEY == export.CONFIG_KEY == onnx_io.CONFIG_KEY == "hyperface_config"
    assert onnx_io.session_options(threads=3).intra_op_num_threads == 3
    proto = onnx.load_from_string(export.onnx_bytes(BlobNet()))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [onnx_io.OPSET]
    assert {p.key for p in proto.metadata_props} == {onnx_io.CONFIG_KEY}
    net = network.load_network(BlobNet(), backend="onnx", threads=2)
    assert net.config.arch == "stub-blob"


def test_fast_source_exports_once_and_not_in_its_constructor(proposal_weights, monkeypatch):
    pytest.importorskip("onnxruntime")
    from hyperface import onnx_io
    from hyperface.inference.proposals import FastProposals

    exports = []
    real = onnx_io.export_to_bytes

    def counting(module, *args, **kwargs):
        exports.append(type(module).__name__)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(onnx_io, "export_to_bytes", counting)
    monkeypatch.setattr(onnx_io, "_EXPORTS", {})
    image = np.zeros((64, 80, 3), dtype=np.uint8)
    image[16:48, 20:52] = 255
    first = FastProposals(proposal_weights, min_face=24, backend="onnx")
    second = FastProposals(proposal_weights, min_face=24, backend="onnx")
    assert exports == []  # constructing exports nothing
    a, b = first(image), second(image)
    np.testing.assert_array_equal(a, b)
    assert sorted(exports) == ["_Dense", "_Refine"]  # each network exported once for both sources
    third = FastProposals(proposal_weights, min_face=24, backend="torch")
    np.testing.assert_allclose(third(image), a, atol=1e-3)
    assert len(exports) == 2
