"""The EMIF training recipe as a LightningModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

from vireid_zoo.losses import (
    BatchHardTripletLoss,
    IdentityLoss,
    TripletKind,
    make_triplet_loss,
)
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.emif.losses import (
    DimReduction,
    Divergence,
    GaussianConsistencyLoss,
    GaussianFit,
    VarianceSource,
    batch_centre_loss,
)
from vireid_zoo.models.emif.model import EMIF, BranchOutput, TestFeature

GaussianFeature = Literal["bn", "pool"]


class EMIFModule(VIReIDModule):
    r"""Train and evaluate :class:`EMIF` (Zhang et al., IJMLC 2025).

    The objective ([A] weights and terms, METHODS.md):

    .. math:: L = L_{id}(s) + L_{tri}(s) + \alpha\,[L_{id}(v) + L_{tri}(v) + L_{id}(i)
        + L_{tri}(i) + \lambda_c (L_c(v) + L_c(i))] + \beta\, L_{gauss},

    - shared head ``s`` (both modalities): identity cross-entropy on its BNNeck logits,
      triplet on its pooled features over the whole batch;
    - intra-modality enhancing heads ``v`` and ``i`` (paper: compactness within a class
      and separation between classes inside each modality): each head's own classifier
      and a batch-hard triplet among the images of its modality only, optionally a
      batch-centre loss :math:`L_c` (:func:`~vireid_zoo.models.emif.losses.batch_centre_loss`);
    - modality-invariant module: :class:`~vireid_zoo.models.emif.losses.GaussianConsistencyLoss`
      between the visible and infrared embeddings of the shared head.

    Args:
        num_classes: Training identities; the CLI links it from the datamodule.
        arch: timm ResNet of the trunk.
        backbone_pretrained: Start from ImageNet weights.
        backbone_weights_file: Local ImageNet weights instead of the download.
        gem_p: GeM exponent.
        last_stride: Stride of layer4's first block.
        split_stage: Last modality-specific stage of the stems.
        head_stage: First stage of the three heads ([A] 4: layer4 heads).
        test_feature: ``"bn"`` or ``"pool"`` embedding at test time.
        test_concat: Append the matching modality head's embedding at test time ([A] off).
        label_smoothing: Label smoothing of every identity loss.
        margin: Margin of the batch-hard triplets ([A] 0.3).
        shared_triplet: Triplet of the shared head: ``"batch_hard"`` (margin ``margin``,
            [A], as the modality heads) or ``"wrt"`` (AGW's weighted regularisation).
        alpha: Weight of the intra-modality enhancing heads' losses ([A] 1).
        beta: Weight of the Gaussian consistency loss ([A] 0.1).
        centre_weight: :math:`\lambda_c`, weight of the modality heads' batch-centre loss
            ([A] 0: off).
        gaussian_divergence: ``"wasserstein"`` or ``"kl"`` (symmetric) ([A] wasserstein:
            the per-identity KL at K = 4 cost 18 mAP points on the demo, see the README).
        gaussian_fit: Gaussians per ``"identity"`` or per ``"batch"`` ([A] identity).
        gaussian_variance: Per-identity variances (``"identity"``) or the modality's
            batch-level variance for every identity (``"batch"``) ([A] identity).
        gaussian_feature: Shared-head embedding the loss sees: ``"bn"`` (the BNNeck output,
            the test feature) or ``"pool"`` (before the neck) ([A] bn).
        gaussian_eps: Added to every variance ([A] 1e-5).
        gaussian_unbiased: Bessel-corrected variances ([A] True).
        gaussian_reduction: ``"mean"`` or ``"sum"`` over embedding dimensions ([A] mean).
        **kwargs: :class:`VIReIDModule` arguments (optimiser, schedule, evaluation).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        backbone_pretrained: bool = True,
        backbone_weights_file: str | Path | None = None,
        gem_p: float = 3.0,
        last_stride: int = 1,
        split_stage: int = 0,
        head_stage: int = 4,
        test_feature: TestFeature = "bn",
        test_concat: bool = False,
        label_smoothing: float = 0.0,
        margin: float = 0.3,
        shared_triplet: TripletKind = "batch_hard",
        alpha: float = 1.0,
        beta: float = 0.1,
        centre_weight: float = 0.0,
        gaussian_divergence: Divergence = "wasserstein",
        gaussian_fit: GaussianFit = "identity",
        gaussian_variance: VarianceSource = "identity",
        gaussian_feature: GaussianFeature = "bn",
        gaussian_eps: float = 1e-5,
        gaussian_unbiased: bool = True,
        gaussian_reduction: DimReduction = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if gaussian_feature not in ("bn", "pool"):
            raise ValueError(f"gaussian_feature must be 'bn' or 'pool', got {gaussian_feature!r}")
        if min(alpha, beta, centre_weight) < 0:
            raise ValueError(
                f"loss weights must be >= 0, got alpha={alpha}, beta={beta}, "
                f"centre_weight={centre_weight}"
            )
        self.save_hyperparameters()
        self.net = EMIF(
            num_classes,
            arch=arch,
            backbone_pretrained=backbone_pretrained,
            backbone_weights_file=backbone_weights_file,
            gem_p=gem_p,
            last_stride=last_stride,
            split_stage=split_stage,
            head_stage=head_stage,
            test_feature=test_feature,
            test_concat=test_concat,
        )
        self.identity_loss = IdentityLoss(label_smoothing)
        self.shared_triplet_loss = make_triplet_loss(
            shared_triplet, margin, argument="shared_triplet"
        )
        self.modality_triplet_loss = BatchHardTripletLoss(margin)
        self.gaussian_loss = GaussianConsistencyLoss(
            divergence=gaussian_divergence,
            fit=gaussian_fit,
            variance=gaussian_variance,
            eps=gaussian_eps,
            unbiased=gaussian_unbiased,
            reduction=gaussian_reduction,
        )
        self.gaussian_feature: GaussianFeature = gaussian_feature
        self.alpha = alpha
        self.beta = beta
        self.centre_weight = centre_weight

    def intra_modality_losses(
        self, output: BranchOutput, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Losses of one intra-modality enhancing head on its modality's images only."""
        losses = {
            "id": self.identity_loss(output.logits, labels),
            "triplet": self.modality_triplet_loss(output.pool, labels),
        }
        if self.centre_weight > 0:
            losses["centre"] = batch_centre_loss(output.pool, labels)
        return losses

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every loss term of a training batch and their weighted total under ``"loss"``."""
        visible_pid, infrared_pid = batch["visible_pid"], batch["infrared_pid"]
        output = self.net.forward_pair(batch["visible"], batch["infrared"])
        labels = torch.cat([visible_pid, infrared_pid])
        terms = {
            "id_loss": self.identity_loss(output.shared.logits, labels),
            "triplet_loss": self.shared_triplet_loss(output.shared.pool, labels),
        }
        modality_total = 0.0
        for name, branch, pid in (
            ("visible", output.visible, visible_pid),
            ("infrared", output.infrared, infrared_pid),
        ):
            for term, value in self.intra_modality_losses(branch, pid).items():
                terms[f"{name}_{term}_loss"] = value
                modality_total = modality_total + (
                    self.centre_weight * value if term == "centre" else value
                )
        embedding = output.shared.bn if self.gaussian_feature == "bn" else output.shared.pool
        num_visible = len(visible_pid)
        terms["gaussian_loss"] = self.gaussian_loss(
            embedding[:num_visible], embedding[num_visible:], visible_pid, infrared_pid
        )
        terms["loss"] = (
            terms["id_loss"]
            + terms["triplet_loss"]
            + self.alpha * modality_total
            + self.beta * terms["gaussian_loss"]
        )
        terms["accuracy"] = (output.shared.logits.argmax(dim=1) == labels).float().mean()
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Shared-head, intra-modality and Gaussian consistency losses; see the class."""
        terms = self.compute_losses(batch)
        size = len(batch["visible_pid"]) + len(batch["infrared_pid"])
        shown = {"loss", "accuracy"}
        for bar in (True, False):
            self.log_dict(
                {f"train/{k}": v for k, v in terms.items() if (k in shown) == bar},
                prog_bar=bar,
                batch_size=size,
            )
        return terms["loss"]
