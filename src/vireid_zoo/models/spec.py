"""A network as data: ``{"class_path": ..., "init_args": {...}}``, and back.

A LightningModule of the zoo takes its network as an instance or as this specification
(what LightningCLI's YAML gives and what checkpoints store under
``hyper_parameters["network"]``), so every network argument is written once, in the
network's own signature.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from vireid_zoo.models.network import INIT_ONLY_ARGUMENTS, VIReIDNetwork, network_class

N = TypeVar("N", bound=VIReIDNetwork)

_LOADING_TRAINED_WEIGHTS = contextvars.ContextVar("loading_trained_weights", default=False)


@contextlib.contextmanager
def loading_trained_weights() -> Iterator[None]:
    """Build networks without their initial (ImageNet) weights inside this block.

    Used where a checkpoint's weights replace the initial ones at once (testing,
    exporting, resuming): nothing is downloaded, and a missing ImageNet file is no error.
    """
    token = _LOADING_TRAINED_WEIGHTS.set(True)
    try:
        yield
    finally:
        _LOADING_TRAINED_WEIGHTS.reset(token)


def class_path(network_type: type) -> str:
    """``module.QualName`` of a class, as configs and checkpoints name it."""
    return f"{network_type.__module__}.{network_type.__qualname__}"


def network_spec(network: VIReIDNetwork) -> dict[str, Any]:
    """The specification that rebuilds ``network`` (JSON-safe: paths as strings)."""
    arguments = json.loads(json.dumps(network._hub_mixin_config or {}, default=str))
    return {"class_path": class_path(type(network)), "init_args": arguments}


def build_network(expected: type[N], network: N | Mapping[str, Any]) -> N:
    """The network a module was given: an instance, or a specification to build.

    Args:
        expected: The network class the module trains (an instance of a subclass is fine).
        network: An instance, ``{"class_path": ..., "init_args": {...}}`` (only zoo classes
            are accepted) or the constructor arguments of ``expected`` alone.

    Raises:
        TypeError: ``network`` is neither, or names a class that is not an ``expected``.
    """
    if isinstance(network, expected):
        return network
    if not isinstance(network, Mapping) or isinstance(network, VIReIDNetwork):
        raise TypeError(
            f"network must be a {expected.__name__} or its arguments, got {type(network).__name__}"
        )
    arguments = dict(network.get("init_args", {}) if "class_path" in network else network)
    network_type: type[VIReIDNetwork] = expected
    if "class_path" in network:
        network_type = network_class(network["class_path"], "the network's class_path")
    if not issubclass(network_type, expected):
        raise TypeError(
            f"this module trains a {class_path(expected)} network, but the network given is "
            f"a {class_path(network_type)}; use that method's module, or its network"
        )
    if _LOADING_TRAINED_WEIGHTS.get():
        arguments |= {k: v for k, v in INIT_ONLY_ARGUMENTS.items() if k in arguments}
    return network_type(**arguments)
