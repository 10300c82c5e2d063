"""MHN (Zuo et al., Information Fusion 2025): properties of its modules, losses and recipe.

Each binding statement of the abstract has property tests:
- MAM, feature-level fusion that perceives cross-modality consistency: the ``test_mam_*``
  tests and ``test_forward_train_runs_the_hybrid_as_a_third_shared_stream``;
- the harmonisation loss adjusts the hybrid and aligns the modalities:
  ``test_harmonization_*``;
- DRM decouples channel and spatial information: ``test_drm_*``, ``test_decorrelation_*``;
- the consistency loss makes an identity's predictions agree across modalities:
  ``test_consistency_*``.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch
import yaml

import vireid_zoo as vz
from vireid_zoo.cli import main
from vireid_zoo.models import MHN, MHNModule
from vireid_zoo.models.mhn import (
    BranchDecorrelationLoss,
    DimensionalRefinement,
    ModalityConsistencyLoss,
    ModalityHarmonizationLoss,
    ModalityPerceptiveAggregation,
)

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "vireid_zoo" / "configs" / "mhn"
TRUNK = {"backbone.visible_stages", "backbone.infrared_stages", "backbone.shared_stages"}


def paired_batch(size: int = 6, classes: int = 3) -> dict[str, torch.Tensor]:
    labels = torch.arange(classes).repeat_interleave(size // classes)
    return {
        "visible": torch.randn(size, 3, 32, 16),
        "infrared": torch.randn(size, 3, 32, 16),
        "visible_pid": labels,
        "infrared_pid": labels.clone(),
    }


def randomised(net: torch.nn.Module) -> torch.nn.Module:
    """Give MAM's zero-initialised maps values and the two stems different BN weights."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
        if isinstance(module, ModalityPerceptiveAggregation):
            for conv in (module.channel_conv, module.pixel_conv):
                if conv is not None:
                    torch.nn.init.normal_(conv.weight, std=0.05)
    return net


@pytest.fixture()
def module() -> MHNModule:
    torch.manual_seed(0)
    module = MHNModule(MHN(3, arch="resnet18"))
    randomised(module.net)
    module.log_dict = lambda *args, **kwargs: None  # no trainer attached
    return module


# MAM ------------------------------------------------------------------------------------


def test_mam_returns_visible_where_the_map_is_one_and_infrared_where_it_is_zero() -> None:
    mam = ModalityPerceptiveAggregation(4, mode="channel")
    with torch.no_grad():  # weights 0, bias +-50: A = sigmoid(+-50), exactly 1.0 / 0.0 in fp32
        mam.channel_conv.bias.copy_(torch.tensor([50.0, 50.0, -50.0, -50.0]))
    visible, infrared = torch.randn(2, 4, 5, 3), torch.randn(2, 4, 5, 3)
    hybrid, consistency = mam(visible, infrared)
    assert consistency.shape == (2, 4, 1, 1)
    assert torch.equal(hybrid[:, :2], visible[:, :2])
    assert torch.equal(hybrid[:, 2:], infrared[:, 2:])


def test_mam_pixel_map_chooses_the_modality_position_by_position() -> None:
    mam = ModalityPerceptiveAggregation(3, mode="pixel")
    with torch.no_grad():  # every channel's logit is 100 * f_v[channel 0]
        mam.pixel_conv.weight[:, 0] = 100.0
    visible = torch.randn(2, 3, 6, 4)
    visible[:, 0] = visible[:, 0].sign() * (0.5 + visible[:, 0].abs())  # |f_v0| >= 0.5
    infrared = torch.randn(2, 3, 6, 4)
    hybrid, consistency = mam(visible, infrared)
    assert consistency.shape == (2, 3, 6, 4)
    torch.testing.assert_close(hybrid, torch.where(visible[:, :1] > 0, visible, infrared))


