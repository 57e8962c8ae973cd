"""ONNX export: parity with PyTorch (dynamic batch), and the analyzer's onnx backend gives the same faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from hyperface.cli.main import main  # noqa: E402
from hyperface.export import check_onnx, export_onnx, onnx_bytes  # noqa: E402
from hyperface.inference import FaceAnalyzer  # noqa: E402
from hyperface.inference.proposals import FastProposals  # noqa: E402
from hyperface.models.registry import create_model  # noqa: E402
from hyperface.models.weights import save_weights  # noqa: E402

from inference_stubs import BlobNet, blob_image  # noqa: E402


@pytest.fixture(scope="module")
def compact():
    torch.manual_seed(0)
    return create_model("hyperface-compact", input_size=32, num_points=68).eval()


def test_export_matches_pytorch_with_dynamic_batch(compact, tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    diffs = export_onnx(compact, path)
    assert set(diffs) == set(compact.config.tasks)
    assert max(diffs.values()) < 1e-4
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == list(compact.config.tasks)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert any(p.key == "hyperface_config" for p in proto.metadata_props)
    assert max(check_onnx(compact, path, batch_sizes=(5,)).values()) < 1e-4


def test_onnx_backend_gives_the_same_faces(proposal_weights):
    image = blob_image(240, 160, [(60, 50, 18), (170, 90, 24)])
    opts = dict(irp_rounds=3, irp_threshold=0.05)
    src = FastProposals(proposal_weights, min_face=32, refine=None)
    ref = FaceAnalyzer(BlobNet(), proposals=src, backend="torch", **opts)(image)
    got = FaceAnalyzer(BlobNet(), proposals=src, backend="onnx", **opts)(image)
    assert len(ref) == len(got) == 2
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a.box, b.box, atol=1e-3)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)
        np.testing.assert_allclose(a.pose, b.pose, atol=1e-3)
        assert a.score == pytest.approx(b.score, abs=1e-5) and a.gender == b.gender


def test_onnx_file_gives_the_same_compact_faces(compact, tmp_path):
    weights = save_weights(compact, tmp_path / "c.safetensors")
    onnx_path = tmp_path / "c.onnx"
    onnx_path.write_bytes(onnx_bytes(compact))
    image = blob_image(160, 120, [(80, 60, 20)])
    boxes = np.array([[50.0, 30, 110, 90], [20, 20, 60, 60], [90, 10, 150, 80]])
    kw = dict(proposals="selective-search", score_threshold=0.0, irp_rounds=1, irp_threshold=0.0)
    ref = FaceAnalyzer(weights, backend="torch", **kw)(image, boxes=boxes)
    got = FaceAnalyzer(onnx_path, backend="onnx", **kw)(image, boxes=boxes)  # config from the ONNX metadata
    assert len(got) == len(ref) > 0
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a.box, b.box, atol=1e-2)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-2)
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_export_cli(compact, tmp_path, capsys):
    weights = save_weights(compact, tmp_path / "c.safetensors")
    out = tmp_path / "sub" / "c.onnx"
    assert main(["export", "--weights", str(weights), "--onnx", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "max abs diff vs PyTorch" in text and "landmarks" in text
    assert main(["export", "--weights", str(tmp_path / "missing.safetensors"), "--onnx", str(out)]) == 1
    assert "missing.safetensors" in capsys.readouterr().err
