"""Properties of the shared blocks: two-stream trunk, GeM, BNNeck and attention."""

from __future__ import annotations

import math
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torch import nn

from vireid_zoo.blocks import (
    BlockWithInsert,
    BNNeck,
    ChannelAttention,
    GeneralizedMeanPooling,
    NonLocalBlock,
    SpatialAttention,
    TwoStreamResNet,
)
from vireid_zoo.blocks import imagenet as imagenet_module
from vireid_zoo.blocks.imagenet import ImageNetWeightsUnavailableError
from vireid_zoo.core.weights import WeightsMismatchError

IMAGE = (2, 3, 64, 32)


@pytest.fixture(scope="module")
def resnet50() -> TwoStreamResNet:
    return TwoStreamResNet("resnet50", pretrained=False).eval()


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- two-stream trunk ----------------------------------------------------------------------


def test_stems_are_separate_copies_with_equal_initial_weights() -> None:
    net = TwoStreamResNet("resnet18")
    visible, infrared = net.visible_stages[0], net.infrared_stages[0]
    assert [name for name, _ in visible.named_children()] == ["conv1", "bn1", "act1", "maxpool"]
    for (name, p_vis), p_ir in zip(visible.named_parameters(), infrared.parameters(), strict=True):
        assert p_vis is not p_ir and p_vis.data_ptr() != p_ir.data_ptr(), name
        torch.testing.assert_close(p_vis, p_ir, rtol=0, atol=0)
    torch.testing.assert_close(visible.bn1.running_var, infrared.bn1.running_var)


def test_visible_loss_reaches_only_visible_stem_and_shared_stages() -> None:
    net = TwoStreamResNet("resnet18")
    net(torch.randn(IMAGE), "visible").square().mean().backward()
    assert all(p.grad is None for p in net.infrared_stages.parameters())
    assert all(p.grad is not None for p in net.visible_stages.parameters())
    assert net.visible_stages[0].conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.shared_stages.parameters())


@pytest.mark.parametrize("split_stage", [0, 1, 2, 3])
def test_split_stage_groups_and_function(split_stage: int) -> None:
    torch.manual_seed(0)
    reference = TwoStreamResNet("resnet18", split_stage=0).eval()
    torch.manual_seed(0)
    net = TwoStreamResNet("resnet18", split_stage=split_stage).eval()
    assert len(net.visible_stages) == len(net.infrared_stages) == split_stage + 1
    assert len(net.shared_stages) == 4 - split_stage
    # Each specific stage is duplicated; the shared stages are the remaining layers, in order.
    for stage in range(1, split_stage + 1):
        assert net.visible_stages[stage] is not net.infrared_stages[stage]
        torch.testing.assert_close(
            net.visible_stages[stage][0].conv1.weight, net.infrared_stages[stage][0].conv1.weight
        )
    x = torch.randn(IMAGE)
    specific = net.forward_specific(x, "infrared")
    assert specific.shape[1] == net.stage_channels[split_stage]
    first_shared = net.shared_stages[0][0].conv1
    assert first_shared.in_channels == net.stage_channels[split_stage]
    # Where the trunk splits changes which weights are shared, not the function at init.
    with torch.no_grad():
        torch.testing.assert_close(net(x, "visible"), reference(x, "visible"))
        torch.testing.assert_close(net.forward_shared(specific), net(x, "infrared"))


def test_forward_shared_stage_range() -> None:
    net = TwoStreamResNet("resnet18", split_stage=1).eval()
    x = torch.randn(IMAGE)
    with torch.no_grad():
        after2 = net.forward_shared(net.forward_specific(x, "visible"), end_stage=2)
        assert after2.shape[1] == net.stage_channels[2]
        full = net.forward_shared(after2, start_stage=3)
        torch.testing.assert_close(full, net(x, "visible"))
    with pytest.raises(ValueError, match="start_stage"):
        net.forward_shared(x, start_stage=1)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="resnet50"):
        TwoStreamResNet("vit_small_patch16_224")
    with pytest.raises(ValueError, match="split_stage"):
        TwoStreamResNet("resnet18", split_stage=4)
    with pytest.raises(ValueError, match="last_stride"):
        TwoStreamResNet("resnet18", last_stride=3)
    with pytest.raises(ValueError, match="modality"):
        TwoStreamResNet("resnet18").forward_specific(torch.randn(IMAGE), "thermal")  # type: ignore[arg-type]


