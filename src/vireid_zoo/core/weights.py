"""Weights files and the one strict rule for loading them into a network.

Loading never unpickles: saved networks are ``safetensors`` files; a pickled state dict
(an ImageNet ``.pth``, another codebase's checkpoint) is read with
``torch.load(weights_only=True)`` only. Loading is strict: every weight of the network must
be in the file with its shape, and the file may hold nothing else; only an identity
classifier of another size (a different number of training identities) may differ, and it
is then re-initialised with a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file

CLASSIFIER_MARKER = ".classifier."


class WeightsMismatchError(RuntimeError):
    """A weights file does not fit the network it is loaded into."""


def load_weights_strict(
    network: torch.nn.Module, state: dict[str, torch.Tensor], source: str
) -> list[str]:
    """Load ``state`` into ``network``; only a classifier of another size may differ.

    Returns:
        The classifier keys that were re-initialised (kept from ``network``).

    Raises:
        WeightsMismatchError: naming the missing, unexpected and reshaped keys.
    """
    expected = network.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = sorted(
        k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape
    )
    resized_classifiers = [k for k in reshaped if CLASSIFIER_MARKER in f".{k}"]
    others = [k for k in reshaped if k not in resized_classifiers]
    if missing or unexpected or others:
        raise WeightsMismatchError(
            f"the weights in {source} do not fit {type(network).__name__}: "
            f"{len(missing)} missing (e.g. {missing[:4]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:4]}), {len(others)} of another shape (e.g. "
            f"{[(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in others[:3]]}). "
            "They belong to another architecture or configuration."
        )
    if resized_classifiers:
        key = resized_classifiers[0]
        warnings.warn(
            f"{source}: the identity classifier has {state[key].shape[0]} classes and the "
            f"network {expected[key].shape[0]}; it is re-initialised (embeddings do not use "
            "it). Fine-tune before using its logits.",
            stacklevel=3,
        )
        state = {**state, **{k: expected[k] for k in resized_classifiers}}
    network.load_state_dict(state, strict=True)
    return resized_classifiers


def read_weights(path: Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file (never a pickle)."""
    try:
        return load_file(str(path), device=str(map_location))
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"cannot read the safetensors weights {path}: {error}") from error
