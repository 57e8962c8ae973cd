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
