"""model.init: continue a trained network, also with a task added or dropped."""

from __future__ import annotations

import pytest
import torch

from hyperface.models import create_model, save_weights
from hyperface.train.config import ConfigError
from hyperface.train.stages import init_from_weights


@pytest.fixture
def trained(tmp_path):
    torch.manual_seed(0)
    model = create_model("hyperface-aligned", tasks=("landmarks", "pose"), num_points=68, point_set="ibug68",
                         input_size=64)
    return model, save_weights(model, tmp_path / "trained.safetensors")


def test_a_new_task_gets_a_fresh_head_on_the_trained_trunk(trained):
    model, path = trained
    grown = init_from_weights(path, arch="hyperface-aligned", tasks=["landmarks", "visibility", "pose"], num_points=68)
    assert grown.config.tasks == ("landmarks", "visibility", "pose")
    assert grown.config.input_size == 64
    old, new = model.state_dict(), grown.state_dict()
    assert set(old) < set(new)
    for key, value in old.items():
        torch.testing.assert_close(new[key], value, msg=key)
    x = torch.rand(2, 3, 64, 64)
    grown.eval()
    out = grown(x)
    torch.testing.assert_close(out["landmarks"], model.eval()(x)["landmarks"])
    assert out["visibility"].shape == (2, 68)


def test_dropping_a_task_and_the_same_tasks(trained):
    model, path = trained
    same = init_from_weights(path, arch="hyperface-aligned", tasks=["pose", "landmarks"], num_points=68)
    assert set(same.config.tasks) == {"landmarks", "pose"}
    fewer = init_from_weights(path, arch="hyperface-aligned", tasks=["landmarks"], num_points=68)
    assert fewer.config.tasks == ("landmarks",)
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(fewer.eval()(x)["landmarks"], model.eval()(x)["landmarks"])


def test_another_architecture_or_point_count_is_a_config_error(trained):
    _, path = trained
    with pytest.raises(ConfigError, match="trained.safetensors"):
        init_from_weights(path, arch="hyperface-compact", tasks=["landmarks"], num_points=68)
    with pytest.raises(ConfigError, match="68 points"):
        init_from_weights(path, arch="hyperface-aligned", tasks=["landmarks"], num_points=21)


def _busy(model: torch.nn.Module) -> torch.nn.Module:
    """Every tensor non-trivial (no zero-initialised residual, running statistics that are not 0 / 1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bn2.weight"):
                p.uniform_(0.5, 1.5)
        model.train()
        for _ in range(3):
            model(torch.rand(4, 3, 64, 64))
    return model.eval()


def test_a_wider_network_starts_with_the_trained_answers(tmp_path):
    torch.manual_seed(0)
    model = _busy(create_model("hyperface-aligned", tasks=("landmarks", "pose", "gender"), num_points=68,
                               point_set="ibug68", input_size=64))
    path = save_weights(model, tmp_path / "trained.safetensors")
    wider = init_from_weights(path, arch="hyperface-aligned", tasks=["landmarks", "pose", "gender"], num_points=68,
                              arch_kwargs={"input_size": 64, "width": 1.5, "reduce_channels": 96,
                                           "fc_channels": 512, "branch_channels": 256, "dropout": 0.0}).eval()
    assert wider.fc_full.out_features == 512 and wider.reduce[0].out_channels == 96
    assert sum(p.numel() for p in wider.parameters()) > 2 * sum(p.numel() for p in model.parameters())
    x = torch.rand(3, 3, 64, 64)
    before, after = model(x), wider(x)
    for task in ("landmarks", "pose", "gender"):
        torch.testing.assert_close(after[task], before[task], rtol=1e-4, atol=1e-5, msg=task)
    # the new units are trained from there: a step moves the zeros that kept them out
    wider.train()
    loss = sum(v.float().square().mean() for v in wider(x).values())
    loss.backward()
    assert wider.heads.fc["landmarks"].weight.grad[:, 256:].abs().sum() > 0


def test_what_cannot_change_in_a_trained_network_is_a_config_error(trained):
    _, path = trained
    with pytest.raises(ConfigError, match=r"input_size.*cannot change"):
        init_from_weights(path, arch="hyperface-aligned", tasks=["landmarks", "pose"], num_points=68,
                          arch_kwargs={"input_size": 96})
    with pytest.raises(ConfigError, match=r"trained.safetensors.*only grow"):
        init_from_weights(path, arch="hyperface-aligned", tasks=["landmarks", "pose"], num_points=68,
                          arch_kwargs={"fc_channels": 128})
    same = init_from_weights(path, arch="hyperface-aligned", tasks=["landmarks", "pose"], num_points=68,
                             arch_kwargs={"input_size": 64})  # the file's own value: nothing changes
    assert same.fc_full.out_features == 256


def test_a_trained_stage_two_starts_a_network_with_another_window(trained):
    """``context`` (the window stage two cuts around its template) changes no tensor: a trained file
    starts the network with its weights, to be trained on the wider view."""
    model, path = trained
    wider = init_from_weights(path, arch="hyperface-aligned", tasks=["landmarks", "pose"], num_points=68,
                              arch_kwargs={"context": 1.5})
    assert wider.config.arch_kwargs["context"] == 1.5 and model.config.arch_kwargs["context"] == 1.0
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(wider.state_dict()[name], tensor, msg=name)
