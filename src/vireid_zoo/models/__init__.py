"""The zoo's methods: networks, their Lightning recipes and the model registry."""

from vireid_zoo.models.agw import AGW, AGWModule
from vireid_zoo.models.base import CheckpointMismatchError, VIReIDModule
from vireid_zoo.models.cscl import CSCL, CSCLModule
from vireid_zoo.models.emif import EMIF, EMIFModule
from vireid_zoo.models.mhn import MHN, MHNModule
from vireid_zoo.models.network import VIReIDNetwork
from vireid_zoo.models.registry import create_model, list_models, register_model

__all__ = [
    "AGW",
    "AGWModule",
    "CSCL",
    "CSCLModule",
    "CheckpointMismatchError",
    "EMIF",
    "EMIFModule",
    "MHN",
    "MHNModule",
    "VIReIDModule",
    "VIReIDNetwork",
    "create_model",
    "list_models",
    "register_model",
]
