from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vireid_zoo import create_model
from vireid_zoo.deploy.export import (
    ExportParityError,
    _write_atomically,
    check_onnx_parity,
    to_onnx,
)
from vireid_zoo.models.network import VIReIDNetwork

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

SIZE = (64, 32)
MODALITIES = ("visible", "infrared")


def randomised_network() -> VIReIDNetwork:
    """A ResNet-18 AGW whose non-local blocks are active and whose two stems differ.

    At initialisation the non-local blocks are the identity (zero BN) and the infrared stem
    is a copy of the visible one, which would hide export errors in both. BatchNorm
    statistics are then measured on random images so activations keep a sane scale.
    """
    torch.manual_seed(0)
    net = create_model("agw_resnet18", num_classes=0)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
                module.reset_running_stats()
                module.momentum = None
        stem = net.backbone.infrared_stages[0].conv1.weight
        stem.mul_(1 + 0.5 * torch.randn_like(stem))
        images = torch.randn(8, 3, *SIZE)
        for modality in MODALITIES:
            net.train().extract_features(images, modality)
    return net.eval()


@pytest.fixture(scope="module")
def net() -> VIReIDNetwork:
    return randomised_network()


@pytest.fixture(scope="module")
def exported(net: VIReIDNetwork, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return {
        modality: to_onnx(net, folder / f"{modality}.onnx", modality=modality, image_size=SIZE)
        for modality in MODALITIES
    }


def run_onnx(path: Path, images: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["embeddings"], {"images": images.numpy()})[0]


@pytest.mark.parametrize("modality", MODALITIES)
def test_onnx_matches_pytorch_for_each_modality(
    net: VIReIDNetwork, exported: dict[str, Path], modality: str
) -> None:
    for batch in (5, 1):
        images = torch.randn(batch, 3, *SIZE)
        with torch.inference_mode():
            expected = net.extract_features(images, modality).numpy()
        actual = run_onnx(exported[modality], images)
        assert actual.shape == (batch, net.embedding_dim)
        np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)
        np.testing.assert_allclose(np.linalg.norm(actual, axis=1), 1.0, atol=1e-5)
    difference = check_onnx_parity(net, exported[modality], modality=modality, image_size=SIZE)
    assert 0 <= difference < 1e-5


def test_batch_dimension_is_dynamic(exported: dict[str, Path]) -> None:
    graph = onnx.load(exported["visible"]).graph
    (images,) = graph.input
    (embeddings,) = graph.output
    dims = [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, *SIZE]
    assert images.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in embeddings.type.tensor_type.shape.dim] == [
        "batch",
        512,
    ]


def test_metadata_records_the_input_contract(exported: dict[str, Path]) -> None:
    for modality, path in exported.items():
        model = onnx.load(path)
        metadata = {prop.key: prop.value for prop in model.metadata_props}
        assert metadata["modality"] == modality
        assert json.loads(metadata["input_size"]) == list(SIZE)
        assert json.loads(metadata["mean"]) == pytest.approx([0.485, 0.456, 0.406])
        assert json.loads(metadata["std"]) == pytest.approx([0.229, 0.224, 0.225])
        assert metadata["interpolation"] == "bilinear"
        assert metadata["embedding_dim"] == "512"
        assert metadata["normalized"] == "true"
        assert metadata["architecture"] == "agw_resnet18"
        assert model.opset_import[0].version == 17


def test_visible_and_infrared_exports_use_their_own_stem(exported: dict[str, Path]) -> None:
    images = torch.randn(2, 3, *SIZE)
    visible = run_onnx(exported["visible"], images)
    infrared = run_onnx(exported["infrared"], images)
    assert np.abs(visible - infrared).max() > 1e-2


def test_failed_parity_writes_nothing_and_the_network_is_unchanged(tmp_path: Path) -> None:
    net = randomised_network().train()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous export")
    with pytest.raises(ExportParityError, match="max abs difference") as raised:
        to_onnx(net, target, modality="infrared", image_size=SIZE, atol=-1)
    assert 0 <= raised.value.max_abs_diff < 1e-4
    assert target.read_bytes() == b"previous export"
    assert [path.name for path in tmp_path.iterdir()] == ["model.onnx"]
    assert net.training
    assert all(torch.equal(before[key], value) for key, value in net.state_dict().items())


def test_interrupted_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("vireid_zoo.deploy.export.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        _write_atomically(tmp_path / "out" / "m.onnx", b"model")
    assert list((tmp_path / "out").iterdir()) == []


def test_wrong_modality_is_refused(net: VIReIDNetwork, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown modality 'thermal'"):
        to_onnx(net, tmp_path / "m.onnx", modality="thermal", image_size=SIZE)  # type: ignore[arg-type]
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnxruntime_names_the_extra(
    net: VIReIDNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'vireid-zoo\[onnx\]'"):
        to_onnx(net, tmp_path / "m.onnx", modality="visible", image_size=SIZE)
