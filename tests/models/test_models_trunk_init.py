"""Trunk initialisation: from a trained R-CNN_Face, from torchvision ImageNet state dicts, offline errors."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from hyperface.models import create_model, init_trunk_from_rcnn, save_weights
from hyperface.models.alexnet import alexnet_trunk_tensors
from hyperface.models.weights import imagenet_state_dict, read_state_dict
from hyperface.models.rcnn import TRUNK_KEYS

TV_CONV = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_init_trunk_from_rcnn_model(build):
    hyper = build("hyperface-alexnet")
    torch.manual_seed(5)  # a trunk different from hyper's
    rcnn = create_model("rcnn-face")
    before = _snapshot(hyper)
    copied = init_trunk_from_rcnn(hyper, rcnn)
    assert copied == sorted(TRUNK_KEYS) and len(copied) == 10
    src, dst = rcnn.state_dict(), hyper.state_dict()
    for key in TRUNK_KEYS:
        assert torch.equal(src[key], dst[key]) and not torch.equal(before[key], dst[key]), key
    for key in ("conv1a.weight", "fc_full.weight", "heads.fc.landmarks.weight"):
        assert torch.equal(before[key], dst[key])  # nothing else touched
    assert hyper.config.meta["trunk_init"] == "rcnn-face: rcnn-face model"


@pytest.mark.slow  # writes and reads a 233 MB file
def test_init_trunk_from_rcnn_file(build, tmp_path):
    rcnn = build("rcnn-face")
    path = save_weights(rcnn, tmp_path / "rcnn.safetensors")
    hyper = build("hyperface-alexnet", tasks=["landmarks"])
    assert init_trunk_from_rcnn(hyper, path) == sorted(TRUNK_KEYS)
    for key in TRUNK_KEYS:
        assert torch.equal(rcnn.state_dict()[key], hyper.state_dict()[key])


def test_init_trunk_from_rcnn_shape_mismatch_copies_nothing(build):
    source = build("hyperface-alexnet", trunk="torchvision")  # any model with an AlexNet trunk is a source
    hyper = build("hyperface-alexnet", tasks=["landmarks"])
    before = _snapshot(hyper)
    with pytest.raises(ValueError, match=r"cannot initialise hyperface-alexnet from hyperface-alexnet model: shape "
                                         r"mismatches: trunk.conv1.bias \(source \(64,\) vs model \(96,\)\)"):
        init_trunk_from_rcnn(hyper, source)
    assert all(torch.equal(before[k], v) for k, v in hyper.state_dict().items())
    with pytest.raises(ValueError, match="has no AlexNet trunk"):
        init_trunk_from_rcnn(hyper, build("hyperface-compact"))


def _random_like(builder, keep=lambda key: True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under a torchvision model's own names and shapes (built on meta: no init cost)."""
    with torch.device("meta"):
        reference = builder(weights=None).state_dict()
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype))
            for k, v in reference.items() if keep(k)}


def test_resnet_imagenet_init_from_local_file(tmp_path):
    torch.manual_seed(7)
    state = torchvision.models.resnet18(weights=None).state_dict()  # a real torchvision state dict
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model = create_model("hyperface-resnet", depth=18, pretrained_trunk=str(path))
    trunk_keys = [k for k in model.state_dict() if k.startswith("trunk.")]
    assert len(trunk_keys) == len([k for k in state if not k.startswith("fc.")])
    for key in trunk_keys:
        assert torch.equal(model.state_dict()[key], state[key[len("trunk."):]]), key
    assert model.config.meta["pretrained_trunk"] == str(path)
    # the same from a safetensors file
    other = _random_like(torchvision.models.resnet18, seed=3)
    st_path = tmp_path / "resnet18.safetensors"
    save_file(other, str(st_path))
    assert model.load_pretrained_trunk(str(st_path)) == sorted(trunk_keys)
    for key in trunk_keys:
        assert torch.equal(model.state_dict()[key], other[key[len("trunk."):]]), key


