"""MHN: the Modality-perceptive Harmonization Network (Zuo et al., Information Fusion 2025)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
from vireid_zoo.models.mhn.blocks import (
    DEFAULT_CUES,
    Cue,
    DimensionalRefinement,
    MapMode,
    ModalityPerceptiveAggregation,
)
from vireid_zoo.models.network import VIReIDNetwork

Head = Literal["global", "channel", "spatial"]
HEADS: tuple[Head, ...] = ("global", "channel", "spatial")


@dataclass
class MHNTrainOutput:
    """Training outputs of [`MHN.forward_train`][].

    Attributes:
        heads: Outputs of the ``"global"``, ``"channel"`` and ``"spatial"`` heads; rows are
            the B visible, then the B infrared, then the B hybrid samples.
        consistency_map: MAM's map A (B, C, H, W) or (B, C, 1, 1).
    """

    heads: dict[Head, HeadOutput]
    consistency_map: torch.Tensor


class MHN(VIReIDNetwork):
    """Modality-perceptive Harmonization Network (Zuo, Peng, Cheng, Wang, Inf. Fusion 2025).

    On the zoo's two-stream trunk [A] (separate visible / infrared stages
    ``0..split_stage``, shared later stages, last stride 1, GeM, BNNeck):

    - training ([`forward_train`][]): the MAM
      ([`ModalityPerceptiveAggregation`][]) fuses the
      visible and infrared feature maps after stage ``split_stage`` (the stems by default)
      [A], pair by pair, into a hybrid map; the hybrid runs through the shared stages as a
      third stream, in one batch with the two modalities (batch statistics cover all
      three) [A];
    - on the map of stage ``drm_stage`` (layer4 by default) the DRM
      ([`DimensionalRefinement`][]) gives a channel and
      a spatial branch; with ``drm_stage`` < 4 each branch then runs through the later
      shared stages (the same weights as the global stream) [A]; the final global map and
      each branch's are GeM-pooled, each with its own BNNeck and identity classifier [A];
    - inference ([`extract_features`][]): the images' own modality stream only; MAM
      and the hybrid are never run. The embedding concatenates the ``test_parts`` and is
      L2-normalised as a whole (not part by part) [A].

    Args:
        num_classes: Training identities (the classifiers' size); 0 for inference only.
        arch: A timm ResNet (resnet18/34/50/101, ...).
        backbone_pretrained: Initialise the trunk with ImageNet weights.
        backbone_weights: The timm tag of those weights [A] (``"tv_in1k"``: torchvision's,
            as the reference code of the field).
        backbone_weights_file: A local ImageNet state dict (timm or torchvision layout)
            instead of the download.
        split_stage: Last modality-specific stage; MAM fuses its outputs [A] (0: after the
            stems).
        mam_mode: Consistency map ``"channel"``-wise, ``"pixel"``-wise or ``"both"`` [A].
        mam_cues: What MAM's map is computed from, a subset of
            [`CUES`][vireid_zoo.models.mhn.blocks.CUES] [A] (all four: the two features,
            their product and their absolute difference).
        mam_zero_init: MAM's convolutions start at zero, so the hybrid starts as the mean of
            the two modalities [A] (True).
        drm_stage: The stage whose output map DRM refines [A] (4: layer4), from
            ``split_stage + 1`` to 4.
        drm_reduction: Channel-branch MLP reduction [A].
        drm_channel_pooling: Channel-branch descriptors, ``("avg",)`` = SE [A].
        drm_kernel_size: Spatial-branch convolution size [A].
        gem_p: GeM exponent [A] (3, the zoo's trunk).
        last_stride: Stride of layer4's first block [A] (1).
        test_parts: Heads concatenated into the test embedding [A] (all three).
        test_feature: Per part, ``"bn"`` (BNNeck output) or ``"pool"`` (before it) [A].
    """

    method_name = "MHN"
    paper = (
        "Zuo, Peng, Cheng, Wang, Modality-perceptive Harmonization Network for "
        "visible-infrared person re-identification, Information Fusion 118, 102979 (2025), "
        "doi:10.1016/j.inffus.2025.102979"
    )

    def __init__(
        self,
        num_classes: int = 0,
        *,
        arch: str = "resnet50",
        backbone_pretrained: bool = False,
        backbone_weights: str = REFERENCE_WEIGHTS,
        backbone_weights_file: str | Path | None = None,
        split_stage: int = 0,
        mam_mode: MapMode = "both",
        mam_cues: Sequence[Cue] = DEFAULT_CUES,
        mam_zero_init: bool = True,
        drm_stage: int = 4,
        drm_reduction: int = 16,
        drm_channel_pooling: Sequence[ChannelPooling] = ("avg",),
        drm_kernel_size: int = 7,
        gem_p: float = 3.0,
        last_stride: int = 1,
        test_parts: Sequence[Head] = HEADS,
        test_feature: TestFeature = "bn",
    ) -> None:
        super().__init__()
        check_choice("test_feature", test_feature, TestFeature)
        if not test_parts or any(part not in HEADS for part in test_parts):
            raise ValueError(f"test_parts must be a non-empty subset of {HEADS}, got {test_parts}")
        if len(set(test_parts)) != len(test_parts):
            raise ValueError(f"test_parts lists a head twice: {test_parts}")
        self.backbone = TwoStreamResNet(
            arch,
            pretrained=backbone_pretrained,
            weights=backbone_weights,
            weights_file=backbone_weights_file,
            split_stage=split_stage,
            last_stride=last_stride,
        )
        channels = self.backbone.out_channels
        if not split_stage < drm_stage <= 4:
            raise ValueError(
                f"drm_stage must be {split_stage + 1}..4 (a shared stage after "
                f"split_stage={split_stage}), got {drm_stage!r}"
            )
        self.drm_stage = drm_stage
        self.mam = ModalityPerceptiveAggregation(
            self.backbone.stage_channels[split_stage],
            mode=mam_mode,
            cues=mam_cues,
            zero_init=mam_zero_init,
        )
        self.drm = DimensionalRefinement(
            self.backbone.stage_channels[drm_stage],
            drm_reduction,
            channel_pooling=drm_channel_pooling,
            kernel_size=drm_kernel_size,
        )
        self.pool = GeneralizedMeanPooling(p=gem_p)
        self.necks = nn.ModuleDict({head: BNNeck(channels, num_classes) for head in HEADS})
        self.test_parts: tuple[Head, ...] = tuple(test_parts)
        self.test_feature: TestFeature = test_feature
        self.embedding_dim = channels * len(self.test_parts)

    def _heads(self, specific: torch.Tensor, heads: Sequence[Head]) -> dict[Head, HeadOutput]:
        """The ``heads`` of maps leaving the modality-specific stages (or MAM)."""
        refined = self.backbone.forward_shared(specific, end_stage=self.drm_stage)
        maps: dict[Head, torch.Tensor] = {"global": refined}
        if "channel" in heads:
            maps["channel"] = self.drm.channel(refined)
        if "spatial" in heads:
            maps["spatial"] = self.drm.spatial(refined)
        if self.drm_stage < 4:
            start = self.drm_stage + 1
            maps = {k: self.backbone.forward_shared(m, start_stage=start) for k, m in maps.items()}
        return {head: self.necks[head](self.pool(maps[head])) for head in heads}

    def forward_train(self, visible: torch.Tensor, infrared: torch.Tensor) -> MHNTrainOutput:
        """Training forward of a paired batch: visible, infrared and hybrid streams.

        Args:
            visible: (B, 3, H, W) visible images.
            infrared: (B, 3, H, W) infrared images; row j shows the identity of
                ``visible[j]`` (the paired sampler), so MAM fuses same-identity features.
        """
        visible_map = self.backbone.forward_specific(visible, "visible")
        infrared_map = self.backbone.forward_specific(infrared, "infrared")
        hybrid_map, consistency = self.mam(visible_map, infrared_map)
        streams = torch.cat([visible_map, infrared_map, hybrid_map])
        heads = self._heads(streams, HEADS)
        heads["global"].require_logits()
        return MHNTrainOutput(heads=heads, consistency_map=consistency)

    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """L2-normalised concatenation of the ``test_parts`` of images of one modality.

        Uses only ``modality``'s stream and the shared trunk: MAM is not run.
        """
        heads = self._heads(self.backbone.forward_specific(images, modality), self.test_parts)
        parts = [heads[part].feature(self.test_feature) for part in self.test_parts]
        return nn.functional.normalize(torch.cat(parts, dim=1), dim=1)
