"""CSCL: Cross-Modality Semantic Consistency Learning (Liu et al., IEEE TMM 2025)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from vireid_zoo.blocks.imagenet import REFERENCE_WEIGHTS
from vireid_zoo.blocks.neck import BNNeck, HeadOutput, TestFeature
from vireid_zoo.blocks.pooling import GeneralizedMeanPooling
from vireid_zoo.blocks.two_stream import TwoStreamResNet
from vireid_zoo.core.choices import check_choice
from vireid_zoo.core.records import Modality
from vireid_zoo.models.cscl.blocks import (
    ParsingAlignedAttention,
    PartPooling,
    SemanticPartAlignment,
    foreground_from_labels,
    foreground_from_logits,
)
from vireid_zoo.models.network import VIReIDNetwork

InferenceMask = Literal["predicted", "none"]
TestNormalization = Literal["concat", "each"]


@dataclass
class CSCLOutput:
    """Outputs of [`CSCL.forward_pair`][] (rows: the visible, then the infrared images).

    Attributes:
        head: The global feature: GeM-pooled (B, C), BNNeck (B, C), logits (B, N).
        parts: SPAM's part features before their BNNecks (B, K, C), after them (B, K, C)
            and the identity logits of each part (B, K, N).
        parsing_logits: SPAM's part logits (B, K + 1, h, w).
    """

    head: HeadOutput
    parts: HeadOutput
    parsing_logits: torch.Tensor


class CSCL(VIReIDNetwork):
    """CSCL: Cross-Modality Semantic Consistency Learning (Liu et al., IEEE TMM 2025).

    Liu, Zhang, Bian, Wang, Sun, Zhang and Wang, "Cross-Modality Semantic Consistency
    Learning for Visible-Infrared Person Re-Identification", IEEE TMM 27, 568-580 (2025).
    From the abstract: human parsing guides a Parsing-aligned Attention Module (PAM,
    channel attention at several stages) and a Semantic-guided Part Alignment Module
    (SPAM, semantic part features trained with a parsing and a division loss). The rest is
    METHODS.md [A]: the zoo's two-stream ResNet (separate stems, shared layer1..4, last
    stride 1), a PAM after each of ``pam_stages``, GeM + BNNeck for the global feature,
    SPAM on layer4 with a BNNeck per part. Parsing maps are used in training only:
    [`extract_features`][] takes images alone, and the PAMs then pool over the
    foreground SPAM predicts (``inference_mask="predicted"``: a first pass with unmasked
    PAMs gives the part logits, a second pass uses their foreground) or over the whole map
    (``"none"``).

    Args:
        num_classes: Training identities (classifier size); 0 for inference only.
        arch: A timm ResNet (resnet18/34/50/101, ...).
        backbone_pretrained: Initialise the trunk with ImageNet weights.
        backbone_weights: The timm tag of those weights [A] (``"tv_in1k"``: torchvision's,
            as the reference code of the field).
        backbone_weights_file: A local ImageNet state dict (timm or torchvision layout)
            instead of the download.
        num_parts: K, body parts of the parsing grouping without the background
            (4 for the default LIP grouping: head, upper body, lower body, shoes).
        pam_stages: Stages (1..4 = layer1..4, not below ``split_stage``) followed by a PAM.
        pam_reduction: Reduction ratio of the PAM's MLP.
        inference_mask: Foreground of the PAMs without parsing maps (see above).
        part_pooling: SPAM's pooling weights (see [`SemanticPartAlignment`][]).
        gem_p: GeM exponent of the global feature.
        last_stride: Stride of layer4's first block.
        split_stage: Last modality-specific stage (0: only the stems).
        test_feature: ``"bn"`` (BNNeck outputs) or ``"pool"`` (before the BNNecks).
        test_parts: Concatenate the K part features to the global one at test time.
        test_normalization: ``"concat"`` L2-normalises the concatenation as a whole;
            ``"each"`` normalises each feature, then the concatenation.
    """

    method_name = "CSCL"
    paper = (
        "Liu, Zhang, Bian, Wang, Sun, Zhang, Wang, Cross-Modality Semantic Consistency "
        "Learning for Visible-Infrared Person Re-Identification, IEEE TMM 27, 568-580 (2025), "
        "doi:10.1109/TMM.2024.3521843"
    )

    def __init__(
        self,
        num_classes: int = 0,
        *,
        arch: str = "resnet50",
        backbone_pretrained: bool = False,
        backbone_weights: str = REFERENCE_WEIGHTS,
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
    ) -> None:
        super().__init__()
        check_choice("test_feature", test_feature, TestFeature)
        check_choice("inference_mask", inference_mask, InferenceMask)
        check_choice("test_normalization", test_normalization, TestNormalization)
        self.backbone = TwoStreamResNet(
            arch,
            pretrained=backbone_pretrained,
            weights=backbone_weights,
            weights_file=backbone_weights_file,
            split_stage=split_stage,
            last_stride=last_stride,
        )
        stages = sorted(set(pam_stages))
        if any(not max(1, split_stage) <= stage <= 4 for stage in stages):
            raise ValueError(
                f"pam_stages must lie in {max(1, split_stage)}..4 (layer1..layer4, not inside "
                f"the modality-specific stages 0..{split_stage}), got {list(pam_stages)}"
            )
        channels = self.backbone.stage_channels
        self.pam = nn.ModuleDict(
            {str(s): ParsingAlignedAttention(channels[s], pam_reduction) for s in stages}
        )
        width = self.backbone.out_channels
        self.pool = GeneralizedMeanPooling(p=gem_p)
        self.neck = BNNeck(width, num_classes)
        self.spam = SemanticPartAlignment(width, num_parts, part_pooling)
        self.part_necks = nn.ModuleList(BNNeck(width, num_classes) for _ in range(num_parts))
        self.num_parts = num_parts
        self.inference_mask: InferenceMask = inference_mask
        self.test_feature: TestFeature = test_feature
        self.test_parts = test_parts
        self.test_normalization: TestNormalization = test_normalization
        self.embedding_dim = width * (1 + num_parts if test_parts else 1)

    def _trunk(self, specific: torch.Tensor, foreground: torch.Tensor | None) -> torch.Tensor:
        """Run the shared stages from the stems' output, each followed by its PAM if any."""
        x = self._attend(self.backbone.split_stage, specific, foreground)
        for stage in range(self.backbone.split_stage + 1, 5):
            x = self._attend(stage, self.backbone.forward_shared(x, stage, stage), foreground)
        return x

    def _attend(self, stage: int, x: torch.Tensor, foreground: torch.Tensor | None) -> torch.Tensor:
        key = str(stage)
        return self.pam[key](x, foreground) if key in self.pam else x

    def _head(self, feature_map: torch.Tensor) -> CSCLOutput:
        head = self.neck(self.pool(feature_map))
        parsing_logits, part_pool = self.spam(feature_map)
        part_outputs = [neck(part_pool[:, k]) for k, neck in enumerate(self.part_necks)]
        part_logits = None
        if head.logits is not None:
            part_logits = torch.stack([part.require_logits() for part in part_outputs], dim=1)
        parts = HeadOutput(
            pool=part_pool,
            bn=torch.stack([part.bn for part in part_outputs], dim=1),
            logits=part_logits,
        )
        return CSCLOutput(head=head, parts=parts, parsing_logits=parsing_logits)

    def forward_pair(
        self,
        visible: torch.Tensor,
        infrared: torch.Tensor,
        visible_parsing: torch.Tensor,
        infrared_parsing: torch.Tensor,
    ) -> CSCLOutput:
        """Training forward of a paired batch with its part maps (B, H, W) per modality.

        Each modality goes through its own stem; the shared stages see both together (so
        batch statistics cover both) and the PAMs pool over each image's parsed foreground.
        """
        for images, labels in ((visible, visible_parsing), (infrared, infrared_parsing)):
            if labels.shape != (images.shape[0], *images.shape[2:]):
                raise ValueError(
                    f"part maps must be (B, H, W) = {(images.shape[0], *images.shape[2:])} for "
                    f"images of shape {tuple(images.shape)}, got {tuple(labels.shape)}"
                )
        specific = torch.cat(
            [
                self.backbone.forward_specific(visible, "visible"),
                self.backbone.forward_specific(infrared, "infrared"),
            ]
        )
        foreground = foreground_from_labels(torch.cat([visible_parsing, infrared_parsing]))
        output = self._head(self._trunk(specific, foreground))
        output.head.require_logits()
        return output

    def features(self, images: torch.Tensor, modality: Modality) -> CSCLOutput:
        """Outputs for images alone (no parsing maps), PAM masks per ``inference_mask``."""
        specific = self.backbone.forward_specific(images, modality)
        feature_map = self._trunk(specific, None)
        if self.inference_mask == "predicted" and len(self.pam) > 0:
            foreground = foreground_from_logits(self.spam.classifier(feature_map))
            feature_map = self._trunk(specific, foreground)
        return self._head(feature_map)

    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """L2-normalised test embeddings: global (+ parts) ``test_feature`` features."""
        output = self.features(images, modality)
        glob = output.head.feature(self.test_feature)
        parts = output.parts.feature(self.test_feature)
        pieces = [glob, *parts.unbind(dim=1)] if self.test_parts else [glob]
        if self.test_normalization == "each":
            pieces = [nn.functional.normalize(p, dim=1) / math.sqrt(len(pieces)) for p in pieces]
        return nn.functional.normalize(torch.cat(pieces, dim=1), dim=1)
