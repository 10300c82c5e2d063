from __future__ import annotations

import inspect
import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision
import yaml
from torch.distributions import Normal, kl_divergence

import vireid_zoo as vz
from helpers.configs import CONFIGS
from vireid_zoo.blocks import GeneralizedMeanPooling, HeadOutput
from vireid_zoo.cli import main
from vireid_zoo.losses.normalization import normalize_features
from vireid_zoo.models import EMIF, EMIFModule
from vireid_zoo.models.emif import (
    GaussianConsistencyLoss,
    batch_centre_loss,
    gaussian_divergence,
)

DIVERGENCES = ("kl", "wasserstein")
FITS = ("identity", "batch")


def gaussian(**kwargs: object) -> GaussianConsistencyLoss:
    """A loss on the raw features with a negligible eps, for closed-form comparisons."""
    settings = {"eps": 1e-12, "normalization": "none", **kwargs}
    return GaussianConsistencyLoss(**settings)  # type: ignore[arg-type]


def paired_features(seed: int = 0, ids: int = 3, k: int = 4, dim: int = 6) -> tuple:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(ids).repeat_interleave(k)
    visible = torch.randn(ids * k, dim, generator=generator) + labels[:, None]
    infrared = 2 * torch.randn(ids * k, dim, generator=generator) - 1
    return visible, infrared, labels, labels.clone()


# Gaussian consistency loss: closed forms ----------------------------------------------------


def test_gaussian_loss_matches_closed_forms_per_batch() -> None:
    # Rows are samples, columns dimensions. Visible dimension 0: {-1, 1}, mean 0, unbiased
    # variance (1 + 1) / (2 - 1) = 2. Infrared dimension 0: {1, 3}, mean 2, variance 2,
    # so Delta^2 = 4 and the symmetric KL is 1/2 [(2 + 4)/2 + (2 + 4)/2 - 2] = 2, the
    # squared 2-Wasserstein 4 + (sqrt 2 - sqrt 2)^2 = 4.
    # Dimension 1: visible {-1, 1} (mean 0, variance 2), infrared {-2, 2} (mean 0,
    # variance 8): symmetric KL 1/2 [2/8 + 8/2 - 2] = 1.125, 2-Wasserstein
    # (sqrt 2 - sqrt 8)^2 = (sqrt 2 - 2 sqrt 2)^2 = 2.
    visible = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])
    infrared = torch.tensor([[1.0, -2.0], [3.0, 2.0]])
    cases = {("kl", "sum"): 3.125, ("kl", "mean"): 1.5625}
    cases |= {("wasserstein", "sum"): 6.0, ("wasserstein", "mean"): 3.0}
    for (divergence, reduction), expected in cases.items():
        loss = gaussian(divergence=divergence, fit="batch", reduction=reduction)
        assert loss(visible, infrared).item() == pytest.approx(expected, rel=1e-6)
    # Biased variances (divide by n): 1 and 1 in dimension 0, 1 and 4 in dimension 1:
    # KL = 1/2 [(1 + 4) + (1 + 4) - 2] + 1/2 [1/4 + 4 - 2] = 4 + 1.125;
    # Wasserstein = 4 + 0 + (1 - 2)^2 = 5.
    biased = {"kl": 5.125, "wasserstein": 5.0}
    for divergence, expected in biased.items():
        loss = gaussian(divergence=divergence, fit="batch", unbiased=False, reduction="sum")
        assert loss(visible, infrared).item() == pytest.approx(expected, rel=1e-6)


