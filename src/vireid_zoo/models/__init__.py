"""The zoo's methods: networks, their Lightning recipes and the model registry."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.models.agw import AGW, AGWModule
    from vireid_zoo.models.base import VIReIDModule
    from vireid_zoo.models.checkpointing import (
        ResumableCheckpoint,
        TrainingInterrupted,
        find_last_checkpoint,
    )
    from vireid_zoo.models.cscl import CSCL, CSCLModule
    from vireid_zoo.models.emif import EMIF, EMIFModule
    from vireid_zoo.models.mhn import MHN, MHNModule
    from vireid_zoo.models.network import VIReIDNetwork
    from vireid_zoo.models.registry import (
        create_model,
        list_models,
        list_pretrained,
        register_model,
        register_pretrained,
    )

__getattr__, __dir__, __all__ = attach(__name__, __file__)
