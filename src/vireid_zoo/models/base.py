"""``VIReIDModule``: the evaluation loop and optimiser recipe every method shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from vireid_zoo.core.records import MODALITY_CODES
from vireid_zoo.core.sources import read_config, resolve_files
from vireid_zoo.core.weights import (
    WeightsMismatchError,
    compare_weights,
    load_weights_strict,
    read_weights,
    require_fit,
)
from vireid_zoo.evaluation import EvaluationSuite, MultiTrialResult, RerankConfig, RetrievalMetric
from vireid_zoo.models.network import VIReIDNetwork

Stage = Literal["val", "test"]


class VIReIDModule(LightningModule):
    """Shared Lightning recipe: evaluation, prediction and the optimiser schedule.

    A method subclasses it, builds its network in ``self.net`` (a
    :class:`~vireid_zoo.models.network.VIReIDNetwork`) and implements ``training_step``.
    Validation and test embed every image of the datamodule's evaluation suite with
    ``net.extract_features(images, modality)`` (each image through its own modality's
    stem, whatever its role), feed a :class:`RetrievalMetric`, and log, for every task
    (e.g. ``sysu_mm01/all``), the mean over trials as ``test/<task>/<score>``, the
    standard deviation as ``test/<task>/<score>_std`` and every trial as
    ``test/<task>/trial<t>/<score>`` (fractions in [0, 1]); the full
    :class:`MultiTrialResult` of every task is kept in ``results["val"]`` /
    ``results["test"]``. ``predict_step`` returns the embeddings.

    Optimiser (the AGW recipe): SGD with momentum and Nesterov, two parameter groups,
    the backbone at ``lr * backbone_lr_ratio`` and the new layers (neck, classifier,
    method heads) at ``lr``; linear warm-up over ``warmup_epochs`` epochs, then the
    learning rate is multiplied by ``gamma`` at each of ``milestones`` (epochs).

    Args:
        lr: Learning rate of the new layers.
        backbone_lr_ratio: Backbone learning rate as a fraction of ``lr``.
        optimizer: ``"sgd"`` (the reference recipe) or ``"adam"``.
        momentum: SGD momentum.
        nesterov: Nesterov momentum for SGD.
        weight_decay: L2 weight decay.
        warmup_epochs: Epochs of linear warm-up (epoch e uses ``(e + 1) / warmup_epochs``).
        milestones: Epochs at which the learning rate is multiplied by ``gamma``.
        gamma: Step-decay factor.
        flip_test: Average each test embedding with that of the mirrored image.
        rerank: Evaluate with k-reciprocal re-ranking (labelled in the results).
        max_rank: CMC length.
        init_from: Start from saved or published network weights, e.g. to fine-tune on
            another dataset: ``hf-hub:ORG/NAME[@REVISION]``, ``local-dir:PATH`` or a folder
            written by ``save_pretrained``. Loading is strict except for the classifier,
            which is re-initialised when the number of identities differs. Applied when
            the trainer sets the module up, before a checkpoint is restored.
    """

    net: VIReIDNetwork

    def __init__(
        self,
        *,
        lr: float = 0.1,
        backbone_lr_ratio: float = 0.1,
        optimizer: Literal["sgd", "adam"] = "sgd",
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 5e-4,
        warmup_epochs: int = 10,
        milestones: Sequence[int] = (20, 50),
        gamma: float = 0.1,
        flip_test: bool = False,
        rerank: bool = False,
        max_rank: int = 20,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        self.lr = lr
        self.backbone_lr_ratio = backbone_lr_ratio
        self.optimizer_name = optimizer
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.warmup_epochs = warmup_epochs
        self.milestones = tuple(sorted(milestones))
        self.gamma = gamma
        self.flip_test = flip_test
        self.rerank = RerankConfig() if rerank else None
        self.max_rank = max_rank
        self.init_from = init_from
        self._initialised_from: str | None = None
        self.metrics: dict[str, RetrievalMetric] = {}
        self.results: dict[str, dict[str, MultiTrialResult]] = {}

    def setup(self, stage: str) -> None:
        """Load ``init_from`` weights once, before Lightning restores any checkpoint."""
        if self.init_from and self._initialised_from != self.init_from:
            config_path, weights_path = resolve_files(self.init_from)
            saved_class = read_config(config_path).get("network_class")
            own_class = f"{type(self.net).__module__}.{type(self.net).__qualname__}"
            if saved_class != own_class:
                raise WeightsMismatchError(
                    f"init_from {self.init_from!r} holds a {saved_class} network, but this "
                    f"module trains a {own_class}; choose weights of the same method"
                )
            load_weights_strict(self.net, read_weights(weights_path), source=self.init_from)
            self._initialised_from = self.init_from

    # Embedding ---------------------------------------------------------------------------

    @torch.no_grad()
    def embed(self, images: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of a batch that may mix modalities.

        Args:
            images: (B, 3, H, W).
            modalities: (B,) codes (0 visible, 1 infrared): each image goes through its
                own modality's stem.
        """
        outputs: torch.Tensor | None = None
        for name, code in MODALITY_CODES.items():
            selected = (modalities == code).nonzero(as_tuple=True)[0]
            if len(selected) == 0:
                continue
            batch = images[selected]
            features = self.net.extract_features(batch, name)
            if self.flip_test:
                flipped = self.net.extract_features(torch.flip(batch, dims=[3]), name)
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
            # Every rank holds the same gathered result: no further reduction is needed.
            self.log_dict(scores, sync_dist=False, rank_zero_only=False)

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

    # Optimisation ------------------------------------------------------------------------

    def lr_factor(self, epoch: int) -> float:
        """Learning-rate multiplier of ``epoch``: linear warm-up, then step decay."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        return self.gamma ** sum(epoch >= milestone for milestone in self.milestones)

    def configure_optimizers(self) -> dict[str, Any]:
        """Two parameter groups (backbone, new layers), warm-up and step decay per epoch."""
        backbone_ids = {id(p) for p in self.net.backbone.parameters()}
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        groups = [
            {
                "params": [p for p in trainable if id(p) in backbone_ids],
                "lr": self.lr * self.backbone_lr_ratio,
                "name": "backbone",
            },
            {
                "params": [p for p in trainable if id(p) not in backbone_ids],
                "lr": self.lr,
                "name": "new_layers",
            },
        ]
        if self.optimizer_name == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups,
                lr=self.lr,
                momentum=self.momentum,
                nesterov=self.nesterov,
                weight_decay=self.weight_decay,
            )
        else:
            optimizer = torch.optim.Adam(groups, lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    # Checkpoints -------------------------------------------------------------------------

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check, before loading, that a checkpoint's weights fit this model.

        Only the identity classifier may differ in size (e.g. testing a SYSU-MM01 model on
        RegDB): it is then re-initialised with a warning, since embeddings do not use it;
        a resumed fit still needs the same classes. Any other difference is refused in
        one message naming the weights.
        """
        state = checkpoint.get("state_dict", {})
        difference = compare_weights(self.state_dict(), state)
        resuming = self._trainer is not None and self.trainer.state.fn == "fit"
        trained = checkpoint.get("hyper_parameters", {})
        described = ", ".join(
            f"{k}={trained[k]!r}" for k in ("arch", "num_classes") if k in trained
        )
        require_fit(
            difference,
            source="the checkpoint",
            target=f"{type(self).__name__}({self.describe()}) (it was trained as "
            f"{described or 'another model'})",
            allow_classifier_resize=not resuming,
            hint="Use the config the checkpoint was trained with (model class, arch, dataset).",
        )
        if difference.resized_classifiers:
            current = self.state_dict()
            for key in difference.resized_classifiers:
                state[key] = current[key]
            found, expected = difference.reshaped[0][1][0], difference.reshaped[0][2][0]
            rank_zero_warn(
                f"the checkpoint's identity classifier has {found} classes and this model's "
                f"{expected}: the classifier is re-initialised (embeddings and test results do "
                "not use it)."
            )

    def describe(self) -> str:
        """A short description of the model's architecture, for messages."""
        hparams = self.hparams
        return ", ".join(f"{k}={hparams[k]!r}" for k in ("arch", "num_classes") if k in hparams)
