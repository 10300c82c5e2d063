"""``VIReIDModule``: the training step, optimiser recipe and checkpoints every method shares."""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch.utilities import rank_zero_warn

from vireid_zoo.core.choices import check_choice
from vireid_zoo.core.classes import import_zoo_class
from vireid_zoo.core.sources import read_config, resolve_files
from vireid_zoo.core.version import __version__
from vireid_zoo.core.weights import (
    WeightsMismatchError,
    compare_weights,
    load_weights_strict,
    read_weights,
    require_fit,
)
from vireid_zoo.evaluation.rerank import RerankConfig
from vireid_zoo.losses.identity import IdentityLoss
from vireid_zoo.models.evaluation_loop import EvaluationLoop
from vireid_zoo.models.network import VIReIDNetwork
from vireid_zoo.models.spec import build_network, class_path, network_spec

Optimizer = Literal["sgd", "adam"]
CHECKPOINT_KEY = "vireid_zoo"
"""Where a checkpoint records the module class that wrote it and the zoo's version."""
REQUIRED_TERMS = ("loss", "accuracy")
MODULE_CLASSES: dict[str, type[VIReIDModule]] = {}
"""Module classes by ``module.QualName``; a checkpoint can only name one of these."""


class VIReIDModule(EvaluationLoop):
    """Shared Lightning recipe: training step, optimiser schedule, checkpoints, evaluation.

    A method subclasses it, names its network class in ``network_class`` and implements
    :meth:`compute_losses`. The module takes its network whole (an instance, or the
    ``{"class_path", "init_args"}`` specification YAML configs and checkpoints hold), so
    every network argument is written once, in the network's signature; the module's own
    arguments are the training recipe. Evaluation is
    :class:`~vireid_zoo.models.evaluation_loop.EvaluationLoop`'s.

    Training step: :meth:`compute_losses` returns the weighted total under ``"loss"``, the
    identity accuracy under ``"accuracy"`` and every named term (``"id"``, ``"triplet"``,
    and the method's own); all are logged as ``train/<name>`` with the batch size of both
    modalities together.

    Optimiser (the AGW recipe): SGD with momentum and Nesterov, two parameter groups,
    the backbone at ``lr * backbone_lr_ratio`` and the new layers (neck, classifier,
    method heads) at ``lr``; linear warm-up over ``warmup_epochs`` epochs, then the
    learning rate is multiplied by ``gamma`` at each of ``milestones`` (epochs).

    Args:
        network: The network to train: an instance of ``network_class``, or its
            constructor arguments (``{"arch": "resnet50", ...}`` or
            ``{"class_path": ..., "init_args": {...}}``).
        label_smoothing: Label smoothing of the identity losses (0 in the reference).
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
            a fit starts from scratch (``on_fit_start``), never when a checkpoint is
            restored.
    """

    network_class: ClassVar[type[VIReIDNetwork]] = VIReIDNetwork
    """The network class a method trains (an instance of a subclass is accepted)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        MODULE_CLASSES[class_path(cls)] = cls

    def __init__(
        self,
        network: VIReIDNetwork | Mapping[str, Any],
        *,
        label_smoothing: float = 0.0,
        lr: float = 0.1,
        backbone_lr_ratio: float = 0.1,
        optimizer: Optimizer = "sgd",
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
        check_choice("optimizer", optimizer, Optimizer)
        self.net = build_network(self.network_class, network)
        self.identity_loss = IdentityLoss(label_smoothing)
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
        # Every constructor argument of the subclass chain, and the network as a
        # specification (never the module itself): checkpoints rebuild the module from it.
        self.save_hyperparameters(ignore=["network"])
        self.save_hyperparameters({**self.hparams, "network": network_spec(self.net)})

    # Training ----------------------------------------------------------------------------

    @abstractmethod
    def compute_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every loss term of a paired training batch.

        Args:
            batch: ``visible``, ``infrared`` (B, 3, H, W) and ``visible_pid``,
                ``infrared_pid`` (B,) training labels, plus a method's extras (e.g. CSCL's
                part maps).

        Returns:
            ``"loss"``: the weighted total to minimise; ``"accuracy"``: the identity
            accuracy of the main classifier; and every unweighted term by name
            (``"id"``, ``"triplet"``, and the method's own).
        """

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """:meth:`compute_losses`, logged as ``train/<term>``; returns the total."""
        terms = self.compute_losses(batch)
        missing = [name for name in REQUIRED_TERMS if name not in terms]
        if missing:
            raise KeyError(f"{type(self).__name__}.compute_losses returned no {missing}")
        size = len(batch["visible_pid"]) + len(batch["infrared_pid"])
        shown = {f"train/{name}": terms[name] for name in REQUIRED_TERMS}
        self.log_dict(shown, prog_bar=True, batch_size=size)
        others = {f"train/{k}": v for k, v in terms.items() if k not in REQUIRED_TERMS}
        self.log_dict(others, batch_size=size)
        return terms["loss"]

    def on_fit_start(self) -> None:
        """Load ``init_from`` weights once, when a fit starts from scratch.

        Lightning restores a fit's checkpoint after ``setup`` and before this hook, so a
        resumed fit (``ckpt_path`` given) keeps the checkpoint's weights and never reads
        ``init_from``: a fine-tuned checkpoint resumes, tests and exports without it.
        """
        resuming = self._trainer is not None and self.trainer.ckpt_path is not None
        if resuming or not self.init_from:
            return
        if self._initialised_from == self.init_from:
            return
        config_path, weights_path = resolve_files(self.init_from)
        saved_class = read_config(config_path).get("network_class")
        own_class = class_path(type(self.net))
        if saved_class != own_class:
            raise WeightsMismatchError(
                f"init_from {self.init_from!r} holds a {saved_class} network, but this "
                f"module trains a {own_class}; choose weights of the same method"
            )
        load_weights_strict(self.net, read_weights(weights_path), source=self.init_from)
        self._initialised_from = self.init_from

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

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the module class and the zoo's version beside Lightning's content."""
        checkpoint[CHECKPOINT_KEY] = {
            "module_class": class_path(type(self)),
            "version": __version__,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check, before loading, that a checkpoint is of this model and its weights fit.

        A checkpoint of another module or network class, or of another trunk, is refused
        naming both. Only the identity classifier may differ in size (e.g. testing a
        SYSU-MM01 model on RegDB): it is then re-initialised with a warning, since
        embeddings do not use it; a resumed fit still needs the same classes. Any other
        difference is refused in one message naming the weights.
        """
        trained = describe_checkpoint(checkpoint)
        mine = self.describe()
        identity = trained["identity"]
        if identity is not None and (
            identity[1:] != self._identity()[1:] or identity[0] not in (None, self._identity()[0])
        ):
            raise WeightsMismatchError(
                f"the checkpoint holds {trained['described']}, but this run builds {mine}. "
                "Use the config the checkpoint was trained with (model class, network, arch)."
            )
        state = checkpoint.get("state_dict", {})
        difference = compare_weights(self.state_dict(), state)
        resuming = self._trainer is not None and self.trainer.state.fn == "fit"
        require_fit(
            difference,
            source="the checkpoint",
            target=f"{mine} (it was trained as {trained['described'] or 'another model'})",
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

    def _identity(self) -> tuple[str, str, str]:
        return class_path(type(self)), class_path(type(self.net)), self.net.backbone.arch

    def describe(self) -> str:
        """The module, network and trunk, for messages: ``AGWModule(AGW, arch='resnet50')``."""
        return _describe(*self._identity(), self.hparams["network"]["init_args"].get("num_classes"))


def _describe(module: str, network: str, arch: str, num_classes: object) -> str:
    short = module.rsplit(".", 1)[-1], network.rsplit(".", 1)[-1]
    return f"{short[0]}({short[1]}, arch={arch!r}, num_classes={num_classes!r})"


def describe_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint of the zoo holds: its module class, network class and arch.

    Returns:
        ``identity``: ``(module class, network class, arch)`` with canonical class paths
        (the module class None where the checkpoint does not record it), or None for a
        checkpoint without a network specification; ``described``: the same in words.
    """
    hparams = checkpoint.get("hyper_parameters", {})
    network = hparams.get("network")
    if not isinstance(network, Mapping) or "class_path" not in network:
        return {"identity": None, "described": None}
    recorded = checkpoint.get(CHECKPOINT_KEY, {}).get("module_class") or hparams.get("_class_path")
    module = import_zoo_class(recorded, VIReIDModule)
    network_type = import_zoo_class(network["class_path"], VIReIDNetwork)
    arguments = network.get("init_args", {})
    identity = (
        class_path(module) if module else None,
        class_path(network_type) if network_type else network["class_path"],
        arguments.get("arch", "?"),
    )
    shown = (identity[0] or "a module", *identity[1:])
    return {"identity": identity, "described": _describe(*shown, arguments.get("num_classes"))}


def module_class_named(name: object, source: str) -> type[VIReIDModule]:
    """The zoo module class ``name`` (``module.QualName``) names; nothing else is accepted.

    Raises:
        ValueError: ``name`` is not a LightningModule class of the zoo.
    """
    found = import_zoo_class(name, VIReIDModule)
    if found is None:
        known = sorted(k for k, v in MODULE_CLASSES.items() if not inspect.isabstract(v))
        raise ValueError(
            f"{source} names module class {name!r}, which is not a vireid-zoo module (known: "
            f"{known}); use a checkpoint written by a zoo module"
        )
    return found
