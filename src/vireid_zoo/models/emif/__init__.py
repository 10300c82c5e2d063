"""EMIF (Zhang et al., IJMLC 2025): network, recipe, losses and registered variants."""

from typing import Any

from vireid_zoo.models.emif.losses import (
    GaussianConsistencyLoss,
    batch_centre_loss,
    gaussian_divergence,
)
from vireid_zoo.models.emif.model import EMIF, BranchOutput, EMIFOutput, EMIFTrunk
from vireid_zoo.models.emif.module import EMIFModule
from vireid_zoo.models.registry import register_model


@register_model
def emif_resnet18(**kwargs: Any) -> EMIF:
    """EMIF on a ResNet-18 trunk (for quick experiments and the demo)."""
    return EMIF(arch="resnet18", **kwargs)


@register_model
def emif_resnet34(**kwargs: Any) -> EMIF:
    """EMIF on a ResNet-34 trunk."""
    return EMIF(arch="resnet34", **kwargs)


@register_model
def emif_resnet50(**kwargs: Any) -> EMIF:
    """EMIF on a ResNet-50 trunk: the configuration of the zoo's recipes."""
    return EMIF(arch="resnet50", **kwargs)


@register_model
def emif_resnet101(**kwargs: Any) -> EMIF:
    """EMIF on a ResNet-101 trunk."""
    return EMIF(arch="resnet101", **kwargs)


__all__ = [
    "EMIF",
    "BranchOutput",
    "EMIFModule",
    "EMIFOutput",
    "EMIFTrunk",
    "GaussianConsistencyLoss",
    "batch_centre_loss",
    "gaussian_divergence",
]
