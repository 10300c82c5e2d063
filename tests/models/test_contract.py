"""The contract every registered method keeps, on its smallest trunk and tiny synthetic data.

A new method joins by registering its networks (``register_architectures``) and naming its
network class in its module (``network_class``): build, paired forward, one training step
through a Trainer, embeddings per modality, save/load with identical embeddings, ONNX
export within tolerance, and ``vireid-zoo fit`` then ``test`` through the CLI.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer

import vireid_zoo as vz
from helpers.configs import write_config
from vireid_zoo.cli import main
from vireid_zoo.core.records import MODALITIES
from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.models.base import MODULE_CLASSES, VIReIDModule
from vireid_zoo.models.network import VIReIDNetwork

METHODS = sorted({name.rsplit("_", 1)[0] for name in vz.list_models()})
SIZE = (32, 16)


def smallest(method: str) -> str:
    """The method's registered architecture with the smallest trunk."""
    return min(vz.list_models(f"{method}_*"), key=lambda name: int(name.rsplit("resnet", 1)[1]))


def module_class(network: VIReIDNetwork) -> type[VIReIDModule]:
    """The zoo module that trains this network's class (its method's ``module.py``)."""
    importlib.import_module(f"{type(network).__module__.rsplit('.', 1)[0]}.module")
    (found,) = [m for m in MODULE_CLASSES.values() if m.network_class is type(network)]
    return found


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def data(
    method: str, sysu_root: Path, parsed_sysu: tuple[Path, Path]
) -> tuple[Path, dict[str, object]]:
    """The dataset root and datamodule arguments the method trains with."""
    network = vz.create_model(smallest(method))
    if getattr(module_class(network), "requires_parsing", False):
        root, parsing = parsed_sysu
        return root, {"parsing_root": str(parsing)}
    return sysu_root, {}


def datamodule(root: Path, extra: dict[str, object]) -> SYSUMM01DataModule:
    return SYSUMM01DataModule(
        root,
        image_size=SIZE,
        num_identities=2,
        num_instances=2,
        num_workers=0,
        trials=1,
        modes=("all",),
        samples_per_epoch=8,
        check_counts=False,
        **extra,  # type: ignore[arg-type]
    )


def test_registration_builds_and_names_the_architecture(method: str) -> None:
    name = smallest(method)
    network = vz.create_model(name, num_classes=5)
    assert isinstance(network, VIReIDNetwork) and network.architecture == name
    assert module_class(network).network_class is type(network)
    with pytest.raises(ValueError, match=name):
        vz.create_model(f"{name}_typo")


def test_one_training_step_then_embeddings_then_save_and_load(
    method: str, data: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    dm = datamodule(*data)
    module = module_class(vz.create_model(smallest(method)))(
        {"arch": smallest(method).rsplit("_", 1)[1], "num_classes": dm.num_classes}
    )
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    trainer = Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=dm)
    logged = trainer.logged_metrics
    assert {"train/loss", "train/accuracy", "train/id", "train/triplet"} <= logged.keys()
    assert all(torch.isfinite(value) for value in logged.values())
    moved = [k for k, v in module.net.state_dict().items() if not torch.equal(v, before[k])]
    assert any(".backbone." in f".{k}" for k in moved), "the step trains the trunk"

    net = module.net.eval()
    images = torch.randn(3, 3, *SIZE)
    with torch.no_grad():
        embeddings = {m: net.extract_features(images, m) for m in MODALITIES}
    for embedding in embeddings.values():
        assert embedding.shape == (3, net.embedding_dim)
        torch.testing.assert_close(embedding.norm(dim=1), torch.ones(3))
    assert not torch.allclose(embeddings["visible"], embeddings["infrared"]), "own stems"

    net.save_pretrained(tmp_path / "saved")
    loaded = VIReIDNetwork.from_pretrained(tmp_path / "saved")
    assert type(loaded) is type(net)
    with torch.no_grad():
        for modality, embedding in embeddings.items():
            torch.testing.assert_close(loaded.extract_features(images, modality), embedding)


def test_onnx_export_matches_pytorch(method: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from vireid_zoo.deploy.export import to_onnx

    net = vz.create_model(smallest(method)).eval()
    for modality in MODALITIES:  # to_onnx checks parity with onnxruntime (atol 1e-4)
        assert to_onnx(net, tmp_path / f"{modality}.onnx", modality=modality, image_size=SIZE)


def test_cli_fit_then_test(
    method: str,
    data: tuple[Path, dict[str, object]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, extra = data
    module_path = f"vireid_zoo.models.{module_class(vz.create_model(smallest(method))).__name__}"
    config = write_config(tmp_path, root, model_class=module_path, data=extra)
    assert main(["fit", "--config", str(config)]) == 0
    (checkpoint,) = (tmp_path / "run").rglob("*.ckpt")
    hparams = torch.load(checkpoint, weights_only=True)["hyper_parameters"]
    assert hparams["network"]["init_args"]["arch"] == "resnet18"
    # Testing needs images only (no parsing maps, whatever the method trained with).
    test = ["test", "--config", str(config), "--data.init_args.parsing_root", "null"]
    assert main([*test, "--ckpt_path", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["sysu_mm01/all", "sysu_mm01"] for line in out.splitlines())
