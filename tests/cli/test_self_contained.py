"""A checkpoint is self-contained and carries its input contract: ``test`` uses it (or refuses
another input naming both), ``test_results.json`` records it, ``publish`` checks it; a
fine-tuned checkpoint needs no ``init_from`` folder; a failed command leaves no run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from helpers.configs import CONFIGS, write_config
from vireid_zoo.cli import main
from vireid_zoo.core.files import file_sha256
from vireid_zoo.models import AGW
from vireid_zoo.models.base import CHECKPOINT_KEY


@pytest.fixture(scope="module")
def trained(sysu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A config (32x16 input) and the last.ckpt its fit wrote."""
    tmp_path = tmp_path_factory.mktemp("trained")
    config = write_config(tmp_path, sysu_root)
    settings = yaml.safe_load(config.read_text())
    settings["trainer"]["callbacks"] = [{"class_path": "vireid_zoo.models.ResumableCheckpoint"}]
    config.write_text(yaml.safe_dump(settings))
    assert main(["fit", "--config", str(config)]) == 0
    return config, tmp_path / "run" / "checkpoints" / "last.ckpt"


def shipped_config_test(root: Path, checkpoint: Path, output: Path, *extra: str) -> list[str]:
    """``vireid-zoo test`` of a ResNet-18 checkpoint with the shipped AGW SYSU-MM01 config."""
    return [
        "test",
        "--config",
        str(CONFIGS / "agw" / "sysu_mm01.yaml"),
        "--data.init_args.root",
        str(root),
        "--model.network.arch",
        "resnet18",
        "--ckpt_path",
        str(checkpoint),
        "--trainer.accelerator",
        "cpu",
        "--trainer.logger",
        "false",
        "--trainer.default_root_dir",
        str(output),
        "--data.init_args.num_workers",
        "0",
        "--data.init_args.check_counts",
        "false",
        "--data.init_args.trials",
        "2",
        *extra,
    ]