def test_gaussian_loss_matches_closed_forms_per_identity() -> None:
    # Identity 0: visible {-1, 1} (mean 0, var 2), infrared {1, 3} (mean 2, var 2):
    #   KL 2 (as above), Wasserstein 4.
    # Identity 1: visible {0, 2} (mean 1, var 2), infrared {-1, 3} (mean 1, var 8):
    #   KL 1/2 [2/8 + 8/2 - 2] = 1.125, Wasserstein (sqrt 2 - sqrt 8)^2 = 2.
    # The loss is the mean over identities: KL 1.5625, Wasserstein 3.
    visible = torch.tensor([[-1.0], [0.0], [1.0], [2.0]])
    visible_labels = torch.tensor([0, 1, 0, 1])
    infrared = torch.tensor([[1.0], [3.0], [-1.0], [3.0]])
    infrared_labels = torch.tensor([0, 0, 1, 1])
    for divergence, expected in (("kl", 1.5625), ("wasserstein", 3.0)):
        loss = gaussian(divergence=divergence)(visible, infrared, visible_labels, infrared_labels)
        assert loss.item() == pytest.approx(expected, rel=1e-6)
    # With the batch-level variance: visible {-1, 0, 1, 2} has variance 5/3, infrared
    # {1, 3, -1, 3} variance 11/3; the per-identity mean gaps are 2 and 0. KL per identity
    # 1/2 [(5/3 + g^2)/(11/3) + (11/3 + g^2)/(5/3) - 2]; Wasserstein g^2 + (s_v - s_i)^2.
    var_v, var_i = 5 / 3, 11 / 3
    kl = [0.5 * ((var_v + g) / var_i + (var_i + g) / var_v - 2) for g in (4.0, 0.0)]
    w2 = [g + (var_v**0.5 - var_i**0.5) ** 2 for g in (4.0, 0.0)]
    for divergence, expected in (("kl", sum(kl) / 2), ("wasserstein", sum(w2) / 2)):
        loss = gaussian(divergence=divergence, variance="batch")
        assert loss(visible, infrared, visible_labels, infrared_labels).item() == pytest.approx(
            expected, rel=1e-6
        )


def test_symmetric_kl_is_the_sum_of_both_kl_directions() -> None:
    generator = torch.Generator().manual_seed(3)
    mean_p, mean_q = torch.randn(2, 7, generator=generator)
    var_p, var_q = torch.rand(2, 7, generator=generator) + 0.1
    p, q = Normal(mean_p, var_p.sqrt()), Normal(mean_q, var_q.sqrt())
    expected = kl_divergence(p, q) + kl_divergence(q, p)
    torch.testing.assert_close(gaussian_divergence(mean_p, var_p, mean_q, var_q, "kl"), expected)
    with pytest.raises(ValueError, match="'js'"):
        gaussian_divergence(mean_p, var_p, mean_q, var_q, "js")  # type: ignore[arg-type]


# Gaussian consistency loss: properties --------------------------------------------------------


@pytest.mark.parametrize("divergence,fit", list(itertools.product(DIVERGENCES, FITS)))
def test_gaussian_loss_is_zero_for_identical_distributions(divergence: str, fit: str) -> None:
    visible, _, labels, _ = paired_features()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))
    loss = GaussianConsistencyLoss(divergence=divergence, fit=fit)  # type: ignore[arg-type]
    # The same samples of each identity, in another order, are the same distribution.
    value = loss(visible, visible[order], labels, labels[order])
    assert value.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("divergence,fit", list(itertools.product(DIVERGENCES, FITS)))
def test_gaussian_loss_is_symmetric(divergence: str, fit: str) -> None:
    visible, infrared, visible_labels, infrared_labels = paired_features()
    loss = GaussianConsistencyLoss(divergence=divergence, fit=fit)  # type: ignore[arg-type]
    forward = loss(visible, infrared, visible_labels, infrared_labels)
    backward = loss(infrared, visible, infrared_labels, visible_labels)
    assert forward.item() > 0
    torch.testing.assert_close(forward, backward)


