"""AGW: the cross-modality re-identification baseline of Ye et al. (TPAMI 2021)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from vireid_zoo.blocks.attention import NonLocalBlock
from vireid_zoo.blocks.imagenet import REFERENCE_WEIGHTS
from vireid_zoo.blocks.neck import BNNeck, HeadOutput, TestFeature
from vireid_zoo.blocks.pooling import GeMFormula, GeneralizedMeanPooling
from vireid_zoo.blocks.two_stream import TwoStreamResNet
from vireid_zoo.core.choices import check_choice
from vireid_zoo.core.records import Modality
from vireid_zoo.models.network import VIReIDNetwork

Pooling = Literal["gem", "avg"]
REFERENCE_NON_LOCAL_BLOCKS = (0, 2, 3, 0)
"""Non-local blocks after the last N blocks of layer1..4 in the reference AGW."""


class AGW(VIReIDNetwork):
    """AGW, the cross-modality baseline of Ye et al., TPAMI 2021.

    "Deep Learning for Person Re-identification: A Survey and Outlook", Sec. 4.2
    (cross-modality setting). A two-stream ResNet: separate visible and infrared stems
    (conv1, bn1, relu, maxpool), shared ``layer1``..``layer4`` with last stride 1;
    non-local attention blocks after the last two residual blocks of ``layer2`` and the
    last three of ``layer3`` (with
    ResNet-50: blocks 2, 3 and 3, 4, 5); generalised-mean pooling (p = 3, the reference
    code's formula, see [`GeneralizedMeanPooling`][]); a BNNeck and
    a bias-free identity classifier. Trained with identity cross-entropy on the BNNeck
    logits and the weighted regularisation triplet loss on the pooled features (see
    [`AGWModule`][]).

    Args:
        num_classes: Training identities (the classifier's size); 0 for inference only.
        arch: A timm ResNet (resnet18/34/50/101, ...).
        backbone_pretrained: Initialise the trunk with ImageNet weights.
        backbone_weights: The timm tag of those weights (``"tv_in1k"``: torchvision's, as
            the reference).
        backbone_weights_file: A local ImageNet state dict (timm or torchvision layout)
            instead of the download.
        non_local_blocks: Non-local blocks after the last N residual blocks of layer1..4.
            By default the reference placement (0, 2, 3, 0), capped at each layer's number
            of blocks for shallow trunks (resnet18 has 2 blocks per layer); explicit counts
            must fit.
        non_local_channels: Embedding channels of each non-local block (the reference: 1).
        gem_p: GeM exponent (the reference fixes 3).
        gem_formula: GeM's formula: ``"agw"`` (the reference code's,
            ``(mean(x^p) + 1e-12)^(1/p)``) or ``"clamp"`` (as the zoo's other methods:
            activations clamped at 1e-6 before the power).
        pooling: ``"gem"`` (AGW) or ``"avg"``: global average pooling, the reference
            code's ``--method base``.
        gem_formula: GeM's formula: ``"agw"`` (the reference code's,
            ``(mean(x^p) + 1e-12)^(1/p)``) or ``"clamp"`` (as the zoo's other methods:
            activations clamped at 1e-6 before the power).
        pooling: ``"gem"`` (AGW) or ``"avg"``: global average pooling, the reference
            code's ``--method base``.
        last_stride: Stride of layer4's first block (1 in the reference).
        split_stage: Last modality-specific stage (0: only the stems, the reference).
        test_feature: Embedding returned at test time: ``"bn"`` (BNNeck output, the
            reference's reported feature) or ``"pool"`` (before the BNNeck).
    """

    method_name = "AGW"
    paper = (
        "Ye, Shen, Lin, Xiang, Shao, Hoi, Deep Learning for Person Re-identification: A "
        "Survey and Outlook, IEEE TPAMI 2021 (arXiv:2001.04193)"
    )

    def __init__(
        self,
        num_classes: int = 0,
        *,
        arch: str = "resnet50",
        backbone_pretrained: bool = False,
        backbone_weights: str = REFERENCE_WEIGHTS,
        backbone_weights_file: str | Path | None = None,
        non_local_blocks: Sequence[int] | None = None,
        non_local_channels: int = 1,
        gem_p: float = 3.0,
        gem_formula: GeMFormula = "agw",
        pooling: Pooling = "gem",
        last_stride: int = 1,
        split_stage: int = 0,
        test_feature: TestFeature = "bn",
    ) -> None:
        super().__init__()
        check_choice("test_feature", test_feature, TestFeature)
        check_choice("pooling", pooling, Pooling)
        if non_local_blocks is not None and len(non_local_blocks) != 4:
            raise ValueError(
                f"non_local_blocks needs one count per layer1..layer4, got {non_local_blocks}"
            )
        self.backbone = TwoStreamResNet(
            arch,
            pretrained=backbone_pretrained,
            weights=backbone_weights,
            weights_file=backbone_weights_file,
            split_stage=split_stage,
            last_stride=last_stride,
        )
        if non_local_blocks is None:  # the reference placement, within the shared stages
            non_local_blocks = [
                min(count, len(self.backbone.shared_stage(stage))) if stage > split_stage else 0
                for stage, count in enumerate(REFERENCE_NON_LOCAL_BLOCKS, start=1)
            ]
        for stage, count in enumerate(non_local_blocks, start=1):
            self._add_non_local(stage, count, non_local_channels)
        self.pool: nn.Module = (
            GeneralizedMeanPooling(p=gem_p, formula=gem_formula)
            if pooling == "gem"
            else nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        )
        self.neck = BNNeck(self.backbone.out_channels, num_classes)
        self.embedding_dim = self.backbone.out_channels
        self.test_feature = test_feature

    def _add_non_local(self, stage: int, count: int, channels: int) -> None:
        if count == 0:
            return
        blocks = self.backbone.shared_stage(stage)
        if not 0 <= count <= len(blocks):
            raise ValueError(
                f"non_local_blocks asks for {count} non-local blocks in layer{stage}, which has "
                f"{len(blocks)} residual blocks with arch={self.backbone.arch!r}: give at most "
                f"{len(blocks)} there, or leave non_local_blocks unset for the reference "
                "placement capped per trunk"
            )
        for block in range(len(blocks) - count, len(blocks)):
            width = self.backbone.stage_channels[stage]
            self.backbone.insert_after_block(stage, block, NonLocalBlock(width, channels))

    def _head(self, feature_map: torch.Tensor) -> HeadOutput:
        return self.neck(self.pool(feature_map))

    def forward_pair(self, visible: torch.Tensor, infrared: torch.Tensor) -> HeadOutput:
        """Training forward of a paired batch; rows are the visible, then infrared images.

        Each modality goes through its own stem, then both together through the shared
        stages (so batch statistics cover both), as the reference does.
        """
        specific = torch.cat(
            [
                self.backbone.forward_specific(visible, "visible"),
                self.backbone.forward_specific(infrared, "infrared"),
            ]
        )
        output = self._head(self.backbone.forward_shared(specific))
        output.require_logits()
        return output

    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """L2-normalised ``test_feature`` embeddings of images of one modality."""
        output = self._head(self.backbone(images, modality))
        return nn.functional.normalize(output.feature(self.test_feature), dim=1)
