"""MHN (Zuo et al., Information Fusion 2025): properties of its modules, losses and recipe.

Each binding statement of the abstract (reference/METHODS.md, "MHN") has property tests:
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
from test_cli import write_config
from vireid_zoo.cli import main
from vireid_zoo.models import MHN, MHNModule
from vireid_zoo.models.mhn import (
    BranchDecorrelationLoss,
    DimensionalRefinement,
    ModalityConsistencyLoss,
    ModalityHarmonizationLoss,
    ModalityPerceptiveAggregation,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "mhn"
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
            conv.weight[:, 8:] = torch.randn(4, 4, 1, 1)
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


def test_mam_rejects_unpaired_maps_and_unknown_modes() -> None:
    mam = ModalityPerceptiveAggregation(4)
    with pytest.raises(ValueError, match=r"\(2, 4, 5, 3\) and \(3, 4, 5, 3\)"):
        mam(torch.randn(2, 4, 5, 3), torch.randn(3, 4, 5, 3))
    with pytest.raises(ValueError, match="'spatial'"):
        ModalityPerceptiveAggregation(4, mode="spatial")  # type: ignore[arg-type]


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
    loss = BranchDecorrelationLoss()
    channel = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    spatial = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-2.0, 0.0]])
    # |cos|: 1/sqrt(2) = 0.70711, 0 (orthogonal), 1 (anti-parallel); mean 0.56904.
    torch.testing.assert_close(loss(channel, spatial), torch.tensor((1 / math.sqrt(2) + 1) / 3))
    assert loss(channel[1:2], spatial[1:2]) == 0
    with pytest.raises(ValueError, match=r"\(3, 2\) and \(2, 2\)"):
        loss(channel, spatial[:2])


def test_decorrelation_gradient_step_decorrelates_the_branches() -> None:
    torch.manual_seed(0)
    channel, spatial = torch.randn(8, 16), torch.randn(8, 16)
    spatial = (spatial + 2 * channel).requires_grad_()
    loss = BranchDecorrelationLoss()
    before = loss(channel, spatial)
    before.backward()
    assert loss(channel, spatial.detach() - 5.0 * spatial.grad) < before


# Harmonisation loss ---------------------------------------------------------------------


def three_modalities(*groups: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-modality samples; return (features, modality codes)."""
    features = torch.tensor([row for group in groups for row in group])
    codes = torch.cat([torch.full((len(g),), m) for m, g in enumerate(groups)])
    return features, codes


def test_harmonization_hand_computed() -> None:
    # Identity 0: visible (0,0),(0,2) -> c_v = (0,1); infrared c_i = (4,1); hybrid c_h = (1,1).
    # Identity 1: the three centres coincide at (5,5) -> 0.
    features, modalities = three_modalities(
        [[0, 0], [0, 2], [5, 5]], [[4, 1], [5, 5]], [[1, 1], [5, 5]]
    )
    labels = torch.tensor([0, 0, 1, 0, 1, 0, 1])
    # Euclidean: d_v = 1, d_i = 3: 1 + 3 + |1 - 3| = 6; mean over identities 3.
    assert ModalityHarmonizationLoss()(features, labels, modalities) == pytest.approx(3.0)
    # Squared: 1 + 9 + 8 = 18 -> 9.
    loss = ModalityHarmonizationLoss("squared_euclidean")(features, labels, modalities)
    assert loss == pytest.approx(9.0)
    # Cosine: 1 - cos((1,1),(0,1)) = 0.29289, 1 - cos((1,1),(4,1)) = 1 - 5/sqrt(34) = 0.14251;
    # sum + |difference| = 2 * 0.29289 = 0.58579 -> 0.29289.
    loss = ModalityHarmonizationLoss("cosine")(features, labels, modalities)
    assert loss == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_harmonization_is_zero_when_the_centres_coincide_and_grows_as_they_separate() -> None:
    direction = torch.tensor([[0.6, 0.8]])
    labels = torch.zeros(3, dtype=torch.long)
    modalities = torch.tensor([0, 1, 2])

    def loss(visible: float, infrared: float, hybrid: float) -> torch.Tensor:
        features = torch.cat([visible * direction, infrared * direction, hybrid * direction])
        return ModalityHarmonizationLoss()(features, labels, modalities)

    coincident = torch.cat([direction] * 3).requires_grad_()
    zero = ModalityHarmonizationLoss()(coincident, labels, modalities)
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
        # Decorrelation: BNNeck features of the two DRM branches -> both branches and their
        # BNNecks, and the trunk below; no classifier, nothing of the global head.
        "decorrelation": TRUNK | {"mam"} | drm | {"necks.channel.bn", "necks.spatial.bn"},
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
    # MAM after the 64-channel stems, both maps: 2 x (3*64*64 + 64); SE 2048 -> 128 -> 2048;
    # CBAM 2 -> 1 7x7 conv; three BNNecks (BN weight + bias, 2048 x 395 classifier).
    assert count(net.mam) == 2 * (3 * 64 * 64 + 64)
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
    with pytest.raises(SystemExit) as exit_code:
        main(["fit", "--config", str(path), "--print_config"])
    assert exit_code.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["model"]
    assert printed["class_path"] == "vireid_zoo.models.MHNModule"


def test_cli_fit_then_test_never_runs_mam_outside_training(
    sysu_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, sysu_root, model_class="vireid_zoo.models.MHNModule")
    calls = []
    original = ModalityPerceptiveAggregation.forward
    monkeypatch.setattr(
        ModalityPerceptiveAggregation,
        "forward",
        lambda self, *args: calls.append(self.training) or original(self, *args),
    )
    assert main(["fit", "--config", str(config)]) == 0
    assert calls and all(calls), "MAM ran in training steps only"
    (checkpoint,) = sorted((tmp_path / "run").rglob("*.ckpt"))
    assert (
        torch.load(checkpoint, weights_only=True)["hyper_parameters"]["network"]["init_args"][
            "num_classes"
        ]
        == 13
    )
    forbid_mam(monkeypatch)
    assert main(["test", "--config", str(config), "--ckpt_path", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["sysu_mm01/all", "sysu_mm01"] for line in out.splitlines())
