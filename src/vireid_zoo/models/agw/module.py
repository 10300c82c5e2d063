"""The AGW training recipe as a LightningModule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from vireid_zoo.losses.triplet import WeightedRegularizationTripletLoss
from vireid_zoo.models.agw.model import AGW
from vireid_zoo.models.base import VIReIDModule


class AGWModule(VIReIDModule):
    """Train and evaluate [`AGW`][] with the reference recipe.

    Loss (Ye et al., TPAMI 2021, Sec. 4.2): identity cross-entropy on the BNNeck logits of
    both modalities plus the weighted regularisation triplet loss on the pooled features
    of the whole batch (both modalities together).

    Args:
        network: The [`AGW`][] network, or its arguments (e.g. ``{"arch": "resnet50",
            "num_classes": 395, "backbone_pretrained": True}``).
        triplet_weight: Weight of the WRT loss.
        **kwargs: [`VIReIDModule`][] arguments (label smoothing, optimiser, schedule,
            evaluation).
    """

    network_class = AGW
    net: AGW

    def __init__(
        self, network: AGW | Mapping[str, Any], *, triplet_weight: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(network, **kwargs)
        self.triplet_loss = WeightedRegularizationTripletLoss()
        self.triplet_weight = triplet_weight

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """CE on the BNNeck logits + WRT on the pooled features, over both modalities."""
        output = self.net.forward_pair(batch["visible"], batch["infrared"])
        labels = torch.cat([batch["visible_pid"], batch["infrared_pid"]])
        logits = output.require_logits()
        terms = {
            "id": self.identity_loss(logits, labels),
            "triplet": self.triplet_loss(output.pool, labels),
        }
        terms["loss"] = terms["id"] + self.triplet_weight * terms["triplet"]
        terms["accuracy"] = (logits.argmax(dim=1) == labels).float().mean()
        return terms
