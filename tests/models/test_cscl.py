"""CSCL: losses, PAM, SPAM, the network, the recipe and `fit` / `test` through the CLI."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

import vireid_zoo as vz
from helpers.configs import CONFIGS, write_config
from vireid_zoo.cli import main
from vireid_zoo.data.parsing import IGNORE_INDEX
from vireid_zoo.models import CSCL, CSCLModule
from vireid_zoo.models.cscl import (
    DivisionLoss,
    ForegroundLoss,
    IdentityCenterMiningLoss,
    ParsingAlignedAttention,
    ParsingLoss,
    SemanticPartAlignment,
)
from vireid_zoo.models.cscl.blocks import foreground_from_labels, foreground_from_logits

# Division loss ---------------------------------------------------------------------------


def test_division_loss_is_zero_for_orthogonal_and_one_for_identical_parts() -> None:
    loss = DivisionLoss("none", eps=1e-12)  # the cosine of the vectors as given
    orthogonal = torch.eye(4)[None, :3] * torch.tensor([[[2.0], [0.5], [3.0]]])
    assert loss(orthogonal) == 0
    identical = torch.randn(2, 1, 8).expand(2, 4, 8)
    torch.testing.assert_close(loss(identical), torch.tensor(1.0))
    opposite = torch.tensor([[[1.0, 0.0], [-2.0, 0.0]]])
    torch.testing.assert_close(loss(opposite), torch.tensor(1.0)), "|cos| = 1 when opposite"
    random_parts = torch.randn(16, 4, 8)
    assert 0 < loss(random_parts) < 1


def test_division_loss_hand_computed() -> None:
    # p1 = (1, 0), p2 = (1, 1), p3 = (0, 2): cos12 = 1/sqrt 2, cos13 = 0, cos23 = 2/(2 sqrt 2)
    # = 1/sqrt 2; mean over the 6 off-diagonal entries = 4 / sqrt 2 / 6 = 0.4714.
    parts = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]])
    loss = DivisionLoss("none", eps=1e-12)
    torch.testing.assert_close(loss(parts), torch.tensor(4 / math.sqrt(2) / 6))


def test_standardized_division_can_decorrelate_non_negative_parts_that_share_channels() -> None:
    # Post-ReLU part features are non-negative: as given, two parts that share channels
    # always have a positive cosine. Standardised over the batch, parts that vary
    # independently are orthogonal: here sample b's part j is 2 + s_b h_j, with s = +-1 and
    # h_j the orthogonal rows of a Hadamard matrix, so every part uses every channel.
    hadamard = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    parts = 2.0 + torch.tensor([1.0, -1.0])[:, None, None] * hadamard  # (2, 4, 4), all >= 1
    assert bool((parts > 0).all())
    assert DivisionLoss()(parts).item() == pytest.approx(0.0, abs=1e-5)
    assert DivisionLoss("none")(parts).item() > 0.5
    # Parts that vary alike across the batch are fully redundant, whatever their scales.
    base = torch.rand(8, 1, 6) + 0.5
    alike = base * torch.tensor([1.0, 2.0, 0.5])[None, :, None] + 1.0
    torch.testing.assert_close(DivisionLoss()(alike), torch.tensor(1.0), rtol=1e-4, atol=1e-4)


# ICM loss --------------------------------------------------------------------------------


def icm_batch(shift: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two identities, two samples each per modality; infrared sits ``shift`` off visible."""
    visible = torch.tensor([[0.0, 0.0], [0.2, 0.0], [4.0, 0.0], [4.2, 0.0]])
    infrared = visible + torch.tensor([0.0, shift])
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    modalities = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    return torch.cat([visible, infrared]), labels, modalities


def test_icm_loss_hand_computed() -> None:
    # 1-D centres: visible 0 (id 0), 3 (id 1); infrared 1 (id 0), 2.5 (id 1).
    # d(v, i) = [[1, 2.5], [2, 0.5]]; positives 1 and 0.5; margin 2:
    # visible anchors [1 - 2.5 + 2]+ = 0.5, [0.5 - 2 + 2]+ = 0.5 -> mean 0.5;
    # infrared anchors [1 - 2 + 2]+ = 1, [0.5 - 2.5 + 2]+ = 0 -> mean 0.5; L = (0.5 + 0.5) / 2.
    features = torch.tensor([[0.0], [3.0], [1.0], [2.5]])
    labels, modalities = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    loss = IdentityCenterMiningLoss(margin=2.0)(features, labels, modalities)
    torch.testing.assert_close(loss, torch.tensor(0.5))


