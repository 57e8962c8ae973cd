"""Model size and cost: parameters and multiply-accumulates (MACs) per input crop.

MACs come from :class:`torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2); it counts
convolutions and matrix products, not activations, pooling or normalisation, which is the usual
convention and what the paper's "1.1 GMAC per crop" means. Both functions work on models built on
the ``meta`` device, so counting never allocates or initialises weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_parameters", "count_macs"]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_size: int | None = None, batch_size: int = 1) -> int:
    """MACs of one forward pass on ``batch_size`` crops, divided by ``batch_size`` (MACs per crop).

    ``input_size`` defaults to ``model.config.input_size``. The model is run in eval mode under
    ``no_grad`` on a zero input on the model's own device and left in the mode it was in.
    """
    if input_size is None:
        input_size = model.config.input_size  # type: ignore[union-attr]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(batch_size, 3, input_size, input_size, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops() // 2 // batch_size)
