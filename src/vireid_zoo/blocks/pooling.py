"""Generalized-mean (GeM) pooling."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

GeMFormula = Literal["clamp", "agw"]
"""How GeM keeps its p-th root defined: ``"clamp"`` (Radenovic et al.) or ``"agw"``."""
_DEFAULT_EPS: dict[str, float] = {"clamp": 1e-6, "agw": 1e-12}


class GeneralizedMeanPooling(nn.Module):
    r"""Generalized-mean pooling over the spatial dimensions.

    Radenovic, Tolias and Chum, "Fine-tuning CNN Image Retrieval with No Human
    Annotation", TPAMI 2018, "Generalized-mean pooling": for each channel ``k`` with activations
    $\mathcal{X}_k$,

    $$
    f_k = \Big(\frac{1}{|\mathcal{X}_k|}\sum_{x \in \mathcal{X}_k} x^{p}\Big)^{1/p}.
    $$

    ``p = 1`` is average pooling and ``p -> inf`` tends to max pooling; AGW uses a fixed
    ``p = 3``. Two ways of keeping the root defined, which differ only where activations
    are (near) zero:

    - ``formula="clamp"`` (the default): the activations are clamped, ``x.clamp(min=eps)``
      with ``eps = 1e-6``, before the power;
    - ``formula="agw"``: the formula of the AGW reference code,
      $(\frac{1}{|\mathcal{X}_k|}\sum \max(x, 0)^p + \epsilon)^{1/p}$ with
      ``eps = 1e-12`` added to the mean. A dead channel (all zeros) then pools to
      $10^{-4}$ (with p = 3) instead of $10^{-6}$. Negative activations count
      as 0 (the reference pools post-ReLU maps, where this changes nothing).

    Large ``p`` can overflow float32 for activations well above 1. Half-precision inputs
    are pooled in float32 and the result cast back to their dtype.

    Args:
        p: The exponent, > 0.
        learnable: Make ``p`` a trainable parameter (as in the paper) instead of a constant.
        eps: The clamp (``"clamp"``) or the constant added to the mean (``"agw"``);
            default 1e-6 and 1e-12 respectively.
        formula: ``"clamp"`` or ``"agw"``, see above.
    """

    p: torch.Tensor

    def __init__(
        self,
        p: float = 3.0,
        learnable: bool = False,
        eps: float | None = None,
        formula: GeMFormula = "clamp",
    ) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"p must be > 0, got {p!r}")
        if formula not in _DEFAULT_EPS:
            raise ValueError(f"formula must be 'clamp' or 'agw', got {formula!r}")
        eps = _DEFAULT_EPS[formula] if eps is None else eps
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps = eps
        self.formula: GeMFormula = formula
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
        if self.formula == "clamp":
            pooled = wide.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)
        else:
            pooled = (wide.clamp(min=0).pow(self.p).mean(dim=(2, 3)) + self.eps).pow(1.0 / self.p)
        return pooled.to(x.dtype)

    def extra_repr(self) -> str:
        """Show p, whether it is learnt, eps and the formula."""
        return (
            f"p={self.p.item():.4g}, learnable={self.learnable}, eps={self.eps}, "
            f"formula={self.formula!r}"
        )
