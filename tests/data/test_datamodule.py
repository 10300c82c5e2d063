from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.manifests import write_manifest
from vireid_zoo.data import (
    LLCM,
    SYSUMM01,
    LLCMDataModule,
    ManifestDataModule,
    RegDB,
    RegDBDataModule,
    SYSUMM01DataModule,
)

SMALL = {
    "image_size": (32, 16),
    "num_identities": 3,
    "num_instances": 2,
    "num_workers": 0,
    "test_batch_size": 16,
    "check_counts": False,
}


def test_sysu_training_batches_are_paired(sysu_root: Path) -> None:
    dm = SYSUMM01DataModule(sysu_root, **SMALL)
    reader = SYSUMM01(sysu_root, check_counts=False)
    assert dm.num_classes == len(reader.ids("train")) + len(reader.ids("val"))
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"visible", "infrared", "visible_pid", "infrared_pid"}
    assert batch["visible"].shape == batch["infrared"].shape == (6, 3, 32, 16)
    assert batch["visible"].dtype == torch.float32
    assert torch.equal(batch["visible_pid"], batch["infrared_pid"])
    assert batch["visible_pid"].min() >= 0 and batch["visible_pid"].max() < dm.num_classes
    assert len(batch["visible_pid"].unique()) == 3


def test_sysu_test_suite_embeds_every_image_once(sysu_root: Path) -> None:
    dm = SYSUMM01DataModule(sysu_root, trials=3, **SMALL)
    reader = SYSUMM01(sysu_root, check_counts=False)
    suite = dm.test_suite
    assert [t.name for t in suite.tasks] == ["sysu_mm01/all", "sysu_mm01/indoor"]
    assert len(suite.samples) == len(reader.query_samples()) + len(reader.gallery_pool("all"))
    assert [s.modality for s in suite.samples] == sorted(
        (s.modality for s in suite.samples), key=lambda m: m != "visible"
    )
    indoor = suite.tasks[1]
    for trial, gallery in zip(indoor.trials, indoor.galleries, strict=True):
        assert [suite.samples[i] for i in gallery] == reader.gallery_samples(trial, "indoor")
    seen = []
    for batch in dm.test_dataloader():
        assert set(batch) == {"image", "pid", "camid", "modality", "index"}
        seen += batch["index"].tolist()
    assert seen == list(range(len(suite.samples)))


def test_sysu_validation_holds_out_val_ids(sysu_root: Path) -> None:
    without = SYSUMM01DataModule(sysu_root, **SMALL)
    assert without.val_dataloader() == []
    dm = SYSUMM01DataModule(sysu_root, validation=True, **SMALL)
    reader = SYSUMM01(sysu_root, check_counts=False)
    assert dm.num_classes == len(reader.ids("train"))
    suite = dm.val_suite
    assert suite is not None and [t.name for t in suite.tasks] == ["sysu_mm01_val/all"]
    assert {s.pid for s in suite.samples} <= set(reader.ids("val"))
    assert len(dm.val_dataloader().dataset) == len(suite.samples)


def test_regdb_directions_share_the_test_images(regdb_root: Path) -> None:
    dm = RegDBDataModule(regdb_root, trial=2, **SMALL)
    reader = RegDB(regdb_root, 2, check_counts=False)
    suite = dm.test_suite
    assert [t.name for t in suite.tasks] == ["regdb/visible_to_thermal", "regdb/thermal_to_visible"]
    assert len(suite.samples) == len(reader.query_samples()) + len(reader.gallery_samples())
    assert dm.num_classes == len({s.pid for s in reader.train_samples()})


def test_regdb_checkpoint_of_another_trial_is_refused(regdb_root: Path) -> None:
    trained = RegDBDataModule(regdb_root, trial=3, **SMALL)
    state = trained.state_dict()
    assert state["trial"] == 3 and state["dataset"] == "regdb"
    RegDBDataModule(regdb_root, trial=3, **SMALL).load_state_dict(state)
    with pytest.raises(ValueError, match="trained on RegDB trial 3.*tests trial 5"):
        RegDBDataModule(regdb_root, trial=5, **SMALL).load_state_dict(state)