@pytest.mark.parametrize("divergence,fit", list(itertools.product(DIVERGENCES, FITS)))
def test_gaussian_loss_grows_with_a_mean_shift_and_a_variance_ratio(
    divergence: str, fit: str
) -> None:
    visible, _, labels, _ = paired_features()
    loss = GaussianConsistencyLoss(divergence=divergence, fit=fit)  # type: ignore[arg-type]
    shifts = [loss(visible, visible + shift, labels, labels) for shift in (0.0, 0.3, 1.0, 3.0)]
    assert all(a < b for a, b in itertools.pairwise(shifts))
    centre = visible.view(3, 4, -1).mean(dim=1).repeat_interleave(4, dim=0)
    if fit == "batch":
        centre = visible.mean(dim=0)
    ratios = (1.0, 1.5, 3.0, 10.0)  # standard-deviation ratios infrared / visible
    scaled = [loss(visible, centre + r * (visible - centre), labels, labels) for r in ratios]
    assert scaled[0].item() == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in itertools.pairwise(scaled))
    shrunk = [loss(visible, centre + (visible - centre) / r, labels, labels) for r in ratios]
    assert all(a < b for a, b in itertools.pairwise(shrunk))


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_gaussian_loss_aligns_the_modality_distributions_directly(divergence: str) -> None:
    # Abstract: the loss aligns the modality distributions directly. Gradient descent on it
    # alone moves the infrared Gaussians onto the visible ones.
    visible, infrared, visible_labels, infrared_labels = paired_features()
    infrared = infrared.clone().requires_grad_(True)
    loss = GaussianConsistencyLoss(divergence=divergence)  # type: ignore[arg-type]
    optimizer = torch.optim.SGD([infrared], lr=2.0)
    first = loss(visible, infrared, visible_labels, infrared_labels).item()
    gap = (visible.mean(0) - infrared.mean(0)).norm().item()
    for _ in range(300):
        optimizer.zero_grad()
        loss(visible, infrared, visible_labels, infrared_labels).backward()
        optimizer.step()
    assert loss(visible, infrared, visible_labels, infrared_labels).item() < 0.01 * first
    assert (visible.mean(0) - infrared.mean(0)).norm().item() < 0.1 * gap


def test_kl_is_unchanged_by_a_per_dimension_affine_map() -> None:
    # Why the choice of embedding (BNNeck output or pooled feature) matters for "kl" only
    # through eps: a training-mode BatchNorm is the same per-dimension affine map for both
    # modalities, and the KL between Gaussians is invariant to such maps.
    visible, infrared, visible_labels, infrared_labels = paired_features()
    scale, shift = torch.rand(6) * 5 + 0.1, torch.randn(6)
    loss = gaussian(divergence="kl")
    torch.testing.assert_close(
        loss(visible * scale + shift, infrared * scale + shift, visible_labels, infrared_labels),
        loss(visible, infrared, visible_labels, infrared_labels),
    )


@pytest.mark.parametrize("divergence,fit", list(itertools.product(DIVERGENCES, FITS)))
def test_standardized_loss_is_unchanged_by_a_per_dimension_scale_and_shift(
    divergence: str, fit: str
) -> None:
    # The compared features are standardised together: a common per-dimension scale and
    # shift of both modalities (what a BNNeck's weight does) changes nothing, so the loss
    # cannot be lowered by shrinking the features. On the raw features it can.
    visible, infrared, visible_labels, infrared_labels = paired_features()
    scale, shift = torch.rand(6) * 5 + 0.1, torch.randn(6)
    for normalization in ("standardize", "none"):
        loss = gaussian(divergence=divergence, fit=fit, normalization=normalization)
        reference = loss(visible, infrared, visible_labels, infrared_labels).item()
        for factor in (scale, torch.full((6,), 0.01)):
            mapped = loss(
                visible * factor + shift, infrared * factor + shift, visible_labels, infrared_labels
            ).item()
            if normalization == "standardize":
                assert mapped == pytest.approx(reference, rel=1e-3)
            elif divergence == "wasserstein":  # the raw squared distances scale
                assert mapped != pytest.approx(reference, rel=0.1)
    l2 = GaussianConsistencyLoss(divergence, fit, normalization="l2")  # type: ignore[arg-type]
    torch.testing.assert_close(
        l2(0.01 * visible, 0.01 * infrared, visible_labels, infrared_labels),
        l2(visible, infrared, visible_labels, infrared_labels),
    )


def full_covariance_w2(a: np.ndarray, b: np.ndarray) -> float:
    """Squared 2-Wasserstein distance of the Gaussians fitted to rows a and b (unbiased)."""
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a)
    cross = scipy.linalg.sqrtm(root @ cov_b @ root).real
    gap = a.mean(axis=0) - b.mean(axis=0)
    return float(gap @ gap + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(cross))


