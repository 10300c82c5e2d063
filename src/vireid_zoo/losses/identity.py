"""Identity (classification) loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.losses.precision import in_float32


class IdentityLoss(nn.Module):
    r"""Cross-entropy over training identities, with optional label smoothing.

    $$
    L_{id} = -\frac{1}{B}\sum_{b}\sum_{k} q_{b,k} \log p_{b,k},
    \quad q_{b,k} = (1-\varepsilon)\,[k = y_b] + \varepsilon / K,
    $$

    with $p = \mathrm{softmax}(\text{logits})$ over K identities. Label smoothing:
    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016, Sec. 7; ``label_smoothing = 0`` is plain cross-entropy.

    Args:
        label_smoothing: $\varepsilon$ in [0, 1).
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = label_smoothing

    @in_float32
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss of logits (B, K) against integer labels (B,) in 0..K-1."""
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
