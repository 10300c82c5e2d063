"""AGW baseline (Ye et al., TPAMI 2021): network, recipe and registered variants."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach
from vireid_zoo.models.agw.model import AGW
from vireid_zoo.models.registry import register_architectures

if TYPE_CHECKING:
    from vireid_zoo.models.agw.module import AGWModule

register_architectures(AGW)
__getattr__, __dir__, __all__ = attach(__name__, __file__, eager=("AGW",))