def test_full_covariance_wasserstein_matches_the_matrix_square_root_form() -> None:
    visible, infrared, visible_labels, infrared_labels = paired_features(k=5, dim=4)
    groups = [(visible[visible_labels == y], infrared[infrared_labels == y]) for y in range(3)]
    expected = np.mean(
        [full_covariance_w2(a.double().numpy(), b.double().numpy()) for a, b in groups]
    )
    loss = gaussian(covariance="full", reduction="sum")
    value = loss(visible.double(), infrared.double(), visible_labels, infrared_labels)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    mean = gaussian(covariance="full")(visible, infrared, visible_labels, infrared_labels)
    assert mean.item() == pytest.approx(expected / 4, rel=1e-4)  # averaged over 4 dimensions
    batch = gaussian(covariance="full", fit="batch", reduction="sum")(visible, infrared)
    assert batch.item() == pytest.approx(
        full_covariance_w2(visible.numpy(), infrared.numpy()), rel=1e-4
    )
    # Correlations count: a visible pair of dimensions that moves together and an infrared
    # pair that moves in opposition have the same diagonal variances, not the same law.
    t = torch.linspace(-1, 1, 8)[:, None]
    together, opposed = torch.cat([t, t], dim=1), torch.cat([t, -t], dim=1)
    assert gaussian(fit="batch")(together, opposed).item() == pytest.approx(0.0, abs=1e-6)
    assert gaussian(fit="batch", covariance="full")(together, opposed).item() > 0.1
    with pytest.raises(ValueError, match="covariance='full' needs divergence='wasserstein'"):
        GaussianConsistencyLoss(divergence="kl", covariance="full")


# Gaussian consistency loss: numerics -----------------------------------------------------------


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_one_image_per_identity_falls_back_to_the_batch_variance(divergence: str) -> None:
    visible, infrared, labels, _ = paired_features(k=1, ids=5)
    inputs = (visible.requires_grad_(True), infrared, labels, labels)
    per_identity = GaussianConsistencyLoss(divergence=divergence)(*inputs)  # type: ignore[arg-type]
    batch_variance = GaussianConsistencyLoss(divergence=divergence, variance="batch")(*inputs)  # type: ignore[arg-type]
    assert torch.isfinite(per_identity)
    torch.testing.assert_close(per_identity, batch_variance)
    per_identity.backward()
    assert torch.isfinite(visible.grad).all()


def test_a_single_image_per_modality_gives_eps_variances_not_nan() -> None:
    # One visible (0) and one infrared (1) image: no variance can be estimated, both are 0,
    # plus eps: symmetric KL 1/2 [(eps + 1)/eps + (eps + 1)/eps - 2] = 1/eps; Wasserstein 1.
    visible = torch.zeros(1, 1, requires_grad=True)
    infrared, labels = torch.ones(1, 1), torch.tensor([4])
    for divergence, expected in (("kl", 1e5), ("wasserstein", 1.0)):
        for fit in FITS:
            loss = GaussianConsistencyLoss(divergence, fit, eps=1e-5, normalization="none")  # type: ignore[arg-type]
            value = loss(visible, infrared, labels, labels)
            assert value.item() == pytest.approx(expected, rel=1e-4)
            (grad,) = torch.autograd.grad(value, visible)
            assert torch.isfinite(grad).all()


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_tiny_variances_are_floored_by_eps(divergence: str) -> None:
    labels = torch.arange(2).repeat_interleave(3)
    visible = labels[:, None].float().repeat(1, 4) + 1e-20 * torch.randn(6, 4)
    visible.requires_grad_(True)
    same = GaussianConsistencyLoss(divergence=divergence)(visible, visible.detach(), labels, labels)  # type: ignore[arg-type]
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    shifted = GaussianConsistencyLoss(divergence=divergence)(
        visible, visible + 1e-3, labels, labels
    )  # type: ignore[arg-type]
    (grad,) = torch.autograd.grad(shifted, visible)
    assert torch.isfinite(shifted) and torch.isfinite(grad).all() and shifted.item() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gaussian_loss_is_finite_float32_under_autocast(dtype: torch.dtype) -> None:
    visible, infrared, visible_labels, infrared_labels = paired_features()
    large = (6e4 * torch.rand(12, 6)).to(dtype)  # squares overflow float16, not float32
    for a, b in ((visible.to(dtype), infrared.to(dtype)), (large, large.flip(0))):
        for divergence, fit in itertools.product(DIVERGENCES, FITS):
            loss = GaussianConsistencyLoss(divergence=divergence, fit=fit)  # type: ignore[arg-type]
            with torch.autocast("cpu", dtype=dtype):
                value = loss(a, b, visible_labels, infrared_labels)
            assert value.dtype == torch.float32 and torch.isfinite(value)


