"""Weights files and the one strict rule for loading them into a network.

Loading never unpickles: saved networks are ``safetensors`` files; a pickled state dict
(an ImageNet ``.pth``, another codebase's checkpoint) is read with
``torch.load(weights_only=True)`` only. Loading is strict: every weight of the network must
be in the file with its shape, and the file may hold nothing else; only an identity
classifier of another size (a different number of training identities) may differ, and it
is then re-initialised with a warning. Names are compared after dropping the
``_orig_mod.`` segments that ``torch.compile`` adds (a network compiled by hand saves
``net._orig_mod.*``), so compiled and uncompiled weights load into each other; nothing
else about the rule changes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

CLASSIFIER_MARKER = ".classifier."
COMPILED_SEGMENT = "_orig_mod"
"""The name segment ``torch.compile``'s wrapper module adds to every name of its weights."""

MAX_LISTED_KEYS = 5
"""Keys named per kind of difference in a mismatch message."""


class WeightsMismatchError(ValueError):
    """Weights do not fit the network or module they are loaded into.

    Raised, with one message style, by every loader of the zoo: saved and published
    networks, Lightning checkpoints, ``init_from``, ImageNet trunk files and converted
    checkpoints of other codebases.
    """


@dataclass(frozen=True)
class WeightsDifference:
    """How a state dict differs from the one a module expects.

    Attributes:
        missing: Keys the module has and the weights lack.
        unexpected: Keys the weights have and the module lacks.
        reshaped: ``(key, shape in the weights, shape in the module)`` of shared keys.
    """

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    reshaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]

    @property
    def resized_classifiers(self) -> tuple[str, ...]:
        """Reshaped keys of an identity classifier (a different number of identities)."""
        return tuple(key for key, _, _ in self.reshaped if CLASSIFIER_MARKER in f".{key}")

    def fits(self, *, allow_classifier_resize: bool) -> bool:
        """Whether the weights can be loaded (optionally re-initialising a classifier)."""
        if self.missing or self.unexpected:
            return False
        if allow_classifier_resize:
            return len(self.resized_classifiers) == len(self.reshaped)
        return not self.reshaped

    def describe(self) -> str:
        """The differences in one line, naming the first keys of each kind."""

        def listed(keys: list[str]) -> str:
            more = len(keys) - MAX_LISTED_KEYS
            return f"e.g. {keys[:MAX_LISTED_KEYS]}" + (f" and {more} more" if more > 0 else "")

        shapes = [f"{k} (file {given}, model {wanted})" for k, given, wanted in self.reshaped]
        parts = [
            f"{len(keys)} {kind} ({listed(list(keys))})"
            for kind, keys in (
                ("missing", self.missing),
                ("unexpected", self.unexpected),
                ("of another shape", shapes),
            )
            if keys
        ]
        return ", ".join(parts) or "no difference"


def uncompiled_name(key: str) -> str:
    """``key`` without the ``_orig_mod.`` segments of ``torch.compile`` wrappers."""
    return ".".join(part for part in key.split(".") if part != COMPILED_SEGMENT)


def align_compiled_names(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], source: str
) -> dict[str, torch.Tensor]:
    """``given`` with each name spelt as ``expected`` spells it, ``_orig_mod.`` aside.

    A weight saved from a ``torch.compile`` wrapper (``net._orig_mod.neck.weight``) is
    renamed to the module's ``net.neck.weight`` and the reverse; names that match no weight
    of the module stay as they are (and are then reported as unexpected).

    Args:
        expected: The module's state dict.
        given: The weights to load.
        source: Where the weights come from, for messages.

    Raises:
        WeightsMismatchError: two weights of ``given`` are the same weight once
            ``_orig_mod.`` is dropped.
    """
    own = {uncompiled_name(key): key for key in expected}
    aligned: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in given.items():
        name = own.get(uncompiled_name(key), key)
        if name in aligned:
            raise WeightsMismatchError(
                f"the weights in {source} hold {origin[name]!r} and {key!r}, the same weight "
                "with and without torch.compile's '_orig_mod.' prefix; keep one of them"
            )
        aligned[name], origin[name] = value, key
    return aligned


