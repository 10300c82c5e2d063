"""A fit interrupted after its first epoch and resumed ends with the uninterrupted weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint

from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.models import AGW, AGWModule


def datamodule(root: Path) -> SYSUMM01DataModule:
    return SYSUMM01DataModule(
        root,
        image_size=(32, 16),
        num_identities=3,
        num_instances=2,
        num_workers=0,
        samples_per_epoch=12,
        trials=1,
        check_counts=False,
    )


def fit(root: Path, max_epochs: int, directory: Path, ckpt_path: Path | None = None) -> AGWModule:
    seed_everything(0, verbose=False)
    module = AGWModule(AGW(13, arch="resnet18"), warmup_epochs=1, milestones=(1,))
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=directory,
        callbacks=[ModelCheckpoint(dirpath=directory, save_last=True, save_top_k=0)],
    )
    trainer.fit(module, datamodule=datamodule(root), ckpt_path=ckpt_path)
    return module


@pytest.fixture
def deterministic_algorithms() -> Iterator[None]:
    """Trainer(deterministic=True) turns torch's deterministic mode on for the whole process."""
    yield
    torch.use_deterministic_algorithms(False)


@pytest.mark.usefixtures("deterministic_algorithms")
def test_resumed_fit_equals_uninterrupted_fit(sysu_root: Path, tmp_path: Path) -> None:
    uninterrupted = fit(sysu_root, 2, tmp_path / "a")
    first_epoch = fit(sysu_root, 1, tmp_path / "b")
    resumed = fit(sysu_root, 2, tmp_path / "c", ckpt_path=tmp_path / "b" / "last.ckpt")
    expected, got = uninterrupted.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)
    # The second epoch did change the weights, so the comparison is meaningful.
    changed = [
        k
        for k, v in first_epoch.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, expected[k])
    ]
    assert len(changed) > 10