def test_mam_map_perceives_the_agreement_of_the_two_modalities() -> None:
    torch.manual_seed(0)
    mam = ModalityPerceptiveAggregation(4, mode="both")
    visible, infrared = torch.randn(2, 4, 5, 3), torch.randn(2, 4, 5, 3)
    hybrid, consistency = mam(visible, infrared)
    torch.testing.assert_close(consistency, torch.full_like(consistency, 0.5))  # zero init
    torch.testing.assert_close(hybrid, (visible + infrared) / 2)
    with torch.no_grad():  # only the f_v * f_i cue has weights (input channels 8..11)
        for conv in (mam.channel_conv, mam.pixel_conv):
            conv.weight[:, 8:12] = torch.randn(4, 4, 1, 1)
    agreement = mam.consistency_map(visible, infrared)
    torch.testing.assert_close(mam.consistency_map(-visible, -infrared), agreement)
    assert not torch.allclose(mam.consistency_map(visible, -infrared), agreement)
    # The hybrid is an element-wise convex combination: between f_v and f_i everywhere.
    with torch.no_grad():
        for conv in (mam.channel_conv, mam.pixel_conv):
            conv.weight.normal_()
    hybrid, _ = mam(visible, infrared)
    assert bool((hybrid >= torch.minimum(visible, infrared) - 1e-6).all())
    assert bool((hybrid <= torch.maximum(visible, infrared) + 1e-6).all())


def agreement_pairs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paired maps, about half of whose values agree (|f_v - f_i| < 0.5), and that target."""
    generator = torch.Generator().manual_seed(seed)
    visible = torch.randn(16, 4, 6, 3, generator=generator)
    agree = torch.rand(16, 4, 6, 3, generator=generator) < 0.5
    noise = torch.where(agree, 0.1, 2.0) * torch.randn(16, 4, 6, 3, generator=generator)
    infrared = visible + noise
    return visible, infrared, ((visible - infrared).abs() < 0.5).float()


def trained_agreement_accuracy(mam: ModalityPerceptiveAggregation) -> float:
    """Fit MAM's map to where the modalities agree; its accuracy on other pairs."""
    optimizer = torch.optim.Adam(mam.parameters(), lr=0.05)
    visible, infrared, target = agreement_pairs(0)
    for _ in range(300):
        optimizer.zero_grad()
        consistency = mam.consistency_map(visible, infrared)
        torch.nn.functional.binary_cross_entropy(consistency, target).backward()
        optimizer.step()
    visible, infrared, target = agreement_pairs(1)
    with torch.no_grad():
        predicted = mam.consistency_map(visible, infrared) > 0.5
    return (predicted == target.bool()).float().mean().item()


def test_mam_map_responds_to_agreement_between_the_modalities() -> None:
    # Abstract: MAM explicitly captures cross-modality consistency. The default cues hold
    # the absolute difference, 0 exactly where the two features agree, so the map can
    # single out where they agree: fitted to that target it is right almost everywhere
    # on other pairs. From the features and their product alone (a sign-invariant
    # co-activation, not agreement) no map can: it stays at the majority rate (61%).
    torch.manual_seed(0)
    assert trained_agreement_accuracy(ModalityPerceptiveAggregation(4, mode="pixel")) > 0.95
    product_only = ModalityPerceptiveAggregation(
        4, "pixel", cues=("visible", "infrared", "product")
    )
    assert trained_agreement_accuracy(product_only) < 0.7
    # The difference cue alone: the map depends on |f_v - f_i| only, so it is unchanged by
    # a shift or a sign flip common to both modalities and by swapping them, and it
    # changes as the infrared departs from the visible.
    mam = ModalityPerceptiveAggregation(4, mode="both", cues=("difference",))
    with torch.no_grad():
        for conv in (mam.channel_conv, mam.pixel_conv):
            conv.weight.normal_()
    visible, infrared, _ = agreement_pairs(2)
    reference = mam.consistency_map(visible, infrared)
    for a, b in ((visible + 3.0, infrared + 3.0), (-visible, -infrared), (infrared, visible)):
        torch.testing.assert_close(mam.consistency_map(a, b), reference)
    assert not torch.allclose(mam.consistency_map(visible, visible + 1.0), reference)


def test_mam_rejects_unpaired_maps_and_unknown_modes() -> None:
    mam = ModalityPerceptiveAggregation(4)
    with pytest.raises(ValueError, match=r"\(2, 4, 5, 3\) and \(3, 4, 5, 3\)"):
        mam(torch.randn(2, 4, 5, 3), torch.randn(3, 4, 5, 3))
    with pytest.raises(ValueError, match="'spatial'"):
        ModalityPerceptiveAggregation(4, mode="spatial")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="without repeats"):
        ModalityPerceptiveAggregation(4, cues=("product", "product"))
    with pytest.raises(ValueError, match="subset of"):
        ModalityPerceptiveAggregation(4, cues=("ratio",))  # type: ignore[arg-type]