def test_last_stride_basic_block() -> None:
    x = torch.randn(IMAGE)
    with torch.no_grad():
        fine = TwoStreamResNet("resnet18", last_stride=1).eval()(x, "visible")
        coarse = TwoStreamResNet("resnet18", last_stride=2).eval()(x, "visible")
    # 64x32 input: stem /4 -> 16x8, layer2 -> 8x4, layer3 -> 4x2, layer4 /last_stride.
    assert fine.shape == (2, 512, 4, 2)
    assert coarse.shape == (2, 512, 2, 1)


def test_last_stride_bottleneck(resnet50: TwoStreamResNet) -> None:
    block = resnet50.shared_stages[3][0]
    assert block.conv2.stride == (1, 1) and block.downsample[0].stride == (1, 1)
    assert resnet50.shared_stages[2][0].conv2.stride == (2, 2)  # layer3 untouched
    with torch.no_grad():
        assert resnet50(torch.randn(IMAGE), "infrared").shape == (2, 2048, 4, 2)


def test_stage_channels(resnet50: TwoStreamResNet) -> None:
    resnet18 = TwoStreamResNet("resnet18")
    assert resnet18.stage_channels == (64, 64, 128, 256, 512) and resnet18.out_channels == 512
    assert resnet50.stage_channels == (64, 256, 512, 1024, 2048)
    assert resnet50.out_channels == 2048
    x = torch.randn(IMAGE)
    with torch.no_grad():
        x = resnet50.forward_specific(x, "visible")
        for stage, channels in zip(range(1, 5), resnet50.stage_channels[1:], strict=True):
            x = resnet50.forward_shared(x, start_stage=stage, end_stage=stage)
            assert x.shape[1] == channels


