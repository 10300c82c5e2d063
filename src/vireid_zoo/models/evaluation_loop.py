"""Validation, test and prediction: every method embeds and scores the same way."""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from torch import nn

from vireid_zoo.core.records import MODALITIES, MODALITY_CODES, Modality
from vireid_zoo.evaluation.metric import RetrievalMetric
from vireid_zoo.evaluation.protocols import EvaluationSuite, MultiTrialResult
from vireid_zoo.evaluation.rerank import RerankConfig
from vireid_zoo.models.network import VIReIDNetwork

Stage = Literal["val", "test"]


class EvaluationLoop(LightningModule):
    """Lightning's validation, test and predict hooks over a datamodule's evaluation suite.

    Validation and test embed every image of the suite with
    ``net.extract_features(images, modality)`` (each image through its own modality's
    stem, whatever its role), feed a [`RetrievalMetric`][]
    and log, for every task (e.g. ``sysu_mm01/all``), the mean over trials as
    ``test/<task>/<score>``, the standard deviation as ``test/<task>/<score>_std`` and
    every trial as ``test/<task>/trial<t>/<score>`` (fractions in [0, 1]); the full
    [`MultiTrialResult`][] of every task is kept in
    ``results["val"]`` / ``results["test"]``. ``predict_step`` returns the embeddings.

    Attributes:
        net: The network that embeds.
        flip_test: Average each embedding with that of the mirrored image.
        rerank: k-reciprocal re-ranking settings, or None.
        max_rank: CMC length.
    """

    net: VIReIDNetwork
    flip_test: bool
    rerank: RerankConfig | None
    max_rank: int

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, RetrievalMetric] = {}
        self.results: dict[str, dict[str, MultiTrialResult]] = {}

    # Embedding ---------------------------------------------------------------------------

    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Embeddings of images of one modality: ``net.extract_features``."""
        return self.net.extract_features(images, modality)

    @torch.no_grad()
    def embed(self, images: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of a batch that may mix modalities.

        Args:
            images: (B, 3, H, W).
            modalities: (B,) codes (0 visible, 1 infrared): each image goes through its
                own modality's stem.
        """
        outputs: torch.Tensor | None = None
        for name in MODALITIES:
            selected = (modalities == MODALITY_CODES[name]).nonzero(as_tuple=True)[0]
            if len(selected) == 0:
                continue
            batch = images[selected]
            features = self.extract_features(batch, name)
            if self.flip_test:
                flipped = self.extract_features(torch.flip(batch, dims=[3]), name)
                features = nn.functional.normalize(features + flipped, dim=1)
            if outputs is None:
                outputs = features.new_empty(len(images), features.shape[1])
            outputs[selected] = features
        if outputs is None:
            raise ValueError("an evaluation batch holds no image")
        return outputs

    # Evaluation loop ---------------------------------------------------------------------

    def _suite(self, stage: Stage) -> EvaluationSuite:
        datamodule = getattr(self.trainer, "datamodule", None)
        suite = None
        if datamodule is not None:
            suite = datamodule.val_suite if stage == "val" else datamodule.test_suite
        if suite is None:
            loaders = (
                self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
            )
            suite = getattr(getattr(loaders, "dataset", None), "suite", None)
        if suite is None:
            raise RuntimeError(
                f"{stage} needs an evaluation suite: use a vireid_zoo DataModule, or a "
                "dataloader over vireid_zoo.data.EvaluationDataset.from_suite(suite, transform)"
            )
        return suite

    def _start(self, stage: Stage) -> None:
        metric = RetrievalMetric(self._suite(stage), max_rank=self.max_rank, rerank=self.rerank)
        self.metrics[stage] = metric.to(self.device)

    def _update(self, stage: Stage, batch: dict[str, torch.Tensor]) -> None:
        features = self.embed(batch["image"], batch["modality"])
        self.metrics[stage].update(
            batch["index"], features, batch["pid"], batch["camid"], batch["modality"]
        )

    def _finish(self, stage: Stage) -> None:
        metric = self.metrics.pop(stage)
        results = metric.compute()
        self.results[stage] = results
        for task, result in results.items():
            prefix = f"{stage}/{task}"
            scores = {f"{prefix}/{k}": v for k, v in result.mean.items()}
            scores |= {f"{prefix}/{k}_std": v for k, v in result.std.items()}
            for trial, trial_result in zip(result.trials, result.per_trial, strict=True):
                scores |= {
                    f"{prefix}/trial{trial}/{k}": v for k, v in trial_result.summary().items()
                }
            # Every rank holds the same gathered result. Synchronising it with a max keeps it
            # exact (a mean could round) and tells Lightning the epoch value is synchronised.
            self.log_dict(scores, sync_dist=True, reduce_fx="max")

    def on_validation_epoch_start(self) -> None:
        """Create the validation metric for the datamodule's validation suite."""
        self._start("val")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Embed a validation batch."""
        self._update("val", batch)

    def on_validation_epoch_end(self) -> None:
        """Score the validation tasks and log them."""
        self._finish("val")

    def on_test_epoch_start(self) -> None:
        """Create the test metric for the datamodule's test suite."""
        self._start("test")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Embed a test batch."""
        self._update("test", batch)

    def on_test_epoch_end(self) -> None:
        """Score every test task over its trials and log per-trial, mean and std."""
        self._finish("test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, Any]:
        """Return the batch's L2-normalised embeddings with their labels and indices."""
        return {
            "features": self.embed(batch["image"], batch["modality"]),
            **{k: batch[k] for k in ("index", "pid", "camid", "modality") if k in batch},
        }
