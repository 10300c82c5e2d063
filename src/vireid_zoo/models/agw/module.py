"""The AGW training recipe as a LightningModule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vireid_zoo.blocks.pooling import GeMFormula
from vireid_zoo.losses import IdentityLoss, WeightedRegularizationTripletLoss
from vireid_zoo.models.agw.model import AGW, Pooling, TestFeature
from vireid_zoo.models.base import VIReIDModule


class AGWModule(VIReIDModule):
    """Train and evaluate :class:`AGW` with the reference recipe.

    Loss (Ye et al., TPAMI 2021, Sec. 4.2): identity cross-entropy on the BNNeck logits of
    both modalities plus the weighted regularisation triplet loss on the pooled features
    of the whole batch (both modalities together).

    Args:
        num_classes: Training identities; the CLI links it from the datamodule.
        arch: timm ResNet of the trunk.
        backbone_pretrained: Start from ImageNet weights (the reference does).
        backbone_weights_file: Local ImageNet weights instead of the download.
        non_local_blocks: Non-local blocks after the last N blocks of layer1..4 (default:
            the reference placement, see :class:`AGW`).
        non_local_channels: Embedding channels of each non-local block (the reference: 1).
        gem_p: GeM exponent.
        gem_formula: GeM's formula (``"agw"``: the reference code's, see :class:`AGW`).
        pooling: ``"gem"`` or ``"avg"`` (the reference's ``--method base``).
        last_stride: Stride of layer4's first block.
        split_stage: Last modality-specific stage.
        test_feature: ``"bn"`` or ``"pool"`` embedding at test time.
        label_smoothing: Label smoothing of the identity loss (0 in the reference).
        triplet_weight: Weight of the WRT loss.
        **kwargs: :class:`VIReIDModule` arguments (optimiser, schedule, evaluation).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        backbone_pretrained: bool = True,
        backbone_weights_file: str | Path | None = None,
        non_local_blocks: Sequence[int] | None = None,
        non_local_channels: int = 1,
        gem_p: float = 3.0,
        gem_formula: GeMFormula = "agw",
        pooling: Pooling = "gem",
        last_stride: int = 1,
        split_stage: int = 0,
        test_feature: TestFeature = "bn",
        label_smoothing: float = 0.0,
        triplet_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.net = AGW(
            num_classes,
            arch=arch,
            backbone_pretrained=backbone_pretrained,
            backbone_weights_file=backbone_weights_file,
            non_local_blocks=non_local_blocks,
            non_local_channels=non_local_channels,
            gem_p=gem_p,
            gem_formula=gem_formula,
            pooling=pooling,
            last_stride=last_stride,
            split_stage=split_stage,
            test_feature=test_feature,
        )
        self.identity_loss = IdentityLoss(label_smoothing)
        self.triplet_loss = WeightedRegularizationTripletLoss()
        self.triplet_weight = triplet_weight

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """CE on BNNeck logits + WRT on pooled features, over both modalities."""
        output = self.net.forward_pair(batch["visible"], batch["infrared"])
        labels = torch.cat([batch["visible_pid"], batch["infrared_pid"]])
        identity = self.identity_loss(output.logits, labels)
        triplet = self.triplet_loss(output.pool, labels)
        loss = identity + self.triplet_weight * triplet
        accuracy = (output.logits.argmax(dim=1) == labels).float().mean()
        self.log_dict(
            {
                "train/loss": loss,
                "train/id_loss": identity,
                "train/triplet_loss": triplet,
                "train/accuracy": accuracy,
            },
            prog_bar=True,
            batch_size=len(labels),
        )
        return loss
