"""The bottom layer: records and modality names, input contracts, weights files, sources.

Every other layer may import from here; nothing here imports another layer of the zoo.
"""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.core.contract import IMAGENET_MEAN, IMAGENET_STD, PretrainedConfig
    from vireid_zoo.core.records import MODALITIES, MODALITY_CODES, Modality, Sample
    from vireid_zoo.core.weights import WeightsMismatchError, load_weights_strict

__getattr__, __dir__, __all__ = attach(__name__, __file__)
