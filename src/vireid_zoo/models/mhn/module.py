"""The MHN training recipe as a LightningModule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vireid_zoo.blocks.attention import ChannelPooling
from vireid_zoo.losses import IdentityLoss, TripletKind, make_triplet_loss
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.mhn.blocks import MapMode
from vireid_zoo.models.mhn.losses import (
    BranchDecorrelationLoss,
    Distance,
    ModalityConsistencyLoss,
    ModalityHarmonizationLoss,
)
from vireid_zoo.models.mhn.model import HEADS, MHN, Head, TestFeature


class MHNModule(VIReIDModule):
    r"""Train and evaluate :class:`MHN` (Zuo, Peng, Cheng, Wang, Information Fusion 2025).

    Each paired batch gives B visible, B infrared and B hybrid samples (rows of
    :meth:`MHN.forward_train`; the hybrid of row j has the identity of row j). The loss
    (METHODS.md, "Total" [A]) is

    .. math:: L = \sum_{h} w_h (L^h_{id} + \tau L^h_{tri}) + \lambda_{mh} L_{mh}
        + \lambda_{mc} L_{mc} + \lambda_{dc} L_{dc},

    over the heads h = global (:math:`w = 1`), channel and spatial (the DRM branches,
    :math:`w` = ``drm_loss_weight``): identity cross-entropy on each head's BNNeck logits
    and a triplet loss on its pooled features, over the visible, infrared and (with
    ``hybrid_in_identity_losses``) hybrid rows [A]; :math:`L_{mh}`
    (:class:`~vireid_zoo.models.mhn.losses.ModalityHarmonizationLoss`) on the global
    pooled features of the three streams; :math:`L_{mc}`
    (:class:`~vireid_zoo.models.mhn.losses.ModalityConsistencyLoss`) on the global logits
    of visible, infrared and (with ``consistency_include_hybrid``) hybrid rows;
    :math:`L_{dc}` (:class:`~vireid_zoo.models.mhn.losses.BranchDecorrelationLoss`) between
    the BNNeck features of the two DRM branches, on the identity-loss rows [A].

    Args:
        num_classes: Training identities; the CLI links it from the datamodule.
        arch: timm ResNet of the trunk.
        backbone_pretrained: Start from ImageNet weights.
        backbone_weights_file: Local ImageNet weights instead of the download.
        split_stage: Last modality-specific stage; MAM fuses after it [A] (0: the stems).
        mam_mode: MAM's consistency map: ``"channel"``, ``"pixel"`` or ``"both"`` [A].
        drm_reduction: DRM channel-branch reduction [A].
        drm_channel_pooling: DRM channel-branch descriptors, ``("avg",)`` = SE [A].
        drm_kernel_size: DRM spatial-branch kernel [A].
        gem_p: GeM exponent [A].
        last_stride: Stride of layer4's first block [A].
        test_parts: Heads concatenated into the test embedding [A].
        test_feature: ``"bn"`` or ``"pool"`` part features at test time [A].
        triplet: ``"wrt"`` (AGW's weighted regularisation triplet, the default) or
            ``"batch_hard"`` (with ``triplet_margin``) [A].
        triplet_margin: Margin of the batch-hard triplet (unused by WRT).
        triplet_weight: :math:`\tau`, weight of each head's triplet loss.
        label_smoothing: Label smoothing of the identity losses [A] (0, as AGW).
        drm_loss_weight: Weight of the DRM branches' identity and triplet losses [A].
        hybrid_in_identity_losses: The hybrid rows also get identity, triplet and
            decorrelation losses [A] (MHN extracts modality-shared features from them).
        harmonization_distance: Distance of :math:`L_{mh}` [A].
        consistency_include_hybrid: :math:`L_{mc}` also compares the hybrid predictions
            [A] (METHODS.md: "hybrid included").
        lambda_mh: Weight of the harmonisation loss [A] (METHODS.md: about 0.1 to 1).
        lambda_mc: Weight of the consistency loss [A] (METHODS.md: about 0.1 to 1).
        lambda_dc: Weight of the branch decorrelation [A].
        **kwargs: :class:`VIReIDModule` arguments (optimiser, schedule, evaluation).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        backbone_pretrained: bool = True,
        backbone_weights_file: str | Path | None = None,
        split_stage: int = 0,
        mam_mode: MapMode = "both",
        drm_reduction: int = 16,
        drm_channel_pooling: Sequence[ChannelPooling] = ("avg",),
        drm_kernel_size: int = 7,
        gem_p: float = 3.0,
        last_stride: int = 1,
        test_parts: Sequence[Head] = HEADS,
        test_feature: TestFeature = "bn",
        triplet: TripletKind = "wrt",
        triplet_margin: float = 0.3,
        triplet_weight: float = 1.0,
        label_smoothing: float = 0.0,
        drm_loss_weight: float = 1.0,
        hybrid_in_identity_losses: bool = True,
        harmonization_distance: Distance = "euclidean",
        consistency_include_hybrid: bool = True,
        lambda_mh: float = 0.1,
        lambda_mc: float = 0.5,
        lambda_dc: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.net = MHN(
            num_classes,
            arch=arch,
            backbone_pretrained=backbone_pretrained,
            backbone_weights_file=backbone_weights_file,
            split_stage=split_stage,
            mam_mode=mam_mode,
            drm_reduction=drm_reduction,
            drm_channel_pooling=drm_channel_pooling,
            drm_kernel_size=drm_kernel_size,
            gem_p=gem_p,
            last_stride=last_stride,
            test_parts=test_parts,
            test_feature=test_feature,
        )
        self.identity_loss = IdentityLoss(label_smoothing)
        self.triplet_loss = make_triplet_loss(triplet, triplet_margin)
        self.harmonization_loss = ModalityHarmonizationLoss(harmonization_distance)
        self.consistency_loss = ModalityConsistencyLoss()
        self.decorrelation_loss = BranchDecorrelationLoss()
        self.loss_weights = {
            "triplet": triplet_weight,
            "drm": drm_loss_weight,
            "harmonization": lambda_mh,
            "consistency": lambda_mc,
            "decorrelation": lambda_dc,
        }
        self.hybrid_in_identity_losses = hybrid_in_identity_losses
        self.consistency_include_hybrid = consistency_include_hybrid

    def loss_terms(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every unweighted loss term of a paired training batch, and the global accuracy.

        Keys: ``id_<head>`` and ``triplet_<head>`` for the global, channel and spatial
        heads, ``harmonization``, ``consistency``, ``decorrelation``, ``accuracy``.

        Raises:
            ValueError: If row j of the visible and infrared images are not the same
                identity (MAM fuses them).
        """
        labels = batch["visible_pid"]
        if not torch.equal(labels, batch["infrared_pid"]):
            raise ValueError(
                "MHN fuses the visible and infrared images at the same batch position, so "
                "they must show the same identity (as the paired sampler of vireid_zoo.data "
                f"gives); got visible_pid {batch['visible_pid'].tolist()} and infrared_pid "
                f"{batch['infrared_pid'].tolist()}"
            )
        output = self.net.forward_train(batch["visible"], batch["infrared"])
        size = len(labels)
        all_labels = labels.repeat(3)
        modalities = torch.arange(3, device=labels.device).repeat_interleave(size)
        rows = 3 * size if self.hybrid_in_identity_losses else 2 * size
        terms: dict[str, torch.Tensor] = {}
        for name, head in output.heads.items():
            assert head.logits is not None  # forward_train refuses num_classes=0
            terms[f"id_{name}"] = self.identity_loss(head.logits[:rows], all_labels[:rows])
            terms[f"triplet_{name}"] = self.triplet_loss(head.pool[:rows], all_labels[:rows])
        global_head = output.heads["global"]
        terms["harmonization"] = self.harmonization_loss(global_head.pool, all_labels, modalities)
        compared = 3 * size if self.consistency_include_hybrid else 2 * size
        assert global_head.logits is not None
        terms["consistency"] = self.consistency_loss(
            global_head.logits[:compared], all_labels[:compared], modalities[:compared]
        )
        terms["decorrelation"] = self.decorrelation_loss(
            output.heads["channel"].bn[:rows], output.heads["spatial"].bn[:rows]
        )
        predictions = global_head.logits[: 2 * size].argmax(dim=1)
        terms["accuracy"] = (predictions == all_labels[: 2 * size]).float().mean()
        return terms

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of the terms of :meth:`loss_terms` (see the class docstring)."""
        weights = self.loss_weights
        loss = sum(
            (1.0 if head == "global" else weights["drm"])
            * (terms[f"id_{head}"] + weights["triplet"] * terms[f"triplet_{head}"])
            for head in HEADS
        )
        for name in ("harmonization", "consistency", "decorrelation"):
            loss = loss + weights[name] * terms[name]
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """All MHN losses on a paired batch; logs the total and every term."""
        terms = self.loss_terms(batch)
        loss = self.total_loss(terms)
        size = len(batch["visible_pid"])
        shown = {"loss": loss, "accuracy": terms.pop("accuracy")}
        self.log_dict({f"train/{k}": v for k, v in shown.items()}, prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=size)
        return loss
