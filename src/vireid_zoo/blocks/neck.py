"""BNNeck: a batch-norm bottleneck between the pooled feature and the classifier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

TestFeature = Literal["bn", "pool"]
"""Which feature of a head an embedding is: the BNNeck output, or the pooled one before it."""


@dataclass
class HeadOutput:
    """What an embedding head gives: the pooled feature, its BNNeck feature and logits.

    Part heads stack their parts in a middle dimension: (B, K, C) features and (B, K, N)
    logits.

    Attributes:
        pool: Pooled features before the BNNeck (metric losses act on them).
        bn: BNNeck features (the identity loss acts on their logits).
        logits: Identity logits of the BNNeck features (None without a classifier).
    """

    pool: torch.Tensor
    bn: torch.Tensor
    logits: torch.Tensor | None

    def feature(self, kind: TestFeature) -> torch.Tensor:
        """The ``"bn"`` or ``"pool"`` feature."""
        return self.bn if kind == "bn" else self.pool

    def require_logits(self) -> torch.Tensor:
        """The logits of a head built with a classifier (training needs them)."""
        if self.logits is None:
            raise RuntimeError(
                "the network was built with num_classes=0 (no classifier) and cannot be "
                "trained: build it with the number of training identities"
            )
        return self.logits


class BNNeck(nn.Module):
    """Batch normalisation with a frozen zero bias, then a bias-free linear classifier.

    Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person Re-identification",
    CVPRW 2019, the "BNNeck" trick: the triplet loss acts on the pooled feature ``f_t``,
    the identity loss on the classifier applied to ``f_i = BN(f_t)``, so the two losses
    need not agree in one embedding space. The BN bias is fixed at zero (no shift) and the
    classifier has no bias. Initialisation as in AGW (Ye et al., TPAMI 2021):
    BN weight ~ N(1, 0.01), classifier weight ~ N(0, 0.001).

    Args:
        in_features: Size of the pooled feature.
        num_classes: Number of training identities; 0 builds no classifier (feature only).
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        if in_features <= 0 or num_classes < 0:
            raise ValueError(
                f"need in_features > 0 and num_classes >= 0, got {in_features!r}, {num_classes!r}"
            )
        self.bn = nn.BatchNorm1d(in_features)
        nn.init.normal_(self.bn.weight, mean=1.0, std=0.01)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)
        self.classifier: nn.Linear | None = None
        if num_classes > 0:
            self.classifier = nn.Linear(in_features, num_classes, bias=False)
            nn.init.normal_(self.classifier.weight, mean=0.0, std=0.001)

    def forward(self, x: torch.Tensor) -> HeadOutput:
        """Map pooled features (B, in_features) to their [`HeadOutput`][].

        ``logits`` is (B, num_classes), or None when there is no classifier.
        """
        feature = self.bn(x)
        logits = None if self.classifier is None else self.classifier(feature)
        return HeadOutput(pool=x, bn=feature, logits=logits)
