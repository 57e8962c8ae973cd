"""Continue a trained network at a larger width, computing exactly what it computed before.

Net2Net's idea (Chen, Goodfellow and Shlens, "Net2Net: Accelerating Learning via Knowledge
Transfer", ICLR 2016), in its simplest function-preserving form: every trained tensor is copied into
the leading corner of the wider one; a layer's new *output* units keep their fresh initialisation and
its new *input* columns are zero, so no new unit reaches an old one until training moves those
zeros. The wider network starts with the trained one's answers and its training budget, not from
scratch. This holds for any chain of linear and convolutional layers (a flattened map grows at its
end: channels come first in the flattening), batch norms and residual additions.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["grow_into"]


def grow_into(model: nn.Module, trained: Mapping[str, torch.Tensor], source: str) -> list[str]:
    """Copy ``trained`` into ``model`` (as wide or wider in every tensor); returns the grown names.

    Tensors of ``model`` that ``trained`` lacks keep their fresh values (e.g. a new task's head).
    A tensor that would shrink or change its number of dimensions is a ``ValueError`` naming
    ``source``.
    """
    grown: list[str] = []
    state = model.state_dict()
    with torch.no_grad():
        for name, target in state.items():
            old = trained.get(name)
            if old is None:
                continue
            if old.shape == target.shape:
                target.copy_(old)
                continue
            if old.dim() != target.dim() or any(o > t for o, t in zip(old.shape, target.shape)):
                raise ValueError(f"{source}: {name} is {tuple(old.shape)} in the file and {tuple(target.shape)} in "
                                 "the new network; a network can only grow (each dimension as large or larger)")
            if target.dim() >= 2:  # (out, in, ...): new inputs reach nothing yet
                target[:, old.shape[1]:] = 0
            target[tuple(slice(0, n) for n in old.shape)] = old
            grown.append(name)
    return grown