def compare_weights(
    expected: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    *,
    may_be_missing: Callable[[str], bool] | None = None,
) -> WeightsDifference:
    """Compare a state dict with the one a module expects.

    Args:
        expected: The module's state dict.
        given: The weights to load.
        may_be_missing: Keys the weights may lack (e.g. BatchNorm ``num_batches_tracked``
            counters of old files), left as the module has them.
    """
    missing = sorted(
        k for k in expected.keys() - given.keys() if not (may_be_missing and may_be_missing(k))
    )
    reshaped = tuple(
        (k, tuple(given[k].shape), tuple(expected[k].shape))
        for k in sorted(expected.keys() & given.keys())
        if given[k].shape != expected[k].shape
    )
    unexpected = tuple(sorted(given.keys() - expected.keys()))
    return WeightsDifference(tuple(missing), unexpected, reshaped)


def require_fit(
    difference: WeightsDifference,
    *,
    source: str,
    target: str,
    allow_classifier_resize: bool = True,
    hint: str = "They belong to another architecture or configuration.",
) -> None:
    """Raise [`WeightsMismatchError`][] unless the weights fit.

    Args:
        difference: From [`compare_weights`][].
        source: Where the weights come from (a file, a folder, a Hub repository).
        target: What they are loaded into, e.g. ``"AGW(arch='resnet50')"``.
        allow_classifier_resize: Accept an identity classifier of another size.
        hint: The last sentence of the message: what to do.
    """
    if not difference.fits(allow_classifier_resize=allow_classifier_resize):
        raise WeightsMismatchError(
            f"the weights in {source} do not fit {target}: {difference.describe()}. {hint}"
        )


def load_weights_strict(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    *,
    target: str | None = None,
    allow_classifier_resize: bool = True,
    may_be_missing: Callable[[str], bool] | None = None,
    hint: str = "They belong to another architecture or configuration.",
) -> list[str]:
    """Load ``state`` into ``module`` under the zoo's one strict rule.

    Every weight of the module must be in ``state`` with its shape and ``state`` may hold
    nothing else; only an identity classifier of another size may differ (when
    ``allow_classifier_resize``): it is then kept as initialised, with a warning. Names
    are matched with [`align_compiled_names`][] (``torch.compile``'s ``_orig_mod.``
    aside).

    Args:
        module: The network (or any module) to fill.
        state: The weights.
        source: Where the weights come from, for messages.
        target: What they are loaded into, for messages (default: the module's class).
        allow_classifier_resize: Accept an identity classifier of another size.
        may_be_missing: Keys ``state`` may lack (see [`compare_weights`][]).
        hint: The last sentence of a mismatch message.

    Returns:
        The classifier keys that were re-initialised (kept from ``module``).

    Raises:
        WeightsMismatchError: naming the missing, unexpected and reshaped keys.
    """
    expected = module.state_dict()
    state = align_compiled_names(expected, state, source)
    difference = compare_weights(expected, state, may_be_missing=may_be_missing)
    require_fit(
        difference,
        source=source,
        target=target or type(module).__name__,
        allow_classifier_resize=allow_classifier_resize,
        hint=hint,
    )
    resized = list(difference.resized_classifiers)
    if resized:
        warnings.warn(
            f"{source}: the identity classifier has {state[resized[0]].shape[0]} classes and "
            f"the network {expected[resized[0]].shape[0]}; it is re-initialised (embeddings "
            "do not use it). Fine-tune before using its logits.",
            stacklevel=2,
        )
    kept = {k: v for k, v in expected.items() if k not in state or k in resized}
    module.load_state_dict({**state, **kept}, strict=True)
    return resized


def read_state_dict(path: Path, what: str = "weights file") -> dict[str, torch.Tensor]:
    """Read a flat state dict (names -> tensors) from ``.safetensors`` or ``.pth`` / ``.pt``.

    Pickled files are read with ``torch.load(weights_only=True)``: nothing in them runs.

    Args:
        path: The file.
        what: How messages name the file (e.g. ``"backbone_weights_file"``).

    Raises:
        FileNotFoundError: the file does not exist.
        WeightsMismatchError: it cannot be read, or holds something else than a flat
            state dict.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".pth", ".pt"):
        raise WeightsMismatchError(
            f"{what} {str(path)!r}: expected a .safetensors, .pth or .pt file"
        )
    try:
        if suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt files raise library-specific errors
        raise WeightsMismatchError(f"could not read {what} {str(path)!r}: {err}") from err
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise WeightsMismatchError(
            f"{what} {str(path)!r} does not hold a flat state dict (names -> tensors)"
        )
    return dict(state)


def read_weights(path: Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file (never a pickle)."""
    try:
        return load_file(str(path), device=str(map_location))
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"cannot read the safetensors weights {path}: {error}") from error
