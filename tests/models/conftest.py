"""Fixtures for the network tests: every registered model built small (ResNet depth 18)."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

from hyperface.models import HyperFaceModel, create_model

# Keyword arguments that keep each architecture cheap in the default test run.
SMALL_KWARGS: dict[str, dict[str, Any]] = {"hyperface-resnet": {"depth": 18}}


@pytest.fixture
def build() -> Callable[..., HyperFaceModel]:
    """``build(name, **kw)``: the model with small settings, seeded, in eval mode."""

    def _build(name: str, **kwargs: Any) -> HyperFaceModel:
        torch.manual_seed(0)
        return create_model(name, **{**SMALL_KWARGS.get(name, {}), **kwargs}).eval()

    return _build


def random_input(model: HyperFaceModel, batch: int = 1, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = model.config.input_size
    return torch.randn(batch, 3, s, s, generator=g)


@pytest.fixture
def make_input() -> Callable[..., torch.Tensor]:
    """``make_input(model, batch=1)``: a seeded normalised input batch of the model's size."""
    return random_input