class _Recorder(nn.Module):
    """Stores its input and adds a learnable offset (to be counted in the parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return x + self.offset


def test_insert_after_block_position_and_keys() -> None:
    net = TwoStreamResNet("resnet18").eval()
    x = torch.randn(IMAGE)
    with torch.no_grad():
        stage2_input = net.forward_shared(net.forward_specific(x, "visible"), end_stage=1)
        expected = net.shared_stages[1][0](stage2_input)  # output of block 0 of stage 2
        before = net(x, "visible")
    n_before = _n_params(net)
    recorder = _Recorder()
    net.insert_after_block(2, 0, recorder)
    assert isinstance(net.shared_stages[1][0], BlockWithInsert)
    assert len(net.shared_stages[1]) == 2  # block indices do not move
    assert _n_params(net) == n_before + 1
    keys = net.state_dict().keys()
    assert "shared_stages.1.0.block.conv1.weight" in keys
    assert "shared_stages.1.0.extra.offset" in keys
    with torch.no_grad():
        torch.testing.assert_close(net(x, "visible"), before)  # zero offset: same function
    torch.testing.assert_close(recorder.seen, expected)
    with pytest.raises(ValueError, match="already"):
        net.insert_after_block(2, 0, nn.Identity())
    with pytest.raises(ValueError, match="not shared"):
        net.insert_after_block(0, 0, nn.Identity())
    with pytest.raises(ValueError, match="blocks 0..1"):
        net.insert_after_block(3, 2, nn.Identity())


def test_agw_non_local_placement() -> None:
    net = TwoStreamResNet("resnet50").eval()
    n_before = _n_params(net)
    x = torch.randn(IMAGE)
    with torch.no_grad():
        before = net(x, "visible")
    for stage, blocks in ((2, (2, 3)), (3, (3, 4, 5))):
        for block in blocks:
            net.insert_after_block(stage, block, NonLocalBlock(net.stage_channels[stage]))
    # 7C + 3 parameters per block: two at C = 512, three at C = 1024.
    assert _n_params(net) - n_before == 2 * (7 * 512 + 3) + 3 * (7 * 1024 + 3)
    assert "shared_stages.2.5.extra.theta.weight" in net.state_dict()
    with torch.no_grad():
        torch.testing.assert_close(net(x, "visible"), before)  # identity at init


def _no_download(*args: object, **kwargs: object) -> str:
    raise AssertionError("the Hub was asked although the weights cannot be fetched")


def _randomised_resnet18() -> nn.Module:
    source = timm.create_model("resnet18", pretrained=False)
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()  # weights unlike any fresh initialisation
    return source


def _assert_trunk_holds(net: TwoStreamResNet, state: dict[str, torch.Tensor]) -> None:
    """Every ImageNet tensor but fc.* is in both stems' copies and the shared stages."""
    trunk = net.state_dict()
    stages = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]  # stage 0 has two names
    checked = 0
    for key, value in state.items():
        if key.startswith("fc.") or key.endswith("num_batches_tracked"):
            continue
        stage = max(0, stages.index(key.split(".")[0]) - 1)
        rest = key if stage == 0 else key.split(".", 1)[1]
        if stage <= net.split_stage:
            names = [f"{stream}_stages.{stage}.{rest}" for stream in ("visible", "infrared")]
        else:
            names = [f"shared_stages.{stage - net.split_stage - 1}.{rest}"]
        for name in names:
            torch.testing.assert_close(trunk[name], value, rtol=0, atol=0)
            checked += 1
    loaded = [k for k in state if not (k.startswith("fc.") or k.endswith("num_batches_tracked"))]
    assert checked > len(loaded)  # every tensor once, the modality-specific ones twice


def test_imagenet_weights_offline_fail_at_once_naming_the_tag_and_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _no_download)
    with pytest.raises(ImageNetWeightsUnavailableError, match="HF_HUB_OFFLINE") as info:
        TwoStreamResNet("resnet18", pretrained=True)
    message = str(info.value)
    assert "timm/resnet18.tv_in1k" in message and "model.safetensors" in message
    assert "backbone_weights_file=PATH" in message and "backbone_pretrained=False" in message
    assert "resnet18-f37072fd.pth" in message  # the same weights in torchvision's layout


def test_an_unreachable_hub_fails_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _no_download)
    probed = []
    monkeypatch.setattr(imagenet_module, "_reachable", lambda endpoint: probed.append(endpoint))
    with pytest.raises(ImageNetWeightsUnavailableError, match="unreachable.*backbone_weights_file"):
        TwoStreamResNet("resnet34", pretrained=True, weights="a1_in1k")
    assert probed == [huggingface_hub.constants.ENDPOINT]


def test_a_failed_download_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(imagenet_module, "_reachable", lambda endpoint: True)

    def failing(*args: object, **kwargs: object) -> str:
        raise OSError("connection reset")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing)
    with pytest.raises(ImageNetWeightsUnavailableError, match="connection reset") as info:
        TwoStreamResNet("resnet18", pretrained=True)
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize("tag", [None, "a1_in1k"])
def test_the_tag_chooses_the_hub_weights(
    tag: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _randomised_resnet18()
    save_file(source.state_dict(), str(tmp_path / "model.safetensors"))
    asked = []

    def download(repo_id: str, filename: str, **kwargs: object) -> str:
        asked.append((repo_id, filename))
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(imagenet_module, "_reachable", lambda endpoint: True)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    options = {} if tag is None else {"weights": tag}
    net = TwoStreamResNet("resnet18", pretrained=True, **options)
    assert asked == [(f"timm/resnet18.{tag or 'tv_in1k'}", "model.safetensors")]
    _assert_trunk_holds(net, source.state_dict())


def test_an_unknown_tag_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"backbone_weights='in21k'.*'tv_in1k'"):
        TwoStreamResNet("resnet18", pretrained=True, weights="in21k")


