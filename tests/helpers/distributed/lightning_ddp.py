"""Fit then test a tiny embedder with Lightning on 1 or 2 CPU processes (gloo).

``python lightning_ddp.py DATA_ROOT OUT_DIR DEVICES [WEIGHTS] [--image-cache DIR]``: with 2
devices Lightning re-runs this script for rank 1. Rank 0 writes ``OUT_DIR/steps.json`` (the
training labels of every rank at every step, gathered), ``OUT_DIR/results.json`` (test
metrics) and ``OUT_DIR/weights.pt``. Given WEIGHTS, the fit is skipped and those weights are
tested. ``--image-cache`` trains and tests from the image cache in DIR; every process logs
each cache it builds on stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from metric_case import results_as_json
from torch import nn

from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.evaluation import RetrievalMetric


class TinyEmbedder(pl.LightningModule):
    """A minimal model: the data and evaluation plumbing is what is under test."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.classifier = nn.Linear(8, num_classes)
        self.steps: list[dict] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        images = torch.cat([batch["visible"], batch["infrared"]])
        labels = torch.cat([batch["visible_pid"], batch["infrared_pid"]])
        gathered = self.all_gather(torch.stack([batch["visible_pid"], batch["infrared_pid"]]))
        if self.global_rank == 0:
            gathered = gathered.reshape(-1, 2, len(batch["visible_pid"]))
            self.steps.append({"epoch": self.current_epoch, "labels": gathered.tolist()})
        return nn.functional.cross_entropy(self.classifier(self.body(images)), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def setup(self, stage: str) -> None:
        if stage == "test":
            self.metric = RetrievalMetric(self.trainer.datamodule.test_suite)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        features = self.body(batch["image"])
        self.metric.update(
            batch["index"], features, batch["pid"], batch["camid"], batch["modality"]
        )

    def on_test_epoch_end(self) -> None:
        self.results = results_as_json(self.metric.compute())


def main() -> None:
    argv = sys.argv[1:]
    image_cache = None
    if "--image-cache" in argv:
        at = argv.index("--image-cache")
        image_cache = Path(argv[at + 1])
        del argv[at : at + 2]
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("vireid_zoo.data.cache").setLevel(logging.INFO)
    data_root, out_dir, devices = Path(argv[0]), Path(argv[1]), int(argv[2])
    weights = Path(argv[3]) if len(argv) > 3 else None
    pl.seed_everything(0, verbose=False)
    torch.set_num_threads(1)
    dm = SYSUMM01DataModule(
        data_root,
        image_size=(32, 16),
        num_identities=3,
        num_instances=2,
        num_workers=0,
        test_batch_size=16,
        trials=3,
        samples_per_epoch=36,
        check_counts=False,
        image_cache=image_cache,
    )
    model = TinyEmbedder(dm.num_classes)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    if weights is None:
        trainer.fit(model, datamodule=dm)
    else:
        model.load_state_dict(torch.load(weights, weights_only=True))
    trainer.test(model, datamodule=dm, verbose=False)
    if trainer.global_rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(model.results))
        if weights is None:
            (out_dir / "steps.json").write_text(json.dumps(model.steps))
            torch.save(model.state_dict(), out_dir / "weights.pt")


if __name__ == "__main__":
    main()
