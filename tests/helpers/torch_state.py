"""The process-wide torch settings a test could leave changed for the tests after it.

``tests/conftest.py`` takes a [`snapshot`][] before every test and compares it after: a
test that changes one of these and does not restore it fails, naming the setting, instead
of changing the outcome of whichever tests its xdist worker happens to run next. Lightning
also writes its seed settings to the environment on every ``seed_everything``; those are
restored silently (see [`ENVIRONMENT`][]).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import _get_current_function_mode_stack
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

ENVIRONMENT = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS")
"""Variables Lightning sets for the rest of the process (seed_everything, deterministic)."""


def snapshot() -> dict[str, Any]:
    """The current value of every guarded torch setting."""
    return {
        "torch.get_num_threads()": torch.get_num_threads(),
        "torch.are_deterministic_algorithms_enabled()": (
            torch.are_deterministic_algorithms_enabled()
        ),
        "torch.is_deterministic_algorithms_warn_only_enabled()": (
            torch.is_deterministic_algorithms_warn_only_enabled()
        ),
        "torch.get_default_dtype()": torch.get_default_dtype(),
        "torch.get_default_device()": str(torch.get_default_device()),
        "torch.is_grad_enabled()": torch.is_grad_enabled(),
        "torch.is_inference_mode_enabled()": torch.is_inference_mode_enabled(),
        "torch.is_autocast_enabled('cpu')": torch.is_autocast_enabled("cpu"),
        "torch.get_autocast_dtype('cpu')": torch.get_autocast_dtype("cpu"),
        "torch.is_autocast_cache_enabled()": torch.is_autocast_cache_enabled(),
        "torch.get_float32_matmul_precision()": torch.get_float32_matmul_precision(),
        "torch.backends.mkldnn.enabled": torch.backends.mkldnn.enabled,
        "torch.backends.cudnn.benchmark": torch.backends.cudnn.benchmark,
        "torch.backends.cudnn.deterministic": torch.backends.cudnn.deterministic,
        "torch.is_anomaly_enabled()": torch.is_anomaly_enabled(),
        "torch function modes": len(_get_current_function_mode_stack()),
        "torch dispatch modes": len(_get_current_dispatch_mode_stack()),
    }


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``"setting: before -> after"`` for every setting that differs."""
    return [f"{k}: {before[k]!r} -> {after[k]!r}" for k in before if before[k] != after[k]]


def environment() -> dict[str, str | None]:
    """The guarded environment variables."""
    return {name: os.environ.get(name) for name in ENVIRONMENT}


def restore_environment(saved: dict[str, str | None]) -> None:
    """Put the guarded environment variables back as ``saved`` has them."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextmanager
def deterministic_mode_restored() -> Iterator[None]:
    """Give torch's deterministic mode back as it was (``Trainer(deterministic=True)`` turns
    it on for the whole process)."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
