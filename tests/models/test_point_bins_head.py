"""The stage-two network's landmark head that reads x and y bins (SimCC-style) instead of regressing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperface.models import create_model, load_model, save_weights
from hyperface.models.heads import AxisBinPointHead


def test_the_answer_is_the_expectation_of_each_axis_distribution():
    head = AxisBinPointHead(in_channels=4, grid=3, num_points=2, bins=5, extent=1.0)
    with torch.no_grad():  # every logit 0 but one large one: the answer is that bin's centre
        for layer in (head.x_logits, head.y_logits):
            layer.weight.zero_()
            layer.bias.zero_()
        head.x_logits.bias[4] = 50.0  # x at +1
        head.y_logits.bias[1] = 50.0  # y at -0.5
    out = head(torch.randn(3, 4, 3, 3))
    assert out.shape == (3, 2, 2)
    assert torch.allclose(out[..., 0], torch.ones(3, 2), atol=1e-4)
    assert torch.allclose(out[..., 1], torch.full((3, 2), -0.5), atol=1e-4)
    with torch.no_grad():  # flat logits: the middle of the range
        head.x_logits.bias.zero_()
    assert torch.allclose(head(torch.randn(1, 4, 3, 3))[..., 0], torch.zeros(1, 2), atol=1e-5)


def test_a_bins_model_answers_like_the_regression_model_and_survives_a_round_trip(tmp_path):
    torch.manual_seed(0)
    fc = create_model("hyperface-aligned").eval()
    bins = create_model("hyperface-aligned", landmark_head="bins").eval()
    assert bins.point_head is not None and "landmarks" not in bins.heads.out
    assert "landmark_head" not in fc.config.arch_kwargs  # regression files keep their config
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        a, b = fc(x), bins(x)
    assert list(a) == list(b) == list(bins.config.tasks)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert float(b["landmarks"].abs().max()) <= 1.25
    path = tmp_path / "bins.safetensors"
    save_weights(bins, path)
    again = load_model(path).eval()
    assert again.config.arch_kwargs["landmark_head"] == "bins"
    with torch.no_grad():
        torch.testing.assert_close(again(x)["landmarks"], b["landmarks"])


def test_the_bins_head_exports_to_onnx_with_the_same_answers(tmp_path):
    pytest.importorskip("onnxruntime")
    from hyperface.export import export_onnx

    torch.manual_seed(1)
    model = create_model("hyperface-aligned", landmark_head="bins").eval()
    diffs = export_onnx(model, tmp_path / "bins.onnx")
    assert diffs and max(diffs.values()) < 1e-3, diffs


@pytest.mark.parametrize("kwargs", [{"landmark_head": "heatmap"}, {"landmark_head": "bins", "bin_extent": 3.0},
                                    {"landmark_head": "bins", "bins_per_pixel": 0}])
def test_bad_head_settings_are_refused_by_name(kwargs):
    with pytest.raises(ValueError, match="landmark_head|bins_per_pixel"):
        create_model("hyperface-aligned", **kwargs)


def test_the_bins_head_learns_where_a_point_is():
    """A few steps of the coordinate loss move the expectation onto a target: the read-out is
    differentiable end to end."""
    torch.manual_seed(0)
    head = AxisBinPointHead(in_channels=8, grid=4, num_points=3, bins=40, extent=1.25)
    features = torch.randn(16, 8, 4, 4)
    target = torch.from_numpy(np.random.default_rng(0).uniform(-0.8, 0.8, (16, 3, 2)).astype(np.float32))
    opt = torch.optim.Adam(head.parameters(), 1e-2)
    with torch.no_grad():
        start = float((head(features) - target).abs().mean())
    for _ in range(300):
        loss = (head(features) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * start
