"""Triplet losses over a batch: batch-hard and weighted-regularisation (WRT)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.losses.distance import pairwise_euclidean
from vireid_zoo.losses.precision import in_float32

_WRT_EPS = 1e-6


def _same_identity(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Return the (B, B) boolean mask of pairs sharing a label, after checking inputs."""
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"expected features (B, D) and labels (B,), got {tuple(features.shape)} and "
            f"{tuple(labels.shape)}"
        )
    same = labels[:, None] == labels[None, :]
    if bool(same.all()):
        raise ValueError("a triplet loss needs at least two identities in the batch")
    return same


class BatchHardTripletLoss(nn.Module):
    r"""Triplet loss with batch-hard mining.

    Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737 (2017), Sec. 2, "batch hard" triplet and its soft-margin
    variant. For each anchor ``a`` the hardest positive is the farthest sample with
    its label (the anchor itself included, as in the reference code, at distance ~0) and
    the hardest negative the nearest sample with another label:

    $$
    L = \frac{1}{B}\sum_a \big[m + \max_{p: y_p = y_a} d_{ap}
    - \min_{n: y_n \ne y_a} d_{an}\big]_+ ,
    $$

    or $\frac{1}{B}\sum_a \log(1 + \exp(\max_p d_{ap} - \min_n d_{an}))$ with the
    soft margin. Distances are [`pairwise_euclidean`][].

    Args:
        margin: $m$, unused with ``soft_margin``.
        soft_margin: Replace the hinge by the softplus.
        normalize_features: L2-normalise the features first.
    """

    def __init__(
        self, margin: float = 0.3, soft_margin: bool = False, normalize_features: bool = False
    ) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin!r}")
        self.margin = margin
        self.soft_margin = soft_margin
        self.normalize_features = normalize_features

    @in_float32
    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss of features (B, D) with identity labels (B,)."""
        same = _same_identity(features, labels)
        if self.normalize_features:
            features = F.normalize(features, dim=1)
        dist = pairwise_euclidean(features, features)
        hardest_positive = dist.masked_fill(~same, float("-inf")).amax(dim=1)
        hardest_negative = dist.masked_fill(same, float("inf")).amin(dim=1)
        gap = hardest_positive - hardest_negative
        if self.soft_margin:
            return F.softplus(gap).mean()
        return F.relu(gap + self.margin).mean()


class WeightedRegularizationTripletLoss(nn.Module):
    r"""Weighted regularisation triplet (WRT) loss of AGW.

    Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook",
    TPAMI 2021, the AGW baseline's weighted regularization triplet. For each anchor ``i``
    with positives $\mathcal{P}_i$ (the anchor itself included, as in the reference
    code) and negatives $\mathcal{N}_i$:

    $$
    w^p_{ij} = \frac{e^{d_{ij}}}{\sum_{k \in \mathcal{P}_i} e^{d_{ik}}},\quad
    w^n_{ij} = \frac{e^{-d_{ij}}}{\sum_{k \in \mathcal{N}_i} e^{-d_{ik}}},\quad
    L = \frac{1}{B}\sum_i \log\Big(1 + \exp\big(\sum_{j \in \mathcal{P}_i} w^p_{ij}
    d_{ij} - \sum_{j \in \mathcal{N}_i} w^n_{ij} d_{ij}\big)\Big).
    $$

    The softmaxes are computed as the reference code does, which also fixes the loss
    value: scores are shifted by the row maximum of the masked score matrix (masked-out
    entries count as 0, so for the negatives, whose scores are <= 0, the shift is 0) and
    1e-6 is added to each normaliser. Consequently, when every negative of an anchor is
    far ($e^{-d} \lesssim 10^{-6}$, i.e. d beyond about 14) the negative weights
    shrink below a sum of 1, as in the reference.

    Args:
        normalize_features: L2-normalise the features first.
    """

    def __init__(self, normalize_features: bool = False) -> None:
        super().__init__()
        self.normalize_features = normalize_features

    @in_float32
    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss of features (B, D) with identity labels (B,), over the whole batch."""
        same = _same_identity(features, labels)
        if self.normalize_features:
            features = F.normalize(features, dim=1)
        dist = pairwise_euclidean(features, features)
        positive = same.to(dist.dtype)
        negative = 1.0 - positive
        positive_dist = dist * positive
        negative_dist = dist * negative
        furthest = (positive_dist * _softmax_weights(positive_dist, positive)).sum(dim=1)
        closest = (negative_dist * _softmax_weights(-negative_dist, negative)).sum(dim=1)
        return F.softplus(furthest - closest).mean()


def _softmax_weights(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of ``scores`` over the entries where ``mask`` is 1, per row (see WRT)."""
    shifted = torch.exp(scores - (scores * mask).amax(dim=1, keepdim=True)) * mask
    return shifted / (shifted.sum(dim=1, keepdim=True) + _WRT_EPS)


TripletKind = Literal["wrt", "batch_hard"]
"""A method's choice of triplet loss: AGW's ``"wrt"`` or ``"batch_hard"`` with a margin."""


def make_triplet_loss(
    kind: TripletKind, margin: float = 0.3, *, argument: str = "triplet"
) -> nn.Module:
    """The triplet loss ``kind`` names (``margin`` is read by ``"batch_hard"`` only).

    ``argument`` is the caller's name for ``kind``, which an error names.

    Raises:
        ValueError: ``kind`` is neither ``"wrt"`` nor ``"batch_hard"``.
    """
    if kind == "wrt":
        return WeightedRegularizationTripletLoss()
    if kind == "batch_hard":
        return BatchHardTripletLoss(margin=margin)
    raise ValueError(f"{argument} must be 'wrt' or 'batch_hard', got {kind!r}")
