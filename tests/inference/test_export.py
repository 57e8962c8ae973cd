"""ONNX export: parity with PyTorch (dynamic batch), the analyzer's onnx backend gives the same faces, the shipped
ONNX files are the shipped weights, and an exported pipeline gives the bundled model's faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from hyperface.cli.main import main  # noqa: E402
from hyperface.export import check_onnx, export_onnx, export_pipeline, onnx_bytes  # noqa: E402
from hyperface.inference import FaceAnalyzer  # noqa: E402
from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path, bundled, parse_model_spec  # noqa: E402
from hyperface.inference.bundle import ROLES, Bundle  # noqa: E402
from hyperface.inference.proposals import FastProposals  # noqa: E402
from hyperface.models.registry import create_model  # noqa: E402
from hyperface.models.weights import load_model, save_weights  # noqa: E402
from hyperface.runtime import load_runtime  # noqa: E402

from inference_stubs import BlobNet, blob_image  # noqa: E402


@pytest.fixture(scope="module")
def compact():
    torch.manual_seed(0)
    return create_model("hyperface-compact", input_size=32, num_points=68).eval()


def test_export_matches_pytorch_with_dynamic_batch(compact, tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    diffs = export_onnx(compact, path)  # torch.export-based, checked on batches of 1 and 3
    assert set(diffs) == set(compact.config.tasks)
    assert max(diffs.values()) < 1e-4
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == list(compact.config.tasks)
    (pixels,) = proto.graph.input
    assert pixels.name == "pixels" and pixels.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = pixels.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [32, 32, 3]  # (batch, S, S, 3)
    assert {p.key for p in proto.metadata_props} >= {"hyperface_config", "hyperface_io"}
    assert max(check_onnx(compact, path).values()) < 1e-4
    assert not compact.training


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


def test_two_networks_of_one_architecture_keep_their_own_files(compact, tmp_path):
    """Stage two and its fine landmark network share an architecture (and often a weights file name)."""
    torch.manual_seed(0)
    second = create_model("hyperface-aligned", tasks=("landmarks", "pose", "gender"), num_points=68).eval()
    fine = create_model("hyperface-aligned", tasks=("landmarks",), num_points=68).eval()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sources = {"stage_one": save_weights(compact, tmp_path / "c.safetensors"),
               "stage_two": save_weights(second, tmp_path / "a" / "last.safetensors"),
               "fine": save_weights(fine, tmp_path / "b" / "last.safetensors")}
    export_pipeline(tmp_path / "out", {"stage_one": compact, "stage_two": second, "fine": fine}, sources)
    networks = Bundle.read(tmp_path / "out").networks
    assert networks["fine"].onnx != networks["stage_two"].onnx and networks["fine"].weights != networks["stage_two"].weights
    assert load_runtime(networks["fine"].onnx).config.tasks == ("landmarks",)
    assert load_model(networks["fine"].weights).config.tasks == ("landmarks",)
    assert load_model(networks["stage_two"].weights).config.tasks == ("landmarks", "pose", "gender")
    # a fine network without a stage two to align it is refused by the command line
    assert main(["export", "--out", str(tmp_path / "no-stage-two"), "--weights", str(sources["stage_one"]),
                 "--fine", str(sources["fine"])]) == 1


def test_the_bundled_onnx_files_are_the_bundled_weights():
    """Each shipped network's ONNX file answers as PyTorch does with the shipped weights beside it."""
    pipeline = bundled()
    assert set(pipeline.networks) == set(ROLES)
    for role, files in pipeline.networks.items():
        model = load_model(files.weights)
        diffs = check_onnx(model, files.onnx)
        assert set(diffs) == set(load_runtime(files.onnx).io.outputs) and max(diffs.values()) < 1e-3, (role, diffs)


def _photos(root: Path | None) -> list[str]:
    """The example photo, and a group photo of dlib's faces when the development data is here."""
    photos = [str(asset_path(EXAMPLE_IMAGE))]
    if root is not None and (root / "dlib_faces" / "2008_002470.jpg").is_file():
        photos.append(str(root / "dlib_faces" / "2008_002470.jpg"))  # six faces, small to large
    return photos


def test_an_exported_pipeline_gives_the_bundled_faces(exported_pipeline, optional_data, tmp_path):
    folder = exported_pipeline
    exported = Bundle.read(folder)
    assert set(exported.networks) == set(bundled().networks)
    assert all(f.onnx.parent == folder and f.weights.parent == folder for f in exported.networks.values())
    assert parse_model_spec(str(folder)) == (str(folder), "auto")
    ours, reference = FaceAnalyzer(weights=folder), FaceAnalyzer()
    runtimes = [ours.stage_one.runtime, ours.stage_two.network, ours.stage_two.fine.runtime, ours.proposals.runtime,
                ours.proposals._rescorer.runtime]
    assert all(Path(r.source).parent == folder and r.engine == "onnx" for r in runtimes)  # every network from there
    for photo in _photos(optional_data):
        got, want = ours(photo), reference(photo)
        assert len(got) == len(want) >= 1
        for a, b in zip(got, want):
            for name in ("box", "landmarks", "pose", "visibility"):
                np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-3, err_msg=f"{photo} {name}")
            assert a.score == pytest.approx(b.score, abs=1e-3) and a.gender == b.gender
            assert a.gender_probability == pytest.approx(b.gender_probability, abs=1e-3)
            assert a.sources == b.sources and a.sources["pose"] == "stage2"
    # the command line reads it the same way: stage two included
    out = tmp_path / "faces.jsonl"
    assert main(["analyze", "--example", "--weights", str(folder), "--json", str(out), "--no-progress"]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    want = reference(str(asset_path(EXAMPLE_IMAGE)))[0]
    assert record["faces"][0]["sources"]["landmarks"] == "stage2"
    np.testing.assert_allclose(record["faces"][0]["box"], want.box, atol=0.01)  # JSON keeps 2 decimals