def test_test_scores_a_checkpoint_at_its_input_contract(
    trained: tuple[Path, Path],
    sysu_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, checkpoint = trained
    # The shipped config says 288x144, the default: the checkpoint's 32x16 is used, noted.
    assert main(shipped_config_test(sysu_root, checkpoint, tmp_path / "shipped")) == 0
    assert "data argument image_size=[32, 16] (the checkpoint's" in capsys.readouterr().err
    shipped = json.loads((tmp_path / "shipped" / "test_results.json").read_text())
    # The same numbers as the config the checkpoint was trained with.
    args = ["--config", str(config), "--trainer.default_root_dir", str(tmp_path / "own")]
    assert main(["test", *args, "--ckpt_path", str(checkpoint)]) == 0
    own = json.loads((tmp_path / "own" / "test_results.json").read_text())
    assert shipped["tasks"] == own["tasks"]
    # test_results.json records the contract, protocol, trials and the checkpoint's hash.
    assert own["input_contract"] == {
        "input_size": [32, 16],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "interpolation": "bilinear",
    }
    assert own["dataset"] == "sysu_mm01" and own["checkpoint"] == str(checkpoint)
    assert own["checkpoint_sha256"] == file_sha256(checkpoint)
    for task in own["tasks"].values():
        assert task["protocol"] == "sysu_mm01" and task["trials"] == [0, 1]


@pytest.mark.parametrize(
    "override,named",
    [
        (
            ["--data.init_args.image_size", "[64, 32]"],
            "image_size=[32, 16] in the checkpoint, [64, 32] asked",
        ),
        (
            ["--data.init_args.mean", "[0.5, 0.5, 0.5]"],
            "mean=[0.485, 0.456, 0.406] in the checkpoint, [0.5, 0.5, 0.5] asked",
        ),
        (
            ["--data.init_args.interpolation", "bicubic"],
            "interpolation='bilinear' in the checkpoint, 'bicubic' asked",
        ),
    ],
)
def test_test_refuses_another_input_naming_both_values(
    trained: tuple[Path, Path],
    sysu_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    override: list[str],
    named: str,
) -> None:
    _, checkpoint = trained
    assert main(shipped_config_test(sysu_root, checkpoint, tmp_path / "out", *override)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and str(checkpoint) in err[0]
    assert not (tmp_path / "out").exists()


def test_publish_refuses_results_measured_at_another_input(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, checkpoint = trained
    args = ["--config", str(config), "--trainer.default_root_dir", str(tmp_path)]
    assert main(["test", *args, "--ckpt_path", str(checkpoint)]) == 0
    results = tmp_path / "test_results.json"
    record = json.loads(results.read_text())
    publish = ["publish", str(checkpoint), "--repo-id", "me/agw", "--output"]
    # As a test run at 288x144 (before this check) would have recorded.
    record["input_contract"]["input_size"] = [288, 144]
    results.write_text(json.dumps(record))
    assert main([*publish, str(tmp_path / "a"), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert "'input_size': [288, 144]" in err and "'input_size': [32, 16]" in err
    del record["input_contract"]  # results written before the contract was recorded
    results.write_text(json.dumps(record))
    assert main([*publish, str(tmp_path / "b"), "--results", str(results)]) == 2
    assert "does not record the input it was measured at" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_fine_tuned_checkpoint_needs_no_init_from_folder(
    sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    initial = tmp_path / "initial"
    AGW(5, arch="resnet18").save_pretrained(initial)
    config = write_config(tmp_path, sysu_root, init_from=f"local-dir:{initial}")
    settings = yaml.safe_load(config.read_text())
    settings["trainer"]["callbacks"] = [{"class_path": "vireid_zoo.models.ResumableCheckpoint"}]
    config.write_text(yaml.safe_dump(settings))
    assert main(["fit", "--config", str(config)]) == 0  # fine-tunes from the folder
    shutil.rmtree(initial)  # the folder (or the Hub) is gone
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["hyper_parameters"]["init_from"]

    test = ["test", "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "t")]
    assert main([*test, "--ckpt_path", str(checkpoint)]) == 0
    results = tmp_path / "t" / "test_results.json"
    onnx = tmp_path / "onnx"
    assert main(["export", str(checkpoint), "-o", str(onnx), "--image-size", "32x16"]) == 0
    assert len(list(onnx.glob("*.onnx"))) == 2
    published = tmp_path / "published"
    publish = ["publish", str(checkpoint), "--repo-id", "me/agw", "--output", str(published)]
    assert main([*publish, "--results", str(results)]) == 0
    assert (published / "model.safetensors").is_file()
    # Resuming the fine-tuning restores the checkpoint; init_from is not read again.
    resume = ["fit", "--config", str(config), "--ckpt_path", "last", "--trainer.max_epochs", "2"]
    assert main(resume) == 0
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    capsys.readouterr()


def versions(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("version_*"))


@pytest.mark.parametrize(
    "failure,named",
    [
        ("missing checkpoint", "does not exist"),
        ("another trunk", "the command asks for AGWModule(AGW, arch='resnet34')"),
        ("dataset root", "SYSU-MM01 not found"),
        ("weights refused when restored", "do not fit AGWModule(AGW, arch='resnet34'"),
    ],
)
def test_a_failed_test_leaves_no_run_folder(
    trained: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    failure: str,
    named: str,
) -> None:
    config, checkpoint = trained
    settings = yaml.safe_load(config.read_text())
    del settings["trainer"]["logger"]  # the default logger: one version_N folder per run
    settings["trainer"]["default_root_dir"] = str(tmp_path / "runs")
    config = tmp_path / "test.yaml"
    config.write_text(yaml.safe_dump(settings))
    args = ["test", "--config", str(config), "--ckpt_path", str(checkpoint)]
    assert main(args) == 0  # a test that runs: version_0
    logs = tmp_path / "runs" / "lightning_logs"
    assert versions(logs) == ["version_0"]
    if failure == "missing checkpoint":
        args[-1] = str(tmp_path / "nope.ckpt")
    elif failure == "another trunk":
        args += ["--model.network.arch", "resnet34"]
    elif failure == "dataset root":
        args += ["--data.init_args.root", str(tmp_path / "SYSU-MM01")]
    else:  # no record of the model: the weights are compared when Lightning restores them
        foreign = torch.load(checkpoint, weights_only=True)
        del foreign["hyper_parameters"], foreign[CHECKPOINT_KEY]
        args[-1] = str(tmp_path / "foreign.ckpt")
        torch.save(foreign, args[-1])
        args += ["--model.network.arch", "resnet34"]
    capsys.readouterr()
    assert main(args) == 2
    assert named in capsys.readouterr().err
    assert versions(logs) == ["version_0"]