def test_gaussian_loss_rejects_bad_input() -> None:
    visible, infrared, labels, _ = paired_features()
    with pytest.raises(ValueError, match=r"identities \[2\] have no infrared"):
        GaussianConsistencyLoss()(visible, infrared[:8], labels, labels[:8])
    with pytest.raises(ValueError, match="needs the identity labels"):
        GaussianConsistencyLoss()(visible, infrared)
    with pytest.raises(ValueError, match="eps must be > 0"):
        GaussianConsistencyLoss(eps=0.0)
    with pytest.raises(ValueError, match="'pairs'"):
        GaussianConsistencyLoss(fit="pairs")  # type: ignore[arg-type]


def test_batch_centre_loss() -> None:
    # Identity 0 at {0, 2} (centre 1), identity 1 at {5, 5}: 1/2 (1 + 1 + 0 + 0) / 4 = 0.25.
    features = torch.tensor([[0.0], [5.0], [2.0], [5.0]])
    assert batch_centre_loss(features, torch.tensor([0, 1, 0, 1])).item() == pytest.approx(0.25)


# Network ------------------------------------------------------------------------------------


def test_resnet50_builds_three_layer4_heads_from_the_same_weights() -> None:
    net = vz.create_model("emif_resnet50", num_classes=395)
    assert isinstance(net, EMIF) and net.architecture == "emif_resnet50"
    trunk = net.backbone
    shared_layer4 = trunk.shared_stages[-1]
    for head in (trunk.visible_head, trunk.infrared_head):
        assert len(head) == 1 and head[0] is not shared_layer4
        for (name, a), (_, b) in zip(
            head[0].state_dict().items(), shared_layer4.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), name
    assert trunk.visible_head[0][0].conv2.stride == (1, 1), "last stride 1 in every head"
    resnet = torchvision.models.resnet50()
    count = lambda *modules: sum(p.numel() for m in modules for p in m.parameters())  # noqa: E731
    expected = 2 * count(resnet.conv1, resnet.bn1) + count(
        resnet.layer1, resnet.layer2, resnet.layer3
    )
    expected += 3 * (count(resnet.layer4) + 2 * 2048 + 2048 * 395)  # heads, BNNecks, classifiers
    assert count(net) == expected
    assert net.embedding_dim == 2 * 2048  # shared + modality head


