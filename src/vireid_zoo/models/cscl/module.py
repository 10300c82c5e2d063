"""The CSCL training recipe as a LightningModule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from vireid_zoo.losses import IdentityLoss, TripletKind, make_triplet_loss
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.cscl.blocks import PartPooling
from vireid_zoo.models.cscl.losses import DivisionLoss, IdentityCenterMiningLoss, ParsingLoss
from vireid_zoo.models.cscl.model import CSCL, InferenceMask, TestFeature, TestNormalization

_NO_MAPS_MESSAGE = (
    "CSCL trains with human-parsing maps, but the training data has no {missing}: set the "
    "datamodule's parsing_root (data.init_args.parsing_root) to the folder of part-label "
    "maps parallel to the dataset (write them with `vireid-zoo parse`, see docs/parsing.md)"
)

PARSING_KEYS = ("visible_parsing", "infrared_parsing")


class CSCLModule(VIReIDModule):
    """Train and evaluate :class:`CSCL` (Liu et al., IEEE TMM 2025).

    Loss (the abstract names the parsing, division and ICM losses; the weights and the
    other terms are METHODS.md [A]):
    ``L_id + part_id_weight * mean_k L_id(part k) + triplet_weight * L_tri
    + parsing_weight * L_parse + division_weight * L_div + icm_weight * L_icm``, with
    identity cross-entropy on the BNNeck logits (global and each part), the triplet loss
    and ICM on the global pooled features of both modalities, the parsing loss on SPAM's
    logits, and the division loss on the pooled part features. Training batches must
    carry ``visible_parsing`` / ``infrared_parsing`` part maps (a datamodule with
    ``parsing_root``); evaluation takes images alone.

    Args:
        num_classes: Training identities; the CLI links it from the datamodule.
        arch: timm ResNet of the trunk.
        backbone_pretrained: Start from ImageNet weights.
        backbone_weights_file: Local ImageNet weights instead of the download.
        num_parts: K body parts (the datamodule's grouping size minus the background).
        pam_stages: Stages followed by a PAM (layer1..layer3).
        pam_reduction: PAM MLP reduction ratio.
        inference_mask: PAM foreground without maps: ``"predicted"`` or ``"none"``.
        part_pooling: ``"class_softmax"`` or ``"spatial_softmax"`` part pooling weights.
        gem_p: GeM exponent.
        last_stride: Stride of layer4's first block.
        split_stage: Last modality-specific stage.
        test_feature: ``"bn"`` or ``"pool"`` features at test time.
        test_parts: Concatenate the part features to the global one at test time.
        test_normalization: ``"concat"`` (normalise the concatenation) or ``"each"``.
        label_smoothing: Label smoothing of every identity loss.
        part_id_weight: Weight of the mean part identity loss.
        triplet: ``"wrt"`` (AGW's weighted regularisation triplet) or ``"batch_hard"``.
        triplet_margin: Margin of the batch-hard triplet.
        triplet_weight: Weight of the triplet loss.
        parsing_weight: lambda_p, weight of the parsing loss.
        division_weight: lambda_d, weight of the division loss.
        icm_weight: lambda_c, weight of the ICM loss.
        icm_margin: Margin of the ICM loss.
        **kwargs: :class:`VIReIDModule` arguments (optimiser, schedule, evaluation).
    """

    requires_parsing: ClassVar[bool] = True
    """Training needs a datamodule with ``parsing_root`` (benchmarks read this)."""

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "resnet50",
        backbone_pretrained: bool = True,
        backbone_weights_file: str | Path | None = None,
        num_parts: int = 4,
        pam_stages: Sequence[int] = (1, 2, 3),
        pam_reduction: int = 16,
        inference_mask: InferenceMask = "predicted",
        part_pooling: PartPooling = "class_softmax",
        gem_p: float = 3.0,
        last_stride: int = 1,
        split_stage: int = 0,
        test_feature: TestFeature = "bn",
        test_parts: bool = True,
        test_normalization: TestNormalization = "concat",
        label_smoothing: float = 0.0,
        part_id_weight: float = 1.0,
        triplet: TripletKind = "wrt",
        triplet_margin: float = 0.3,
        triplet_weight: float = 1.0,
        parsing_weight: float = 1.0,
        division_weight: float = 0.1,
        icm_weight: float = 0.5,
        icm_margin: float = 0.3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.net = CSCL(
            num_classes,
            arch=arch,
            backbone_pretrained=backbone_pretrained,
            backbone_weights_file=backbone_weights_file,
            num_parts=num_parts,
            pam_stages=pam_stages,
            pam_reduction=pam_reduction,
            inference_mask=inference_mask,
            part_pooling=part_pooling,
            gem_p=gem_p,
            last_stride=last_stride,
            split_stage=split_stage,
            test_feature=test_feature,
            test_parts=test_parts,
            test_normalization=test_normalization,
        )
        self.identity_loss = IdentityLoss(label_smoothing)
        self.triplet_loss = make_triplet_loss(triplet, triplet_margin)
        self.parsing_loss = ParsingLoss()
        self.division_loss = DivisionLoss()
        self.icm_loss = IdentityCenterMiningLoss(icm_margin)
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
        if stage != "fit" or not hasattr(datamodule, "parsing_grouping"):
            return  # evaluation needs no maps; other data is checked batch by batch
        if datamodule.parsing_root is None:
            raise ValueError(_NO_MAPS_MESSAGE.format(missing=list(PARSING_KEYS)))
        grouping_parts = datamodule.parsing_grouping.num_parts
        if grouping_parts != self.net.num_parts + 1:
            raise ValueError(
                f"the datamodule's parsing_grouping has {grouping_parts} part indices "
                f"(background included), but the model has num_parts={self.net.num_parts} "
                f"(+ background = {self.net.num_parts + 1}): set model.init_args.num_parts to "
                f"{grouping_parts - 1}, or choose a grouping of {self.net.num_parts + 1} parts"
            )

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every loss term of a training batch, unweighted, and the weighted total ``loss``.

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
        size = len(batch["visible_pid"])
        modalities = torch.cat([labels.new_zeros(size), labels.new_ones(size)])
        assert output.logits is not None and output.part_logits is not None  # forward_pair checks
        part_identity = torch.stack(
            [self.identity_loss(scores, labels) for scores in output.part_logits.unbind(dim=1)]
        ).mean()
        terms = {
            "id_loss": self.identity_loss(output.logits, labels),
            "part_id_loss": part_identity,
            "triplet_loss": self.triplet_loss(output.pool, labels),
            "parsing_loss": self.parsing_loss(
                output.parsing_logits,
                torch.cat([batch["visible_parsing"], batch["infrared_parsing"]]),
            ),
            "division_loss": self.division_loss(output.part_pool),
            "icm_loss": self.icm_loss(output.pool, labels, modalities),
        }
        terms["loss"] = (
            terms["id_loss"]
            + self.part_id_weight * terms["part_id_loss"]
            + self.triplet_weight * terms["triplet_loss"]
            + self.parsing_weight * terms["parsing_loss"]
            + self.division_weight * terms["division_loss"]
            + self.icm_weight * terms["icm_loss"]
        )
        terms["accuracy"] = (output.logits.argmax(dim=1) == labels).float().mean()
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The weighted sum of the CSCL losses; every term is logged under ``train/``."""
        terms = self.losses(batch)
        self.log_dict(
            {f"train/{name}": value for name, value in terms.items()},
            prog_bar=True,
            batch_size=2 * len(batch["visible_pid"]),
        )
        return terms["loss"]
