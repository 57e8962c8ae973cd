"""Registry, factory, ModelConfig and complexity figures."""

from __future__ import annotations

import pytest
import torch

import hyperface
from hyperface.models import (
    ModelConfig,
    count_macs,
    count_parameters,
    create_model,
    get_model_entry,
    list_models,
    model_info,
    register_model,
)
from hyperface.models import registry
from hyperface.tasks import TASKS

ARCHS = ["hyperface-alexnet", "hyperface-compact", "hyperface-resnet", "rcnn-face"]


def test_list_models_has_every_architecture():
    assert set(ARCHS) <= set(list_models()) and list_models() == sorted(list_models())
    assert hyperface.list_models() == list_models()
    assert hyperface.create_model is create_model


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="unknown model 'alexnet'.*hyperface-alexnet.*rcnn-face"):
        create_model("alexnet")


def test_duplicate_registration_is_an_error():
    def test_only_arch(**kwargs):
        """A throwaway architecture."""

    register_model(test_only_arch)
    try:
        assert "test-only-arch" in list_models()
        assert get_model_entry("test-only-arch").description == "A throwaway architecture."
        with pytest.raises(ValueError, match="already registered"):
            register_model(test_only_arch)
        with pytest.raises(ValueError, match="already registered"):
            register_model(name="hyperface-alexnet")(test_only_arch)
    finally:
        registry._REGISTRY.pop("test-only-arch", None)
    assert "test-only-arch" not in list_models()


def test_unknown_arch_kwarg_names_accepted_ones():
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['depht'\].*accepted: depth, dropout"):
        create_model("hyperface-resnet", depht=18)
    with pytest.raises(ValueError, match="unsupported ResNet depth 19"):
        create_model("hyperface-resnet", depth=19)
    with pytest.raises(ValueError, match="unknown AlexNet trunk 'caffe'"):
        create_model("hyperface-alexnet", trunk="caffe")
    with pytest.raises(ValueError, match="multiple of 16"):
        create_model("hyperface-compact", input_size=100)


def test_rcnn_face_tasks():
    assert get_model_entry("rcnn-face").supported_tasks == ("detection",)
    assert get_model_entry("hyperface-compact").supported_tasks == TASKS
    with pytest.raises(ValueError, match="rcnn-face only does the 'detection' task"):
        create_model("rcnn-face", tasks=["detection", "landmarks"])
    with pytest.raises(ValueError, match="unknown task"):
        create_model("hyperface-compact", tasks=["landmark"])
    with pytest.raises(ValueError, match="not the string"):
        create_model("hyperface-compact", tasks="landmarks")


def test_alexnet_parameter_count_matches_paper():
    info = model_info("hyperface-alexnet")
    assert info["params"] == pytest.approx(33.8e6, rel=0.01)
    assert 1.0e9 < info["macs"] < 1.2e9  # paper: about 1.1 GMAC per crop
    assert info["input_size"] == 227 and info["tasks"] == list(TASKS) and info["num_points"] == 21
    # the meta-device count equals the count on a real model
    assert count_parameters(create_model("hyperface-alexnet")) == info["params"]


def test_alexnet_parameter_count_by_hand():
    convs = (96 * 3 * 121 + 96) + (256 * 96 * 25 + 256) + (384 * 256 * 9 + 384) + (384 * 384 * 9 + 384) \
        + (256 * 384 * 9 + 256)
    fusion = 2 * (256 * 96 * 16 + 256) + (192 * 768 + 192) + (192 * 36 * 3072 + 3072)
    branches = 5 * (3072 * 512 + 512) + sum(512 * n + n for n in (2, 42, 21, 3, 2))
    assert model_info("hyperface-alexnet")["params"] == convs + fusion + branches


@pytest.mark.parametrize("name", list_models())
def test_model_info_fields(name):
    info = model_info(name, num_points=68)
    assert set(info) >= {"name", "params", "macs", "input_size", "tasks", "num_points", "description"}
    assert info["name"] == name and info["params"] > 0 and info["macs"] > 0 and info["description"]


def test_compact_budget():
    info = model_info("hyperface-compact", num_points=68)
    assert 0.5e6 <= info["params"] <= 2.0e6
    assert 30e6 <= info["macs"] <= 100e6
    assert info["input_size"] >= 112


def test_count_macs_by_hand():
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    assert count_macs(model, input_size=16) == 16 * 16 * 8 * 27 + 8 * 16 * 16 * 10
    assert model.training  # mode restored


def test_model_config_defaults_and_validation():
    assert ModelConfig("x", num_points=21).point_set == "aflw21"
    assert ModelConfig("x", num_points=68).point_set == "ibug68"
    assert ModelConfig("x", num_points=5).point_set == "five"
    assert ModelConfig("x", num_points=7).point_set is None
    with pytest.raises(ValueError, match="point set 'ibug68' has 68 points but num_points is 21"):
        ModelConfig("x", num_points=21, point_set="ibug68")
    with pytest.raises(ValueError, match="unknown point set"):
        ModelConfig("x", num_points=21, point_set="aflw19")
    with pytest.raises(ValueError, match="std must be positive"):
        ModelConfig("x", std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="JSON"):
        ModelConfig("x", meta={"when": object()})
    cfg = ModelConfig("x", tasks=["pose", "detection"], arch_kwargs={"k": (1, 2)}, meta={"licence": "MIT"})
    assert cfg.tasks == ("detection", "pose")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert ModelConfig.from_json(cfg.to_json()) == cfg


def test_model_config_from_dict_rejects_unknown_and_missing_keys():
    good = ModelConfig("hyperface-compact").to_dict()
    with pytest.raises(ValueError, match=r"unknown model config key\(s\) \['colour'\]"):
        ModelConfig.from_dict({**good, "colour": "rgb"})
    with pytest.raises(ValueError, match="no 'arch'"):
        ModelConfig.from_dict({k: v for k, v in good.items() if k != "arch"})
