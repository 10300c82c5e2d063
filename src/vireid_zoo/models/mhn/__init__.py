"""MHN (Zuo et al., Information Fusion 2025): network, losses, recipe and registered variants."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach
from vireid_zoo.models.mhn.model import MHN
from vireid_zoo.models.registry import register_architectures

if TYPE_CHECKING:
    from vireid_zoo.models.mhn.blocks import DimensionalRefinement, ModalityPerceptiveAggregation
    from vireid_zoo.models.mhn.losses import (
        BranchDecorrelationLoss,
        ModalityConsistencyLoss,
        ModalityHarmonizationLoss,
    )
    from vireid_zoo.models.mhn.model import MHNTrainOutput
    from vireid_zoo.models.mhn.module import MHNModule

register_architectures(MHN)
__getattr__, __dir__, __all__ = attach(__name__, __file__, eager=("MHN",))