def test_icm_loss_falls_as_the_modality_centres_of_an_identity_meet() -> None:
    # A large margin keeps the hinge active: L = shift - sqrt(4^2 + shift^2) + 10 falls with
    # the shift between an identity's centres (the derivative 1 - shift / sqrt(...) > 0).
    loss = IdentityCenterMiningLoss(margin=10.0)
    values = [loss(*icm_batch(shift)).item() for shift in (3.0, 2.0, 1.0, 0.5, 0.0)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), values
    assert values[0] == pytest.approx(3.0 - 5.0 + 10.0, abs=1e-4)


def test_icm_loss_respects_its_margin() -> None:
    # Centres 0.1 / 4.1 apart by identity, `shift` across modalities: the nearest other
    # identity's cross-modal centre is sqrt(4^2 + shift^2) away.
    features, labels, modalities = icm_batch(1.0)
    gap = math.sqrt(16 + 1) - 1.0
    assert IdentityCenterMiningLoss(margin=gap - 0.01)(features, labels, modalities) == 0
    features.requires_grad_(True)
    above = IdentityCenterMiningLoss(margin=gap + 0.5)(features, labels, modalities)
    torch.testing.assert_close(above, torch.tensor(0.5))
    above.backward()
    assert features.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least two identities"):
        IdentityCenterMiningLoss()(features[[0, 4]], labels[[0, 4]], modalities[[0, 4]])


def test_icm_pull_hand_computed() -> None:
    # Centres: identity 0 visible 0, infrared 1; identity 1 visible 3, infrared 2.5:
    # distances 1 and 0.5, mean 0.75; squared 1 and 0.25, mean 0.625.
    features = torch.tensor([[0.0], [3.0], [1.0], [2.5]])
    labels, modalities = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    pull = IdentityCenterMiningLoss(form="pull")
    assert pull(features, labels, modalities).item() == pytest.approx(0.75, abs=1e-5)
    squared = IdentityCenterMiningLoss(form="pull", distance="squared_euclidean")
    assert squared(features, labels, modalities).item() == pytest.approx(0.625, abs=1e-5)
    one = IdentityCenterMiningLoss(form="pull")(
        features[[0, 2]], labels[[0, 2]], modalities[[0, 2]]
    )
    assert one.item() == pytest.approx(1.0, abs=1e-5), "one identity is enough to pull"
    with pytest.raises(ValueError, match="ICM form"):
        IdentityCenterMiningLoss(form="push")  # type: ignore[arg-type]


def centre_distances(features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor):  # noqa: ANN201
    """Each identity's visible-infrared centre distance (P,)."""
    visible = torch.stack(
        [features[(labels == y) & (modalities == 0)].mean(0) for y in labels.unique()]
    )
    infrared = torch.stack(
        [features[(labels == y) & (modalities == 1)].mean(0) for y in labels.unique()]
    )
    return (visible - infrared).norm(dim=1)


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean"])
def test_a_step_on_icm_pull_brings_every_identity_s_centres_closer_from_any_start(
    distance: str,
) -> None:
    # Abstract: ICM reduces the distance between the modality centres within each
    # identity. From random starts of every scale, including well-separated identities
    # that satisfy the hinge's margin (where the hinge no longer pulls), one gradient step
    # on the pull shortens every identity's centre distance.
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(3).repeat(2)
    modalities = torch.arange(2).repeat_interleave(12)
    pull = IdentityCenterMiningLoss(form="pull", distance=distance)  # type: ignore[arg-type]
    hinge = IdentityCenterMiningLoss(margin=0.3)
    satisfied = 0
    for trial in range(20):
        scale = 10.0 ** (trial % 4 - 1)  # 0.1 .. 100
        features = scale * torch.randn(24, 8, generator=generator)
        features += 20 * scale * labels[:, None].float()  # identities far apart
        before = centre_distances(features, labels, modalities)
        if hinge(features, labels, modalities).item() == 0:
            satisfied += 1
        start = features.clone().requires_grad_()
        (gradient,) = torch.autograd.grad(pull(start, labels, modalities), start)
        step = 1e-3 * scale if distance == "euclidean" else 1e-3
        after = centre_distances(features - step * gradient, labels, modalities)
        assert bool((after < before).all()), (trial, before, after)
    assert satisfied >= 10, "the starts include ones where the hinge is met and stops pulling"


