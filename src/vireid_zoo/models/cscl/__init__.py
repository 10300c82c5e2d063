"""CSCL (Liu et al., IEEE TMM 2025): network, recipe, losses and registered variants."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach
from vireid_zoo.models.cscl.model import CSCL
from vireid_zoo.models.registry import register_architectures

if TYPE_CHECKING:
    from vireid_zoo.models.cscl.blocks import ParsingAlignedAttention, SemanticPartAlignment
    from vireid_zoo.models.cscl.losses import (
        DivisionLoss,
        ForegroundLoss,
        IdentityCenterMiningLoss,
        ParsingLoss,
    )
    from vireid_zoo.models.cscl.model import CSCLOutput
    from vireid_zoo.models.cscl.module import CSCLModule

register_architectures(CSCL)
__getattr__, __dir__, __all__ = attach(__name__, __file__, eager=("CSCL",))
