"""Losses run in float32 under mixed precision.

Under ``bf16-mixed`` / ``16-mixed`` autocast a network's features and logits arrive in
half precision, where a loss's arithmetic is fragile: in float16, softmax probabilities
below 6e-8 and clamps such as ``min=1e-12`` become 0 (so ``log`` gives ``-inf`` and
``0 * inf`` NaN), squared norms of wide features overflow past 65504, and normalising a
zero vector divides 0 by 0. Losses cost little next to the network, so every loss of the
zoo computes in float32: [`in_float32`][] widens its half-precision tensor arguments and
turns autocast off while it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")

HALF_DTYPES = (torch.float16, torch.bfloat16)


def widen(value: Any) -> Any:
    """A float16 / bfloat16 tensor as float32; lists and tuples element by element.

    Anything else is returned unchanged (float64 stays).
    """
    if isinstance(value, torch.Tensor) and value.dtype in HALF_DTYPES:
        return value.float()
    if type(value) in (list, tuple):  # e.g. one tensor per stage
        return type(value)(widen(item) for item in value)
    return value


def _tensors(values: tuple[Any, ...]) -> list[torch.Tensor]:
    """The tensors among ``values``, and inside those that are lists or tuples."""
    found = []
    for value in values:
        items = value if type(value) in (list, tuple) else (value,)
        found += [item for item in items if isinstance(item, torch.Tensor)]
    return found


def in_float32(function: Callable[P, R]) -> Callable[P, R]:
    """Run a loss (a function or a ``forward`` method) in float32 with autocast off.

    Every half-precision tensor argument, also inside a list or tuple argument, is cast to
    float32 first (gradients flow back through the cast in the inputs' dtype); other
    arguments are passed unchanged.
    """

    @functools.wraps(function)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        tensors = _tensors((*args, *kwargs.values()))
        device = tensors[0].device.type if tensors else "cpu"
        with torch.autocast(device_type=device, enabled=False):
            widened_args = [widen(value) for value in args]
            widened_kwargs = {key: widen(value) for key, value in kwargs.items()}
            return function(*widened_args, **widened_kwargs)

    return wrapped