@pytest.mark.parametrize("layout", ["timm", "torchvision"])
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_file_in_either_layout_fills_both_stems_and_the_shared_stages(
    tmp_path: Path, suffix: str, layout: str
) -> None:
    torch.manual_seed(0)
    if layout == "timm":
        source = _randomised_resnet18()
    else:
        source = torchvision.models.resnet18()
        with torch.no_grad():
            for p in source.parameters():
                p.normal_()
    state = source.state_dict()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:  # a head-less file loads too: fc.* is ignored
        torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    net = TwoStreamResNet("resnet18", pretrained=True, weights_file=path, split_stage=1)
    _assert_trunk_holds(net, state)


def test_pretrained_file_wrong_architecture(tmp_path: Path) -> None:
    path = tmp_path / "resnet34.safetensors"
    save_file(timm.create_model("resnet34", pretrained=False).state_dict(), str(path))
    with pytest.raises(WeightsMismatchError, match="resnet34.safetensors") as info:
        TwoStreamResNet("resnet18", weights_file=path)
    message = str(info.value)
    assert "resnet18" in message and "unexpected (" in message and "layer1.2.bn1.weight" in message

    state = timm.create_model("resnet18", pretrained=False).state_dict()
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    wrong = tmp_path / "gray.pth"
    torch.save(state, wrong)
    with pytest.raises(WeightsMismatchError, match=r"conv1.weight \(file \(64, 1, 7, 7\)"):
        TwoStreamResNet("resnet18", weights_file=wrong)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        TwoStreamResNet("resnet18", weights_file=tmp_path / "missing.safetensors")


# --- GeM -----------------------------------------------------------------------------------


def test_gem_p1_is_average_pooling() -> None:
    x = torch.rand(2, 3, 4, 5) + 0.1
    pooled = GeneralizedMeanPooling(p=1.0)(x)
    torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(x, 1).flatten(1))


def test_gem_large_p_approaches_max() -> None:
    x = torch.rand(2, 3, 4, 4) * 1.8 + 0.2
    maximum = x.amax(dim=(2, 3))
    values = [GeneralizedMeanPooling(p=p)(x) for p in (1.0, 3.0, 10.0, 100.0)]
    for lower, higher in zip(values, values[1:], strict=False):
        assert (lower <= higher + 1e-6).all()  # the power mean grows with p
    # With 16 positions, max * 16^(-1/p) <= GeM <= max; 16^(-1/100) > 0.97.
    assert (values[-1] <= maximum + 1e-5).all() and (values[-1] >= 0.97 * maximum).all()


def test_gem_hand_value_and_clamp() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # p = 3: mean(1 + 8 + 27 + 64) = 25, and 25^(1/3) = 2.9240...
    torch.testing.assert_close(GeneralizedMeanPooling(3.0)(x), torch.tensor([[25 ** (1 / 3)]]))
    # Negative activations are clamped to eps: mean(eps^3 * 3 + 8) ~ 2, 2^(1/3).
    negative = torch.tensor([[[[-1.0, 2.0], [-3.0, -4.0]]]])
    torch.testing.assert_close(
        GeneralizedMeanPooling(3.0)(negative), torch.tensor([[2 ** (1 / 3)]])
    )


