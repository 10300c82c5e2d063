"""CSCL (Liu et al., IEEE TMM 2025): network, recipe, losses and registered variants."""

from typing import Any

from vireid_zoo.models.cscl.blocks import ParsingAlignedAttention, SemanticPartAlignment
from vireid_zoo.models.cscl.losses import (
    DivisionLoss,
    IdentityCenterMiningLoss,
    ParsingLoss,
)
from vireid_zoo.models.cscl.model import CSCL, CSCLOutput
from vireid_zoo.models.cscl.module import CSCLModule
from vireid_zoo.models.registry import register_model


@register_model
def cscl_resnet18(**kwargs: Any) -> CSCL:
    """CSCL on a ResNet-18 trunk (for quick experiments and the demo)."""
    return CSCL(arch="resnet18", **kwargs)


@register_model
def cscl_resnet34(**kwargs: Any) -> CSCL:
    """CSCL on a ResNet-34 trunk."""
    return CSCL(arch="resnet34", **kwargs)


@register_model
def cscl_resnet50(**kwargs: Any) -> CSCL:
    """CSCL on a ResNet-50 trunk: the METHODS.md [A] configuration."""
    return CSCL(arch="resnet50", **kwargs)


@register_model
def cscl_resnet101(**kwargs: Any) -> CSCL:
    """CSCL on a ResNet-101 trunk."""
    return CSCL(arch="resnet101", **kwargs)


__all__ = [
    "CSCL",
    "CSCLModule",
    "CSCLOutput",
    "DivisionLoss",
    "IdentityCenterMiningLoss",
    "ParsingAlignedAttention",
    "ParsingLoss",
    "SemanticPartAlignment",
]
