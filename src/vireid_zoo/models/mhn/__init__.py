"""MHN (Zuo et al., Information Fusion 2025): network, losses, recipe and registered variants."""

from typing import Any

from vireid_zoo.models.mhn.blocks import DimensionalRefinement, ModalityPerceptiveAggregation
from vireid_zoo.models.mhn.losses import (
    BranchDecorrelationLoss,
    ModalityConsistencyLoss,
    ModalityHarmonizationLoss,
)
from vireid_zoo.models.mhn.model import MHN, MHNHeadOutput, MHNTrainOutput
from vireid_zoo.models.mhn.module import MHNModule
from vireid_zoo.models.registry import register_model


@register_model
def mhn_resnet18(**kwargs: Any) -> MHN:
    """MHN on a ResNet-18 trunk (for quick experiments and the demo)."""
    return MHN(arch="resnet18", **kwargs)


@register_model
def mhn_resnet34(**kwargs: Any) -> MHN:
    """MHN on a ResNet-34 trunk."""
    return MHN(arch="resnet34", **kwargs)


@register_model
def mhn_resnet50(**kwargs: Any) -> MHN:
    """MHN on a ResNet-50 trunk: the zoo's reference configuration."""
    return MHN(arch="resnet50", **kwargs)


@register_model
def mhn_resnet101(**kwargs: Any) -> MHN:
    """MHN on a ResNet-101 trunk."""
    return MHN(arch="resnet101", **kwargs)


__all__ = [
    "MHN",
    "BranchDecorrelationLoss",
    "DimensionalRefinement",
    "MHNHeadOutput",
    "MHNModule",
    "MHNTrainOutput",
    "ModalityConsistencyLoss",
    "ModalityHarmonizationLoss",
    "ModalityPerceptiveAggregation",
]