def randomise_batch_norms(model: torch.nn.Module) -> None:
    """Make the stem copies differ and undo timm's zero-initialised last BN of each block."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)


@pytest.fixture()
def net() -> EMIF:
    torch.manual_seed(0)
    net = EMIF(6, arch="resnet18")
    randomise_batch_norms(net)
    return net


def test_modality_heads_only_see_their_own_modality(net: EMIF) -> None:
    seen: dict[str, list[torch.Tensor]] = {"visible": [], "infrared": []}
    for name in seen:
        head = getattr(net.backbone, f"{name}_head")
        head.register_forward_hook(lambda _m, args, _o, name=name: seen[name].append(args[0]))
    visible, infrared = torch.randn(3, 3, 64, 32), torch.randn(2, 3, 64, 32) + 1
    net.eval()
    with torch.no_grad():
        output = net.forward_pair(visible, infrared)
        expected = {
            "visible": net.backbone.forward_trunk(visible, "visible"),
            "infrared": net.backbone.forward_trunk(infrared, "infrared"),
        }
    assert output.shared.pool.shape == (5, 512) and output.shared.logits.shape == (5, 6)
    assert output.visible.pool.shape == (3, 512) and output.infrared.logits.shape == (2, 6)
    for name, inputs in seen.items():
        # Called once per forward_pair, with exactly the trunk features of its modality.
        assert len(inputs) == 1
        torch.testing.assert_close(inputs[0], expected[name])


def test_a_modality_head_loss_sends_no_gradient_to_the_other_head(net: EMIF) -> None:
    output = net.train().forward_pair(torch.randn(4, 3, 64, 32), torch.randn(4, 3, 64, 32))
    (output.visible.logits.square().sum() + output.visible.pool.sum()).backward()
    for module in (net.backbone.infrared_head, net.infrared_neck, net.neck):
        assert all(p.grad is None for p in module.parameters())
    shared_layer4 = net.backbone.shared_stages[-1]
    assert all(p.grad is None for p in shared_layer4.parameters())
    visible = [*net.backbone.visible_head.parameters(), net.visible_neck.classifier.weight]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in visible)


def test_extract_features_uses_the_modality_stem_and_head(net: EMIF) -> None:
    net.eval()
    net.test_concat = False  # the shared head's embedding alone
    images = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        visible = net.extract_features(images, "visible")
        assert visible.shape == (3, 512)
        torch.testing.assert_close(visible.norm(dim=1), torch.ones(3))
        assert not torch.allclose(visible, net.extract_features(images, "infrared"))
        net.test_concat = True
        called: list[str] = []
        for name in ("visible", "infrared"):
            getattr(net.backbone, f"{name}_head").register_forward_hook(
                lambda *_, name=name: called.append(name)
            )
        concatenated = net.extract_features(images, "infrared")
        trunk = net.backbone.forward_trunk(images, "infrared")
        parts = [net.forward_branch(trunk, b).bn for b in ("shared", "infrared")]
    assert called == ["infrared", "infrared"]  # extraction, then the reference computation
    torch.testing.assert_close(
        concatenated, torch.nn.functional.normalize(torch.cat(parts, dim=1), dim=1)
    )
    assert EMIF(0, arch="resnet18").embedding_dim == 1024  # concatenated by default
    assert EMIF(0, arch="resnet18", test_concat=False).embedding_dim == 512


def test_save_and_load_pretrained_round_trip(tmp_path: Path) -> None:
    net = EMIF(6, arch="resnet18", test_concat=False)  # the config records the arguments
    randomise_batch_norms(net)
    net.save_pretrained(tmp_path / "emif")
    loaded = EMIF.from_pretrained(tmp_path / "emif").eval()
    assert not loaded.test_concat and loaded.embedding_dim == 512
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.extract_features(images, "infrared"),
            net.eval().extract_features(images, "infrared"),
        )


def test_head_stage_and_arguments_are_checked() -> None:
    net = EMIF(4, arch="resnet18", head_stage=3)
    assert len(net.backbone.visible_head) == 2  # layer3 and layer4
    output = net.forward_pair(torch.randn(2, 3, 64, 32), torch.randn(2, 3, 64, 32))
    assert output.infrared.bn.shape == (2, 512)
    assert EMIF(4, arch="resnet18", head_stage=1).extract_features(
        torch.randn(2, 3, 64, 32), "visible"
    ).shape == (2, 2 * 512)
    with pytest.raises(ValueError, match="head_stage must be 2..4"):
        EMIF(4, arch="resnet18", split_stage=1, head_stage=1)
    with pytest.raises(ValueError, match="test_feature"):
        EMIF(4, arch="resnet18", test_feature="logits")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="num_classes=0"):
        EMIF(0, arch="resnet18").forward_pair(torch.randn(2, 3, 64, 32), torch.randn(2, 3, 64, 32))


# Recipe --------------------------------------------------------------------------------------


def batch(height: int = 64, width: int = 32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    return {
        "visible": torch.randn(6, 3, height, width, generator=generator),
        "infrared": torch.randn(6, 3, height, width, generator=generator) + 1,
        "visible_pid": labels,
        "infrared_pid": labels.clone(),
    }


@pytest.fixture()
def module() -> EMIFModule:
    torch.manual_seed(0)
    module = EMIFModule(EMIF(6, arch="resnet18"), alpha=0.7, beta=0.3, centre_weight=0.01)
    randomise_batch_norms(module)
    return module


def test_total_loss_combines_shared_intra_modality_and_gaussian_terms(module: EMIFModule) -> None:
    data = batch()
    terms = module.compute_losses(data)
    output = module.net.forward_pair(data["visible"], data["infrared"])
    labels, v, i = torch.cat([data["visible_pid"]] * 2), data["visible_pid"], data["infrared_pid"]
    ce, triplet = torch.nn.functional.cross_entropy, module.modality_triplet_loss
    intra = sum(
        ce(out.logits, y) + triplet(out.pool, y) + 0.01 * batch_centre_loss(out.pool, y)
        for out, y in ((output.visible, v), (output.infrared, i))
    )
    gauss = GaussianConsistencyLoss()(output.shared.bn[:6], output.shared.bn[6:], v, i)
    expected = ce(output.shared.logits, labels) + triplet(output.shared.pool, labels)
    torch.testing.assert_close(terms["loss"], expected + 0.7 * intra + 0.3 * gauss)
    torch.testing.assert_close(terms["gaussian"], gauss)
    assert {"centre_visible", "triplet_infrared", "accuracy"} <= terms.keys()


def batch_norm_1d_weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in module.modules() if isinstance(m, torch.nn.BatchNorm1d)]


def test_the_gaussian_term_does_not_depend_on_the_scale_of_the_features(module: EMIFModule) -> None:
    # The BNNeck's weight scales the compared features. Rescaling every BatchNorm1d weight
    # of the network leaves the term as it is (within 1%), and its gradient has no
    # component along those weights: it cannot be met by shrinking the features.
    data = batch()
    terms = module.compute_losses(data)
    weights = batch_norm_1d_weights(module.net)
    assert len(weights) == 3  # the shared and the two modality BNNecks
    (gradient,) = torch.autograd.grad(terms["gaussian"], [module.net.neck.bn.weight])
    assert gradient.abs().max() < 1e-4 * terms["gaussian"].item()
    original = [w.detach().clone() for w in weights]
    for factor in (0.1, 10.0, torch.rand(512, generator=torch.Generator().manual_seed(1)) + 0.1):
        with torch.no_grad():
            for weight, saved in zip(weights, original, strict=True):
                weight.copy_(saved * factor)
        rescaled = module.compute_losses(data)
        assert rescaled["gaussian"].item() == pytest.approx(terms["gaussian"].item(), rel=0.01)


def moment_distances(module: EMIFModule, data: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Per-identity distances of the two modalities' means and standard deviations.

    Measured on the shared embeddings standardised together (the space the term compares),
    summed over dimensions and identities.
    """
    output = module.net.forward_pair(data["visible"], data["infrared"])
    features = normalize_features(output.shared.bn, "standardize")
    visible, infrared = features.split([len(data["visible_pid"]), len(data["infrared_pid"])])
    first = second = 0.0
    for identity in data["visible_pid"].unique():
        a = visible[data["visible_pid"] == identity]
        b = infrared[data["infrared_pid"] == identity]
        first += (a.mean(dim=0) - b.mean(dim=0)).pow(2).sum().item()
        second += (a.std(dim=0) - b.std(dim=0)).pow(2).sum().item()
    return first, second


