"""Saving and loading networks (safetensors only, strict), init_from, and publish (local)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vireid_zoo as vz
from helpers.configs import write_config
from vireid_zoo.cli import main
from vireid_zoo.core.contract import PretrainedConfig
from vireid_zoo.core.weights import WeightsMismatchError
from vireid_zoo.models import AGW, AGWModule
from vireid_zoo.models.network import VIReIDNetwork


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[AGW, Path]:
    torch.manual_seed(0)
    net = vz.create_model("agw_resnet18", num_classes=5, test_feature="pool").eval()
    cfg = PretrainedConfig(
        "agw_resnet18",
        input_size=(64, 32),
        embedding_dim=512,
        feature="pool",
        dataset="sysu_mm01",
        metrics={"sysu_mm01/all/mAP": 0.5},
    )
    net.save_pretrained(tmp_path / "saved", pretrained_cfg=cfg)
    return net, tmp_path / "saved"


def test_save_writes_safetensors_config_and_card(saved: tuple[AGW, Path]) -> None:
    net, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((folder / "config.json").read_text())
    assert config["network_class"] == "vireid_zoo.models.agw.model.AGW"
    assert config["arch"] == "resnet18" and config["num_classes"] == 5
    assert config["pretrained_cfg"]["input_size"] == [64, 32]
    weights = load_file(folder / "model.safetensors")
    assert weights.keys() == net.state_dict().keys()
    card = (folder / "README.md").read_text()
    assert (
        "model-index" in card and "surveillance" in card and "| sysu_mm01/all/mAP | 50.00 |" in card
    )


@pytest.mark.parametrize("loader", ["class", "base", "create_model", "plain_path"])
def test_load_round_trip(saved: tuple[AGW, Path], loader: str) -> None:
    net, folder = saved
    if loader == "class":
        loaded = AGW.from_pretrained(folder)
    elif loader == "base":
        loaded = VIReIDNetwork.from_pretrained(f"local-dir:{folder}")
    elif loader == "create_model":
        loaded = vz.create_model(f"local-dir:{folder}")
    else:
        loaded = vz.models.network.load_network(str(folder))
    assert isinstance(loaded, AGW) and not loaded.training
    images = torch.randn(2, 3, 64, 32)
    for modality in ("visible", "infrared"):
        torch.testing.assert_close(
            loaded.extract_features(images, modality), net.extract_features(images, modality)
        )
    assert loaded.pretrained_cfg.metrics == {"sysu_mm01/all/mAP": 0.5}
    assert loaded.test_feature == "pool"


def test_loading_never_fetches_imagenet_weights(saved: tuple[AGW, Path], monkeypatch) -> None:
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    config["backbone_pretrained"] = True  # as saved by a real training run
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr("timm.create_model", _no_pretrained(__import__("timm").create_model))
    AGW.from_pretrained(folder)


def _no_pretrained(create):
    def guarded(*args, pretrained=False, **kwargs):
        assert not pretrained, "loading saved weights must not download ImageNet weights"
        return create(*args, pretrained=False, **kwargs)

    return guarded


def test_a_classifier_of_another_size_is_reinitialised(saved: tuple[AGW, Path]) -> None:
    net, folder = saved
    with pytest.warns(UserWarning, match="classifier has 5 classes and the network 9"):
        loaded = AGW.from_pretrained(folder, num_classes=9)
    assert loaded.neck.classifier.weight.shape == (9, 512)
    torch.testing.assert_close(
        loaded.backbone.shared_stages[0][0].conv1.weight,
        net.backbone.shared_stages[0][0].conv1.weight,
    )


def test_weights_of_another_architecture_are_refused_naming_keys(
    saved: tuple[AGW, Path],
) -> None:
    _, folder = saved
    with pytest.raises(WeightsMismatchError, match=r"missing \(e\.g\. \['backbone"):
        AGW.from_pretrained(folder, arch="resnet34")


def test_extra_or_reshaped_weights_are_refused(saved: tuple[AGW, Path]) -> None:
    _, folder = saved
    weights = load_file(folder / "model.safetensors")
    weights["extra.weight"] = torch.zeros(1)
    save_file(weights, folder / "model.safetensors")
    with pytest.raises(WeightsMismatchError, match=r"1 unexpected \(e\.g\. \['extra.weight'\]"):
        AGW.from_pretrained(folder)


def test_pickled_weights_are_never_loaded(saved: tuple[AGW, Path]) -> None:
    net, folder = saved
    (folder / "model.safetensors").unlink()
    torch.save(net.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        AGW.from_pretrained(folder)


def test_config_naming_a_foreign_class_is_refused(saved: tuple[AGW, Path]) -> None:
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    config["network_class"] = "os.system"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="'os.system', which is not a vireid-zoo network"):
        vz.create_model(f"local-dir:{folder}")


def test_create_model_pretrained_without_published_weights() -> None:
    with pytest.raises(ValueError, match="published are none yet"):
        vz.create_model("agw_resnet50", pretrained=True)
    with pytest.raises(ValueError, match="no published weights are registered"):
        vz.create_model("agw_resnet50.sysu_mm01", pretrained=True)
    assert vz.create_model("agw_resnet18.sysu_mm01", num_classes=3).backbone.arch == "resnet18"


def test_init_from_fine_tunes_with_a_new_classifier(saved: tuple[AGW, Path]) -> None:
    net, folder = saved
    module = AGWModule(
        AGW(7, arch="resnet18", test_feature="pool"), init_from=f"local-dir:{folder}"
    )
    with pytest.warns(UserWarning, match="re-initialised"):
        module.on_fit_start()
    torch.testing.assert_close(
        module.net.backbone.visible_stages[0].conv1.weight,
        net.backbone.visible_stages[0].conv1.weight,
    )
    assert module.net.neck.classifier.weight.shape == (7, 512)


def test_init_from_weights_of_another_method_is_refused(
    saved: tuple[AGW, Path], monkeypatch
) -> None:
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    config["network_class"] = "vireid_zoo.models.other.Other"
    (folder / "config.json").write_text(json.dumps(config))
    module = AGWModule(AGW(5, arch="resnet18"), init_from=str(folder))
    with pytest.raises(WeightsMismatchError, match="holds a vireid_zoo.models.other.Other"):
        module.on_fit_start()


def test_publish_requires_measured_results_of_the_same_checkpoint(
    sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, sysu_root)
    assert main(["fit", "--config", str(config), "--trainer.enable_checkpointing", "true"]) == 0
    (checkpoint,) = (tmp_path / "run").rglob("*.ckpt")
    out = tmp_path / "published"
    assert main(["publish", str(checkpoint), "--repo-id", "me/agw", "--output", str(out)]) == 2
    assert "refuses to publish without measured metrics" in capsys.readouterr().err

    # Results of another checkpoint are refused.
    other = tmp_path / "other.ckpt"
    other.write_bytes(checkpoint.read_bytes() + b"\0")
    test_dir = tmp_path / "tested"
    args = ["--config", str(config), "--trainer.default_root_dir", str(test_dir)]
    assert main(["test", *args, "--ckpt_path", str(other)]) == 0
    results = test_dir / "test_results.json"
    assert (
        main(
            [
                "publish",
                str(checkpoint),
                "--repo-id",
                "me/agw",
                "--results",
                str(results),
                "--output",
                str(out),
            ]
        )
        == 2
    )
    assert "not on" in capsys.readouterr().err

    # A results file that is not test_results.json is named in the error.
    for text in ("not json", "[1, 2]", '{"tasks": {}}'):
        bad = tmp_path / "bad_results.json"
        bad.write_text(text)
        args = ["publish", str(checkpoint), "--repo-id", "me/agw", "--results", str(bad)]
        assert main([*args, "--output", str(out)]) == 2
        assert str(bad) in capsys.readouterr().err

    # Evaluating now with the config publishes the measured numbers.
    assert (
        main(
            [
                "publish",
                str(checkpoint),
                "--repo-id",
                "me/agw",
                "--config",
                str(config),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    config_json = json.loads((out / "config.json").read_text())
    saved = config_json["pretrained_cfg"]
    assert config_json["arch"] == "resnet18" and config_json["backbone_pretrained"] is False
    assert saved["hub_id"] == "me/agw" and saved["dataset"] == "sysu_mm01"
    assert saved["input_size"] == [32, 16]
    assert 0 < saved["metrics"]["sysu_mm01/all/mAP"] <= 1
    assert "sysu_mm01/indoor" in saved["protocol"] and "10" not in saved["protocol"]
    assert saved["recipe"]["lr"] == 0.1 and "network" not in saved["recipe"]
    loaded = vz.create_model(f"local-dir:{out}")
    assert loaded.pretrained_cfg.metrics == saved["metrics"]


def test_hf_hub_source_never_reads_a_local_folder_of_that_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    from vireid_zoo.core.sources import resolve_files

    AGW(5, arch="resnet18").save_pretrained(tmp_path / "org" / "name")
    monkeypatch.chdir(tmp_path)
    assert resolve_files("local-dir:org/name")[0].parent == Path("org/name")
    with pytest.raises(LocalEntryNotFoundError):
        resolve_files("hf-hub:org/name", cache_dir=tmp_path / "cache", local_files_only=True)


def test_a_local_dir_source_is_never_sent_to_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub
    import huggingface_hub.hub_mixin

    def no_hub(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the Hub was asked for {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_hub)
    monkeypatch.setattr(huggingface_hub.hub_mixin, "hf_hub_download", no_hub)
    AGW(5, arch="resnet18").save_pretrained(tmp_path / "my-agw")
    monkeypatch.chdir(tmp_path)
    assert isinstance(vz.create_model("local-dir:my-agw"), AGW)
    for source in ("local-dir:missing-agw", f"local-dir:{tmp_path / 'missing'}"):
        folder = Path(source.removeprefix("local-dir:"))
        with pytest.raises(FileNotFoundError, match=f"the folder {folder} does not exist"):
            vz.create_model(source)
        with pytest.raises(FileNotFoundError, match=f"the folder {folder} does not exist"):
            AGW.from_pretrained(source)
    # A folder named without the prefix is pointed at it.
    with pytest.raises(ValueError, match="name it 'local-dir:my-agw'"):
        vz.create_model("my-agw")


def test_from_pretrained_of_another_method_names_both_classes(saved: tuple[AGW, Path]) -> None:
    _, folder = saved
    with pytest.raises(WeightsMismatchError) as error:
        vz.MHN.from_pretrained(folder)
    message = str(error.value)
    assert f"{folder} holds a network of class AGW (vireid_zoo.models.agw.model.AGW)" in message
    assert "not MHN" in message and "AGW.from_pretrained" in message and "missing" not in message


def test_the_listing_calls_of_the_readme_work() -> None:
    from vireid_zoo.models.registry import BUILTIN_METHODS

    assert vz.list_pretrained() == []
    with pytest.raises(ValueError) as error:
        vz.create_model("nonexistent")
    for method in BUILTIN_METHODS:
        for trunk in ("resnet18", "resnet34", "resnet50", "resnet101"):
            assert f"{method}_{trunk}" in str(error.value)
