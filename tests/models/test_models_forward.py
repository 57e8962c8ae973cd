"""Every registered model: output dict, shapes, task subsets, point counts, modes, input transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperface.models import ModelConfig, create_model, get_model_entry, list_models, model_transform, to_input_tensor
from hyperface.tasks import TASKS

# architectures with all five task branches (rcnn-face and the proposal networks only detect)
HYPERFACE = [n for n in list_models() if get_model_entry(n).supported_tasks == TASKS]


def expected_shapes(batch: int, num_points: int) -> dict[str, tuple[int, ...]]:
    return {"detection": (batch, 2), "landmarks": (batch, num_points, 2), "visibility": (batch, num_points),
            "pose": (batch, 3), "gender": (batch, 2)}


@pytest.mark.parametrize("name", list_models())
def test_outputs_keys_shapes_and_modes(name, build, make_input):
    model = build(name)
    # the AlexNet/ResNet passes are heavy on CPU; the detector's stride-64 BatchNorm needs two windows in training
    batch = 2 if name in ("hyperface-compact", "hyperface-detector") else 1
    x = make_input(model, batch=batch)
    with torch.no_grad():
        out_eval = model(x)
        head = model.forward_head(model.forward_features(x))
        model.train()
        out_train = model(x)
    tasks = model.config.tasks
    assert list(out_eval) == list(tasks) == list(out_train) == list(head)
    shapes = expected_shapes(batch, model.config.num_points)
    for task in tasks:
        assert out_eval[task].shape == shapes[task] == out_train[task].shape
        assert out_eval[task].dtype == torch.float32 and torch.isfinite(out_eval[task]).all()
        # eval mode is deterministic, and forward = forward_head(forward_features)
        torch.testing.assert_close(head[task], out_eval[task], rtol=0, atol=0)
    if "visibility" in tasks:
        assert ((out_train["visibility"] >= 0) & (out_train["visibility"] <= 1)).all()
    s = model.config.input_size
    with pytest.raises(ValueError, match=rf"{name} expects input of shape \(B, 3, {s}, {s}\), got \(1, 3, 100, 100\)"):
        model(torch.zeros(1, 3, 100, 100))


# (num_points, tasks): every point count, and task subsets from one task to four
CONFIGS = [
    (5, ("landmarks",)),
    (21, ("pose", "gender")),
    (68, ("landmarks", "visibility", "detection", "pose")),
]


@pytest.mark.parametrize("num_points,tasks", CONFIGS, ids=["5pts-lmk", "21pts-pose-gen", "68pts-4tasks"])
@pytest.mark.parametrize("name", HYPERFACE)
def test_points_and_task_subsets(name, num_points, tasks, build, make_input):
    model = build(name, tasks=tasks, num_points=num_points)
    assert model.config.point_set == {5: "five", 21: "aflw21", 68: "ibug68"}[num_points]
    with torch.no_grad():
        out = model(make_input(model))
    assert list(out) == [t for t in TASKS if t in tasks]
    shapes = expected_shapes(1, num_points)
    assert {t: tuple(v.shape) for t, v in out.items()} == {t: shapes[t] for t in out}
    # disabled tasks own no parameters
    disabled = [t for t in TASKS if t not in tasks]
    assert not [k for k in model.state_dict() if any(f".{t}." in k for t in disabled)]


@pytest.mark.slow
def test_resnet101_forward():
    model = create_model("hyperface-resnet").eval()
    assert model.config.arch_kwargs["depth"] == 101
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out["landmarks"].shape == (1, 21, 2)


def test_compact_input_size_variant_takes_transformed_crops(build):
    model = build("hyperface-compact", input_size=112, num_points=68)
    assert model.config.input_size == 112 and model.config.arch_kwargs["input_size"] == 112
    crops = np.full((2, 112, 112, 3), 127, np.uint8)
    with torch.no_grad():
        out = model(to_input_tensor(crops, model.config))
    assert out["landmarks"].shape == (2, 68, 2)
    torch.testing.assert_close(out["pose"][0], out["pose"][1])


# --------------------------------------------------------------------------- input transform


def test_to_input_tensor_normalises_with_config():
    cfg = ModelConfig("hyperface-compact", input_size=32, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    x = to_input_tensor(crops, cfg)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    expected = (crops.astype(np.float32) / 255 - np.array(cfg.mean, np.float32)) / np.array(cfg.std, np.float32)
    np.testing.assert_allclose(x.numpy(), expected.transpose(0, 3, 1, 2), rtol=1e-6, atol=1e-6)
    # one crop, a torch tensor, and the bound transform give the same; the input is not modified
    single = torch.from_numpy(crops[1].copy())
    torch.testing.assert_close(to_input_tensor(single, cfg), x[1:2])
    torch.testing.assert_close(model_transform(cfg)(crops), x)
    assert torch.equal(single, torch.from_numpy(crops[1]))


def test_to_input_tensor_rejects_bad_crops():
    cfg = ModelConfig("hyperface-compact", input_size=32)
    with pytest.raises(ValueError, match=r"must have shape \(N, 32, 32, 3\) for hyperface-compact"):
        to_input_tensor(np.zeros((1, 64, 64, 3), np.uint8), cfg)
    with pytest.raises(ValueError, match="must be uint8"):
        to_input_tensor(np.zeros((1, 32, 32, 3), np.float32), cfg)
    with pytest.raises(ValueError, match="must have shape"):
        to_input_tensor(np.zeros((1, 3, 32, 32), np.uint8), cfg)