def test_gem_agw_formula_adds_eps_to_the_mean() -> None:
    # The AGW reference code: (mean(x^p) + 1e-12)^(1/p) on the post-ReLU map.
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    agw = GeneralizedMeanPooling(3.0, formula="agw")
    assert agw.eps == 1e-12 and GeneralizedMeanPooling(3.0).eps == 1e-6
    expected = torch.tensor([[(25 + 1e-12) ** (1 / 3)], [1e-12 ** (1 / 3)]])
    torch.testing.assert_close(agw(x), expected, rtol=1e-6, atol=0)
    # A dead channel pools to 1e-4 with the reference formula, to 1e-6 with the clamp.
    assert agw(x)[1, 0].item() == pytest.approx(1e-4, rel=1e-5)
    assert GeneralizedMeanPooling(3.0)(x)[1, 0].item() == pytest.approx(1e-6, rel=1e-5)
    # Negative activations count as zero; the result stays finite with fractional p.
    negative = torch.tensor([[[[-1.0, 2.0], [-3.0, -4.0]]]])
    torch.testing.assert_close(
        GeneralizedMeanPooling(2.5, formula="agw")(negative),
        torch.tensor([[(2**2.5 / 4 + 1e-12) ** (1 / 2.5)]]),
    )
    zeros = torch.zeros(1, 2, 3, 3, requires_grad=True)
    GeneralizedMeanPooling(3.0, formula="agw")(zeros).sum().backward()
    assert torch.isfinite(zeros.grad).all()
    assert "formula='agw'" in repr(agw)
    with pytest.raises(ValueError, match="formula must be 'clamp' or 'agw'"):
        GeneralizedMeanPooling(3.0, formula="reference")  # type: ignore[arg-type]


def test_gem_learnable_p() -> None:
    fixed, learnt = GeneralizedMeanPooling(3.0), GeneralizedMeanPooling(3.0, learnable=True)
    assert list(fixed.parameters()) == [] and "p" not in fixed.state_dict()
    learnt(torch.rand(2, 3, 4, 4) + 0.1).sum().backward()
    assert learnt.p.grad is not None and torch.isfinite(learnt.p.grad)


# --- BNNeck --------------------------------------------------------------------------------


def test_bnneck_frozen_bias_and_initialisation() -> None:
    torch.manual_seed(0)
    neck = BNNeck(2048, 500)
    trainable = [p for p in neck.parameters() if p.requires_grad]
    assert all(p is not neck.bn.bias for p in trainable) and len(trainable) == 2
    assert neck.classifier is not None and neck.classifier.bias is None
    # 2048 draws of N(1, 0.01) and 1M draws of N(0, 0.001).
    assert abs(neck.bn.weight.mean().item() - 1.0) < 2e-3
    assert 0.008 < neck.bn.weight.std().item() < 0.012
    assert abs(neck.classifier.weight.mean().item()) < 1e-5
    assert 0.00099 < neck.classifier.weight.std().item() < 0.00101
    pooled = torch.randn(8, 2048)
    output = neck(pooled)
    feature, logits = output.bn, output.logits
    assert output.pool is pooled and output.feature("pool") is pooled
    assert output.feature("bn") is feature and output.require_logits() is logits
    assert feature.shape == (8, 2048) and logits is not None and logits.shape == (8, 500)
    (feature.sum() + logits.sum()).backward()
    assert neck.bn.bias.grad is None and torch.count_nonzero(neck.bn.bias) == 0


def test_bnneck_without_classifier() -> None:
    neck = BNNeck(16, 0).eval()
    x = torch.randn(4, 16)
    output = neck(x)
    assert output.logits is None and neck.classifier is None
    torch.testing.assert_close(output.bn, neck.bn(x))
    with pytest.raises(RuntimeError, match="num_classes=0"):
        output.require_logits()


