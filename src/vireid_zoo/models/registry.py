"""A name -> network registry, timm style: ``create_model("agw_resnet50")``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from vireid_zoo.models.network import VIReIDNetwork

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
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def create_model(name: str, **kwargs: Any) -> VIReIDNetwork:
    """Build a registered network.

    Args:
        name: A name from :func:`list_models`, e.g. ``"agw_resnet50"``.
        **kwargs: Constructor arguments of the network (e.g. ``num_classes``).

    Raises:
        ValueError: for an unknown name, listing close matches.
    """
    if name not in _REGISTRY:
        close = [n for n in _REGISTRY if name.split("_")[0] in n] or list_models()
        raise ValueError(f"unknown model {name!r}; registered models include {close[:12]}")
    return _REGISTRY[name](**kwargs)
