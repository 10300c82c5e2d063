from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from helpers.configs import CONFIGS, write_config
from vireid_zoo.cli import main


@pytest.fixture(scope="module")
def fitted(sysu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A config and the checkpoint that `vireid-zoo fit` wrote with it."""
    tmp_path = tmp_path_factory.mktemp("cli")
    config = write_config(tmp_path, sysu_root)
    assert main(["fit", "--config", str(config)]) == 0
    checkpoints = sorted((tmp_path / "run").rglob("*.ckpt"))
    assert len(checkpoints) == 1
    return config, checkpoints[0]


def test_fit_links_num_classes_from_the_datamodule(fitted: tuple[Path, Path]) -> None:
    _, checkpoint = fitted
    hparams = torch.load(checkpoint, weights_only=True)["hyper_parameters"]
    network = hparams["network"]["init_args"]
    assert network["num_classes"] == 13  # 10 train + 3 val synthetic identities
    written = yaml.safe_load(fitted[0].read_text())["model"]["init_args"]
    assert "num_classes" not in written and "num_classes" not in written["network"]


def test_test_prints_one_summary_table_and_writes_every_trial(
    fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, checkpoint = fitted
    args = ["--config", str(config), "--trainer.default_root_dir", str(tmp_path)]
    assert main(["test", *args, "--ckpt_path", str(checkpoint)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # One row per task, mean ± std over its trials; no Lightning table, no per-trial rows.
    header = next(i for i, line in enumerate(lines) if line.startswith("task "))
    assert lines[header].split() == [
        "task",
        "protocol",
        "trials",
        "rank1",
        "rank10",
        "rank20",
        "mAP",
        "mINP",
    ]
    rows = [line.split() for line in lines[header + 2 : header + 4]]
    assert [row[:3] for row in rows] == [
        ["sysu_mm01/all", "sysu_mm01", "2"],
        ["sysu_mm01/indoor", "sysu_mm01", "2"],
    ]
    assert all(row.count("±") == 5 for row in rows)
    assert len(lines) == header + 7 and lines[-1].startswith("results written to")
    assert not any("test/sysu_mm01" in line or "trial1" in line for line in lines)
    tasks = json.loads((tmp_path / "test_results.json").read_text())["tasks"]
    for task in tasks.values():
        assert task["trials"] == [0, 1] and len(task["per_trial"]) == 2
        assert set(task["per_trial"][1]) >= {"rank1", "mAP", "mINP"}


def test_test_without_a_checkpoint_is_refused(
    fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = fitted
    assert main(["test", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no --ckpt_path" in err[0] and "--allow_untrained" in err[0]


def test_a_missing_checkpoint_is_an_error(
    fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = fitted
    assert main(["test", "--config", str(config), "--ckpt_path", "nope.ckpt"]) == 2
    assert "nope.ckpt" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override,named",
    [
        (["--model.init_args.lrr", "0.1"], "'lrr'"),
        (["--data.init_args.image_szie", "[1, 2]"], "'image_szie'"),
        (["--trainer.max_epoch", "1"], "max_epoch"),
    ],
)
def test_wrong_config_keys_give_one_paragraph(
    fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str], override: list[str], named: str
) -> None:
    config, _ = fitted
    assert main(["fit", "--config", str(config), *override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert named in err[0] and "configuration error" in err[0]


def test_missing_dataset_root_gives_one_paragraph(
    fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, _ = fitted
    missing = tmp_path / "SYSU-MM01"
    assert main(["fit", "--config", str(config), "--data.init_args.root", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and "signed agreement" in err[0]


def test_checkpoint_of_another_architecture_gives_one_paragraph(
    fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, checkpoint = fitted
    foreign = torch.load(checkpoint, weights_only=True)
    # e.g. a checkpoint written by another tool: no record of what was trained
    del foreign["hyper_parameters"], foreign["vireid_zoo"]
    foreign_path = tmp_path / "foreign.ckpt"
    torch.save(foreign, foreign_path)
    args = ["test", "--config", str(config), "--model.network.arch", "resnet34"]
    assert main([*args, "--ckpt_path", str(foreign_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "do not fit AGWModule(AGW, arch='resnet34'" in err[0]
    # With its record, the checkpoint is refused before any weight is compared.
    assert main([*args, "--ckpt_path", str(checkpoint)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds AGWModule(AGW, arch='resnet18'" in err[0]
    assert "the command asks for AGWModule(AGW, arch='resnet34')" in err[0]
    # Any other network argument that shapes the weights must match too.
    other = ["test", "--config", str(config), "--model.network.gem_p", "4.0"]
    assert main([*other, "--ckpt_path", str(checkpoint)]) == 2
    assert "gem_p=3.0 in the checkpoint, 4.0 asked" in capsys.readouterr().err


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_parse(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_code.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    network = printed["model"]["init_args"]["network"]["init_args"]
    assert network["backbone_pretrained"] is True and network["backbone_weights"] == "tv_in1k"
    assert printed["data"]["init_args"]["image_size"] == [288, 144]


def test_export_writes_one_parity_checked_file_per_modality(
    fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    _, checkpoint = fitted
    out = tmp_path / "onnx"
    args = ["export", str(checkpoint), "-o", str(out), "--image-size", "32x16"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "agw_resnet18_infrared.onnx",
        "agw_resnet18_visible.onnx",
    ]
    assert capsys.readouterr().out.count("matches PyTorch within atol=0.0001") == 2


def test_export_refuses_one_file_for_both_modalities(
    fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, checkpoint = fitted
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "m.onnx")]) != 0
    assert "--modality both writes two" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_commands_refuse_random_weights_unless_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["export", "agw_resnet18", "-o", str(tmp_path / "x.onnx"), "--modality", "visible"]
    assert main(args) == 2
    assert "weights would be random" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_search_ranks_a_gallery_folder_for_each_query(
    fitted: tuple[Path, Path], sysu_root: Path, tmp_path: Path
) -> None:
    _, checkpoint = fitted
    csv_path, picture = tmp_path / "ranking.csv", tmp_path / "ranked.png"
    args = [
        "search",
        str(checkpoint),
        "--query",
        str(sysu_root / "cam3"),
        "--gallery",
        str(sysu_root / "cam1"),
        "--query-modality",
        "infrared",
        "--gallery-modality",
        "visible",
        "--top-k",
        "3",
        "--image-size",
        "32x16",
        "--output",
        str(csv_path),
        "--plot",
        str(picture),
    ]
    assert main(args) == 0
    rows = csv_path.read_text().splitlines()
    queries = sorted((sysu_root / "cam3").rglob("*.jpg"))
    assert rows[0] == "query,rank,gallery,score" and len(rows) == 1 + 3 * len(queries)
    scores = [float(row.split(",")[3]) for row in rows[1:4]]
    assert scores == sorted(scores, reverse=True)
    assert picture.stat().st_size > 0


def test_a_checkpoint_keeps_the_input_contract_it_was_trained_with(
    fitted: tuple[Path, Path],
) -> None:
    from vireid_zoo.deploy.inference import load_inference_network

    _, checkpoint = fitted
    cfg = load_inference_network(str(checkpoint)).pretrained_cfg
    assert cfg is not None and cfg.input_size == (32, 16)  # not the 288x144 default
    assert cfg.architecture == "agw_resnet18" and cfg.dataset == "sysu_mm01"


def test_image_size_refuses_empty_sides(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["synthesize", "regdb", "unused", "--image-size", "0x16"])
    assert "must be >= 1 pixel" in capsys.readouterr().err