# Parsing loss ----------------------------------------------------------------------------


def test_parsing_loss_hand_computed_and_ignores_the_ignore_label() -> None:
    # Two positions: (2, 0) against label 0 -> -log softmax = log(1 + e^-2) = 0.126928; the
    # second position is ignored, whatever its logits.
    logits = torch.tensor([[[[2.0, 5.0]], [[0.0, -5.0]]]], requires_grad=True)
    labels = torch.tensor([[[0, IGNORE_INDEX]]])
    loss = ParsingLoss()(logits, labels)
    torch.testing.assert_close(loss, torch.tensor(math.log(1 + math.exp(-2))))
    loss.backward()
    assert logits.grad[..., 1].abs().sum() == 0 and logits.grad[..., 0].abs().sum() > 0
    all_ignored = ParsingLoss()(logits, torch.full_like(labels, IGNORE_INDEX))
    assert all_ignored == 0 and not torch.isnan(all_ignored)


def test_parsing_labels_are_sampled_at_cell_centres() -> None:
    # A 4x4 map against a 2x2 grid: nearest-exact takes rows and columns 1 and 3.
    labels = torch.arange(16).view(1, 4, 4) % 3
    logits = torch.randn(1, 3, 2, 2)
    expected = F.cross_entropy(logits, labels[:, 1::2, 1::2])
    torch.testing.assert_close(ParsingLoss()(logits, labels), expected)
    with pytest.raises(ValueError, match="num_parts"):
        ParsingLoss()(torch.randn(1, 2, 2, 2), labels)


def test_foreground_loss_hand_computed_and_ignores_the_ignore_label() -> None:
    # A 2x2 map: background, a part, an ignored pixel, a part. On a 1x1 grid the cell has
    # 3 valid pixels, 2 of them foreground: target 2/3, weight 3/4; the logit log 2 gives
    # p = 2/3, so the loss is the entropy H(2/3) = 0.636514. On a 2x2 grid with logits 0
    # every valid cell costs log 2 and the ignored one nothing. Mean over the two PAMs.
    labels = torch.tensor([[[0, 2], [IGNORE_INDEX, 3]]])
    coarse = torch.full((1, 1, 1, 1), math.log(2.0), requires_grad=True)
    fine = torch.zeros(1, 1, 2, 2, requires_grad=True)
    loss = ForegroundLoss()([coarse, fine], labels)
    entropy = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    torch.testing.assert_close(loss, torch.tensor((entropy + math.log(2.0)) / 2))
    loss.backward()
    assert fine.grad[0, 0, 1, 0] == 0 and fine.grad[0, 0, 0, 0] > 0 and fine.grad[0, 0, 1, 1] < 0
    with pytest.raises(ValueError, match="at least one PAM"):
        ForegroundLoss()([], labels)


def test_the_mask_loss_trains_the_pam_predictors_and_nothing_downstream(module: CSCLModule) -> None:
    terms = module.compute_losses(training_batch())
    terms["mask"].backward()
    net = module.net
    for pam in net.pam.values():
        assert pam.mask_head.weight.grad.abs().sum() > 0
    # Each PAM predicts its mask from its input: the last PAM's attention, SPAM and the
    # heads lie downstream of every prediction.
    assert net.pam["3"].attention.mlp[0].weight.grad is None
    assert net.neck.classifier.weight.grad is None and net.spam.classifier.weight.grad is None
    assert sum(p.grad.abs().sum() for p in net.backbone.visible_stages.parameters()) > 0


# SPAM and PAM ----------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["class_softmax", "spatial_softmax"])
def test_part_pooling_weights_sum_to_one_per_part(pooling: str) -> None:
    spam = SemanticPartAlignment(8, num_parts=4, pooling=pooling)
    logits = 5 * torch.randn(3, 5, 6, 3)
    weights = spam.pooling_weights(logits)
    assert weights.shape == (3, 4, 6, 3) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=(2, 3)), torch.ones(3, 4))
    features = torch.randn(3, 8, 6, 3)
    _, parts = spam(features)
    expected = spam.pooling_weights(spam.classifier(features))[:, :, None] * features[:, None]
    torch.testing.assert_close(parts, expected.sum(dim=(3, 4)))


