"""A name -> network registry, timm style.

``create_model`` accepts a registered architecture (``"agw_resnet50"``), a published
pretrained name (``"agw_resnet50.sysu_mm01"`` with ``pretrained=True``), a Hub repository
(``"hf-hub:ORG/NAME[@REVISION]"``) or a saved folder (``"local-dir:PATH"``).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from vireid_zoo.core.contract import HF_HUB_PREFIX, LOCAL_DIR_PREFIX, PretrainedConfig
from vireid_zoo.models.network import VIReIDNetwork, load_network

Factory = Callable[..., VIReIDNetwork]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}
BUILTIN_METHODS = ("agw", "mhn", "emif", "cscl")
"""Method packages of the zoo; each registers its networks when it is imported."""


def _import_builtin_methods() -> None:
    """Import the zoo's method packages (once), so that their networks are registered."""
    for method in BUILTIN_METHODS:
        importlib.import_module(f"vireid_zoo.models.{method}")


def register_model(factory: F) -> F:
    """Register a network factory under its function name (``<method>_<arch>``)."""
    name = factory.__name__
    if name in _REGISTRY:
        raise ValueError(f"a model named {name!r} is already registered")
    _REGISTRY[name] = factory
    return factory


TRUNKS = ("resnet18", "resnet34", "resnet50", "resnet101")
"""Trunks every method registers as ``<method>_<trunk>``."""


def register_architectures(network_class: type[VIReIDNetwork], reference: str = "resnet50") -> None:
    """Register a ``<method>_<trunk>`` factory of a network class for every trunk of TRUNKS.

    Args:
        network_class: The method's network; its ``method_name`` gives the prefix.
        reference: The trunk of the method's recipes (named so in the factory's doc).
    """
    roles = {"resnet18": " (for quick experiments and the demo)", reference: " (its recipes)"}
    for trunk in TRUNKS:
        register_model(_trunk_factory(network_class, trunk, roles.get(trunk, "")))


def _trunk_factory(network_class: type[VIReIDNetwork], trunk: str, role: str) -> Factory:
    def factory(**kwargs: Any) -> VIReIDNetwork:
        return network_class(arch=trunk, **kwargs)

    factory.__name__ = factory.__qualname__ = f"{network_class.method_name.lower()}_{trunk}"
    factory.__doc__ = f"{network_class.method_name} on a {trunk} trunk{role}."
    return factory


def list_models(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a shell-style ``pattern``, sorted."""
    _import_builtin_methods()
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def create_model(name: str, pretrained: bool = False, **kwargs: Any) -> VIReIDNetwork:
    """Build a network, untrained or with published weights.

    Args:
        name: ``"<architecture>"`` or ``"<architecture>.<tag>"`` (see [`list_models`][]
            and [`list_pretrained`][]), ``"hf-hub:ORG/NAME"``
            (optionally ``@REVISION``) or ``"local-dir:PATH"``.
        pretrained: Load the published weights of ``<architecture>.<tag>`` (for a bare
            architecture, its only published tag). Hub and folder sources always load
            their weights.
        **kwargs: Constructor arguments (untrained), or loading arguments and overrides
            such as ``num_classes`` (a different size re-initialises the classifier).

    Raises:
        ValueError: for an unknown name, or ``pretrained=True`` where nothing is published.
        FileNotFoundError: a ``local-dir:`` folder, or a file in it, does not exist (a
            folder is never looked up on the Hub).
    """
    if name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        return load_network(name, **kwargs)
    architecture, _, tag = name.partition(".")
    _import_builtin_methods()
    if architecture not in _REGISTRY:
        close = difflib.get_close_matches(architecture, _REGISTRY, n=3)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        if Path(name).expanduser().is_dir():
            hint = f" (to load the saved folder {name}, name it '{LOCAL_DIR_PREFIX}{name}')"
        raise ValueError(
            f"unknown model {name!r}{hint}; registered models: {', '.join(list_models())}"
        )
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


_PRETRAINED: dict[str, PretrainedConfig] = {}


def register_pretrained(name: str, config: PretrainedConfig) -> None:
    """Register published weights as ``<architecture>.<tag>``; they must exist on the Hub."""
    architecture, _, tag = name.partition(".")
    if not tag or architecture != config.architecture or config.hub_id is None:
        raise ValueError(
            f"a pretrained name is '<architecture>.<tag>' with the config's architecture and "
            f"a hub_id; got {name!r} for {config.architecture!r} (hub_id={config.hub_id!r})"
        )
    _PRETRAINED[name] = config


def unregister_pretrained(name: str) -> None:
    """Remove a registered pretrained name (tests and users registering their own)."""
    _PRETRAINED.pop(name, None)


def list_pretrained(pattern: str = "*") -> list[str]:
    """Registered ``<architecture>.<tag>`` names whose weights are published."""
    return sorted(name for name in _PRETRAINED if fnmatch.fnmatch(name, pattern))


def pretrained_config(name: str) -> PretrainedConfig:
    """The registered configuration of ``<architecture>.<tag>``."""
    if name not in _PRETRAINED:
        published = list_pretrained() or "none yet"
        raise ValueError(
            f"no published weights are registered as {name!r} (published: {published}). Load "
            "your own weights with 'hf-hub:ORG/NAME[@REVISION]' or 'local-dir:PATH'."
        )
    return _PRETRAINED[name]
