"""The CSCL training recipe as a LightningModule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch

from vireid_zoo.blocks.neck import TestFeature
from vireid_zoo.core.choices import check_choice
from vireid_zoo.losses.normalization import FeatureNormalization
from vireid_zoo.losses.triplet import TripletKind, make_triplet_loss
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.cscl.losses import (
    CentreDistance,
    CentreForm,
    DivisionLoss,
    ForegroundLoss,
    IdentityCenterMiningLoss,
    ParsingLoss,
)
from vireid_zoo.models.cscl.model import CSCL

_NO_MAPS_MESSAGE = (
    "CSCL trains with human-parsing maps, but the training data has no {missing}: set the "
    "datamodule's parsing_root (data.init_args.parsing_root) to the folder of part-label "
    "maps parallel to the dataset (write them with `vireid-zoo parse`, see docs/parsing.md)"
)

PARSING_KEYS = ("visible_parsing", "infrared_parsing")
DivisionTarget = Literal["features", "maps"]


class CSCLModule(VIReIDModule):
    """Train and evaluate [`CSCL`][] (Liu et al., IEEE TMM 2025).

    Loss (the abstract names the parsing, division and ICM losses; the weights and the
    other terms are assumptions of this zoo, [A]):
    ``L_id + part_id_weight * mean_k L_id(part k) + triplet_weight * L_tri
    + parsing_weight * L_parse + division_weight * L_div + icm_weight * L_icm
    [+ mask_weight * L_mask]``, with identity cross-entropy on the BNNeck logits (global
    and each part), the triplet loss and ICM on the global pooled features of both
    modalities, the parsing loss on SPAM's logits, the division loss on the pooled part
    features standardised over the batch (or on the part maps), and with
    ``pam_mask="predicted"`` the foreground loss
    ([`ForegroundLoss`][]) on the PAMs' own foreground
    predictions. Training batches must carry ``visible_parsing`` / ``infrared_parsing``
    part maps (a datamodule with ``parsing_root``); evaluation takes images alone.

    Args:
        network: The [`CSCL`][] network, or its arguments.
        part_id_weight: Weight of the mean part identity loss.
        triplet: ``"wrt"`` (AGW's weighted regularisation triplet) or ``"batch_hard"``.
        triplet_margin: Margin of the batch-hard triplet.
        triplet_weight: Weight of the triplet loss.
        parsing_weight: lambda_p, weight of the parsing loss.
        division_weight: lambda_d, weight of the division loss.
        division_target: What the division loss decorrelates: ``"features"`` (the pooled
            part features, [A]) or ``"maps"`` (SPAM's pooling maps: their overlap).
        division_normalization: How those are normalised over the batch first:
            ``"standardize"`` ([A], for features), ``"l2"`` or ``"none"`` (raw; the
            natural choice for the non-negative maps).
        icm_weight: lambda_c, weight of the ICM loss.
        icm_margin: Margin of the ICM loss (``icm_form="hinge"``).
        icm_form: ``"hinge"`` (hetero-centre triplet with cross-modality negatives, [A]:
            1.3 mAP points better than the pull on the demo data, see the README) or
            ``"pull"`` (every identity's centre distance, unconditionally); see
            [`IdentityCenterMiningLoss`][].
        icm_distance: ``"euclidean"`` ([A]) or ``"squared_euclidean"`` between centres.
        icm_feature: Global feature whose centres ICM compares: ``"pool"`` (before the
            BNNeck, [A]) or ``"bn"``.
        mask_weight: Weight of the PAMs' foreground loss (``pam_mask="predicted"``) [A].
        **kwargs: [`VIReIDModule`][] arguments (label smoothing,
            optimiser, schedule, evaluation).
    """

    network_class = CSCL
    net: CSCL
    requires_parsing: ClassVar[bool] = True
    """Training needs a datamodule with ``parsing_root`` (benchmarks read this)."""

    def __init__(
        self,
        network: CSCL | Mapping[str, Any],
        *,
        part_id_weight: float = 1.0,
        triplet: TripletKind = "wrt",
        triplet_margin: float = 0.3,
        triplet_weight: float = 1.0,
        parsing_weight: float = 1.0,
        division_weight: float = 0.1,
        division_target: DivisionTarget = "features",
        division_normalization: FeatureNormalization = "standardize",
        icm_weight: float = 0.5,
        icm_margin: float = 0.3,
        icm_form: CentreForm = "hinge",
        icm_distance: CentreDistance = "euclidean",
        icm_feature: TestFeature = "pool",
        mask_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(network, **kwargs)
        self.triplet_loss = make_triplet_loss(triplet, triplet_margin)
        self.parsing_loss = ParsingLoss()
        check_choice("division_target", division_target, DivisionTarget)
        self.division_loss = DivisionLoss(division_normalization)
        self.division_target: DivisionTarget = division_target
        check_choice("icm_feature", icm_feature, TestFeature)
        self.icm_loss = IdentityCenterMiningLoss(icm_margin, icm_form, icm_distance)
        self.icm_feature: TestFeature = icm_feature
        self.foreground_loss = ForegroundLoss()
        self.mask_weight = mask_weight
        self.part_id_weight = part_id_weight
        self.triplet_weight = triplet_weight
        self.parsing_weight = parsing_weight
        self.division_weight = division_weight
        self.icm_weight = icm_weight

    def setup(self, stage: str) -> None:
        """Before fitting, check that the datamodule gives part maps of this model's parts.

        Raises:
            ValueError: The datamodule has no ``parsing_root``, or its grouping's part count
                differs from ``num_parts`` + 1 (background); naming both settings.
        """
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        grouping = getattr(datamodule, "parsing_grouping", None)
        if stage != "fit" or grouping is None:
            return  # evaluation needs no maps; other data is checked batch by batch
        if getattr(datamodule, "parsing_root", None) is None:
            raise ValueError(_NO_MAPS_MESSAGE.format(missing=list(PARSING_KEYS)))
        grouping_parts = grouping.num_parts
        if grouping_parts != self.net.num_parts + 1:
            raise ValueError(
                f"the datamodule's parsing_grouping has {grouping_parts} part indices "
                f"(background included), but the model has num_parts={self.net.num_parts} "
                f"(+ background = {self.net.num_parts + 1}): set "
                f"model.init_args.network.num_parts to {grouping_parts - 1}, or choose a "
                f"grouping of {self.net.num_parts + 1} parts"
            )

    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every loss term of a training batch, their weighted total and the accuracy.

        Terms: ``id`` (global), ``id_parts`` (mean over the parts), ``triplet``,
        ``parsing``, ``division``, ``centre`` (ICM) and, when the PAMs predict their
        foreground, ``mask``.

        Raises:
            ValueError: The batch has no parsing maps (the datamodule lacks parsing_root).
        """
        missing = [key for key in PARSING_KEYS if key not in batch]
        if missing:
            raise ValueError(_NO_MAPS_MESSAGE.format(missing=missing))
        output = self.net.forward_pair(
            batch["visible"], batch["infrared"], batch["visible_parsing"], batch["infrared_parsing"]
        )
        labels = torch.cat([batch["visible_pid"], batch["infrared_pid"]])
        maps = torch.cat([batch["visible_parsing"], batch["infrared_parsing"]])
        size = len(batch["visible_pid"])
        modalities = torch.cat([labels.new_zeros(size), labels.new_ones(size)])
        logits = output.head.require_logits()
        part_identity = torch.stack(
            [
                self.identity_loss(scores, labels)
                for scores in output.parts.require_logits().unbind(dim=1)
            ]
        ).mean()
        terms = {
            "id": self.identity_loss(logits, labels),
            "id_parts": part_identity,
            "triplet": self.triplet_loss(output.head.pool, labels),
            "parsing": self.parsing_loss(output.parsing_logits, maps),
            "division": self.division_loss(
                output.parts.pool
                if self.division_target == "features"
                else output.part_weights.flatten(2)
            ),
            "centre": self.icm_loss(output.head.feature(self.icm_feature), labels, modalities),
        }
        terms["loss"] = (
            terms["id"]
            + self.part_id_weight * terms["id_parts"]
            + self.triplet_weight * terms["triplet"]
            + self.parsing_weight * terms["parsing"]
            + self.division_weight * terms["division"]
            + self.icm_weight * terms["centre"]
        )
        if output.mask_logits:
            terms["mask"] = self.foreground_loss(list(output.mask_logits.values()), maps)
            terms["loss"] = terms["loss"] + self.mask_weight * terms["mask"]
        terms["accuracy"] = (logits.argmax(dim=1) == labels).float().mean()
        return terms
