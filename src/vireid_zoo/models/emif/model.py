"""EMIF network: a shared trunk with visible-only, infrared-only and shared heads.

La Zhang, Xu Zhao, Haohua Du, Jian Sun, Jinqiao Wang, "Learning enhancing
modality-invariant features for visible-infrared person re-identification", Int. J.
Machine Learning and Cybernetics 16(1), 55-73 (2025). The abstract binds an independent
"intra-modality enhancing" branch per modality next to the modality-shared embedding; the
placement of the branches (three copies of ``layer4`` on a trunk shared up to ``layer3``)
is an assumption of this zoo ([A]), set by ``head_stage``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from vireid_zoo.blocks.imagenet import REFERENCE_WEIGHTS
from vireid_zoo.blocks.neck import BNNeck, HeadOutput, TestFeature
from vireid_zoo.blocks.pooling import GeneralizedMeanPooling
from vireid_zoo.blocks.two_stream import LAST_STAGE, TwoStreamResNet
from vireid_zoo.core.choices import check_choice
from vireid_zoo.core.records import Modality
from vireid_zoo.models.network import VIReIDNetwork

Branch = Literal["shared", "visible", "infrared"]


class EMIFTrunk(TwoStreamResNet):
    """A [`TwoStreamResNet`][] whose stages ``head_stage..4`` also exist per modality.

    The shared stages up to ``head_stage - 1`` form the trunk; from ``head_stage`` on there
    are three heads that start from the same (ImageNet) weights: the trunk's own shared
    stages (the shared head, used by
    [`forward`][vireid_zoo.blocks.two_stream.TwoStreamResNet.forward] as in any two-stream trunk),
    and the deep copies ``visible_head`` and ``infrared_head``. Keeping the copies inside the trunk
    puts them in the optimiser's backbone group, like the weights they are copied from.

    Args:
        arch: A timm ResNet, see [`TwoStreamResNet`][].
        pretrained: Start from ImageNet weights.
        weights: Their timm tag (see [`TwoStreamResNet`][]).
        weights_file: A local ImageNet state dict instead of the download.
        split_stage: Last modality-specific stage of the stems (0: the stems only).
        last_stride: Stride of ``layer4``'s first block (applied to all three heads).
        head_stage: First stage of the three heads, ``split_stage + 1`` to 4 (4: a trunk
            shared up to ``layer3`` and three ``layer4`` heads, [A]).
    """

    def __init__(
        self,
        arch: str = "resnet50",
        *,
        pretrained: bool = False,
        weights: str = REFERENCE_WEIGHTS,
        weights_file: str | Path | None = None,
        split_stage: int = 0,
        last_stride: int = 1,
        head_stage: int = 4,
    ) -> None:
        super().__init__(
            arch,
            pretrained=pretrained,
            weights=weights,
            weights_file=weights_file,
            split_stage=split_stage,
            last_stride=last_stride,
        )
        if not split_stage < head_stage <= LAST_STAGE:
            raise ValueError(
                f"head_stage must be {split_stage + 1}..{LAST_STAGE} (after the "
                f"modality-specific stages, split_stage={split_stage}), got {head_stage!r}"
            )
        self.head_stage = head_stage
        shared_head = nn.Sequential(*self.shared_stages[head_stage - split_stage - 1 :])
        self.visible_head = copy.deepcopy(shared_head)
        self.infrared_head = copy.deepcopy(shared_head)

    def forward_trunk(self, x: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Images of one modality -> the feature map entering the heads (stage ``head_stage``)."""
        x = self.forward_specific(x, modality)
        if self.head_stage - 1 > self.split_stage:
            x = self.forward_shared(x, end_stage=self.head_stage - 1)
        return x

    def forward_head(self, x: torch.Tensor, branch: Branch) -> torch.Tensor:
        """Run one head (stages ``head_stage..4``) on a trunk feature map."""
        if branch == "shared":
            return self.forward_shared(x, start_stage=self.head_stage)
        if branch == "visible":
            return self.visible_head(x)
        if branch == "infrared":
            return self.infrared_head(x)
        raise ValueError(f"branch must be 'shared', 'visible' or 'infrared', got {branch!r}")


@dataclass
class EMIFOutput:
    """Training outputs of [`EMIF.forward_pair`][].

    Attributes:
        shared: The shared head on all images, the visible rows first, then the infrared.
        visible: The visible head on the visible images only.
        infrared: The infrared head on the infrared images only.
    """

    shared: HeadOutput
    visible: HeadOutput
    infrared: HeadOutput