def test_class_softmax_parts_average_the_positions_parsed_as_the_part() -> None:
    spam = SemanticPartAlignment(2, num_parts=2)
    logits = torch.full((1, 3, 2, 2), -30.0)
    logits[0, 1, 0, :] = 30.0  # top row: part 1
    logits[0, 2, 1, 0] = 30.0  # bottom left: part 2
    logits[0, 0, 1, 1] = 30.0  # bottom right: background
    # part 1 = mean of the top row = ((1 + 3) / 2, (0 + 2) / 2); part 2 = bottom left
    features = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]], [[0.0, 2.0], [4.0, 6.0]]]])
    parts = torch.einsum("bkhw,bchw->bkc", spam.pooling_weights(logits), features)
    torch.testing.assert_close(parts, torch.tensor([[[2.0, 1.0], [5.0, 4.0]]]))


def test_pam_pools_over_the_foreground_and_adds_the_reweighted_map() -> None:
    torch.manual_seed(0)
    pam = ParsingAlignedAttention(32, reduction=16)
    x = torch.randn(2, 32, 4, 2)
    labels = torch.zeros(2, 8, 4, dtype=torch.long)
    labels[:, :4] = 2  # the top half is a body part
    labels[0, 0, 0] = IGNORE_INDEX
    foreground = foreground_from_labels(labels)
    assert foreground[0, 0, 0, 0] == 0 and foreground[1, 0, 0, 0] == 1
    out = pam(x, foreground)
    mask = F.adaptive_avg_pool2d(foreground, (4, 2))
    descriptor = (x * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3))
    weights = torch.sigmoid(pam.attention.mlp(descriptor))[..., None, None]
    torch.testing.assert_close(out, x + x * weights)
    changed_background = x.clone()
    changed_background[:, :, 2:] = 100.0
    torch.testing.assert_close(
        pam(changed_background, foreground)[:, :, :2], out[:, :, :2], msg="background is ignored"
    )
    no_person = foreground_from_labels(torch.zeros(2, 8, 4, dtype=torch.long))
    torch.testing.assert_close(pam(x, no_person), pam(x, None), msg="empty mask: plain GAP")


def test_predicted_foreground_is_one_minus_background_probability() -> None:
    logits = torch.tensor([[[[0.0]], [[math.log(3.0)]]]])  # P(background) = 1/4
    torch.testing.assert_close(foreground_from_logits(logits), torch.tensor([[[[0.75]]]]))


# The network -----------------------------------------------------------------------------


def test_cscl_resnet50_builds_with_its_modules() -> None:
    net = vz.create_model("cscl_resnet50", num_classes=395)
    assert isinstance(net, CSCL) and net.architecture == "cscl_resnet50"
    assert {k: m.attention.mlp[0].in_features for k, m in net.pam.items()} == {
        "1": 256,
        "2": 512,
        "3": 1024,
    }
    assert net.pam["1"].attention.mlp[0].out_features == 256 // 16
    assert net.spam.classifier.in_channels == 2048 and net.spam.classifier.out_channels == 5
    assert len(net.part_necks) == 4 and net.part_necks[0].classifier.out_features == 395
    assert net.embedding_dim == 5 * 2048
    assert vz.list_models("cscl_*") == [
        "cscl_resnet101",
        "cscl_resnet18",
        "cscl_resnet34",
        "cscl_resnet50",
    ]


@pytest.fixture()
def net18() -> CSCL:
    torch.manual_seed(0)
    return CSCL(6, arch="resnet18").eval()


@pytest.fixture()
def parsing_net18() -> CSCL:
    """PAMs that pool over the parsed foreground in training (two passes at test)."""
    torch.manual_seed(0)
    return CSCL(6, arch="resnet18", pam_mask="parsing").eval()


def record_pam_masks(net: CSCL) -> list[torch.Tensor | None]:
    """Record the mask every PAM of ``net`` pools over, call by call."""
    seen: list[torch.Tensor | None] = []
    for pam in net.pam.values():
        pam.register_forward_pre_hook(lambda _m, args: seen.append(args[1]))
    return seen