# --- attention -----------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", [("avg",), ("avg", "max")])
def test_channel_attention_mask_semantics(pooling: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    attention = ChannelAttention(32, reduction=4, pooling=pooling)  # type: ignore[arg-type]
    x = torch.randn(2, 32, 6, 4)
    ones = torch.ones(2, 1, 6, 4)
    torch.testing.assert_close(attention(x, ones), attention(x))
    weights = attention.weights(x)
    assert weights.shape == (2, 32, 1, 1) and ((weights > 0) & (weights < 1)).all()
    torch.testing.assert_close(attention(x), x * weights)
    # A mask that is zero over the top half: what lies there does not change the weights.
    mask = ones.clone()
    mask[:, :, :3] = 0
    changed = x.clone()
    changed[:, :, :3] = 100 * torch.randn(2, 32, 3, 4)
    torch.testing.assert_close(attention.weights(changed, mask), attention.weights(x, mask))
    assert not torch.allclose(attention.weights(changed), attention.weights(x))


def test_channel_attention_masked_average_is_weighted_mean() -> None:
    attention = ChannelAttention(4, reduction=1)
    x = torch.randn(1, 4, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]])
    # Weighted mean: (x00 + 0.5 x10) / 1.5.
    expected = torch.sigmoid(attention.mlp((x[..., 0, 0] + 0.5 * x[..., 1, 0]) / 1.5))
    torch.testing.assert_close(attention.weights(x, mask).flatten(1), expected)
    both = ChannelAttention(4, pooling=("avg", "max"))
    # No foreground at all: pooled over the whole map, as without a mask.
    torch.testing.assert_close(both.weights(x, torch.zeros(1, 1, 2, 2)), both.weights(x))
    with pytest.raises(ValueError, match="mask must have shape"):
        attention(x, torch.ones(1, 1, 4, 4))


def test_spatial_attention_scales_by_map_in_unit_interval() -> None:
    attention = SpatialAttention(kernel_size=7)
    x = torch.randn(2, 8, 6, 4)
    attention_map = attention.weights(x)
    assert attention_map.shape == (2, 1, 6, 4)
    assert ((attention_map > 0) & (attention_map < 1)).all()
    torch.testing.assert_close(attention(x), x * attention_map)
    # A 1x1 kernel [a, b] gives sigmoid(a * channel_mean + b * channel_max).
    pointwise = SpatialAttention(kernel_size=1)
    with torch.no_grad():
        pointwise.conv.weight.copy_(torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))
    expected = torch.sigmoid(2 * x.mean(1, keepdim=True) - x.amax(1, keepdim=True))
    torch.testing.assert_close(pointwise.weights(x), expected)
    with pytest.raises(ValueError, match="odd"):
        SpatialAttention(kernel_size=4)


@pytest.mark.parametrize("channels", [8, 64])
def test_non_local_identity_at_init_and_parameter_count(channels: int) -> None:
    block = NonLocalBlock(channels)
    assert _n_params(block) == 7 * channels + 3
    x = torch.randn(2, channels, 5, 3)
    torch.testing.assert_close(block(x), x)  # training mode: BN output is 0 * normalised
    torch.testing.assert_close(block.eval()(x), x)


@pytest.mark.parametrize("normalization", ["dot", "softmax"])
def test_non_local_matches_formula(normalization: str) -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(6, inter_channels=2, normalization=normalization).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        for tensor in [*block.parameters(), block.bn.running_mean]:
            tensor.normal_()
        block.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 6, 4, 3)
    flat = x.flatten(2)  # (B, C, N)

    def embed(conv: nn.Conv2d) -> torch.Tensor:
        return torch.einsum("ic,bcn->bin", conv.weight[:, :, 0, 0], flat) + conv.bias[:, None]

    theta, phi, g = embed(block.theta), embed(block.phi), embed(block.g)
    affinity = torch.einsum("bin,bim->bnm", theta, phi)
    affinity = affinity / 12 if normalization == "dot" else affinity.softmax(-1)
    y = torch.einsum("bnm,bim->bin", affinity, g)
    w_y = torch.einsum("ci,bin->bcn", block.out.weight[:, :, 0, 0], y) + block.out.bias[:, None]
    bn = block.bn
    normed = (w_y - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps)
    expected = flat + normed * bn.weight[:, None] + bn.bias[:, None]
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected.view_as(x), rtol=1e-4, atol=1e-5)
    assert math.isclose(_n_params(block), 3 * (6 * 2 + 2) + (2 * 6 + 6) + 2 * 6)