class EMIF(VIReIDNetwork):
    """EMIF (Zhang et al., IJMLC 2025): modality-shared and intra-modality enhancing heads.

    A two-stream ResNet (separate visible / infrared stems, last stride 1) shared up to
    ``head_stage - 1``; three heads from ``head_stage`` on ([`EMIFTrunk`][]): the
    shared head sees both modalities, the visible head only visible images and the
    infrared head only infrared images (the paper's independent intra-modality enhancing
    branches). Each head ends in GeM pooling and its own BNNeck and identity classifier.
    The losses (identity, within-modality triplet, Gaussian consistency) are in
    [`EMIFModule`][].

    Args:
        num_classes: Training identities (each head's classifier); 0 for inference only.
        arch: A timm ResNet (resnet18/34/50/101, ...).
        backbone_pretrained: Initialise the trunk and the three heads with ImageNet weights.
        backbone_weights: The timm tag of those weights [A] (``"tv_in1k"``: torchvision's,
            as the reference code of the field).
        backbone_weights_file: A local ImageNet state dict (timm or torchvision layout)
            instead of the download.
        gem_p: GeM exponent of every head.
        last_stride: Stride of ``layer4``'s first block.
        split_stage: Last modality-specific stage of the stems (0: stems only).
        head_stage: First stage of the three heads (4: ``layer4`` heads, [A]).
        test_feature: ``"bn"`` (BNNeck output) or ``"pool"`` (before it) at test time.
        test_concat: Concatenate the matching modality head's embedding (of the same kind)
            to the shared one before L2 normalisation ([A], on by default: 1.0 mAP point
            better on the demo data than the shared embedding alone, see the README).
    """

    method_name = "EMIF"
    paper = (
        "Zhang, Zhao, Du, Sun, Wang, Learning enhancing modality-invariant features for "
        "visible-infrared person re-identification, Int. J. Machine Learning and "
        "Cybernetics 16(1), 55-73, 2025"
    )
    backbone: EMIFTrunk

    def __init__(
        self,
        num_classes: int = 0,
        *,
        arch: str = "resnet50",
        backbone_pretrained: bool = False,
        backbone_weights: str = REFERENCE_WEIGHTS,
        backbone_weights_file: str | Path | None = None,
        gem_p: float = 3.0,
        last_stride: int = 1,
        split_stage: int = 0,
        head_stage: int = 4,
        test_feature: TestFeature = "bn",
        test_concat: bool = True,
    ) -> None:
        super().__init__()
        check_choice("test_feature", test_feature, TestFeature)
        self.backbone = EMIFTrunk(
            arch,
            pretrained=backbone_pretrained,
            weights=backbone_weights,
            weights_file=backbone_weights_file,
            split_stage=split_stage,
            last_stride=last_stride,
            head_stage=head_stage,
        )
        channels = self.backbone.out_channels
        self.pool = GeneralizedMeanPooling(p=gem_p)
        self.neck = BNNeck(channels, num_classes)
        self.visible_neck = BNNeck(channels, num_classes)
        self.infrared_neck = BNNeck(channels, num_classes)
        self.num_classes = num_classes
        self.test_feature = test_feature
        self.test_concat = test_concat
        self.embedding_dim = 2 * channels if test_concat else channels

    def _necks(self) -> dict[Branch, BNNeck]:
        return {"shared": self.neck, "visible": self.visible_neck, "infrared": self.infrared_neck}

    def forward_branch(self, trunk_features: torch.Tensor, branch: Branch) -> HeadOutput:
        """One head on trunk feature maps (logits None without classes)."""
        return self._necks()[branch](self.pool(self.backbone.forward_head(trunk_features, branch)))

    def forward_pair(self, visible: torch.Tensor, infrared: torch.Tensor) -> EMIFOutput:
        """Training forward of a batch of visible and a batch of infrared images.

        Each modality goes through its own stem, then both together through the shared
        trunk (batch statistics cover both, as in AGW) and the shared head; the visible
        head receives only the visible rows of the trunk's output, the infrared head only
        the infrared rows. The two batches may differ in size.
        """
        trunk = torch.cat(
            [
                self.backbone.forward_trunk(visible, "visible"),
                self.backbone.forward_trunk(infrared, "infrared"),
            ]
        )
        num_visible = len(visible)
        output = EMIFOutput(
            shared=self.forward_branch(trunk, "shared"),
            visible=self.forward_branch(trunk[:num_visible], "visible"),
            infrared=self.forward_branch(trunk[num_visible:], "infrared"),
        )
        output.shared.require_logits()
        return output

    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """L2-normalised embeddings of images of one modality.

        The modality picks the stem and, with ``test_concat``, the modality head whose
        embedding is appended to the shared head's.
        """
        trunk = self.backbone.forward_trunk(images, modality)
        feature = self.forward_branch(trunk, "shared").feature(self.test_feature)
        if self.test_concat:
            modality_feature = self.forward_branch(trunk, modality).feature(self.test_feature)
            feature = torch.cat([feature, modality_feature], dim=1)
        return nn.functional.normalize(feature, dim=1)
