"""Checking a user's choice among named options, with one message style."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_args


def check_choice(name: str, value: object, choices: Iterable[object] | Any) -> None:
    """Raise ``ValueError`` naming the argument and its options unless ``value`` is one.

    Args:
        name: The argument's name, as the user writes it.
        value: The value given.
        choices: The options: an iterable, or a ``Literal[...]`` type.
    """
    options = get_args(choices) or tuple(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
