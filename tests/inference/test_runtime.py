"""``hyperface.runtime``: one network behind one call (uint8 pixels in, named float arrays out), the same
answers from onnxruntime and PyTorch, ONNX files checked against their own metadata, old exports still
read, and an inference process that never imports PyTorch."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hyperface.export import onnx_bytes  # noqa: E402
from hyperface.models.config import CONFIG_KEY  # noqa: E402
from hyperface.models.registry import create_model  # noqa: E402
from hyperface.models.weights import save_weights  # noqa: E402
from hyperface.runtime import IO_KEY, NetworkIO, RuntimeOptions, load_runtime, network_io  # noqa: E402

ONNX, TORCH = RuntimeOptions("onnx"), RuntimeOptions("torch")
SRC = Path(__file__).resolve().parents[2] / "src"


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics (folded by the torch engine, normalised by the ONNX graph)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def compact() -> torch.nn.Module:
    torch.manual_seed(0)
    return _randomise(create_model("hyperface-compact", input_size=32, num_points=5, point_set="five"))


@pytest.fixture(scope="module")
def compact_onnx(compact, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "compact.onnx"
    path.write_bytes(onnx_bytes(compact, dynamo=False))
    return path


def _pixels(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("arch, shape", [("hyperface-compact", (3, 32, 32, 3)),
                                         ("hyperface-detector", (1, 128, 192, 3)),
                                         ("hyperface-proposal", (1, 37, 50, 3)),
                                         ("hyperface-proposal-refine", (4, 24, 24, 3))])
def test_onnx_and_torch_engines_give_the_same_outputs(arch, shape):
    torch.manual_seed(1)
    kwargs = {"input_size": 32} if arch == "hyperface-compact" else {}
    model = _randomise(create_model(arch, **kwargs))
    pixels = _pixels(shape)
    by_onnx, by_torch = load_runtime(model, ONNX), load_runtime(model, TORCH)
    assert not any(m.training for m in model.modules())  # exporting and deploying leave the model as it was
    assert (by_onnx.engine, by_torch.engine) == ("onnx", "torch")
    assert by_onnx.io == by_torch.io == network_io(model.config)
    a, b = by_onnx(pixels), by_torch(pixels)
    assert list(a) == list(b) == list(by_onnx.io.outputs)
    for name in a:
        assert a[name].dtype == b[name].dtype == np.float32 and a[name].shape == b[name].shape
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-4, err_msg=name)
    assert any(a[name].std() > 1e-3 for name in a)  # a network whose answers depend on the pixels


def test_the_graph_normalises_the_pixels_as_the_config_says(compact, compact_onnx):
    """The ONNX file's answers equal the model's own on the normalised crop (the pixel contract)."""
    pixels = _pixels((2, 32, 32, 3), seed=3)
    mean, std = (torch.tensor(v)[:, None, None] for v in (compact.config.mean, compact.config.std))
    x = (torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.no_grad():
        want = compact(x)
    got = load_runtime(compact_onnx)(pixels)
    for task in compact.config.tasks:
        np.testing.assert_allclose(got[task], want[task].numpy(), rtol=1e-4, atol=1e-4)


def test_a_runtime_checks_its_input_and_answers_empty_batches(compact, compact_onnx):
    rt = load_runtime(compact_onnx, batch_size=2)
    assert rt.config == compact.config and rt.engine == "onnx" and rt.source == str(compact_onnx)
    with pytest.raises(ValueError, match="uint8"):
        rt(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="32 x 32 crops"):
        rt(np.zeros((1, 24, 24, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        rt(np.zeros((1, 3, 32, 32), np.uint8))
    empty = rt(np.zeros((0, 32, 32, 3), np.uint8))
    assert {k: v.shape for k, v in empty.items()} == {"detection": (0, 2), "landmarks": (0, 5, 2), "visibility": (0, 5),
                                                      "pose": (0, 3), "gender": (0, 2)}
    pixels = _pixels((5, 32, 32, 3), seed=4)
    chunked, whole = rt(pixels), load_runtime(compact_onnx, batch_size=64)(pixels)  # 3 calls of <= 2 against 1
    for k in whole:
        np.testing.assert_allclose(chunked[k], whole[k], rtol=1e-5, atol=1e-6)
    detector = load_runtime(create_model("hyperface-detector"), TORCH)
    with pytest.raises(ValueError, match="multiples of 64"):
        detector(np.zeros((1, 100, 128, 3), np.uint8))


def test_a_runtime_pads_with_its_mean_colour(compact):
    assert load_runtime(compact, TORCH).pad_value.tolist() == [124, 116, 104]  # ImageNet's mean in pixels
    assert load_runtime(create_model("hyperface-detector"), TORCH).pad_value.tolist() == [128, 128, 128]


def test_sources_that_cannot_run_are_clear_errors(compact_onnx, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        load_runtime(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match=r"compact.onnx.*backend='onnx'"):
        load_runtime(compact_onnx, TORCH)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="garbage.onnx: onnxruntime cannot load it"):
        load_runtime(garbage)
    with pytest.raises(TypeError, match="not a hyperface model"):
        load_runtime(torch.nn.Linear(2, 2), TORCH)


def _edit_metadata(source: Path, target: Path, drop_output: str | None = None, **entries: str | None) -> Path:
    """A copy of the ONNX file ``source`` whose metadata ``entries`` are replaced (None: removed), and
    without the graph output ``drop_output``."""
    proto = onnx.load(str(source))
    kept = {p.key: p.value for p in proto.metadata_props}
    for key, value in entries.items():
        if value is None:
            kept.pop(key, None)
        else:
            kept[key] = value
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, kept)
    if drop_output is not None:
        (out,) = [o for o in proto.graph.output if o.name == drop_output]
        proto.graph.output.remove(out)
    onnx.save(proto, str(target))
    return target


def _metadata(path: Path, key: str) -> str:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}[key]


def _with(config_json: str, **changes) -> str:
    d = json.loads(config_json)
    d.update(changes)
    return json.dumps(d)


@pytest.mark.parametrize("edit, message", [
    ("io-output", "disagrees with its 'hyperface_config'"),
    ("io-size", "disagrees with its 'hyperface_config'"),
    ("io-kind", "disagrees with its 'hyperface_config'"),
    ("config-size", "disagrees with its 'hyperface_config'"),
    ("config-tasks", "disagrees with its 'hyperface_config'"),
    ("both-size", "48 x 48 crops"),
    ("graph-output", "promises output(s) ['gender'] that the graph lacks"),
    ("io-malformed", "malformed"),
    ("config-malformed", "not a valid model config"),
    ("config-missing", "without a 'hyperface_config'"),
])
def test_metadata_that_disagrees_with_the_graph_is_an_error_naming_the_file(compact_onnx, tmp_path, edit, message):
    io_, config = NetworkIO.from_json(_metadata(compact_onnx, IO_KEY)), _metadata(compact_onnx, CONFIG_KEY)
    entries = {
        "io-output": {IO_KEY: NetworkIO("crops", (*io_.outputs, "age"), 32).to_json()},
        "io-size": {IO_KEY: NetworkIO("crops", io_.outputs, 48).to_json()},
        "io-kind": {IO_KEY: NetworkIO("image", io_.outputs, align=64).to_json()},
        "config-size": {CONFIG_KEY: _with(config, input_size=48)},
        "config-tasks": {CONFIG_KEY: _with(config, tasks=["detection", "landmarks"])},
        "both-size": {CONFIG_KEY: _with(config, input_size=48), IO_KEY: NetworkIO("crops", io_.outputs, 48).to_json()},
        "graph-output": {"drop_output": "gender"},
        "io-malformed": {IO_KEY: '{"kind": "crops"}'},
        "config-malformed": {CONFIG_KEY: "{not json"},
        "config-missing": {CONFIG_KEY: None},
    }[edit]
    bad = _edit_metadata(compact_onnx, tmp_path / f"{edit}.onnx", **entries)
    with pytest.raises(ValueError, match=f"{edit}.onnx") as err:
        load_runtime(bad)
    assert message in str(err.value)
    load_runtime(_edit_metadata(compact_onnx, tmp_path / "same.onnx"))  # the unedited copy loads


def _legacy_onnx(model: torch.nn.Module) -> bytes:
    """An export as hyperface wrote them before the pixel contract: normalised (N, 3, S, S) ``input``, outputs
    named by task, only the config in the metadata."""

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            out = self.model(x)
            return tuple(out[t] for t in model.config.tasks)

    tasks = list(model.config.tasks)
    s = model.config.input_size
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter that wrote those files
        torch.onnx.export(Outputs().eval(), (torch.zeros(2, 3, s, s),), buf, input_names=["input"], output_names=tasks,
                          dynamic_axes={"input": {0: "batch"}, **{t: {0: "batch"} for t in tasks}}, opset_version=17,
                          dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(proto, {CONFIG_KEY: model.config.to_json()})
    return proto.SerializeToString()


def test_an_export_from_before_the_pixel_contract_still_loads_with_the_same_answers(compact, compact_onnx, tmp_path):
    old = tmp_path / "old.onnx"
    old.write_bytes(_legacy_onnx(compact))
    assert IO_KEY not in {p.key for p in onnx.load(str(old)).metadata_props}
    legacy, current = load_runtime(old), load_runtime(compact_onnx)
    assert legacy.io == current.io and legacy.config == current.config
    pixels = _pixels((3, 32, 32, 3), seed=5)
    a, b = legacy(pixels), current(pixels)
    for k in b:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-4, err_msg=k)
    # an old-style file of a whole-image network cannot be told how to feed it
    detector = tmp_path / "detector.onnx"
    detector.write_bytes(onnx_bytes(create_model("hyperface-detector"), dynamo=False))
    with pytest.raises(ValueError, match=r"no-io.onnx.*export it again"):
        load_runtime(_edit_metadata(detector, tmp_path / "no-io.onnx", **{IO_KEY: None}))


def test_a_weights_file_runs_with_either_engine(compact, tmp_path):
    path = save_weights(compact, tmp_path / "c.safetensors")
    pixels = _pixels((2, 32, 32, 3), seed=6)
    a, b = load_runtime(path, ONNX), load_runtime(path, TORCH)
    assert a.source == b.source == str(path) and (a.engine, b.engine) == ("onnx", "torch")
    for k, v in a(pixels).items():
        np.testing.assert_allclose(v, b(pixels)[k], rtol=1e-4, atol=1e-4)


def _modules_after(code: str) -> list[str]:
    """The heavy modules that ``code``, run in a fresh interpreter, leaves imported."""
    probe = code + "\nimport sys\nprint([m for m in ('torch', 'torchvision', 'scipy') if m in sys.modules])"
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_importing_hyperface_never_imports_torch():
    assert _modules_after("import hyperface\nimport hyperface.inference\nhyperface.FaceAnalyzer\n"
                          "import hyperface.models.config, hyperface.models.geometry\n"
                          "import hyperface.runtime, hyperface.boxes") == []


def test_a_whole_analysis_of_the_example_image_never_imports_torch():
    code = ("from hyperface import FaceAnalyzer\n"
            "from hyperface.inference.assets import EXAMPLE_IMAGE, asset_path\n"
            "faces = FaceAnalyzer()(str(asset_path(EXAMPLE_IMAGE)))\n"
            "assert len(faces) == 1 and faces[0].sources['landmarks'] == 'stage2', faces\n"
            "from hyperface.cli.main import main\n"
            "import tempfile, os\n"
            "out = os.path.join(tempfile.mkdtemp(), 'faces.jsonl')\n"
            "assert main(['analyze', '--example', '--json', out, '--no-progress']) == 0\n"
            "assert os.path.getsize(out) > 0\n")
    assert _modules_after(code) == []
