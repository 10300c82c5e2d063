"""Loss values worked out by hand on tiny inputs, and their edge cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vireid_zoo.losses import (
    BatchHardTripletLoss,
    HeteroCenterTripletLoss,
    IdentityLoss,
    WeightedRegularizationTripletLoss,
    modality_centres,
    pairwise_euclidean,
)


def _softplus(value: float) -> float:
    return math.log1p(math.exp(value))


# --- distances and identity loss -----------------------------------------------------------


def test_pairwise_euclidean_hand_values_and_coincident_gradient() -> None:
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
    y = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    # d(x0,y0) = sqrt(1e-12) = 1e-6 (clamped), d(x0,y1) = 1,
    # d(x1,y0) = sqrt(9 + 16) = 5, d(x1,y1) = sqrt(9 + 9) = sqrt(18).
    expected = torch.tensor([[1e-6, 1.0], [5.0, math.sqrt(18)]])
    dist = pairwise_euclidean(x, y)
    torch.testing.assert_close(dist, expected)
    dist[0, 0].backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="matrices"):
        pairwise_euclidean(x, torch.zeros(2, 3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_pairwise_euclidean_is_exact_under_autocast(dtype: torch.dtype) -> None:
    # GeM-like features (2048-d, norms ~26): in half precision the expansion
    # |x|^2 + |y|^2 - 2 x.y cancels catastrophically unless it runs in float32.
    features = torch.rand(8, 2048, generator=torch.Generator().manual_seed(0))
    expected = pairwise_euclidean(features, features)
    with torch.autocast("cpu", dtype=dtype):
        dist = pairwise_euclidean(features.to(dtype), features.to(dtype))
    assert dist.dtype == torch.float32
    assert dist.diagonal().max().item() < 0.05  # a point is at distance ~0 from itself
    torch.testing.assert_close(dist, expected, atol=0.05, rtol=0.01)


def test_identity_loss_hand_values() -> None:
    # logits [ln 2, 0, 0] -> softmax [2/4, 1/4, 1/4].
    logits = torch.tensor([[math.log(2.0), 0.0, 0.0]])
    labels = torch.tensor([0])
    # Plain cross-entropy: -ln(1/2) = ln 2.
    torch.testing.assert_close(IdentityLoss()(logits, labels), torch.tensor(math.log(2.0)))
    # Smoothing 0.3 over K = 3: targets [0.7 + 0.1, 0.1, 0.1];
    # loss = 0.8 ln 2 + 0.1 ln 4 + 0.1 ln 4 = 0.8 ln 2 + 0.4 ln 2 = 1.2 ln 2.
    smoothed = IdentityLoss(label_smoothing=0.3)(logits, labels)
    torch.testing.assert_close(smoothed, torch.tensor(1.2 * math.log(2.0)))
    with pytest.raises(ValueError, match="label_smoothing"):
        IdentityLoss(label_smoothing=1.0)


# --- batch-hard triplet --------------------------------------------------------------------

# Four 1-D points: 0, 1 (identity 0) and 3, 7 (identity 1). Distances:
# d01 = 1, d02 = 3, d03 = 7, d12 = 2, d13 = 6, d23 = 4.
POINTS = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_batch_hard_hand_value() -> None:
    # anchor: (hardest positive, hardest negative) -> hinge with margin 0.3
    # 0: (1, min(3, 7) = 3) -> [1 - 3 + 0.3]+ = 0
    # 1: (1, min(2, 6) = 2) -> [1 - 2 + 0.3]+ = 0
    # 2: (4, min(3, 2) = 2) -> [4 - 2 + 0.3]+ = 2.3
    # 3: (4, min(7, 6) = 6) -> [4 - 6 + 0.3]+ = 0          mean = 2.3 / 4 = 0.575
    loss = BatchHardTripletLoss(margin=0.3)(POINTS, LABELS)
    torch.testing.assert_close(loss, torch.tensor(0.575))
    # Soft margin: mean softplus(ap - an) = (softplus(-2) + softplus(-1) + softplus(2)
    # + softplus(-2)) / 4.
    soft = BatchHardTripletLoss(soft_margin=True)(POINTS, LABELS)
    expected = (2 * _softplus(-2.0) + _softplus(-1.0) + _softplus(2.0)) / 4
    torch.testing.assert_close(soft, torch.tensor(expected))


def test_batch_hard_picks_the_hardest_pairs() -> None:
    points = POINTS.clone().requires_grad_(True)
    BatchHardTripletLoss(margin=0.3)(points, LABELS).backward()
    # Only anchor 2 is active: its hardest positive is 3 (d = 4) and its hardest
    # negative is 1 (d = 2). loss = (|x2 - x3| - |x2 - x1| + 0.3) / 4, so
    # dL/dx1 = 1/4, dL/dx2 = (-1 - 1)/4 = -1/2, dL/dx3 = 1/4; point 0 plays no part.
    torch.testing.assert_close(points.grad, torch.tensor([[0.0], [0.25], [-0.5], [0.25]]))


def test_batch_hard_normalised_and_errors() -> None:
    # After L2 normalisation the 2-D points below become (1, 0), (1, 0), (0, 1), (0, 1):
    # positives coincide (d ~ 1e-6), negatives are sqrt(2) apart -> every hinge is 0.
    points = torch.tensor([[2.0, 0.0], [5.0, 0.0], [0.0, 3.0], [0.0, 0.5]])
    loss = BatchHardTripletLoss(normalize_features=True)(points, LABELS)
    torch.testing.assert_close(loss, torch.tensor(0.0))
    with pytest.raises(ValueError, match="two identities"):
        BatchHardTripletLoss()(points, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        BatchHardTripletLoss()(points, LABELS[:3])


# --- weighted regularisation triplet -------------------------------------------------------


def test_wrt_hand_value() -> None:
    # Three 1-D points: 0, 1 (identity 0) and 3 (identity 1): d01 = 1, d02 = 3, d12 = 2.
    points = torch.tensor([[0.0], [1.0], [3.0]])
    labels = torch.tensor([0, 0, 1])
    e, eps = math.e, 1e-6
    # Positives include the anchor itself (d = 0, up to the 1e-6 clamp). Positive weights
    # are shifted by the largest positive distance; negative scores -d are shifted by 0.
    # Anchor 0: positives d = [0, 1] -> weights [e^-1, 1] / (e^-1 + 1 + eps), fp = 1 / (...)
    #           negative d = 3 -> weight e^-3 / (e^-3 + eps), cn = 3 e^-3 / (e^-3 + eps)
    fp0 = 1 / (1 / e + 1 + eps)
    cn0 = 3 * e**-3 / (e**-3 + eps)
    # Anchor 1: positives d = [1, 0] -> fp = fp0; negative d = 2 -> cn = 2 e^-2 / (e^-2 + eps)
    cn1 = 2 * e**-2 / (e**-2 + eps)
    # Anchor 2: its only positive is itself (fp ~ 0); negatives d = [3, 2]:
    #           cn = (3 e^-3 + 2 e^-2) / (e^-3 + e^-2 + eps)
    cn2 = (3 * e**-3 + 2 * e**-2) / (e**-3 + e**-2 + eps)
    expected = (_softplus(fp0 - cn0) + _softplus(fp0 - cn1) + _softplus(0.0 - cn2)) / 3
    loss = WeightedRegularizationTripletLoss()(points, labels)
    torch.testing.assert_close(loss, torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_wrt_normalised_features() -> None:
    # Normalised, the points are (1, 0), (1, 0) | (0, 1): positives coincide (fp ~ 0) and
    # every negative is sqrt(2) away, so cn = sqrt(2) e^-sqrt2 / (e^-sqrt2 + eps).
    points = torch.tensor([[2.0, 0.0], [4.0, 0.0], [0.0, 9.0]])
    labels = torch.tensor([0, 0, 1])
    root2 = math.sqrt(2.0)
    negative_only = root2 * math.exp(-root2) / (math.exp(-root2) + 1e-6)
    # Anchor 2 has two negatives at the same distance: cn = sqrt(2) * 2w / (2w + eps).
    both = root2 * 2 * math.exp(-root2) / (2 * math.exp(-root2) + 1e-6)
    expected = (2 * _softplus(-negative_only) + _softplus(-both)) / 3
    loss = WeightedRegularizationTripletLoss(normalize_features=True)(points, labels)
    torch.testing.assert_close(loss, torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_wrt_far_negatives_follow_the_reference_normaliser() -> None:
    # Negatives 30 apart: e^-30 ~ 9e-14 is negligible next to the 1e-6 of the normaliser,
    # so cn ~ 30 * 9e-14 / 1e-6 ~ 3e-6 and the loss is ~ softplus(fp) (reference behaviour).
    points = torch.tensor([[0.0], [1.0], [30.0], [31.0]])
    labels = torch.tensor([0, 0, 1, 1])
    fp = 1 / (1 / math.e + 1 + 1e-6)  # as for anchor 0 of the hand-worked case
    loss = WeightedRegularizationTripletLoss()(points, labels)
    torch.testing.assert_close(loss, torch.tensor(_softplus(fp)), rtol=1e-4, atol=1e-4)


def test_wrt_gradient_finite_with_identical_points() -> None:
    points = torch.ones(4, 3, requires_grad=True)
    loss = WeightedRegularizationTripletLoss()(points, LABELS)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(points.grad).all()


# --- hetero-centre triplet -----------------------------------------------------------------


def test_modality_centres_are_means() -> None:
    features = torch.tensor([[0.0, 0.0], [0.0, 2.0], [4.0, 4.0], [1.0, 1.0], [3.0, 3.0]])
    labels = torch.tensor([5, 5, 5, 2, 2])
    modalities = torch.tensor([0, 0, 1, 0, 1])
    centres, identities = modality_centres(features, labels, modalities)
    assert identities.tolist() == [2, 5]
    expected = torch.tensor([[[1.0, 1.0], [3.0, 3.0]], [[0.0, 1.0], [4.0, 4.0]]])
    torch.testing.assert_close(centres, expected)


def test_hetero_centre_zero_when_centres_coincide_across_modalities() -> None:
    # Identity 0: visible (0,0), (0,2) -> centre (0,1); infrared (0,1) -> centre (0,1).
    # Identity 1: visible (10,1); infrared (10,0), (10,2) -> centre (10,1).
    # Each anchor: d(positive) ~ 1e-6, nearest other-identity centre 10 -> [0.3 + 0 - 10]+ = 0.
    features = torch.tensor([[0.0, 0.0], [0.0, 2.0], [0.0, 1.0], [10, 1], [10, 0], [10, 2]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    modalities = torch.tensor([0, 0, 1, 0, 1, 1])
    loss = HeteroCenterTripletLoss(margin=0.3)(features, labels, modalities)
    torch.testing.assert_close(loss, torch.tensor(0.0))


def test_hetero_centre_hand_value() -> None:
    # 1-D centres: identity 0 visible (-1 + 1)/2 = 0, infrared 2; identity 1 visible 3,
    # infrared (6 + 8)/2 = 7.
    # anchor: [0.3 + d(positive) - nearest other-identity centre]+
    # 0v (0): [0.3 + 2 - min(3, 7)]+ = 0
    # 0i (2): [0.3 + 2 - min(1, 5)]+ = 1.3
    # 1v (3): [0.3 + 4 - min(3, 1)]+ = 3.3
    # 1i (7): [0.3 + 4 - min(7, 5)]+ = 0          mean = (1.3 + 3.3) / 4 = 1.15
    features = torch.tensor([[-1.0], [1.0], [2.0], [3.0], [6.0], [8.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    modalities = torch.tensor([0, 0, 1, 0, 1, 1])
    loss = HeteroCenterTripletLoss(margin=0.3)(features, labels, modalities)
    torch.testing.assert_close(loss, torch.tensor(1.15))
    points = features.clone().requires_grad_(True)
    HeteroCenterTripletLoss(margin=0.3)(points, labels, modalities).backward()
    assert torch.isfinite(points.grad).all() and points.grad.abs().sum() > 0


def test_hetero_centre_errors() -> None:
    features = torch.randn(4, 3)
    labels = torch.tensor([0, 0, 7, 7])
    loss = HeteroCenterTripletLoss()
    with pytest.raises(ValueError, match="identity 7 has no infrared sample"):
        loss(features, labels, torch.tensor([0, 1, 0, 0]))
    with pytest.raises(ValueError, match="0 \\(visible\\) or 1 \\(infrared\\)"):
        loss(features, labels, torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="two identities"):
        loss(features, torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="negatives must be"):
        HeteroCenterTripletLoss(negatives="same_modality")  # type: ignore[arg-type]


def test_losses_return_scalars() -> None:
    features = torch.randn(8, 5)
    labels = torch.arange(4).repeat_interleave(2)
    modalities = torch.tensor([0, 1] * 4)
    logits = torch.randn(8, 4)
    for value in (
        IdentityLoss(0.1)(logits, labels),
        BatchHardTripletLoss()(features, labels),
        WeightedRegularizationTripletLoss()(features, labels),
        HeteroCenterTripletLoss()(features, labels, modalities),
    ):
        assert value.dim() == 0 and torch.isfinite(value)
    torch.testing.assert_close(
        IdentityLoss(0.1)(logits, labels), F.cross_entropy(logits, labels, label_smoothing=0.1)
    )
