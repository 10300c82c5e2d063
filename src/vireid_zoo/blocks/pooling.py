"""Generalized-mean (GeM) pooling."""

from __future__ import annotations

import torch
from torch import nn


class GeneralizedMeanPooling(nn.Module):
    r"""Generalized-mean pooling over the spatial dimensions.

    Radenovic, Tolias and Chum, "Fine-tuning CNN Image Retrieval with No Human
    Annotation", TPAMI 2018, "Generalized-mean pooling": for each channel ``k`` with activations
    :math:`\mathcal{X}_k`,

    .. math:: f_k = \Big(\frac{1}{|\mathcal{X}_k|}\sum_{x \in \mathcal{X}_k} x^{p}\Big)^{1/p},

    computed on ``x.clamp(min=eps)`` so that fractional powers are defined. ``p = 1`` is
    average pooling and ``p -> inf`` tends to max pooling; AGW uses a fixed ``p = 3``.
    Large ``p`` can overflow float32 for activations well above 1. Half-precision inputs
    are pooled in float32 and the result cast back to their dtype.

    Args:
        p: The exponent, > 0.
        learnable: Make ``p`` a trainable parameter (as in the paper) instead of a constant.
        eps: Lower clamp of the activations.
    """

    p: torch.Tensor

    def __init__(self, p: float = 3.0, learnable: bool = False, eps: float = 1e-6) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"p must be > 0, got {p!r}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps = eps
        self.learnable = learnable
        value = torch.tensor(float(p))
        if learnable:
            self.p = nn.Parameter(value)
        else:
            self.register_buffer("p", value, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool a feature map (B, C, H, W) to descriptors (B, C)."""
        if x.dim() != 4:
            raise ValueError(f"expected a (B, C, H, W) feature map, got shape {tuple(x.shape)}")
        # Half-precision maps (autocast) are pooled in float32, then cast back: in float16,
        # x^p of small activations underflows to 0, whose p-th root has an infinite gradient.
        wide = x.to(torch.promote_types(x.dtype, torch.float32))
        pooled = wide.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)
        return pooled.to(x.dtype)

    def extra_repr(self) -> str:
        """Show p, whether it is learnt, and eps."""
        return f"p={self.p.item():.4g}, learnable={self.learnable}, eps={self.eps}"
