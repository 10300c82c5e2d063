"""Checkpoints of the zoo's modules: loaded only as what they are, from the CLI and Python.

A checkpoint trained from Python (``Trainer.fit(AGWModule(...), datamodule)``) works with
every command; a checkpoint of another model is refused naming what it holds and what
was asked, on every path (``load_from_checkpoint``, ``Trainer.test(ckpt_path=...)``, the
commands); a damaged or pickled file is refused in one paragraph and nothing in it runs.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from helpers.configs import write_config
from vireid_zoo.cli import main
from vireid_zoo.core.checkpoint_file import read_checkpoint
from vireid_zoo.core.weights import WeightsMismatchError
from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.models import AGW, MHN, AGWModule, MHNModule
from vireid_zoo.models.base import VIReIDModule, describe_checkpoint


def datamodule(root: Path) -> SYSUMM01DataModule:
    """The data of tests/test_cli.py's write_config, built in Python."""
    return SYSUMM01DataModule(
        root,
        image_size=(32, 16),
        num_identities=3,
        num_instances=2,
        num_workers=0,
        trials=2,
        samples_per_epoch=12,
        check_counts=False,
    )


def trainer(root_dir: Path) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root_dir),
    )


@pytest.fixture(scope="module")
def trained(sysu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints written by ``Trainer.fit`` from Python (no CLI): an AGW and an MHN."""
    folder = tmp_path_factory.mktemp("python_fit")
    torch.manual_seed(0)
    modules = {
        "agw": AGWModule(AGW(13, arch="resnet18", backbone_pretrained=False)),
        "mhn": MHNModule(MHN(13, arch="resnet18", backbone_pretrained=False)),
    }
    paths = {}
    for name, module in modules.items():
        fit = trainer(folder / name)
        fit.fit(module, datamodule=datamodule(sysu_root))
        paths[name] = folder / f"{name}.ckpt"
        fit.save_checkpoint(paths[name])
    return paths


# Item 5: a checkpoint of another model ------------------------------------------------------


def test_load_from_checkpoint_refuses_another_module_naming_both(
    trained: dict[str, Path],
) -> None:
    with pytest.raises(WeightsMismatchError) as error:
        AGWModule.load_from_checkpoint(trained["mhn"])
    message = str(error.value)
    assert f"{trained['mhn']} holds MHNModule(MHN, arch='resnet18'" in message
    assert "asks for AGWModule(AGW, arch='resnet18')" in message
    assert "MHNModule.load_from_checkpoint" in message and "\n" not in message
    with pytest.raises(WeightsMismatchError, match=r"holds AGWModule\(AGW, arch='resnet18'"):
        MHNModule.load_from_checkpoint(trained["agw"])


def test_load_from_checkpoint_refuses_another_trunk_and_never_misreports_it(
    trained: dict[str, Path],
) -> None:
    for network in (
        {"arch": "resnet50"},
        {"arch": "resnet50", "num_classes": 13, "backbone_pretrained": False},
        AGW(13, arch="resnet50", backbone_pretrained=False),
    ):
        with pytest.raises(WeightsMismatchError) as error:
            AGWModule.load_from_checkpoint(trained["agw"], network=network)
        message = str(error.value)
        assert "holds AGWModule(AGW, arch='resnet18', num_classes=13)" in message
        assert "asks for AGWModule(AGW, arch='resnet50')" in message
        assert "trained as" not in message and "resnet50', num_classes" not in message
    # A network argument given to the module is named, with the way to give it.
    with pytest.raises(ValueError, match=r"\['arch'\] are arguments of the network AGW"):
        AGWModule.load_from_checkpoint(trained["agw"], arch="resnet50")


def test_the_checkpoint_records_what_it_was_trained_as(trained: dict[str, Path]) -> None:
    content = torch.load(trained["agw"], weights_only=True)
    # Lightning's load_from_checkpoint writes the call's arguments over the hyperparameters:
    content["hyper_parameters"]["network"] = {"arch": "resnet50"}
    described = describe_checkpoint(content)
    assert described["described"] == "AGWModule(AGW, arch='resnet18', num_classes=13)"


def test_load_from_checkpoint_keeps_the_network_and_overrides_other_arguments(
    trained: dict[str, Path],
) -> None:
    plain = AGWModule.load_from_checkpoint(trained["agw"])
    pooled = AGWModule.load_from_checkpoint(trained["agw"], network={"test_feature": "pool"})
    assert pooled.net.test_feature == "pool" and plain.net.test_feature == "bn"
    assert pooled.net.backbone.arch == "resnet18"
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(pooled.state_dict()[key], value)
    # The base class builds the module class the checkpoint records.
    loaded = VIReIDModule.load_from_checkpoint(trained["mhn"])
    assert type(loaded) is MHNModule


def test_trainer_test_refuses_a_checkpoint_of_another_model(
    trained: dict[str, Path], sysu_root: Path, tmp_path: Path
) -> None:
    cases = [
        (AGW(13, arch="resnet18", backbone_pretrained=False), trained["mhn"], "MHNModule(MHN"),
        (AGW(13, arch="resnet50", backbone_pretrained=False), trained["agw"], "AGWModule(AGW"),
    ]
    for network, checkpoint, held in cases:
        module = AGWModule(network)
        with pytest.raises(WeightsMismatchError) as error:
            trainer(tmp_path).test(module, datamodule=datamodule(sysu_root), ckpt_path=checkpoint)
        message = str(error.value)
        assert f"the checkpoint holds {held}, arch='resnet18'" in message
        assert f"this run builds AGWModule(AGW, arch='{network.backbone.arch}'" in message


def test_the_command_refuses_a_checkpoint_of_another_method(
    trained: dict[str, Path], sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, sysu_root)
    assert main(["test", "--config", str(config), "--ckpt_path", str(trained["mhn"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds MHNModule(MHN, arch='resnet18'" in err[0]
    assert "the command asks for AGWModule(AGW, arch='resnet18')" in err[0]
    assert not (tmp_path / "run" / "test_results.json").exists()


# Item 6: a checkpoint trained from Python works with every command --------------------------


def test_a_checkpoint_trained_from_python_works_with_every_command(
    trained: dict[str, Path], sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = str(trained["agw"])
    config = write_config(tmp_path, sysu_root)
    assert main(["test", "--config", str(config), "--ckpt_path", checkpoint]) == 0
    results = json.loads((tmp_path / "run" / "test_results.json").read_text())
    assert "sysu_mm01/all" in results["tasks"]

    published = tmp_path / "published"
    publish = ["publish", checkpoint, "--repo-id", "me/agw", "--config", str(config)]
    assert main([*publish, "--output", str(published)]) == 0
    saved = json.loads((published / "config.json").read_text())
    assert saved["network_class"] == "vireid_zoo.models.agw.model.AGW"
    assert saved["pretrained_cfg"]["input_size"] == [32, 16]

    search = ["search", checkpoint, "--query", str(sysu_root / "cam3")]
    search += ["--gallery", str(sysu_root / "cam1"), "--query-modality", "infrared"]
    search += ["--gallery-modality", "visible", "--output", str(tmp_path / "ranking.csv")]
    assert main(search) == 0
    assert (tmp_path / "ranking.csv").read_text().startswith("query,rank,gallery,score")

    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "agw.onnx"
    assert main(["export", checkpoint, "-o", str(onnx), "--modality", "visible"]) == 0
    assert onnx.stat().st_size > 0
    capsys.readouterr()


# Item 10: damaged and pickled checkpoints ---------------------------------------------------


class Payload:
    """Unpickling this runs a shell command (the canary file shows whether it ran)."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.canary}",)