def test_llcm_directions(llcm_root: Path) -> None:
    dm = LLCMDataModule(llcm_root, trials=2, **SMALL)
    reader = LLCM(llcm_root, check_counts=False)
    suite = dm.test_suite
    assert [t.name for t in suite.tasks] == ["llcm/ir_to_vis", "llcm/vis_to_ir"]
    assert len(suite.samples) == len(reader.query_samples("ir_to_vis")) + len(
        reader.query_samples("vis_to_ir")
    )
    batch = next(iter(dm.train_dataloader()))
    assert torch.equal(batch["visible_pid"], batch["infrared_pid"])


def test_manifest_datamodule(sysu_root: Path, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, sysu_root, tmp_path)
    dm = ManifestDataModule(
        manifest,
        protocol="sysu_mm01",
        trials=2,
        gallery_shots=1,
        **{k: v for k, v in SMALL.items() if k != "check_counts"},
    )
    assert dm.test_suite.tasks[0].trials == (0, 1)
    assert dm.num_classes == SYSUMM01DataModule(sysu_root, **SMALL).num_classes
    batch = next(iter(dm.train_dataloader()))
    assert torch.equal(batch["visible_pid"], batch["infrared_pid"])


def test_channel_augmentation_only_touches_visible_images(sysu_root: Path) -> None:
    dm = SYSUMM01DataModule(sysu_root, channel_augmentation=True, **SMALL)
    loader = dm.train_dataloader()
    transforms = loader.dataset.visible_transform, loader.dataset.infrared_transform
    names = [[type(t).__name__ for t in transform.transforms] for transform in transforms]
    assert "RandomChannelSelection" in names[0] and "RandomChannelSelection" not in names[1]


@pytest.mark.parametrize(
    "cls,root_fixture,extra",
    [
        (SYSUMM01DataModule, "sysu_root", "  modes: [indoor]\n  shots: 10\n  validation: true\n"),
        (RegDBDataModule, "regdb_root", "  trial: 7\n  directions: [thermal_to_visible]\n"),
        (LLCMDataModule, "llcm_root", "  directions: [vis_to_ir]\n  trials: 3\n"),
    ],
)
def test_every_argument_is_usable_from_a_yaml_config(
    cls, root_fixture: str, extra: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from jsonargparse import ArgumentParser

    root = request.getfixturevalue(root_fixture)
    config = tmp_path / "data.yaml"
    config.write_text(
        f"data:\n  root: {root}\n  image_size: [48, 24]\n  num_identities: 2\n"
        f"  num_instances: 3\n  num_workers: 0\n  channel_augmentation: true\n"
        f"  check_counts: false\n{extra}"
    )
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "data")
    parser.add_argument("--config", action="config")
    dm = parser.instantiate(parser.parse_args(["--config", str(config)])).data
    assert dm.image_size == (48, 24) and dm.num_instances == 3 and dm.channel_augmentation
    with pytest.raises(SystemExit):
        parser.parse_args(["--config", str(config), "--data.image_szie", "[1, 2]"])


def test_training_augmentation_is_reproducible_whatever_the_workers(sysu_root: Path) -> None:
    def first_batch(num_workers: int, torch_seed: int) -> dict:
        torch.manual_seed(torch_seed)  # the global generator must not matter
        dm = SYSUMM01DataModule(sysu_root, **{**SMALL, "num_workers": num_workers})
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(1)
        return next(iter(loader))

    reference = first_batch(0, 0)
    for num_workers, torch_seed in ((0, 1), (2, 2)):
        batch = first_batch(num_workers, torch_seed)
        assert torch.equal(batch["visible"], reference["visible"])
        assert torch.equal(batch["infrared"], reference["infrared"])
