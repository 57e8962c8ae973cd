"""Library surface that moved out of the CLI or got one owner: the video API, the ONNX plumbing, the cached
in-memory exports, ``main(argv)`` without global state."""

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

    from hyperface import export, runtime
    from hyperface.models import config, weights

    assert weights.CONFIG_KEY == config.CONFIG_KEY == "hyperface_config" and runtime.IO_KEY == "hyperface_io"
    assert runtime.session_options(threads=3).intra_op_num_threads == 3
    proto = onnx.load_from_string(export.onnx_bytes(BlobNet(), dynamo=False))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [export.OPSET]
    assert {p.key for p in proto.metadata_props} == {config.CONFIG_KEY, runtime.IO_KEY, "hyperface_version"}
    assert [i.name for i in proto.graph.input] == ["pixels"]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    net = runtime.load_runtime(BlobNet(), runtime.RuntimeOptions("onnx", threads=2))
    assert net.config.arch == "stub-blob" and net.engine == "onnx" and net.io.outputs == BlobNet().config.tasks


def test_equal_networks_are_exported_once_per_process(proposal_weights, exports):
    from hyperface.inference.proposals import FastProposals
    from hyperface.runtime import RuntimeOptions

    image = np.zeros((64, 80, 3), dtype=np.uint8)
    image[16:48, 20:52] = 255
    first = FastProposals(proposal_weights, min_face=24, options=RuntimeOptions("onnx"))
    second = FastProposals(proposal_weights, min_face=24, options=RuntimeOptions("onnx"))
    assert exports == ["ProposalNet"]  # the bundled refine network ships as ONNX: never exported
    (_, a, sa, _), (_, b, sb, _) = first.scan(image), second.scan(image)  # the windows the refine network sees
    assert len(a) > 0
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    third = FastProposals(proposal_weights, min_face=24, options=RuntimeOptions("torch"))
    _, c, sc, _ = third.scan(image)
    np.testing.assert_allclose(c, a, atol=1e-3)
    np.testing.assert_allclose(sc, sa, atol=1e-5)
    assert exports == ["ProposalNet"]
