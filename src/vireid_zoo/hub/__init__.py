"""Trained checkpoints: loading Lightning checkpoints, publishing measured networks.

Saving and loading a network folder (``save_pretrained`` / ``from_pretrained``) belong to
the network itself ([`VIReIDNetwork`][]); this layer works
with what training produces.
"""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.hub.checkpoints import input_contract, load_trained_module
    from vireid_zoo.hub.publish import publish

__getattr__, __dir__, __all__ = attach(__name__, __file__)