# DRM ------------------------------------------------------------------------------------


def test_drm_decouples_channel_and_spatial_refinement() -> None:
    torch.manual_seed(0)
    drm = DimensionalRefinement(32, reduction=4)
    x = 1.0 + torch.rand(2, 32, 6, 3)
    channel, spatial = drm(x)
    channel_weights, spatial_weights = channel / x, spatial / x
    # Channel branch: one weight per (sample, channel), the same at every position.
    torch.testing.assert_close(channel_weights, channel_weights[..., :1, :1].expand_as(x))
    # Spatial branch: one weight per (sample, position), the same for every channel.
    torch.testing.assert_close(spatial_weights, spatial_weights[:, :1].expand_as(x))
    assert (
        channel_weights.std(dim=1).mean() > 1e-3 and spatial_weights.std(dim=(2, 3)).mean() > 1e-3
    )


def test_decorrelation_hand_computed_and_zero_for_orthogonal_branches() -> None:
    loss = BranchDecorrelationLoss(eps=1e-8, normalization="none")
    channel = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    spatial = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-2.0, 0.0]])
    # Raw |cos|: 1/sqrt(2) = 0.70711, 0 (orthogonal), 1 (anti-parallel); mean 0.56904.
    torch.testing.assert_close(loss(channel, spatial), torch.tensor((1 / math.sqrt(2) + 1) / 3))
    assert loss(channel[1:2], spatial[1:2]) == 0
    with pytest.raises(ValueError, match=r"\(3, 2\) and \(2, 2\)"):
        loss(channel, spatial[:2])
    # Standardised over the batch (the default): channel (1, 0), (3, 2) -> (-1, -1), (1, 1);
    # spatial (0, 5), (2, 1) -> (-1, 1), (1, -1): both rows orthogonal, 0, although the raw
    # second rows are nearly parallel (cos 0.99). A per-dimension rescaling of a branch
    # (a neck's weights) changes nothing.
    channel, spatial = (
        torch.tensor([[1.0, 0.0], [3.0, 2.0]]),
        torch.tensor([[0.0, 5.0], [2.0, 1.0]]),
    )
    assert BranchDecorrelationLoss()(channel, spatial).item() == pytest.approx(0.0, abs=1e-5)
    random_channel, random_spatial = torch.randn(2, 8, 6)
    reference = BranchDecorrelationLoss()(random_channel, random_spatial)
    scaled = BranchDecorrelationLoss()(random_channel * (torch.rand(6) + 0.1), random_spatial)
    torch.testing.assert_close(scaled, reference, rtol=1e-4, atol=1e-6)


def test_decorrelation_gradient_step_decorrelates_the_branches() -> None:
    torch.manual_seed(0)
    channel, spatial = torch.randn(8, 16), torch.randn(8, 16)
    spatial = (spatial + 2 * channel).requires_grad_()
    loss = BranchDecorrelationLoss()
    before = loss(channel, spatial)
    before.backward()
    assert loss(channel, spatial.detach() - 5.0 * spatial.grad) < before


def branch_redundancy(module: MHNModule, images: torch.Tensor, modality: str) -> float:
    """Decorrelation of the two DRM branches over images of one modality.

    In training mode, as the loss is computed: BatchNorm normalises with these images'
    statistics.
    """
    net = module.net.train()
    with torch.no_grad():
        heads = net._heads(net.backbone.forward_specific(images, modality), ("channel", "spatial"))
        return module.decorrelation_loss(heads["channel"].pool, heads["spatial"].pool).item()