def test_inference_takes_images_alone(net18: CSCL) -> None:
    # Default: each PAM pools over the foreground it predicts from its own input, one pass.
    images = torch.randn(3, 3, 64, 32)
    masks = record_pam_masks(net18)
    embedding = net18.extract_features(images, "infrared")
    assert embedding.shape == (3, 5 * 512)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(3))
    assert len(masks) == 3 and all(m is not None for m in masks), "one pass, every PAM masked"
    with torch.no_grad():
        x = net18.backbone.forward_specific(images, "infrared")
        for stage in (1, 2, 3, 4):
            x = net18.backbone.forward_shared(x, stage, stage)
            if stage < 4:
                pam = net18.pam[str(stage)]
                x = pam(x, torch.sigmoid(pam.mask_logits(x)))
        output = net18._head(x)
        expected = torch.cat([output.head.bn, output.parts.bn.flatten(1)], dim=1)
    torch.testing.assert_close(embedding, F.normalize(expected, dim=1))


def test_inference_with_parsing_trained_pams_runs_two_passes(parsing_net18: CSCL) -> None:
    net = parsing_net18
    images = torch.randn(3, 3, 64, 32)
    embedding = net.extract_features(images, "infrared")
    with torch.no_grad():  # a first pass with unmasked PAMs, a second with SPAM's foreground
        specific = net.backbone.forward_specific(images, "infrared")
        first, _ = net._trunk(specific, None, False)
        foreground = foreground_from_logits(net.spam.classifier(first))
        output = net._head(net._trunk(specific, foreground, False)[0])
        expected = torch.cat([output.head.bn, output.parts.bn.flatten(1)], dim=1)
    torch.testing.assert_close(embedding, F.normalize(expected, dim=1))
    net.predicted_foreground = "hard"
    with torch.no_grad():
        hard = foreground_from_logits(net.spam.classifier(first), "hard")
        output = net._head(net._trunk(specific, hard, False)[0])
        expected = torch.cat([output.head.bn, output.parts.bn.flatten(1)], dim=1)
    torch.testing.assert_close(net.extract_features(images, "infrared"), F.normalize(expected))
    for model in (net, CSCL(6, arch="resnet18").eval()):
        model.inference_mask = "none"
        masks = record_pam_masks(model)
        with torch.no_grad():
            own = model.backbone.forward_specific(images, "infrared")
            plain = model._head(model._trunk(own, None, False)[0])
        expected = torch.cat([plain.head.bn, plain.parts.bn.flatten(1)], dim=1)
        torch.testing.assert_close(
            model.extract_features(images, "infrared"), F.normalize(expected)
        )
        assert masks and all(m is None for m in masks)


def test_predicted_pam_masks_make_the_test_pass_the_training_pass(net18: CSCL) -> None:
    # The train/test gap: with pam_mask="predicted" the network embeds a test image exactly
    # as a training step processes it (same PAM masks, whatever parsing maps the training
    # batch carries), so the test never puts the network in a state training did not.
    # PAMs trained on the parsed foreground see it in training but a prediction at test.
    visible, infrared = torch.randn(2, 3, 64, 32), torch.randn(2, 3, 64, 32)
    maps = torch.randint(0, 5, (2, 64, 32))
    for net, same in ((net18, True), (CSCL(6, arch="resnet18", pam_mask="parsing").eval(), False)):
        with torch.no_grad():
            training = net.forward_pair(visible, infrared, maps, maps).head.bn
            test = torch.cat(
                [
                    net.features(visible, "visible").head.bn,
                    net.features(infrared, "infrared").head.bn,
                ]
            )
        assert torch.allclose(training, test, atol=1e-5) == same


def test_features_with_parsing_maps_pool_over_the_parsed_foreground(net18: CSCL) -> None:
    # The oracle of the README's measurement: images with part maps.
    images, maps = torch.randn(2, 3, 64, 32), torch.randint(0, 5, (2, 64, 32))
    masks = record_pam_masks(net18)
    with torch.no_grad():
        output = net18.features(images, "visible", parsing=maps)
    foreground = foreground_from_labels(maps)
    assert len(masks) == 3 and all(torch.equal(m, foreground) for m in masks)
    assert output.head.bn.shape == (2, 512)


