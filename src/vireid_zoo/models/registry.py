"""A name -> network registry, timm style.

``create_model`` accepts a registered architecture (``"agw_resnet50"``), a published
pretrained name (``"agw_resnet50.sysu_mm01"`` with ``pretrained=True``), a Hub repository
(``"hf-hub:ORG/NAME[@REVISION]"``) or a saved folder (``"local-dir:PATH"``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from vireid_zoo.models.network import VIReIDNetwork, load_network
from vireid_zoo.pretrained import (
    HF_HUB_PREFIX,
    LOCAL_DIR_PREFIX,
    list_pretrained,
    pretrained_config,
)

Factory = Callable[..., VIReIDNetwork]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}


def register_model(factory: F) -> F:
    """Register a network factory under its function name (``<method>_<arch>``)."""
    name = factory.__name__
    if name in _REGISTRY:
        raise ValueError(f"a model named {name!r} is already registered")
    _REGISTRY[name] = factory
    return factory


def list_models(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a shell-style ``pattern``, sorted."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def create_model(name: str, pretrained: bool = False, **kwargs: Any) -> VIReIDNetwork:
    """Build a network, untrained or with published weights.

    Args:
        name: ``"<architecture>"`` or ``"<architecture>.<tag>"`` (see :func:`list_models`
            and :func:`~vireid_zoo.pretrained.list_pretrained`), ``"hf-hub:ORG/NAME"``
            (optionally ``@REVISION``) or ``"local-dir:PATH"``.
        pretrained: Load the published weights of ``<architecture>.<tag>`` (for a bare
            architecture, its only published tag). Hub and folder sources always load
            their weights.
        **kwargs: Constructor arguments (untrained), or loading arguments and overrides
            such as ``num_classes`` (a different size re-initialises the classifier).

    Raises:
        ValueError: for an unknown name, or ``pretrained=True`` where nothing is published.
    """
    if name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        return load_network(name, **kwargs)
    architecture, _, tag = name.partition(".")
    if architecture not in _REGISTRY:
        close = [n for n in _REGISTRY if architecture.split("_")[0] in n] or list_models()
        raise ValueError(f"unknown model {name!r}; registered models include {close[:12]}")
    if not pretrained:
        return _REGISTRY[architecture](**kwargs)
    if not tag:
        tags = list_pretrained(f"{architecture}.*")
        if len(tags) != 1:
            raise ValueError(
                f"pretrained=True needs a tag for {architecture!r}: published are "
                f"{tags or 'none yet'}; name one as '{architecture}.<tag>', or load weights "
                "with 'hf-hub:ORG/NAME' or 'local-dir:PATH'"
            )
        name = tags[0]
    config = pretrained_config(name)
    revision = f"@{config.revision}" if config.revision else ""
    return load_network(f"{HF_HUB_PREFIX}{config.hub_id}{revision}", **kwargs)