def test_a_step_on_the_decorrelation_makes_each_modality_more_diverse(module: MHNModule) -> None:
    # Abstract: DRM decouples channel and spatial semantics to enhance intra-modality
    # diversity. One gradient step on the decorrelation term alone lowers the redundancy of
    # the two branches (the same statistic) on other images of each modality, and it acts
    # through the branches and the trunk only: the necks' weights cannot lower it.
    generator = torch.Generator().manual_seed(5)
    held_out = {m: torch.randn(12, 3, 32, 16, generator=generator) for m in ("visible", "infrared")}
    before = {m: branch_redundancy(module, x, m) for m, x in held_out.items()}
    module.zero_grad(set_to_none=True)
    module.compute_losses(paired_batch(12))["decorrelation"].backward()
    assert all(p.grad is None for p in module.net.necks.parameters())
    gradients = [p.grad for p in module.net.parameters() if p.grad is not None]
    norm = torch.cat([g.flatten() for g in gradients]).norm()
    with torch.no_grad():  # a step of length 0.5 in parameter space
        for parameter in module.net.parameters():
            if parameter.grad is not None:
                parameter.sub_(0.5 * parameter.grad / norm)
    after = {m: branch_redundancy(module, x, m) for m, x in held_out.items()}
    assert all(after[m] < before[m] for m in held_out), (before, after)


# Harmonisation loss ---------------------------------------------------------------------


