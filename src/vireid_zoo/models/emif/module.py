"""The EMIF training recipe as a LightningModule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from vireid_zoo.blocks.neck import HeadOutput, TestFeature
from vireid_zoo.core.choices import check_choice
from vireid_zoo.losses.normalization import FeatureNormalization
from vireid_zoo.losses.triplet import TripletKind, make_triplet_loss
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.emif.losses import (
    Covariance,
    DimReduction,
    Divergence,
    GaussianConsistencyLoss,
    GaussianFit,
    VarianceSource,
    batch_centre_loss,
)
from vireid_zoo.models.emif.model import EMIF


class EMIFModule(VIReIDModule):
    r"""Train and evaluate [`EMIF`][] (Zhang et al., IJMLC 2025).

    The objective (the weights and the terms are assumptions of this zoo, [A]):

    $$
    L = L_{id}(s) + L_{tri}(s) + \alpha\,[L_{id}(v) + L_{tri}(v) + L_{id}(i)
    + L_{tri}(i) + \lambda_c (L_c(v) + L_c(i))] + \beta\, L_{gauss},
    $$

    - shared head ``s`` (both modalities): identity cross-entropy on its BNNeck logits,
      triplet on its pooled features over the whole batch;
    - intra-modality enhancing heads ``v`` and ``i`` (paper: compactness within a class
      and separation between classes inside each modality): each head's own classifier
      and a triplet (batch-hard by default) among the images of its modality only, optionally a
      batch-centre loss $L_c$ ([`batch_centre_loss`][]);
    - modality-invariant module: [`GaussianConsistencyLoss`][]
      between the visible and infrared embeddings of the shared head, standardised together
      by default so that the term does not depend on the features' scale.

    Args:
        network: The [`EMIF`][] network, or its arguments.
        margin: Margin of the shared head's batch-hard triplet ([A] 0.3).
        shared_triplet: Triplet of the shared head: ``"batch_hard"`` (margin ``margin``,
            [A], as the modality heads) or ``"wrt"`` (AGW's weighted regularisation).
        modality_triplet: Triplet of each intra-modality enhancing head, among the images
            of its modality: ``"batch_hard"`` ([A]) or ``"wrt"``.
        modality_margin: Margin of the modality heads' batch-hard triplet ([A] 0.3).
        alpha: Weight of the intra-modality enhancing heads' losses ([A] 1).
        beta: Weight of the Gaussian consistency loss ([A] 0.1).
        centre_weight: $\lambda_c$, weight of the modality heads' batch-centre loss
            ([A] 0: off).
        gaussian_divergence: ``"wasserstein"`` or ``"kl"`` (symmetric) ([A] wasserstein:
            the per-identity KL at K = 4 cost 18 mAP points on the demo, see the README).
        gaussian_fit: Gaussians per ``"identity"`` or per ``"batch"`` ([A] identity).
        gaussian_variance: Per-identity variances (``"identity"``) or the modality's
            batch-level variance for every identity (``"batch"``) ([A] identity).
        gaussian_feature: Shared-head embedding the loss sees: ``"bn"`` (the BNNeck output,
            the test feature) or ``"pool"`` (before the neck) ([A] bn). Standardised, the
            two give the same term in training (the BNNeck standardises the same rows),
            up to the BatchNorm's eps.
        gaussian_eps: Added to every variance, of the standardisation and of diagonal
            Gaussians ([A] 1e-5).
        gaussian_unbiased: Bessel-corrected variances ([A] True).
        gaussian_reduction: ``"mean"`` or ``"sum"`` over embedding dimensions ([A] mean).
        gaussian_normalization: How the compared features are made scale-free:
            ``"standardize"`` (both modalities together, per dimension, [A]), ``"l2"`` (each
            row) or ``"none"`` (raw: the term then scales with the features' square).
        gaussian_covariance: ``"diagonal"`` ([A]) or ``"full"`` covariances (the latter
            with ``gaussian_divergence="wasserstein"`` only).
        **kwargs: [`VIReIDModule`][] arguments (label smoothing,
            optimiser, schedule, evaluation).
    """

    network_class = EMIF
    net: EMIF

    def __init__(
        self,
        network: EMIF | Mapping[str, Any],
        *,
        margin: float = 0.3,
        shared_triplet: TripletKind = "batch_hard",
        modality_triplet: TripletKind = "batch_hard",
        modality_margin: float = 0.3,
        alpha: float = 1.0,
        beta: float = 0.1,
        centre_weight: float = 0.0,
        gaussian_divergence: Divergence = "wasserstein",
        gaussian_fit: GaussianFit = "identity",
        gaussian_variance: VarianceSource = "identity",
        gaussian_feature: TestFeature = "bn",
        gaussian_eps: float = 1e-5,
        gaussian_unbiased: bool = True,
        gaussian_reduction: DimReduction = "mean",
        gaussian_normalization: FeatureNormalization = "standardize",
        gaussian_covariance: Covariance = "diagonal",
        **kwargs: Any,
    ) -> None:
        check_choice("gaussian_feature", gaussian_feature, TestFeature)
        if min(alpha, beta, centre_weight) < 0:
            raise ValueError(
                f"loss weights must be >= 0, got alpha={alpha}, beta={beta}, "
                f"centre_weight={centre_weight}"
            )
        super().__init__(network, **kwargs)
        self.shared_triplet_loss = make_triplet_loss(
            shared_triplet, margin, argument="shared_triplet"
        )
        self.modality_triplet_loss = make_triplet_loss(
            modality_triplet, modality_margin, argument="modality_triplet"
        )
        self.gaussian_loss = GaussianConsistencyLoss(
            divergence=gaussian_divergence,
            fit=gaussian_fit,
            variance=gaussian_variance,
            eps=gaussian_eps,
            unbiased=gaussian_unbiased,
            reduction=gaussian_reduction,
            normalization=gaussian_normalization,
            covariance=gaussian_covariance,
        )
        self.gaussian_feature: TestFeature = gaussian_feature
        self.alpha = alpha
        self.beta = beta
        self.centre_weight = centre_weight

    def intra_modality_losses(
        self, output: HeadOutput, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Losses of one intra-modality enhancing head on its modality's images only."""
        losses = {
            "id": self.identity_loss(output.require_logits(), labels),
            "triplet": self.modality_triplet_loss(output.pool, labels),
        }
        if self.centre_weight > 0:
            losses["centre"] = batch_centre_loss(output.pool, labels)
        return losses

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every loss term of a training batch, their weighted total and the accuracy.

        Terms: ``id`` and ``triplet`` of the shared head; ``id_<modality>``,
        ``triplet_<modality>`` (and with ``centre_weight`` > 0 ``centre_<modality>``) of
        the two intra-modality enhancing heads; ``gaussian``.
        """
        visible_pid, infrared_pid = batch["visible_pid"], batch["infrared_pid"]
        output = self.net.forward_pair(batch["visible"], batch["infrared"])
        labels = torch.cat([visible_pid, infrared_pid])
        logits = output.shared.require_logits()
        terms = {
            "id": self.identity_loss(logits, labels),
            "triplet": self.shared_triplet_loss(output.shared.pool, labels),
        }
        modality_total: torch.Tensor | float = 0.0
        for name, branch, pid in (
            ("visible", output.visible, visible_pid),
            ("infrared", output.infrared, infrared_pid),
        ):
            for term, value in self.intra_modality_losses(branch, pid).items():
                terms[f"{term}_{name}"] = value
                modality_total = modality_total + (
                    self.centre_weight * value if term == "centre" else value
                )
        embedding = output.shared.feature(self.gaussian_feature)
        num_visible = len(visible_pid)
        terms["gaussian"] = self.gaussian_loss(
            embedding[:num_visible], embedding[num_visible:], visible_pid, infrared_pid
        )
        terms["loss"] = (
            terms["id"]
            + terms["triplet"]
            + self.alpha * modality_total
            + self.beta * terms["gaussian"]
        )
        terms["accuracy"] = (logits.argmax(dim=1) == labels).float().mean()
        return terms
