"""Resolving a class named in a saved file, without importing anything but the zoo."""

from __future__ import annotations

import importlib
import inspect


def import_zoo_class(name: object) -> type | None:
    """The concrete class ``name`` (``package.module.Class``) names, if the zoo defines it.

    Only modules of the ``vireid_zoo`` package are imported: a name saved in a downloaded
    config or checkpoint never makes other code run. Callers check the class's base with
    ``issubclass``, which also types it (an abstract base cannot be a ``type[T]`` argument).

    Args:
        name: A dotted class path, e.g. ``"vireid_zoo.models.AGWModule"``.

    Returns:
        The class, or None when ``name`` is not a concrete class of a zoo module.
    """
    if not isinstance(name, str) or not name.startswith("vireid_zoo.") or "." not in name:
        return None
    module_name, attribute = name.rsplit(".", 1)
    try:
        candidate = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return None
    if isinstance(candidate, type) and not inspect.isabstract(candidate):
        return candidate
    return None
