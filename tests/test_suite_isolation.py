"""The guard of tests/conftest.py sees every process-wide torch setting a test may leave."""

from __future__ import annotations

import os

import torch

from helpers import torch_state


def test_a_changed_setting_is_named_with_both_values() -> None:
    before = torch_state.snapshot()
    torch.use_deterministic_algorithms(True)
    try:
        changed = torch_state.changes(before, torch_state.snapshot())
    finally:
        torch.use_deterministic_algorithms(False)
    assert changed == ["torch.are_deterministic_algorithms_enabled(): False -> True"]
    assert torch_state.changes(before, torch_state.snapshot()) == []


def test_settings_left_by_autocast_grad_mode_and_dtype_are_seen() -> None:
    before = torch_state.snapshot()
    leaked = torch.autocast("cpu", dtype=torch.float16)
    leaked.__enter__()  # a context entered and never left
    try:
        with torch.no_grad():
            torch.set_default_dtype(torch.float64)
            try:
                changed = torch_state.changes(before, torch_state.snapshot())
            finally:
                torch.set_default_dtype(torch.float32)
    finally:
        leaked.__exit__(None, None, None)
    names = [line.split(":")[0] for line in changed]
    assert names == [
        "torch.get_default_dtype()",
        "torch.is_grad_enabled()",
        "torch.is_autocast_enabled('cpu')",
        "torch.get_autocast_dtype('cpu')",
    ]


def test_lightning_environment_variables_are_put_back() -> None:
    saved = torch_state.environment()
    os.environ["PL_SEED_WORKERS"] = "1"
    os.environ.pop("PL_GLOBAL_SEED", None)
    torch_state.restore_environment({**saved, "PL_SEED_WORKERS": None, "PL_GLOBAL_SEED": "7"})
    assert "PL_SEED_WORKERS" not in os.environ and os.environ["PL_GLOBAL_SEED"] == "7"
    torch_state.restore_environment(saved)
    assert torch_state.environment() == saved