def test_test_feature_options() -> None:
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 32)
    glob = CSCL(0, arch="resnet18", test_parts=False, test_feature="pool").eval()
    assert glob.embedding_dim == 512 and glob.extract_features(images, "visible").shape == (2, 512)
    each = CSCL(0, arch="resnet18", test_normalization="each").eval()
    embedding = each.extract_features(images, "visible")
    norms = embedding.view(2, 5, 512).norm(dim=2)
    torch.testing.assert_close(norms, torch.full((2, 5), 1 / math.sqrt(5)))
    with pytest.raises(ValueError, match="pam_stages"):
        CSCL(0, arch="resnet18", pam_stages=(1,), split_stage=2)


def test_forward_pair_uses_the_maps_and_checks_them(net18: CSCL, parsing_net18: CSCL) -> None:
    visible, infrared = torch.randn(4, 3, 64, 32), torch.randn(4, 3, 64, 32)
    maps = torch.randint(0, 5, (4, 64, 32))
    for net in (net18.train(), parsing_net18.train()):
        out = net.forward_pair(visible, infrared, maps, maps)
        assert out.parsing_logits.shape == (8, 5, 4, 2) and out.parts.pool.shape == (8, 4, 512)
        assert out.parts.bn.shape == (8, 4, 512)
        assert out.parts.require_logits().shape == (8, 4, 6) and out.head.logits.shape == (8, 6)
        other = net.forward_pair(visible, infrared, torch.zeros_like(maps), maps)
        # Parsing-trained PAMs pool over the parsed foreground; predicting PAMs over their
        # own prediction (the maps are then its target, see the module's mask loss).
        pooled_alike = torch.allclose(out.head.pool, other.head.pool)
        assert pooled_alike == (net.pam_mask == "predicted")
        with pytest.raises(ValueError, match=r"part maps must be \(B, H, W\)"):
            net.forward_pair(visible, infrared, maps[:, :32], maps)
    sizes = {stage: tuple(x.shape) for stage, x in out.mask_logits.items()}
    assert sizes == {} and set(net18.forward_pair(visible, infrared, maps, maps).mask_logits) == {
        1,
        2,
        3,
    }


# The recipe ------------------------------------------------------------------------------


def training_batch() -> dict[str, torch.Tensor]:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    generator = torch.Generator().manual_seed(0)
    return {
        "visible": torch.randn(6, 3, 64, 32, generator=generator),
        "infrared": torch.randn(6, 3, 64, 32, generator=generator),
        "visible_pid": labels,
        "infrared_pid": labels,
        "visible_parsing": torch.randint(0, 5, (6, 64, 32), generator=generator),
        "infrared_parsing": torch.randint(0, 5, (6, 64, 32), generator=generator),
    }


@pytest.fixture()
def module() -> CSCLModule:
    torch.manual_seed(0)
    module = CSCLModule(CSCL(6, arch="resnet18"))
    module.log_dict = lambda *args, **kwargs: None  # no trainer attached
    return module


def test_training_needs_parsing_maps(module: CSCLModule) -> None:
    batch = training_batch()
    del batch["infrared_parsing"]
    with pytest.raises(ValueError, match=r"infrared_parsing.*data\.init_args\.parsing_root"):
        module.training_step(batch, 0)


def test_the_loss_is_the_weighted_sum_of_its_terms(module: CSCLModule) -> None:
    terms = module.compute_losses(training_batch())
    expected = (
        terms["id"]
        + terms["id_parts"]
        + terms["triplet"]
        + terms["parsing"]
        + 0.1 * terms["division"]
        + 0.5 * terms["centre"]
        + terms["mask"]
    )
    torch.testing.assert_close(terms["loss"], expected)
    assert all(torch.isfinite(value) and value >= 0 for value in terms.values())


def test_gradient_routing(module: CSCLModule) -> None:
    net = module.net
    parsing = module.compute_losses(training_batch())["parsing"]
    parsing.backward()
    assert net.spam.classifier.weight.grad.abs().sum() > 0
    assert net.backbone.shared_stages[3][0].bn2.weight.grad.abs().sum() > 0
    assert net.neck.classifier.weight.grad is None, "the parsing loss leaves identities alone"
    assert net.pam["1"].attention.mlp[0].weight.grad.abs().sum() > 0
    module.zero_grad(set_to_none=True)
    module.compute_losses(training_batch())["id_parts"].backward()
    assert net.spam.classifier.weight.grad.abs().sum() > 0, "part ID trains the part pooling"
    assert net.part_necks[3].classifier.weight.grad.abs().sum() > 0
    assert net.neck.classifier.weight.grad is None


