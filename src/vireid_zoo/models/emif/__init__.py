"""EMIF (Zhang et al., IJMLC 2025): network, recipe, losses and registered variants."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach
from vireid_zoo.models.emif.model import EMIF
from vireid_zoo.models.registry import register_architectures

if TYPE_CHECKING:
    from vireid_zoo.models.emif.losses import (
        GaussianConsistencyLoss,
        batch_centre_loss,
        gaussian_divergence,
    )
    from vireid_zoo.models.emif.model import EMIFOutput, EMIFTrunk
    from vireid_zoo.models.emif.module import EMIFModule

register_architectures(EMIF)
__getattr__, __dir__, __all__ = attach(__name__, __file__, eager=("EMIF",))
