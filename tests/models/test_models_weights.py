"""Weights files: round trip, the config in the metadata, clear errors for files that do not fit."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hyperface.models import create_model, list_models, load_model, load_weights_into, read_config, save_weights
from hyperface.models.registry import create_model_from_config
from hyperface.models.weights import CONFIG_KEY

# Files of 135-350 MB (fc_full / fc6 dominate): their round trip runs with -m slow; the code path is
# the same for every architecture and the compact model covers BatchNorm buffers.
HEAVY = {"hyperface-alexnet", "hyperface-resnet", "rcnn-face"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in list_models()])
def test_save_load_round_trip(name, build, make_input, tmp_path):
    model = build(name)
    model.config.meta["notes"] = "round trip test"
    with torch.no_grad():  # make BatchNorm statistics non-trivial so they must be saved too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = save_weights(model, tmp_path / "sub" / "model.safetensors")
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temporary left behind
    loaded = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    x = make_input(model, batch=2)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    for task in a:
        torch.testing.assert_close(a[task], b[task], rtol=0, atol=0)


def test_config_is_in_the_file_metadata(build, tmp_path):
    model = build("hyperface-compact", tasks=["landmarks", "pose"], num_points=68, width=0.5)
    model.config.meta.update({"licence": "CC BY-NC 4.0", "training_data": ["300W"]})
    path = save_weights(model, tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        stored = json.loads(f.metadata()[CONFIG_KEY])
    assert stored["arch"] == "hyperface-compact" and stored["tasks"] == ["landmarks", "pose"]
    assert stored["num_points"] == 68 and stored["point_set"] == "ibug68" and stored["input_size"] == 128
    assert stored["arch_kwargs"]["width"] == 0.5 and stored["meta"]["training_data"] == ["300W"]
    assert read_config(path) == model.config
    loaded = load_model(path)
    assert loaded.config.meta == {"licence": "CC BY-NC 4.0", "training_data": ["300W"]}


def test_load_weights_into_wrong_architecture_names_the_keys(build, tmp_path):
    path = save_weights(build("hyperface-compact", num_points=68), tmp_path / "c68.safetensors")
    with pytest.raises(ValueError) as err:
        load_weights_into(build("hyperface-compact", num_points=21), path)
    msg = str(err.value)
    assert msg.startswith("weights do not fit architecture hyperface-compact: ")
    assert "c68.safetensors" in msg and "'hyperface-compact' weights" in msg
    assert "heads.out.landmarks.weight (file (136, 128) vs model (42, 128))" in msg

    resnet = build("hyperface-resnet", tasks=["landmarks"])
    with pytest.raises(ValueError, match="weights do not fit architecture hyperface-resnet") as err:
        load_weights_into(resnet, path)
    msg = str(err.value)
    assert "missing keys: proj.layer1.0.weight" in msg and "holds 'hyperface-compact' weights" in msg
    assert "unexpected keys: heads.fc.detection.bias" in msg
    assert "conv_all.0.weight (file (64, 256, 1, 1) vs model (192, 1280, 1, 1))" in msg
    assert "more)" in msg  # long lists are cut short


def test_load_model_refuses_files_without_config(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ValueError, match=r"plain.safetensors: not a hyperface weights file .*load_weights_into"):
        load_model(plain)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match="broken.safetensors: not a readable safetensors file"):
        load_model(broken)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_model(tmp_path / "missing.safetensors")


def test_load_model_refuses_an_unknown_or_invalid_config(build, tmp_path):
    model = build("hyperface-compact")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    cfg = model.config.to_dict()
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={CONFIG_KEY: json.dumps({**cfg, "arch": "hyperface-vgg"})})
    with pytest.raises(ValueError, match="bad.safetensors: unknown model 'hyperface-vgg'"):
        load_model(bad)
    save_file(tensors, str(bad), metadata={CONFIG_KEY: json.dumps({**cfg, "resolution": 3})})
    with pytest.raises(ValueError, match=r"bad.safetensors: invalid model config: unknown model config key"):
        load_model(bad)


def test_create_model_from_config_never_guesses(build):
    config = build("hyperface-compact").config
    config.input_size = 112  # no longer what arch_kwargs builds
    with pytest.raises(ValueError, match="does not rebuild the same network"):
        create_model_from_config(config)


def test_load_model_map_location(build, tmp_path):
    path = save_weights(build("hyperface-compact"), tmp_path / "m.safetensors")
    model = load_model(path, map_location=torch.device("cpu"))
    assert next(model.parameters()).device.type == "cpu"


def test_save_refuses_non_hyperface_modules(tmp_path):
    with pytest.raises(TypeError, match="no ModelConfig"):
        save_weights(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())


def test_weights_survive_device_round_trip_via_create_model(tmp_path):
    torch.manual_seed(3)
    model = create_model("hyperface-compact", tasks=["landmarks"], num_points=5)
    path = save_weights(model, tmp_path / "m.safetensors")
    fresh = create_model("hyperface-compact", tasks=["landmarks"], num_points=5)
    load_weights_into(fresh, path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k


def test_non_finite_weights_are_refused_naming_file_and_tensor(build, tmp_path):
    model = build("hyperface-compact", num_points=5)
    with torch.no_grad():
        model.heads.out.landmarks.weight[0, 0] = float("nan")
    path = save_weights(model, tmp_path / "diverged.safetensors")
    with pytest.raises(ValueError, match=r"diverged.safetensors: non-finite .*heads.out.landmarks.weight"):
        load_model(path)
    with pytest.raises(ValueError, match="heads.out.landmarks.weight"):
        load_weights_into(build("hyperface-compact", num_points=5), path)


_PEAK_SCRIPT = """
import resource, sys
from hyperface.models import load_model
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_model(sys.argv[1])
    print("loaded")
except ValueError as exc:
    print("refused:", exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_metadata_asking_for_a_huge_layer_is_refused_before_the_network_is_built(build, tmp_path):
    """A small file whose config asks for fc_channels 60,000 (a 1 GB layer; 2,000,000 asks for 32 GB)."""
    import subprocess
    import sys

    model = build("hyperface-compact")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    config = model.config.to_dict()
    config["arch_kwargs"]["fc_channels"] = 60_000
    hostile = tmp_path / "huge.safetensors"
    save_file(tensors, str(hostile), metadata={CONFIG_KEY: json.dumps(config)})
    assert hostile.stat().st_size < 10_000_000
    run = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(hostile)], capture_output=True, text=True,
                         check=True)
    verdict, grown_mb = run.stdout.strip().rsplit("\n", 1)
    assert verdict.startswith(f"refused: weights do not fit architecture hyperface-compact: {hostile}: ")
    assert "fc_full.weight (file (256, 4096) vs model (60000, 4096))" in verdict
    assert int(grown_mb) < 100  # the 1 GB network was never allocated
