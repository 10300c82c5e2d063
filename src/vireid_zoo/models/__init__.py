"""The zoo's methods: networks, their Lightning recipes and the model registry."""

from vireid_zoo.models.agw import AGW, AGWModule
from vireid_zoo.models.base import CheckpointMismatchError, VIReIDModule
from vireid_zoo.models.network import VIReIDNetwork
from vireid_zoo.models.registry import create_model, list_models, register_model

__all__ = [
    "AGW",
    "AGWModule",
    "CheckpointMismatchError",
    "VIReIDModule",
    "VIReIDNetwork",
    "create_model",
    "list_models",
    "register_model",
]