@pytest.fixture()
def bad_checkpoints(trained: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A truncated checkpoint, and checkpoints that run code when unpickled unsafely."""
    data = trained["agw"].read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    canary = tmp_path / "canary"
    saved = tmp_path / "payload.ckpt"
    torch.save({"state_dict": {}, "payload": Payload(canary)}, saved)
    pickled = tmp_path / "pickled.ckpt"
    with pickled.open("wb") as file:
        pickle.dump({"state_dict": {}, "payload": Payload(canary)}, file, protocol=4)
    return {"truncated": truncated, "payload": saved, "pickled": pickled, "canary": canary}


@pytest.mark.parametrize(
    "command",
    ["test", "validate", "predict", "fit", "publish", "export", "search"],
)
def test_damaged_or_pickled_checkpoints_give_one_paragraph_in_every_command(
    command: str,
    bad_checkpoints: dict[str, Path],
    sysu_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, sysu_root)
    expected = {
        "truncated": "is not a readable checkpoint (RuntimeError: PytorchStreamReader failed",
        "payload": "refers to posix.system, which is not a tensor or plain value",
        "pickled": "is not a readable checkpoint (it is not a PyTorch file, or it is damaged)",
    }
    for name, phrase in expected.items():
        path = str(bad_checkpoints[name])
        args = {
            "publish": ["publish", path, "--repo-id", "me/x", "--config", str(config)],
            "export": ["export", path, "-o", str(tmp_path / "x.onnx"), "--modality", "visible"],
            "search": ["search", path, "--query", str(sysu_root / "cam3"), "--gallery"]
            + [str(sysu_root / "cam1"), "--query-modality", "infrared"]
            + ["--gallery-modality", "visible"],
        }.get(command, [command, "--config", str(config), "--ckpt_path", path])
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert err[0].startswith(f"vireid-zoo {command}: error: {path} ") and phrase in err[0]
    assert not bad_checkpoints["canary"].exists(), "the payload ran"


def test_load_from_checkpoint_refuses_damaged_or_pickled_files(
    bad_checkpoints: dict[str, Path],
) -> None:
    for name in ("truncated", "payload", "pickled"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the unpickler's protocol warning is not shown
            with pytest.raises(ValueError, match="Use a checkpoint|Copy it again") as error:
                AGWModule.load_from_checkpoint(bad_checkpoints[name])
        assert str(bad_checkpoints[name]) in str(error.value) and "\n" not in str(error.value)
    assert not bad_checkpoints["canary"].exists(), "the payload ran"


def test_read_checkpoint_names_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    empty, weights = tmp_path / "empty.ckpt", tmp_path / "weights.ckpt"
    empty.write_bytes(b"")
    torch.save({"weight": torch.zeros(1)}, weights)
    with pytest.raises(ValueError, match=r"empty.ckpt is not a readable checkpoint \(EOFError"):
        read_checkpoint(empty)
    with pytest.raises(ValueError, match=r"weights.ckpt is not a Lightning checkpoint"):
        read_checkpoint(weights)
    with pytest.raises(FileNotFoundError, match="missing.ckpt does not exist"):
        read_checkpoint(tmp_path / "missing.ckpt")