def three_modalities(*groups: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-modality samples; return (features, modality codes)."""
    features = torch.tensor([row for group in groups for row in group])
    codes = torch.cat([torch.full((len(g),), m) for m, g in enumerate(groups)])
    return features, codes


def raw_harmonization(distance: str = "euclidean") -> ModalityHarmonizationLoss:
    """The harmonisation loss on the features as they are (no standardisation)."""
    return ModalityHarmonizationLoss(distance, normalization="none")  # type: ignore[arg-type]


def test_harmonization_hand_computed() -> None:
    # Identity 0: visible (0,0),(0,2) -> c_v = (0,1); infrared c_i = (4,1); hybrid c_h = (1,1).
    # Identity 1: the three centres coincide at (5,5) -> 0.
    features, modalities = three_modalities(
        [[0, 0], [0, 2], [5, 5]], [[4, 1], [5, 5]], [[1, 1], [5, 5]]
    )
    labels = torch.tensor([0, 0, 1, 0, 1, 0, 1])
    # On the raw features. Euclidean: d_v = 1, d_i = 3: 1 + 3 + |1 - 3| = 6; mean 3.
    assert raw_harmonization()(features, labels, modalities) == pytest.approx(3.0)
    # Squared: 1 + 9 + 8 = 18 -> 9.
    loss = raw_harmonization("squared_euclidean")(features, labels, modalities)
    assert loss == pytest.approx(9.0)
    # Cosine: 1 - cos((1,1),(0,1)) = 0.29289, 1 - cos((1,1),(4,1)) = 1 - 5/sqrt(34) = 0.14251;
    # sum + |difference| = 2 * 0.29289 = 0.58579 -> 0.29289.
    loss = raw_harmonization("cosine")(features, labels, modalities)
    assert loss == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_harmonization_is_zero_when_the_centres_coincide_and_grows_as_they_separate() -> None:
    direction = torch.tensor([[0.6, 0.8]])
    labels = torch.zeros(3, dtype=torch.long)
    modalities = torch.tensor([0, 1, 2])

    def loss(visible: float, infrared: float, hybrid: float) -> torch.Tensor:
        features = torch.cat([visible * direction, infrared * direction, hybrid * direction])
        return raw_harmonization()(features, labels, modalities)

    for harmonization in (ModalityHarmonizationLoss(), raw_harmonization()):
        coincident = torch.cat([direction] * 3).requires_grad_()
        zero = harmonization(coincident, labels, modalities)
        zero.backward()
        assert zero == 0 and torch.equal(coincident.grad, torch.zeros_like(coincident))
    # c_v = -t, c_i = +t, c_h = 0: d_v = d_i = t, loss 2t, growing with t.
    spread = [loss(-t, t, 0.0).item() for t in (0.5, 1.0, 2.0, 4.0)]
    assert spread == pytest.approx([1.0, 2.0, 4.0, 8.0])
    # The hybrid off the midpoint costs |d_v - d_i|: 2 (t + |s|), least at the midpoint.
    assert loss(-1.0, 1.0, 0.5).item() == pytest.approx(3.0)
    assert loss(-1.0, 1.0, -0.5).item() == pytest.approx(3.0)


def test_harmonization_gradient_step_aligns_the_modalities_through_the_hybrid() -> None:
    torch.manual_seed(0)
    labels = torch.arange(3).repeat(6)
    modalities = torch.arange(3).repeat_interleave(6)
    features = torch.randn(18, 8)
    features[6:12] += 3.0  # the infrared samples sit apart
    features.requires_grad_()
    loss = ModalityHarmonizationLoss()(features, labels, modalities)
    loss.backward()

    def gap(x: torch.Tensor) -> torch.Tensor:  # mean distance of visible and infrared centres
        return (x[:6].view(2, 3, 8).mean(0) - x[6:12].view(2, 3, 8).mean(0)).norm(dim=1).mean()

    stepped = features.detach() - 0.5 * features.grad
    assert gap(stepped) < gap(features.detach())
    assert ModalityHarmonizationLoss()(stepped, labels, modalities) < loss


def test_harmonization_does_not_depend_on_the_feature_scale() -> None:
    # The default L2-normalises each feature: scaling the features (all of them, or each
    # one by its own factor) leaves the loss unchanged, so it cannot be lowered by
    # shrinking them; "standardize" is unchanged by any per-dimension scale and shift; on
    # the raw features the loss scales with them.
    torch.manual_seed(0)
    labels = torch.arange(3).repeat(6)
    modalities = torch.arange(3).repeat_interleave(6)
    features = torch.randn(18, 8)
    features[6:12] += 1.0
    row_scales = torch.rand(18, 1) * 5 + 0.1
    dimension_scales, shift = torch.rand(8) * 5 + 0.1, torch.randn(8)
    for distance in ("euclidean", "squared_euclidean", "cosine"):
        l2 = ModalityHarmonizationLoss(distance)  # type: ignore[arg-type]
        standardized = ModalityHarmonizationLoss(distance, "standardize")  # type: ignore[arg-type]
        for loss, mapped in (
            (l2, 0.1 * features),
            (l2, 10.0 * features),
            (l2, row_scales * features),
            (standardized, features * dimension_scales + shift),
            (standardized, 0.1 * features),
        ):
            value = loss(mapped, labels, modalities).item()
            assert value == pytest.approx(loss(features, labels, modalities).item(), rel=1e-4)
    raw = raw_harmonization()
    assert raw(0.1 * features, labels, modalities) < 0.2 * raw(features, labels, modalities)


def test_harmonization_term_does_not_depend_on_the_scale_of_the_trunk_output(
    module: MHNModule,
) -> None:
    # A network whose pooled features are scaled (here by a hook on GeM's output) has the
    # same harmonisation term, within 1%: it cannot be met by shrinking the features.
    batch = paired_batch()
    module.eval()
    reference = module.compute_losses(batch)["harmonisation"].item()
    for factor in (0.1, 10.0):
        hook = module.net.pool.register_forward_hook(lambda _m, _i, out, f=factor: out * f)
        try:
            scaled = module.compute_losses(batch)["harmonisation"].item()
        finally:
            hook.remove()
        assert scaled == pytest.approx(reference, rel=0.01)


def test_harmonization_needs_every_modality_of_every_identity() -> None:
    features, modalities = torch.randn(4, 2), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="identity 1 has no infrared sample"):
        ModalityHarmonizationLoss()(features, torch.tensor([0, 0, 0, 1]), modalities)
    with pytest.raises(ValueError, match="'manhattan'"):
        ModalityHarmonizationLoss("manhattan")  # type: ignore[arg-type]


# Consistency loss -----------------------------------------------------------------------


def test_consistency_hand_computed_and_identity_averaged() -> None:
    # Identity 0: visible samples predict (0.6, 0.4) and (0.4, 0.6), mean p = (0.5, 0.5);
    # infrared q = (0.8, 0.2). S(p, q) = 1/2 sum (p - q)(log p - log q)
    # = 1/2 [-0.3 log(0.5 / 0.8) + 0.3 log(0.5 / 0.2)] = 0.15 log 4 = 0.3 log 2 = 0.20794.
    # Identity 1: three visible and one infrared sample, all predicting (0.7, 0.3): 0.
    probabilities = [[0.6, 0.4], [0.4, 0.6], [0.8, 0.2]] + [[0.7, 0.3]] * 4
    logits = torch.tensor(probabilities).log()
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    modalities = torch.tensor([0, 0, 1, 0, 0, 0, 1])
    loss = ModalityConsistencyLoss()
    # Identity-averaged: (0.3 log 2 + 0) / 2, whatever the number of samples per identity.
    assert loss(logits, labels, modalities) == pytest.approx(0.15 * math.log(2))
    # With hybrid rows: identity 0's hybrid predicts (0.5, 0.5): pairs (v, i) 0.3 log 2,
    # (v, h) 0, (i, h) 0.3 log 2 -> mean 0.2 log 2; identity 1 still 0 -> 0.1 log 2.
    logits = torch.cat([logits, torch.tensor([[0.5, 0.5], [0.7, 0.3]]).log()])
    labels = torch.cat([labels, torch.tensor([0, 1])])
    modalities = torch.cat([modalities, torch.tensor([2, 2])])
    assert loss(logits, labels, modalities) == pytest.approx(0.1 * math.log(2))


def test_consistency_is_zero_for_identical_predictions_symmetric_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    labels = torch.arange(4).repeat(3)
    modalities = torch.arange(3).repeat_interleave(4)
    shared = torch.randn(4, 10)
    same = shared.repeat(3, 1).requires_grad_()
    zero = ModalityConsistencyLoss()(same, labels, modalities)
    zero.backward()
    assert zero.abs() < 1e-7 and same.grad.abs().max() < 1e-7
    logits = torch.randn(12, 10)
    swapped = torch.cat([logits[4:8], logits[:4], logits[8:]])  # visible <-> infrared
    loss = ModalityConsistencyLoss()
    assert loss(logits, labels, modalities) > 0
    torch.testing.assert_close(loss(swapped, labels, modalities), loss(logits, labels, modalities))


# Network ----------------------------------------------------------------------------------


def test_forward_train_runs_the_hybrid_as_a_third_shared_stream(module: MHNModule) -> None:
    net = module.net.eval()  # running BN statistics: rows are independent of each other
    batch = paired_batch()
    with torch.no_grad():
        output = net.forward_train(batch["visible"], batch["infrared"])
        stems = [net.backbone.forward_specific(batch[m], m) for m in ("visible", "infrared")]
        hybrid_map, consistency = net.mam(*stems)
        expected = net.pool(net.backbone.forward_shared(hybrid_map))
    assert set(output.heads) == {"global", "channel", "spatial"}
    for head in output.heads.values():
        assert head.pool.shape == head.bn.shape == (18, 512) and head.logits.shape == (18, 3)
    torch.testing.assert_close(output.heads["global"].pool[12:], expected)
    torch.testing.assert_close(output.consistency_map, consistency)
    assert consistency.shape == stems[0].shape  # MAM acts on the stem features ("both")


def test_test_embedding_is_the_concatenation_normalised_as_a_whole(module: MHNModule) -> None:
    net = module.net.eval()
    images = torch.randn(3, 3, 32, 16)
    embedding = net.extract_features(images, "infrared")
    assert embedding.shape == (3, 3 * 512) and net.embedding_dim == 1536
    with torch.no_grad():
        feature_map = net.backbone(images, "infrared")
        parts = [
            net.necks["global"].bn(net.pool(feature_map)),
            net.necks["channel"].bn(net.pool(net.drm.channel(feature_map))),
            net.necks["spatial"].bn(net.pool(net.drm.spatial(feature_map))),
        ]
    whole = torch.cat(parts, dim=1)
    torch.testing.assert_close(embedding, whole / whole.norm(dim=1, keepdim=True))
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(3))
    net.test_parts, net.test_feature = ("spatial",), "pool"
    torch.testing.assert_close(
        net.extract_features(images, "infrared"),
        torch.nn.functional.normalize(net.pool(net.drm.spatial(feature_map)), dim=1),
    )
    with pytest.raises(ValueError, match="test_parts"):
        MHN(3, arch="resnet18", test_parts=("global", "parts"))  # type: ignore[arg-type]


def test_extract_features_uses_only_its_modality_stream(module: MHNModule) -> None:
    net = module.net.eval()
    images = torch.randn(4, 3, 32, 16)
    with torch.no_grad():
        visible = net.extract_features(images, "visible")
        assert not torch.allclose(visible, net.extract_features(images, "infrared"))
        net.backbone.infrared_stages[0].conv1.weight.add_(1.0)
        net.mam.pixel_conv.weight.add_(1.0)
        torch.testing.assert_close(net.extract_features(images, "visible"), visible)
        # Each image's embedding is its own: the batch's other images do not enter it.
        torch.testing.assert_close(net.extract_features(images[:1], "visible"), visible[:1])


def forbid_mam(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("MAM (the hybrid path) ran outside training")

    monkeypatch.setattr(ModalityPerceptiveAggregation, "forward", fail)
    monkeypatch.setattr(ModalityPerceptiveAggregation, "consistency_map", fail)


def test_inference_never_runs_the_hybrid_path(
    module: MHNModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_mam(monkeypatch)
    module.eval()
    module.flip_test = True
    batch = {"image": torch.randn(4, 3, 32, 16), "modality": torch.tensor([0, 1, 1, 0])}
    assert module.predict_step(batch, 0)["features"].shape == (4, 1536)
    with pytest.raises(AssertionError, match="MAM"):  # the patch is effective
        module.net.forward_train(batch["image"], batch["image"])


# Losses in the recipe ---------------------------------------------------------------------


def touched(module: MHNModule, loss: torch.Tensor) -> set[str]:
    """Parameter groups of the network that get a non-zero gradient from ``loss``."""
    module.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    groups = set()
    for name, parameter in module.net.named_parameters():
        if parameter.grad is not None and parameter.grad.abs().sum() > 0:
            parts = name.split(".")
            groups.add(".".join(parts[:3] if parts[0] == "necks" else parts[:2]))
    return {"mam" if group.startswith("mam.") else group for group in groups}


def test_every_loss_sends_gradients_where_it_should_and_nowhere_else(module: MHNModule) -> None:
    # In eval mode BatchNorm uses running statistics, so a loss on some rows reaches only
    # the parameters on those rows' path (in train mode batch statistics couple all rows:
    # every loss then reaches MAM through the hybrid rows' share of the statistics).
    module.eval()
    terms = module.compute_losses(paired_batch())
    drm = {"drm.channel", "drm.spatial"}
    global_neck = {"necks.global.bn", "necks.global.classifier"}
    expected = {
        # Harmonisation: pooled global features of the three streams -> MAM, stems, trunk;
        # no neck or classifier (it acts before the BNNeck), no DRM branch.
        "harmonisation": TRUNK | {"mam"},
        # Consistency: global logits of visible, infrared and hybrid rows -> the global
        # classifier and BNNeck, the trunk and MAM; not the DRM branches or their heads.
        "consistency": TRUNK | {"mam"} | global_neck,
        # Decorrelation: pooled features of the two DRM branches -> both branches and the
        # trunk below; no neck (whose weights could lower it without changing the
        # branches), nothing of the global head.
        "decorrelation": TRUNK | {"mam"} | drm,
        "id_channel": TRUNK
        | {"mam", "drm.channel", "necks.channel.bn", "necks.channel.classifier"},
        "triplet_spatial": TRUNK | {"mam", "drm.spatial"},
        "id": TRUNK | {"mam"} | global_neck,
        "triplet": TRUNK | {"mam"},
    }
    for term, groups in expected.items():
        assert touched(module, terms[term]) == groups, term


def test_without_hybrid_rows_the_losses_do_not_reach_mam() -> None:
    torch.manual_seed(0)
    module = MHNModule(
        MHN(3, arch="resnet18"),
        hybrid_in_identity_losses=False,
        consistency_include_hybrid=False,
    )
    randomised(module.net).eval()
    terms = module.compute_losses(paired_batch())
    for term in ("consistency", "decorrelation", "id", "triplet_channel"):
        assert "mam" not in touched(module, terms[term]), term
    assert "mam" in touched(module, terms["harmonisation"])


def test_total_loss_weights_every_term() -> None:
    module = MHNModule(
        MHN(3, arch="resnet18"),
        triplet="batch_hard",
        triplet_weight=2.0,
        drm_loss_weight=0.5,
        lambda_mh=0.3,
        lambda_mc=0.7,
        lambda_dc=0.2,
    )
    module.log_dict = lambda *args, **kwargs: None
    torch.manual_seed(0)
    batch = paired_batch()
    loss = module.training_step(batch, 0)
    torch.manual_seed(0)
    module.net.train()
    terms = module.compute_losses(batch)
    expected = (
        terms["id"]
        + 2.0 * terms["triplet"]
        + 0.5 * (terms["id_channel"] + 2.0 * terms["triplet_channel"])
        + 0.5 * (terms["id_spatial"] + 2.0 * terms["triplet_spatial"])
        + 0.3 * terms["harmonisation"]
        + 0.7 * terms["consistency"]
        + 0.2 * terms["decorrelation"]
    )
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(terms["loss"], expected)


def test_unpaired_batches_are_refused(module: MHNModule) -> None:
    batch = paired_batch()
    batch["infrared_pid"] = batch["infrared_pid"].flip(0)
    with pytest.raises(ValueError, match="same batch position"):
        module.training_step(batch, 0)


def test_mam_and_drm_are_new_layers(module: MHNModule) -> None:
    backbone, new = module.configure_optimizers()["optimizer"].param_groups
    new_ids = {id(p) for p in new["params"]}
    for part in (module.net.mam, module.net.drm, module.net.necks):
        assert all(id(p) in new_ids for p in part.parameters() if p.requires_grad)
    assert {id(p) for p in backbone["params"]} == {id(p) for p in module.net.backbone.parameters()}


def test_a_classifier_of_another_size_is_reinitialised(module: MHNModule) -> None:
    other = MHNModule(MHN(5, arch="resnet18"))
    with pytest.warns(UserWarning, match="5 classes and this model's 3"):
        module.on_load_checkpoint({"state_dict": other.state_dict()})


# Registry, configs, CLI --------------------------------------------------------------------


def test_registry_builds_the_reference_network() -> None:
    assert {"mhn_resnet18", "mhn_resnet34", "mhn_resnet50", "mhn_resnet101"} <= set(
        vz.list_models("mhn_*")
    )
    net = vz.create_model("mhn_resnet50", num_classes=395)
    assert isinstance(net, MHN) and net.backbone.arch == "resnet50"
    assert net.embedding_dim == 3 * 2048
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    # MAM after the 64-channel stems, four cues, both maps: 2 x (4*64*64 + 64); SE 2048 ->
    # 128 -> 2048; CBAM 2 -> 1 7x7 conv; three BNNecks (BN weight + bias, 2048 x 395).
    assert count(net.mam) == 2 * (4 * 64 * 64 + 64)
    assert count(net.drm) == (2048 * 128 + 128 + 128 * 2048 + 2048) + 2 * 49
    assert count(net.necks) == 3 * (2 * 2048 + 2048 * 395)
    assert net.backbone.last_stride == 1 and net.backbone.split_stage == 0


def module_defaults() -> dict[str, object]:
    """MHNModule's own constructor arguments (not VIReIDModule's) and their defaults."""
    parameters = inspect.signature(MHNModule.__init__).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.kind is p.KEYWORD_ONLY and p.name not in ("backbone_weights_file",)
    }


@pytest.mark.parametrize("dataset", ["sysu_mm01", "regdb", "llcm"])
def test_configs_list_every_mhn_argument_at_its_default(
    dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = CONFIGS / f"{dataset}.yaml"
    listed = yaml.safe_load(path.read_text())["model"]["init_args"]
    for name, default in module_defaults().items():
        assert name in listed, name
        assert listed[name] == (list(default) if isinstance(default, tuple) else default), name
    network = inspect.signature(MHN.__init__).parameters.values()
    skipped = ("self", "num_classes", "backbone_pretrained", "backbone_weights_file")
    for parameter in (p for p in network if p.name not in skipped):
        default = parameter.default
        expected = list(default) if isinstance(default, tuple) else default
        assert listed["network"].get(parameter.name) == expected, parameter.name
    with pytest.raises(SystemExit) as exit_code:
        main(["fit", "--config", str(path), "--print_config"])
    assert exit_code.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["model"]
    assert printed["class_path"] == "vireid_zoo.models.MHNModule"
