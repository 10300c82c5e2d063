from __future__ import annotations

import pytest
import torch
import torchvision

import vireid_zoo as vz
from vireid_zoo.blocks import BlockWithInsert, GeneralizedMeanPooling, NonLocalBlock
from vireid_zoo.models import AGW


def reference_agw_parameter_count(num_classes: int) -> int:
    """The reference AGW network (ResNet-50) counted from torchvision's ResNet-50.

    Two stems (conv1 + bn1 each), shared layer1..4, non-local blocks (7C + 3 parameters
    each) after blocks 2, 3 of layer2 (C = 512) and 3, 4, 5 of layer3 (C = 1024), a
    BatchNorm1d(2048) neck and a bias-free 2048 x num_classes classifier.
    """
    resnet = torchvision.models.resnet50()
    count = lambda *modules: sum(p.numel() for m in modules for p in m.parameters())  # noqa: E731
    stems = 2 * count(resnet.conv1, resnet.bn1)
    layers = count(resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
    non_local = 2 * (7 * 512 + 3) + 3 * (7 * 1024 + 3)
    return stems + layers + non_local + 2 * 2048 + 2048 * num_classes


@pytest.fixture(scope="module")
def agw50() -> AGW:
    return vz.create_model("agw_resnet50", num_classes=395)


def test_resnet50_parameter_count_equals_the_reference(agw50: AGW) -> None:
    assert sum(p.numel() for p in agw50.parameters()) == reference_agw_parameter_count(395)
    assert sum(p.numel() for p in agw50.parameters()) == 24_359_311


def test_resnet50_layer_structure_matches_the_reference(agw50: AGW) -> None:
    backbone = agw50.backbone
    assert backbone.split_stage == 0 and len(backbone.shared_stages) == 4
    layer2, layer3 = backbone.shared_stages[1], backbone.shared_stages[2]
    with_non_local = {
        (stage, index)
        for stage, layer in (
            (1, backbone.shared_stages[0]),
            (2, layer2),
            (3, layer3),
            (4, backbone.shared_stages[3]),
        )
        for index, block in enumerate(layer)
        if isinstance(block, BlockWithInsert)
    }
    assert with_non_local == {(2, 2), (2, 3), (3, 3), (3, 4), (3, 5)}
    assert all(isinstance(layer2[i].extra, NonLocalBlock) for i in (2, 3))
    # Last stride 1: a 288x144 input gives an 18x9 final map, not 9x5.
    agw50.eval()
    with torch.no_grad():
        feature_map = backbone(torch.randn(1, 3, 288, 144), "visible")
    assert feature_map.shape == (1, 2048, 18, 9)
    assert isinstance(agw50.pool, GeneralizedMeanPooling) and agw50.pool.p == 3.0
    assert agw50.neck.classifier.bias is None
    assert not agw50.neck.bn.bias.requires_grad
    assert agw50.embedding_dim == 2048


@pytest.mark.parametrize("split_stage", [1, 2, 3])
def test_non_local_blocks_stay_in_the_shared_stages(split_stage: int) -> None:
    net = AGW(4, arch="resnet18", split_stage=split_stage).eval()
    inserted = {
        (stage, index)
        for stage in range(split_stage + 1, 5)
        for index, block in enumerate(net.backbone.shared_stage(stage))
        if isinstance(block, BlockWithInsert)
    }
    # The reference placement (after the last 2 blocks of layer2, 3 of layer3), clipped to
    # resnet18's 2 blocks per stage and to the stages the streams share.
    expected = {(2, 0), (2, 1), (3, 0), (3, 1)}
    assert inserted == {(stage, index) for stage, index in expected if stage > split_stage}
    with torch.no_grad():
        assert net.extract_features(torch.randn(2, 3, 64, 32), "infrared").shape == (2, 512)
    with pytest.raises(ValueError, match="stage 1 is not shared"):
        AGW(4, arch="resnet18", split_stage=split_stage, non_local_blocks=[1, 1, 1, 1])


def test_shallow_trunks_cap_the_reference_non_local_placement() -> None:
    net = AGW(10, arch="resnet18")
    inserted = [
        (stage, index)
        for stage, layer in enumerate(net.backbone.shared_stages, start=1)
        for index, block in enumerate(layer)
        if isinstance(block, BlockWithInsert)
    ]
    assert inserted == [(2, 0), (2, 1), (3, 0), (3, 1)]
    too_many = r"non_local_blocks asks for 3 non-local blocks in layer3, which has 2 .*at most 2"
    with pytest.raises(ValueError, match=too_many):
        AGW(10, arch="resnet18", non_local_blocks=(0, 2, 3, 0))
    assert not any(
        isinstance(b, BlockWithInsert)
        for layer in AGW(10, arch="resnet18", non_local_blocks=(0, 0, 0, 0)).backbone.shared_stages
        for b in layer
    )


@pytest.fixture()
def agw18() -> AGW:
    torch.manual_seed(0)
    net = AGW(6, arch="resnet18")
    # Randomise the zero-initialised parts so that every block affects the output.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    return net.eval()


def test_extract_features_are_l2_normalised_test_features(agw18: AGW) -> None:
    images = torch.randn(3, 3, 64, 32)
    for feature in ("bn", "pool"):
        agw18.test_feature = feature
        out = agw18.extract_features(images, "infrared")
        assert out.shape == (3, 512)
        torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    agw18.test_feature = "bn"
    with torch.no_grad():
        pooled = agw18.pool(agw18.backbone(images, "infrared"))
        expected = torch.nn.functional.normalize(agw18.neck.bn(pooled), dim=1)
    torch.testing.assert_close(agw18.extract_features(images, "infrared"), expected)


def test_the_modality_chooses_the_stem(agw18: AGW) -> None:
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        visible = agw18.extract_features(images, "visible")
        infrared = agw18.extract_features(images, "infrared")
        assert not torch.allclose(visible, infrared)
        agw18.backbone.infrared_stages[0].conv1.weight.add_(1.0)
        torch.testing.assert_close(agw18.extract_features(images, "visible"), visible)
        assert not torch.allclose(agw18.extract_features(images, "infrared"), infrared)
    with pytest.raises(ValueError, match="'thermal'"):
        agw18.extract_features(images, "thermal")  # type: ignore[arg-type]


def test_forward_pair_shares_batch_statistics_across_modalities() -> None:
    torch.manual_seed(0)
    net = AGW(6, arch="resnet18").train()
    visible, infrared = torch.randn(4, 3, 64, 32), torch.randn(4, 3, 64, 32) + 2
    out = net.forward_pair(visible, infrared)
    assert out.pool.shape == out.bn.shape == (8, 512) and out.logits.shape == (8, 6)
    (out.logits.sum() + out.pool.sum()).backward()
    for stem in (net.backbone.visible_stages[0], net.backbone.infrared_stages[0]):
        assert stem.conv1.weight.grad is not None and stem.conv1.weight.grad.abs().sum() > 0
    # The BNNeck normalised both modalities together: its batch mean is ~0 over all rows.
    torch.testing.assert_close(out.bn.mean(dim=0), torch.zeros(512), atol=1e-4, rtol=0)


def test_inference_only_network_cannot_be_trained() -> None:
    net = AGW(0, arch="resnet18")
    assert net.neck.classifier is None
    with pytest.raises(RuntimeError, match="num_classes=0"):
        net.forward_pair(torch.randn(2, 3, 64, 32), torch.randn(2, 3, 64, 32))


def test_registry() -> None:
    names = vz.list_models()
    assert {"agw_resnet18", "agw_resnet34", "agw_resnet50", "agw_resnet101"} <= set(names)
    assert vz.list_models("agw_resnet1*") == ["agw_resnet101", "agw_resnet18"]
    net = vz.create_model("agw_resnet18", num_classes=7, test_feature="pool")
    assert isinstance(net, AGW) and net.backbone.arch == "resnet18" and net.test_feature == "pool"
    with pytest.raises(ValueError, match="unknown model 'agw_resnet5'.*agw_resnet50"):
        vz.create_model("agw_resnet5")
