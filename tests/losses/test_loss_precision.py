"""Every loss of the zoo computes in float32 under float16 / bfloat16 autocast."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from vireid_zoo.losses import (
    BatchHardTripletLoss,
    HeteroCenterTripletLoss,
    IdentityLoss,
    WeightedRegularizationTripletLoss,
)
from vireid_zoo.models.cscl.losses import (
    DivisionLoss,
    ForegroundLoss,
    IdentityCenterMiningLoss,
    ParsingLoss,
)
from vireid_zoo.models.emif.losses import GaussianConsistencyLoss, batch_centre_loss
from vireid_zoo.models.mhn.losses import (
    BranchDecorrelationLoss,
    ModalityConsistencyLoss,
    ModalityHarmonizationLoss,
)

LOSS_MODULES = [
    "vireid_zoo.losses.identity",
    "vireid_zoo.losses.triplet",
    "vireid_zoo.losses.centre",
    "vireid_zoo.models.mhn.losses",
    "vireid_zoo.models.cscl.losses",
    "vireid_zoo.models.emif.losses",
]
HALF = [torch.float16, torch.bfloat16]

generator = torch.Generator().manual_seed(0)
features = torch.randn(12, 64, generator=generator)
logits = 20 * torch.randn(12, 395, generator=generator)  # spread like trained logits
labels = torch.arange(3).repeat_interleave(4)
two = torch.tensor([0, 1] * 6)  # visible, infrared
three = torch.tensor([0, 1, 2] * 4)  # with MHN's hybrid
three_labels = torch.arange(4).repeat_interleave(3)
parts = torch.stack([features, torch.zeros_like(features), -features], dim=1)  # an empty part
parsing_logits = torch.randn(2, 5, 4, 2, generator=generator)
parsing_labels = torch.randint(0, 5, (2, 8, 4), generator=generator)
foreground_logits = [  # one per PAM stage
    8 * torch.randn(2, 1, 4, 2, generator=generator),
    torch.randn(2, 1, 2, 1, generator=generator),
]

CASES: dict[str, tuple[Callable[..., torch.Tensor], tuple[Any, ...]]] = {
    "IdentityLoss": (IdentityLoss(0.1), (logits, labels)),
    "BatchHardTripletLoss": (BatchHardTripletLoss(), (features, labels)),
    "WeightedRegularizationTripletLoss": (WeightedRegularizationTripletLoss(), (features, labels)),
    "HeteroCenterTripletLoss": (HeteroCenterTripletLoss(), (features, labels, two)),
    "ModalityHarmonizationLoss": (ModalityHarmonizationLoss(), (features, three_labels, three)),
    "ModalityConsistencyLoss": (ModalityConsistencyLoss(), (logits, three_labels, three)),
    "BranchDecorrelationLoss": (BranchDecorrelationLoss(), (features, features.roll(1, 1))),
    "ParsingLoss": (ParsingLoss(), (parsing_logits, parsing_labels)),
    "ForegroundLoss": (ForegroundLoss(), (foreground_logits, parsing_labels)),
    "DivisionLoss": (DivisionLoss(), (parts,)),
    "IdentityCenterMiningLoss": (IdentityCenterMiningLoss(), (features, labels, two)),
    "GaussianConsistencyLoss": (
        GaussianConsistencyLoss(),
        (features[two == 0], features[two == 1], labels[two == 0], labels[two == 1]),
    ),
    "batch_centre_loss": (batch_centre_loss, (features, labels)),
}


def test_the_cases_cover_every_loss_of_the_zoo() -> None:
    found = set()
    for name in LOSS_MODULES:
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            defined_here = getattr(value, "__module__", None) == name
            is_loss = inspect.isclass(value) and issubclass(value, nn.Module)
            is_function = attribute.endswith("_loss") and not attribute.startswith("make_")
            if defined_here and (is_loss or is_function):
                found.add(attribute)
    assert found == set(CASES)


def cast(value: torch.Tensor | list[torch.Tensor], dtype: torch.dtype) -> Any:
    """A floating tensor, or each of a list of them, in ``dtype``."""
    if isinstance(value, list):
        return [cast(item, dtype) for item in value]
    return value.to(dtype) if value.is_floating_point() else value


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_loss_is_float32_and_exact_under_autocast(name: str, dtype: torch.dtype) -> None:
    loss, inputs = CASES[name]
    # The inputs a network would give under autocast: rounded to half precision.
    rounded = [cast(x, dtype) for x in inputs]
    expected = loss(*[cast(x, torch.float32) for x in rounded])
    with torch.autocast("cpu", dtype=dtype):
        value = loss(*rounded)
    assert value.dtype == torch.float32
    assert torch.isfinite(expected)
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_half_precision_inputs_get_gradients_in_their_dtype() -> None:
    scores = logits.to(torch.float16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.float16):
        ModalityConsistencyLoss()(scores, three_labels, three).backward()
    assert scores.grad is not None and scores.grad.dtype == torch.float16
    assert torch.isfinite(scores.grad).all()
