"""AGW baseline (Ye et al., TPAMI 2021): network, recipe and registered variants."""

from typing import Any

from vireid_zoo.models.agw.model import AGW, AGWOutput
from vireid_zoo.models.agw.module import AGWModule
from vireid_zoo.models.registry import register_model


@register_model
def agw_resnet18(**kwargs: Any) -> AGW:
    """AGW on a ResNet-18 trunk (for quick experiments and the demo)."""
    return AGW(arch="resnet18", **kwargs)


@register_model
def agw_resnet34(**kwargs: Any) -> AGW:
    """AGW on a ResNet-34 trunk."""
    return AGW(arch="resnet34", **kwargs)


@register_model
def agw_resnet50(**kwargs: Any) -> AGW:
    """AGW on a ResNet-50 trunk: the reference configuration."""
    return AGW(arch="resnet50", **kwargs)


@register_model
def agw_resnet101(**kwargs: Any) -> AGW:
    """AGW on a ResNet-101 trunk."""
    return AGW(arch="resnet101", **kwargs)


__all__ = ["AGW", "AGWModule", "AGWOutput"]
