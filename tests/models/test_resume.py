"""A fit interrupted after its first epoch and resumed ends with the uninterrupted weights,
whatever the number of data-loading workers (which prefetch the epoch's plan)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint

from helpers.torch_state import deterministic_mode_restored
from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.models import AGW, AGWModule


def datamodule(root: Path, num_workers: int) -> SYSUMM01DataModule:
    return SYSUMM01DataModule(
        root,
        image_size=(32, 16),
        num_identities=3,
        num_instances=2,
        num_workers=num_workers,
        samples_per_epoch=12,
        trials=1,
        check_counts=False,
    )


def fit(
    root: Path, max_epochs: int, directory: Path, num_workers: int, ckpt_path: Path | None = None
) -> AGWModule:
    seed_everything(0, verbose=False)
    module = AGWModule(AGW(13, arch="resnet18"), warmup_epochs=1, milestones=(1,))
    with deterministic_mode_restored():  # Trainer(deterministic=True) sets it
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
        trainer.fit(module, datamodule=datamodule(root, num_workers), ckpt_path=ckpt_path)
    return module


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumed_fit_equals_uninterrupted_fit(
    sysu_root: Path, tmp_path: Path, num_workers: int
) -> None:
    uninterrupted = fit(sysu_root, 2, tmp_path / "a", num_workers)
    first_epoch = fit(sysu_root, 1, tmp_path / "b", num_workers)
    last = tmp_path / "b" / "last.ckpt"
    resumed = fit(sysu_root, 2, tmp_path / "c", num_workers, ckpt_path=last)
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