def test_resnet_init_from_wrong_depth_is_a_clear_error(tmp_path):
    state = _random_like(torchvision.models.resnet34)
    path = tmp_path / "resnet34.pth"
    torch.save(state, path)  # its first blocks fit ResNet-18's shapes: only the extra blocks give it away
    model = create_model("hyperface-resnet", depth=18)
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"not a torchvision ResNet-18 state dict; \d+ tensors the trunk does not "
                                         r"have: layer1.2.bn1"):
        model.load_pretrained_trunk(str(path))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4.")}, path)
    with pytest.raises(ValueError, match=r"missing 30 of \d+ trunk tensors: layer4.0.conv1.weight"):
        model.load_pretrained_trunk(str(path))


def test_trunk_files_are_never_unpickled(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), path)  # a whole pickled module, not a state dict
    with pytest.raises(ValueError, match=r"model.pth: cannot read as a state dict with torch.load\(weights_only"):
        read_state_dict(path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="model.pth: not a state dict"):
        read_state_dict(path)


def _torchvision_alexnet_state(features_only: bool) -> dict[str, torch.Tensor]:
    return _random_like(torchvision.models.alexnet, keep=lambda k: k.startswith("features.") or not features_only,
                        seed=11)


def test_alexnet_torchvision_trunk_from_local_file(tmp_path):
    state = _torchvision_alexnet_state(features_only=True)
    path = tmp_path / "alexnet.pth"
    torch.save({"state_dict": state}, path)  # wrapped checkpoints are unwrapped
    model = create_model("hyperface-alexnet", trunk="torchvision", pretrained_trunk=str(path))
    for name, index in TV_CONV.items():
        for p in ("weight", "bias"):
            assert torch.equal(model.state_dict()[f"trunk.{name}.{p}"], state[f"features.{index}.{p}"])
    assert model.config.meta["pretrained_trunk"] == str(path)
    # the paper trunk's widths differ from torchvision's: a clear error with the fix
    with pytest.raises(ValueError, match=r"shape mismatches: trunk.conv1.bias .*trunk='torchvision'"):
        create_model("hyperface-alexnet", pretrained_trunk=str(path))
    with pytest.raises(ValueError, match=r"not an AlexNet state dict: .*found conv tensors: \['trunk.conv1.weight'\]"):
        alexnet_trunk_tensors({"features.0.weight": state["features.0.weight"]})


@pytest.mark.slow  # a 244 MB state dict
def test_rcnn_face_takes_fc6_fc7_from_torchvision_alexnet(tmp_path):
    state = _torchvision_alexnet_state(features_only=False)
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    rcnn = create_model("rcnn-face", trunk="torchvision", pretrained_trunk=str(path))
    assert torch.equal(rcnn.state_dict()["fc6.weight"], state["classifier.1.weight"])
    assert torch.equal(rcnn.state_dict()["fc7.bias"], state["classifier.4.bias"])
    assert torch.equal(rcnn.state_dict()["trunk.conv5.weight"], state["features.10.weight"])


def test_imagenet_download_failure_explains_the_offline_fix(monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match=r"could not download torchvision's ImageNet weights .*resnet18-.*\.pth.*"
                                           r"pretrained_trunk='/path/to/resnet18-"):
        create_model("hyperface-resnet", depth=18, pretrained_trunk="imagenet")
    with pytest.raises(RuntimeError, match=r"alexnet-owt-.*Name or service not known.*pretrained_trunk="):
        imagenet_state_dict(torchvision.models.AlexNet_Weights.IMAGENET1K_V1)


def test_compact_has_no_pretrained_trunk():
    with pytest.raises(ValueError, match="hyperface-compact has no pretrained trunk"):
        create_model("hyperface-compact", pretrained_trunk="imagenet")


def test_missing_trunk_file():
    with pytest.raises(FileNotFoundError, match="nowhere.pth: weights file not found"):
        create_model("hyperface-resnet", depth=18, pretrained_trunk="/nowhere.pth")