def test_a_step_on_the_gaussian_term_moves_the_trunk_and_aligns_the_moments(
    module: EMIFModule,
) -> None:
    # Abstract: the consistency loss aligns the modality distributions directly. One
    # gradient step on that term alone changes the shared trunk and brings both the first
    # and the second moments of the two modalities closer.
    data = batch()
    with torch.no_grad():
        before = moment_distances(module, data)
    module.zero_grad(set_to_none=True)
    module.compute_losses(data)["gaussian"].backward()
    trunk = [
        *module.net.backbone.shared_stages.parameters(),
        *module.net.backbone.visible_stages.parameters(),
    ]
    assert all(p.grad is not None for p in trunk) and sum(p.grad.abs().sum() for p in trunk) > 0
    with torch.no_grad():
        for parameter in module.net.parameters():
            if parameter.grad is not None:
                parameter.sub_(1e-3 * parameter.grad)
        after = moment_distances(module, data)
    assert after[0] < 0.9 * before[0] and after[1] < 0.9 * before[1], (before, after)


def test_intra_modality_metric_loss_only_compares_images_of_its_modality(
    module: EMIFModule,
) -> None:
    # Abstract: the branches enhance intra-class compactness and inter-class discrepancy
    # within each modality. Compact, well-separated classes within the modality cost
    # nothing, however far the other modality is; a spread class does.
    labels = torch.tensor([0, 0, 1, 1])
    compact = torch.tensor([[0.0, 0.0], [0.0, 0.1], [5.0, 0.0], [5.0, 0.1]])
    output = HeadOutput(pool=compact, bn=compact, logits=100.0 * torch.eye(6)[labels])
    losses = module.intra_modality_losses(output, labels)
    assert losses["triplet"].item() == 0.0 and losses["id"].item() < 1e-6
    output.pool = torch.tensor([[0.0, 0.0], [4.0, 0.0], [5.0, 0.0], [5.0, 0.1]])
    spread = module.intra_modality_losses(output, labels)
    assert spread["triplet"].item() > 0.3 and spread["centre"].item() > 0


