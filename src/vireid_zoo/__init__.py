"""vireid-zoo: visible-infrared person re-identification models, data and evaluation.

The package face is lazy: a name below is imported when it is first used, so
``import vireid_zoo`` costs almost nothing. The layers (see the architecture page of the
docs): ``core`` <- ``evaluation`` <- ``data`` <- ``blocks`` / ``losses`` <- ``models`` <-
``hub`` <- ``deploy`` <- ``cli``.
"""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.core.contract import PretrainedConfig
    from vireid_zoo.core.version import __version__
    from vireid_zoo.hub.conversion import convert_checkpoint
    from vireid_zoo.models.agw import AGW, AGWModule
    from vireid_zoo.models.base import VIReIDModule
    from vireid_zoo.models.cscl import CSCL, CSCLModule
    from vireid_zoo.models.emif import EMIF, EMIFModule
    from vireid_zoo.models.mhn import MHN, MHNModule
    from vireid_zoo.models.network import VIReIDNetwork, load_network
    from vireid_zoo.models.registry import (
        create_model,
        list_models,
        list_pretrained,
        register_model,
        register_pretrained,
    )

__getattr__, __dir__, __all__ = attach(__name__, __file__)
