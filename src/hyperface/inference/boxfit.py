"""The face box fitted to landmarks, used by IRP (the next candidate) and L-NMS (the output box).

The box follows the ground-truth box convention of the point set (``evaluation.md``, "Matching";
:mod:`hyperface.data.boxes`), which is also the face box the prepared data matched candidates
against: a positive training candidate overlaps this box by IoU >= 0.5 and is centred on it on
average, so a box fitted this way is the typical positive the network was trained on.

* ``ibug68``: the tight box of the 68 points.
* ``five``: a square centred on the mean of the 5 points, side ``2.2 * max(d_eyes, d_em)``.
* ``aflw21``: the 5 MTFL points derived from the 21 (eye centres, nose, mouth corners), then the
  ``five`` rule (the 21 points have no jaw outline to take a tight box of).
* any other set: the tight box of the points.
"""

from __future__ import annotations

import torch

from hyperface.points import FIVE_POINT_BOX_FACTOR, convert_matrix

__all__ = ["fit_boxes"]


def _tight(points: torch.Tensor) -> torch.Tensor:
    return torch.cat([points.amin(dim=1), points.amax(dim=1)], dim=1)


def _five_point_square(p: torch.Tensor) -> torch.Tensor:
    centre = p.mean(dim=1)
    d_eyes = (p[:, 0] - p[:, 1]).norm(dim=1)
    d_em = ((p[:, 0] + p[:, 1]) / 2 - (p[:, 3] + p[:, 4]) / 2).norm(dim=1)
    half = (FIVE_POINT_BOX_FACTOR * torch.maximum(d_eyes, d_em)).unsqueeze(1)
    return torch.cat([centre - half, centre + half], dim=1)


def fit_boxes(points: torch.Tensor, point_set: str | None) -> torch.Tensor:
    """Boxes (K, 4) for landmarks (K, N, 2) in image pixels, by the rule of ``point_set``."""
    if points.shape[0] == 0:
        return points.new_zeros((0, 4))
    if point_set == "five":
        return _five_point_square(points)
    if point_set == "aflw21":
        w, _ = convert_matrix("aflw21", "five")
        w = torch.as_tensor(w, dtype=points.dtype, device=points.device)
        return _five_point_square(torch.einsum("mn,knd->kmd", w, points))
    return _tight(points)
