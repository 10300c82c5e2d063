"""The MHN training recipe as a LightningModule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from vireid_zoo.blocks.neck import TestFeature
from vireid_zoo.core.choices import check_choice
from vireid_zoo.losses.normalization import FeatureNormalization
from vireid_zoo.losses.triplet import TripletKind, make_triplet_loss
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.mhn.losses import (
    BranchDecorrelationLoss,
    Distance,
    ModalityConsistencyLoss,
    ModalityHarmonizationLoss,
)
from vireid_zoo.models.mhn.model import MHN


class MHNModule(VIReIDModule):
    r"""Train and evaluate [`MHN`][] (Zuo, Peng, Cheng, Wang, Information Fusion 2025).

    Each paired batch gives B visible, B infrared and B hybrid samples (rows of
    [`MHN.forward_train`][]; the hybrid of row j has the identity of row j). The loss
    (its terms and weights are assumptions of this zoo, [A]) is

    $$
    L = \sum_{h} w_h (L^h_{id} + \tau L^h_{tri}) + \lambda_{mh} L_{mh}
    + \lambda_{mc} L_{mc} + \lambda_{dc} L_{dc},
    $$

    over the heads h = global ($w = 1$), channel and spatial (the DRM branches,
    $w$ = ``drm_loss_weight``): identity cross-entropy on each head's BNNeck logits
    and a triplet loss on its pooled features, over the visible, infrared and (with
    ``hybrid_in_identity_losses``) hybrid rows [A]; $L_{mh}$
    ([`ModalityHarmonizationLoss`][]) on the global
    features (``harmonization_feature``: pooled by default) of the three streams,
    L2-normalised so that it does not depend on their scale; $L_{mc}$
    ([`ModalityConsistencyLoss`][]) on the global logits
    of visible, infrared and (with ``consistency_include_hybrid``) hybrid rows;
    $L_{dc}$ ([`BranchDecorrelationLoss`][]) between
    the features (``decorrelation_feature``: pooled by default, standardised over the
    batch) of the two DRM branches, on the identity-loss rows [A].

    Args:
        network: The [`MHN`][] network, or its arguments.
        triplet: ``"wrt"`` (AGW's weighted regularisation triplet, the default) or
            ``"batch_hard"`` (with ``triplet_margin``) [A].
        triplet_margin: Margin of the batch-hard triplet (unused by WRT).
        triplet_weight: $\tau$, weight of each head's triplet loss.
        drm_loss_weight: Weight of the DRM branches' identity and triplet losses [A].
        hybrid_in_identity_losses: The hybrid rows also get identity, triplet and
            decorrelation losses [A] (MHN extracts modality-shared features from them).
        harmonization_distance: Distance of $L_{mh}$ [A].
        harmonization_feature: Global feature $L_{mh}$ sees: ``"pool"`` (before the
            BNNeck, [A]) or ``"bn"``.
        harmonization_normalization: How $L_{mh}$'s features are made scale-free:
            ``"l2"`` (each row, [A]), ``"standardize"`` (the three streams together, per
            dimension) or ``"none"`` (raw: the term then scales with the features).
        harmonization_eps: The L2 norm's floor (the standardisation's variance floor) [A]
            (1e-12).
        consistency_include_hybrid: $L_{mc}$ also compares the hybrid predictions [A].
        consistency_floor: Probabilities are clamped to at least this before
            $L_{mc}$'s logarithm [A] (1e-12).
        decorrelation_feature: DRM branch features $L_{dc}$ sees: ``"pool"`` (before
            the necks, [A]) or ``"bn"`` (their BNNeck outputs, whose trainable scales can
            lower the term without changing the branches).
        decorrelation_normalization: How $L_{dc}$'s features are made scale-free:
            ``"standardize"`` (over the batch, per dimension, [A]), ``"l2"`` or ``"none"``.
        decorrelation_eps: Floor of $L_{dc}$'s variances and cosine denominator [A]
            (1e-5).
        lambda_mh: Weight of the harmonisation loss [A] (1.0: on L2-normalised features the
            term is about 0.6 at initialisation, see the README).
        lambda_mc: Weight of the consistency loss [A] (0.5).
        lambda_dc: Weight of the branch decorrelation [A].
        **kwargs: [`VIReIDModule`][] arguments (label smoothing
            [A] 0 as AGW, optimiser, schedule, evaluation).
    """

    network_class = MHN
    net: MHN

    def __init__(
        self,
        network: MHN | Mapping[str, Any],
        *,
        triplet: TripletKind = "wrt",
        triplet_margin: float = 0.3,
        triplet_weight: float = 1.0,
        drm_loss_weight: float = 1.0,
        hybrid_in_identity_losses: bool = True,
        harmonization_distance: Distance = "euclidean",
        harmonization_feature: TestFeature = "pool",
        harmonization_normalization: FeatureNormalization = "l2",
        harmonization_eps: float = 1e-12,
        consistency_include_hybrid: bool = True,
        consistency_floor: float = 1e-12,
        decorrelation_feature: TestFeature = "pool",
        decorrelation_normalization: FeatureNormalization = "standardize",
        decorrelation_eps: float = 1e-5,
        lambda_mh: float = 1.0,
        lambda_mc: float = 0.5,
        lambda_dc: float = 0.1,
        **kwargs: Any,
    ) -> None:
        check_choice("harmonization_feature", harmonization_feature, TestFeature)
        check_choice("decorrelation_feature", decorrelation_feature, TestFeature)
        super().__init__(network, **kwargs)
        self.triplet_loss = make_triplet_loss(triplet, triplet_margin)
        self.harmonization_loss = ModalityHarmonizationLoss(
            harmonization_distance, harmonization_normalization, harmonization_eps
        )
        self.consistency_loss = ModalityConsistencyLoss(consistency_floor)
        self.decorrelation_loss = BranchDecorrelationLoss(
            decorrelation_eps, decorrelation_normalization
        )
        self.harmonization_feature: TestFeature = harmonization_feature
        self.decorrelation_feature: TestFeature = decorrelation_feature
        self.loss_weights = {
            "triplet": triplet_weight,
            "drm": drm_loss_weight,
            "harmonisation": lambda_mh,
            "consistency": lambda_mc,
            "decorrelation": lambda_dc,
        }
        self.hybrid_in_identity_losses = hybrid_in_identity_losses
        self.consistency_include_hybrid = consistency_include_hybrid

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every loss term of a paired training batch, their weighted total and the accuracy.

        Terms: ``id`` and ``triplet`` of the global head, ``id_channel``,
        ``triplet_channel``, ``id_spatial``, ``triplet_spatial`` of the DRM branches,
        ``harmonisation``, ``consistency``, ``decorrelation``; ``loss`` is their weighted
        sum (see the class docstring) and ``accuracy`` that of the global head on the
        visible and infrared rows.

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
        weights = self.loss_weights
        terms: dict[str, torch.Tensor] = {}
        loss = torch.zeros((), device=labels.device)
        for name, head in output.heads.items():
            suffix = "" if name == "global" else f"_{name}"
            logits = head.require_logits()
            terms[f"id{suffix}"] = self.identity_loss(logits[:rows], all_labels[:rows])
            terms[f"triplet{suffix}"] = self.triplet_loss(head.pool[:rows], all_labels[:rows])
            head_weight = 1.0 if name == "global" else weights["drm"]
            loss = loss + head_weight * (
                terms[f"id{suffix}"] + weights["triplet"] * terms[f"triplet{suffix}"]
            )
        global_head = output.heads["global"]
        global_logits = global_head.require_logits()
        terms["harmonisation"] = self.harmonization_loss(
            global_head.feature(self.harmonization_feature), all_labels, modalities
        )
        compared = 3 * size if self.consistency_include_hybrid else 2 * size
        terms["consistency"] = self.consistency_loss(
            global_logits[:compared], all_labels[:compared], modalities[:compared]
        )
        channel, spatial = (
            output.heads[branch].feature(self.decorrelation_feature)[:rows]
            for branch in ("channel", "spatial")
        )
        terms["decorrelation"] = self.decorrelation_loss(channel, spatial)
        for term in ("harmonisation", "consistency", "decorrelation"):
            loss = loss + weights[term] * terms[term]
        terms["loss"] = loss
        predictions = global_logits[: 2 * size].argmax(dim=1)
        terms["accuracy"] = (predictions == all_labels[: 2 * size]).float().mean()
        return terms