def test_training_is_end_to_end_and_the_gaussian_loss_acts_on_the_shared_head(
    module: EMIFModule,
) -> None:
    terms = module.compute_losses(batch())
    terms["gaussian"].backward(retain_graph=True)
    heads = [*module.net.backbone.visible_head.parameters(), *module.net.visible_neck.parameters()]
    assert all(p.grad is None for p in heads)
    assert module.net.backbone.shared_stages[-1][0].conv1.weight.grad.abs().sum() > 0
    module.net.zero_grad()
    terms["loss"].backward()
    for name, parameter in module.net.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_training_step_is_finite_under_cpu_autocast() -> None:
    # The default recipe at K = 4 images per identity and modality (fewer images make the
    # per-identity variances, and so the KL's gradients, heavy-tailed: see the README).
    torch.manual_seed(0)
    module = EMIFModule(EMIF(4, arch="resnet18"))
    labels = torch.arange(2).repeat_interleave(4)
    data = {"visible_pid": labels, "infrared_pid": labels}
    data |= {"visible": torch.randn(8, 3, 32, 16), "infrared": torch.randn(8, 3, 32, 16) + 1}
    for dtype in (torch.bfloat16, torch.float16):  # the last one also runs backward
        with torch.autocast("cpu", dtype=dtype):
            terms = module.compute_losses(data)
        assert all(torch.isfinite(value) for value in terms.values()), (dtype, terms)
    terms["loss"].backward()  # slow: CPU float16 convolutions
    assert all(torch.isfinite(p.grad).all() for p in module.net.parameters() if p.grad is not None)


def test_gem_pooling_of_small_float16_activations_has_finite_gradients() -> None:
    # (3e-3)^3 underflows float16; GeM pools half-precision maps in float32.
    x = torch.full((2, 4, 3, 2), 3e-3, dtype=torch.float16, requires_grad=True)
    pooled = GeneralizedMeanPooling(3.0)(x)
    assert pooled.dtype == torch.float16
    pooled.sum().backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(pooled.float(), torch.full((2, 4), 3e-3), rtol=1e-3, atol=0)


def test_the_heads_are_in_the_backbone_group_and_classifiers_may_change(
    module: EMIFModule,
) -> None:
    backbone, new = module.configure_optimizers()["optimizer"].param_groups
    backbone_ids, new_ids = {id(p) for p in backbone["params"]}, {id(p) for p in new["params"]}
    for head in (module.net.backbone.visible_head, module.net.backbone.infrared_head):
        assert {id(p) for p in head.parameters()} <= backbone_ids
    for neck in (module.net.neck, module.net.visible_neck, module.net.infrared_neck):
        assert {id(p) for p in neck.parameters() if p.requires_grad} <= new_ids
    other = EMIFModule(EMIF(9, arch="resnet18"))
    checkpoint = {"state_dict": other.state_dict()}
    with pytest.warns(UserWarning, match="9 classes and this model's 6"):
        module.on_load_checkpoint(checkpoint)
    module.load_state_dict(checkpoint["state_dict"])
    with pytest.raises(ValueError, match="shared_triplet"):
        EMIFModule(EMIF(6, arch="resnet18"), shared_triplet="hard")  # type: ignore[arg-type]


# CLI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["sysu_mm01", "regdb", "llcm"])
def test_configs_list_every_emif_argument(dataset: str, capsys: pytest.CaptureFixture) -> None:
    config = CONFIGS / "emif" / f"{dataset}.yaml"
    written = yaml.safe_load(config.read_text())["model"]["init_args"]
    recipe = {
        k: v.default
        for k, v in inspect.signature(EMIFModule.__init__).parameters.items()
        if k not in ("self", "network", "kwargs")
    }
    network = {
        k: v.default
        for k, v in inspect.signature(EMIF.__init__).parameters.items()
        if k not in ("self", "num_classes", "backbone_weights_file", "backbone_pretrained")
    }
    # The recipes spell out every EMIF argument, at the documented defaults.
    assert {k: written.get(k) for k in recipe} == recipe
    assert {k: written["network"].get(k) for k in network} == network
    assert written["network"]["backbone_pretrained"] is True
    with pytest.raises(SystemExit) as exit_code:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_code.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["model"]
    assert printed["class_path"] == "vireid_zoo.models.EMIFModule"
    assert printed["init_args"]["alpha"] == written["alpha"]
