"""Resolving a class named in a saved file, without importing anything but the zoo."""

from __future__ import annotations

import importlib
import inspect
from typing import TypeVar

T = TypeVar("T")


def import_zoo_class(name: object, base: type[T]) -> type[T] | None:
    """The concrete class ``name`` (``package.module.Class``) names, if it is a zoo ``base``.

    Only modules of the ``vireid_zoo`` package are imported: a name saved in a downloaded
    config or checkpoint never makes other code run.

    Args:
        name: A dotted class path, e.g. ``"vireid_zoo.models.AGWModule"``.
        base: The class the named one must derive from.

    Returns:
        The class, or None when ``name`` is not a concrete zoo subclass of ``base``.
    """
    if not isinstance(name, str) or not name.startswith("vireid_zoo.") or "." not in name:
        return None
    module_name, attribute = name.rsplit(".", 1)
    try:
        candidate = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return None
    if isinstance(candidate, type) and issubclass(candidate, base):
        return None if inspect.isabstract(candidate) else candidate
    return None
