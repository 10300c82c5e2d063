"""CSCL: Cross-Modality Semantic Consistency Learning (Liu et al., IEEE TMM 2025)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from vireid_zoo.blocks.attention import ChannelPooling
from vireid_zoo.blocks.imagenet import REFERENCE_WEIGHTS
from vireid_zoo.blocks.neck import BNNeck, HeadOutput, TestFeature
from vireid_zoo.blocks.pooling import GeneralizedMeanPooling
from vireid_zoo.blocks.two_stream import TwoStreamResNet
from vireid_zoo.core.choices import check_choice
from vireid_zoo.core.records import Modality
from vireid_zoo.models.cscl.blocks import (
    ForegroundRule,
    ParsingAlignedAttention,
    PartPooling,
    SemanticPartAlignment,
    foreground_from_labels,
    foreground_from_logits,
    foreground_from_probability,
)
from vireid_zoo.models.network import VIReIDNetwork

InferenceMask = Literal["predicted", "none"]
PamMask = Literal["predicted", "parsing"]
TestNormalization = Literal["concat", "each"]


@dataclass
class CSCLOutput:
    """Outputs of [`CSCL.forward_pair`][] (rows: the visible, then the infrared images).

    Attributes:
        head: The global feature: GeM-pooled (B, C), BNNeck (B, C), logits (B, N).
        parts: SPAM's part features before their BNNecks (B, K, C), after them (B, K, C)
            and the identity logits of each part (B, K, N).
        parsing_logits: SPAM's part logits (B, K + 1, h, w).
        part_weights: SPAM's pooling weights (B, K, h, w), each part's summing to one.
        mask_logits: With ``pam_mask="predicted"``, each PAM's foreground logits
            (B, 1, h_s, w_s), by stage; empty otherwise.
    """

    head: HeadOutput
    parts: HeadOutput
    parsing_logits: torch.Tensor
    part_weights: torch.Tensor
    mask_logits: dict[int, torch.Tensor] = field(default_factory=dict)


class CSCL(VIReIDNetwork):
    """CSCL: Cross-Modality Semantic Consistency Learning (Liu et al., IEEE TMM 2025).

    Liu, Zhang, Bian, Wang, Sun, Zhang and Wang, "Cross-Modality Semantic Consistency
    Learning for Visible-Infrared Person Re-Identification", IEEE TMM 27, 568-580 (2025).
    From the abstract: human parsing guides a Parsing-aligned Attention Module (PAM,
    channel attention at several stages) and a Semantic-guided Part Alignment Module
    (SPAM, semantic part features trained with a parsing and a division loss). The rest is
    an assumption of this zoo ([A]): the zoo's two-stream ResNet (separate stems, shared
    layer1..4, last stride 1), a PAM after each of ``pam_stages``, GeM + BNNeck for the
    global feature, SPAM on layer4 with a BNNeck per part.

    Parsing maps exist for training images only, so what the PAMs pool over at test time
    is a prediction. ``pam_mask`` says which foreground they pool over:

    - ``"predicted"`` (the default): each PAM predicts the foreground of its own input
      ([`ParsingAlignedAttention.mask_logits`][], trained against the parsed foreground
      by the module's mask loss) and pools over that prediction, in training and at test
      alike: one pass, and the network is never in a state it was not trained in;
    - ``"parsing"``: in training the PAMs pool over the parsed foreground; at test a first
      pass with unmasked PAMs gives SPAM's part logits, whose foreground masks the PAMs of
      a second pass (two trunk passes per test image; the first pass is a state training
      never sees, see the README's measurement).

    ``inference_mask="none"`` makes the test-time PAMs pool over the whole map instead.
    [`features`][] also takes parsing maps for images that have them (an oracle for
    measurements on synthetic data).

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
        pam_pooling: The PAM's foreground descriptors [A]: ``("avg",)`` (masked average)
            or ``("avg", "max")``.
        pam_residual: PAM output ``f + f w`` [A] (True) or ``f w``.
        pam_mask: What the PAMs pool over: ``"predicted"`` or ``"parsing"`` (see above) [A].
        inference_mask: At test, ``"predicted"`` foregrounds or ``"none"`` (no mask) [A].
        predicted_foreground: How a predicted foreground probability becomes a mask:
            ``"soft"`` (the probability) or ``"hard"`` (above one half) [A].
        part_pooling: SPAM's pooling weights (see [`SemanticPartAlignment`][]).
        part_eps: Floor of SPAM's ``"class_softmax"`` normaliser [A] (1e-6).
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
        pam_pooling: Sequence[ChannelPooling] = ("avg",),
        pam_residual: bool = True,
        pam_mask: PamMask = "predicted",
        inference_mask: InferenceMask = "predicted",
        predicted_foreground: ForegroundRule = "soft",
        part_pooling: PartPooling = "class_softmax",
        part_eps: float = 1e-6,
        gem_p: float = 3.0,
        last_stride: int = 1,
        split_stage: int = 0,
        test_feature: TestFeature = "bn",
        test_parts: bool = True,
        test_normalization: TestNormalization = "concat",
    ) -> None:
        super().__init__()
        check_choice("test_feature", test_feature, TestFeature)
        check_choice("pam_mask", pam_mask, PamMask)
        check_choice("inference_mask", inference_mask, InferenceMask)
        check_choice("predicted_foreground", predicted_foreground, ForegroundRule)
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
            {
                str(s): ParsingAlignedAttention(
                    channels[s],
                    pam_reduction,
                    pooling=pam_pooling,
                    residual=pam_residual,
                    predict_mask=pam_mask == "predicted",
                )
                for s in stages
            }
        )
        width = self.backbone.out_channels
        self.pool = GeneralizedMeanPooling(p=gem_p)
        self.neck = BNNeck(width, num_classes)
        self.spam = SemanticPartAlignment(width, num_parts, part_pooling, eps=part_eps)
        self.part_necks = nn.ModuleList(BNNeck(width, num_classes) for _ in range(num_parts))
        self.num_parts = num_parts
        self.pam_mask: PamMask = pam_mask
        self.inference_mask: InferenceMask = inference_mask
        self.predicted_foreground: ForegroundRule = predicted_foreground
        self.test_feature: TestFeature = test_feature
        self.test_parts = test_parts
        self.test_normalization: TestNormalization = test_normalization
        self.embedding_dim = width * (1 + num_parts if test_parts else 1)

    def _trunk(
        self, specific: torch.Tensor, foreground: torch.Tensor | None, predict: bool
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The shared stages from the stems' output, each followed by its PAM if any.

        Each PAM pools over ``foreground`` (None: the whole map), or with ``predict`` over
        the foreground it predicts from its input. Returns the final map and, with
        ``predict``, each PAM's foreground logits by stage.
        """
        logits: dict[int, torch.Tensor] = {}
        x = specific
        for stage in range(self.backbone.split_stage, 5):
            if stage > self.backbone.split_stage:
                x = self.backbone.forward_shared(x, stage, stage)
            pam = self.pam[str(stage)] if str(stage) in self.pam else None
            if not isinstance(pam, ParsingAlignedAttention):
                continue  # no PAM after this stage
            mask = foreground
            if predict:
                logits[stage] = pam.mask_logits(x)
                probability = torch.sigmoid(logits[stage]).detach()
                mask = foreground_from_probability(probability, self.predicted_foreground)
            x = pam(x, mask)
        return x, logits

    def _head(self, feature_map: torch.Tensor) -> CSCLOutput:
        head = self.neck(self.pool(feature_map))
        parsing_logits, part_pool = self.spam(feature_map)
        part_weights = self.spam.pooling_weights(parsing_logits)
        part_outputs = [neck(part_pool[:, k]) for k, neck in enumerate(self.part_necks)]
        part_logits = None
        if head.logits is not None:
            part_logits = torch.stack([part.require_logits() for part in part_outputs], dim=1)
        parts = HeadOutput(
            pool=part_pool,
            bn=torch.stack([part.bn for part in part_outputs], dim=1),
            logits=part_logits,
        )
        return CSCLOutput(head, parts, parsing_logits, part_weights)

    def forward_pair(
        self,
        visible: torch.Tensor,
        infrared: torch.Tensor,
        visible_parsing: torch.Tensor,
        infrared_parsing: torch.Tensor,
    ) -> CSCLOutput:
        """Training forward of a paired batch with its part maps (B, H, W) per modality.

        Each modality goes through its own stem; the shared stages see both together (so
        batch statistics cover both). The PAMs pool over each image's parsed foreground
        (``pam_mask="parsing"``) or over their own prediction of it (``"predicted"``: the
        parsed foreground is then the target of those predictions, not their input).
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
        predict = self.pam_mask == "predicted"
        foreground = None
        if not predict:
            foreground = foreground_from_labels(torch.cat([visible_parsing, infrared_parsing]))
        feature_map, mask_logits = self._trunk(specific, foreground, predict)
        output = self._head(feature_map)
        output.mask_logits = mask_logits
        output.head.require_logits()
        return output

    def features(
        self, images: torch.Tensor, modality: Modality, parsing: torch.Tensor | None = None
    ) -> CSCLOutput:
        """Outputs for images of one modality, PAM masks per ``pam_mask`` / ``inference_mask``.

        Args:
            images: (B, 3, H, W).
            modality: The images' modality.
            parsing: Their part maps (B, H, W), if they have any: the PAMs then pool over
                the parsed foreground, whatever ``pam_mask`` (an oracle for measurements).
        """
        specific = self.backbone.forward_specific(images, modality)
        if parsing is not None:
            return self._head(self._trunk(specific, foreground_from_labels(parsing), False)[0])
        if self.inference_mask == "none" or len(self.pam) == 0:
            return self._head(self._trunk(specific, None, False)[0])
        if self.pam_mask == "predicted":
            return self._head(self._trunk(specific, None, True)[0])
        feature_map = self._trunk(specific, None, False)[0]
        logits = self.spam.classifier(feature_map)
        foreground = foreground_from_logits(logits, self.predicted_foreground)
        return self._head(self._trunk(specific, foreground, False)[0])

    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """L2-normalised test embeddings: global (+ parts) ``test_feature`` features."""
        return self.embed_output(self.features(images, modality))

    def embed_output(self, output: CSCLOutput) -> torch.Tensor:
        """The L2-normalised test embedding of [`features`][]' output."""
        glob = output.head.feature(self.test_feature)
        parts = output.parts.feature(self.test_feature)
        pieces = [glob, *parts.unbind(dim=1)] if self.test_parts else [glob]
        if self.test_normalization == "each":
            pieces = [nn.functional.normalize(p, dim=1) / math.sqrt(len(pieces)) for p in pieces]
        return nn.functional.normalize(torch.cat(pieces, dim=1), dim=1)