@pytest.mark.parametrize("target", ["features", "maps"])
def test_a_step_on_the_division_loss_lowers_it_on_the_model_parts(target: str) -> None:
    # On the real part features (or maps) of the network: one gradient step on the
    # division term alone lowers it; for features it starts far from 1 and the step
    # reaches SPAM and the trunk.
    torch.manual_seed(0)
    normalization = "standardize" if target == "features" else "none"
    module = CSCLModule(
        CSCL(6, arch="resnet18"), division_target=target, division_normalization=normalization
    )
    batch = training_batch()
    before = module.compute_losses(batch)["division"]
    before.backward()
    gradients = [p.grad for p in module.net.parameters() if p.grad is not None]
    norm = torch.cat([g.flatten() for g in gradients]).norm()
    assert module.net.spam.classifier.weight.grad.abs().sum() > 0
    with torch.no_grad():
        for parameter in module.net.parameters():
            if parameter.grad is not None:
                parameter.sub_(0.5 * parameter.grad / norm)
    after = module.compute_losses(batch)["division"]
    assert after < before, (before, after)


def test_registered_demo_recipe_arguments_are_accepted() -> None:
    from vireid_zoo.cli.demo import demo_recipe

    module = demo_recipe(CSCLModule, 5, epochs=3)
    assert isinstance(module.net, CSCL) and module.net.backbone.arch == "resnet18"
    assert CSCLModule.requires_parsing


# Through the CLI -------------------------------------------------------------------------


def cscl_config(tmp_path: Path, root: Path, parsing: Path) -> Path:
    """A CLI config that trains CSCL on ``root`` with the part maps under ``parsing``."""
    return write_config(
        tmp_path,
        root,
        model_class="vireid_zoo.models.CSCLModule",
        data={"parsing_root": str(parsing)},
    )


def test_fit_without_maps_names_parsing_root(
    parsed_sysu: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, parsed_sysu[0], model_class="vireid_zoo.models.CSCLModule")
    assert main(["fit", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "parsing_root" in err[0]


def test_fit_refuses_a_grouping_of_another_part_count(
    parsed_sysu: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = cscl_config(tmp_path, *parsed_sysu)
    assert main(["fit", "--config", str(config), "--model.network.num_parts", "3"]) == 2
    err = capsys.readouterr().err
    assert "num_parts=3" in err and "model.init_args.network.num_parts to 4" in err


@pytest.mark.parametrize("dataset", ["sysu_mm01", "regdb", "llcm"])
def test_shipped_configs_train_cscl_with_maps(
    dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main(["fit", "--config", str(CONFIGS / "cscl" / f"{dataset}.yaml"), "--print_config"])
    assert exit_code.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "vireid_zoo.models.CSCLModule"
    assert printed["data"]["init_args"]["parsing_root"]
    assert printed["data"]["init_args"]["parsing_grouping"] == "lip5"
    model = printed["model"]["init_args"]
    assert (model["parsing_weight"], model["division_weight"], model["icm_weight"]) == (
        1.0,
        0.1,
        0.5,
    )


@pytest.mark.parametrize("dataset", ["sysu_mm01", "regdb", "llcm"])
def test_configs_list_every_cscl_argument_at_its_default(dataset: str) -> None:
    listed = yaml.safe_load((CONFIGS / "cscl" / f"{dataset}.yaml").read_text())["model"]
    listed = listed["init_args"]
    skipped = {"self", "network", "kwargs", "num_classes", "backbone_pretrained"}
    skipped.add("backbone_weights_file")
    for cls, where in ((CSCLModule, listed), (CSCL, listed["network"])):
        for parameter in inspect.signature(cls.__init__).parameters.values():
            if parameter.name in skipped:
                continue
            default = parameter.default
            expected = list(default) if isinstance(default, tuple) else default
            assert where.get(parameter.name, "missing") == expected, (cls.__name__, parameter.name)
