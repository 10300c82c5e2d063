"""Pairwise distances shared by the metric losses."""

from __future__ import annotations

import torch


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Euclidean distances between the rows of ``x`` (M, D) and ``y`` (N, D).

    $d_{ij} = \sqrt{\max(\lVert x_i\rVert^2 + \lVert y_j\rVert^2 - 2 x_i^\top y_j,
    10^{-12})}$, expanded and clamped as the AGW reference code does: the clamp keeps the
    square root's gradient finite for coincident points (it is zero there). Computed in
    float32 (float64 for float64 inputs) with autocast off: in half precision the expansion
    cancels catastrophically (a point's distance to itself comes out near 0.5 for
    2048-d GeM features in float16).

    Returns:
        The (M, N) distance matrix.
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"expected (M, D) and (N, D) matrices, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.to(dtype), y.to(dtype)
        squared = x.pow(2).sum(dim=1, keepdim=True) + y.pow(2).sum(dim=1) - 2.0 * x @ y.t()
        return squared.clamp(min=1e-12).sqrt()
