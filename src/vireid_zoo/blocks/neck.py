"""BNNeck: a batch-norm bottleneck between the pooled feature and the classifier."""

from __future__ import annotations

import torch
from torch import nn


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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Map pooled features (B, in_features) to ``(bn_feature, logits)``.

        ``logits`` is (B, num_classes), or None when there is no classifier.
        """
        feature = self.bn(x)
        logits = None if self.classifier is None else self.classifier(feature)
        return feature, logits
