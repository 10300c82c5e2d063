"""``VIReIDModule``: the training step, optimiser recipe and checkpoints every method shares."""

from __future__ import annotations

import inspect
import os
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import torch
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

from vireid_zoo.core.checkpoint_file import read_checkpoint
from vireid_zoo.core.choices import check_choice
from vireid_zoo.core.classes import import_zoo_class
from vireid_zoo.core.records import Modality
from vireid_zoo.core.sources import read_config, resolve_files
from vireid_zoo.core.spawn import refuse_unguarded_spawn
from vireid_zoo.core.version import __version__
from vireid_zoo.core.weights import (
    WeightsMismatchError,
    align_compiled_names,
    compare_weights,
    load_weights_strict,
    read_weights,
    require_fit,
)
from vireid_zoo.evaluation.rerank import RerankConfig
from vireid_zoo.losses.identity import IdentityLoss
from vireid_zoo.models.evaluation_loop import EvaluationLoop
from vireid_zoo.models.network import VIReIDNetwork, find_network_class
from vireid_zoo.models.spec import (
    build_network,
    class_path,
    loading_trained_weights,
    network_spec,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is Python 3.11+

Optimizer = Literal["sgd", "adam"]
M = TypeVar("M", bound="VIReIDModule")
CHECKPOINT_KEY = "vireid_zoo"
"""Where a checkpoint records the module class that wrote it and the zoo's version."""
REQUIRED_TERMS = ("loss", "accuracy")
MODULE_CLASSES: dict[str, type[VIReIDModule]] = {}
"""Module classes by ``module.QualName``; a checkpoint can only name one of these."""


@dataclass(frozen=True)
class CompiledSteps:
    """What ``torch.compile`` made of a module's step and extraction (``compile=True``)."""

    compute_losses: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    extract_features: Callable[[torch.Tensor, Modality], torch.Tensor]


class VIReIDModule(EvaluationLoop):
    """Shared Lightning recipe: training step, optimiser schedule, checkpoints, evaluation.

    A method subclasses it, names its network class in ``network_class`` and implements
    [`compute_losses`][]. The module takes its network whole (an instance, or the
    ``{"class_path", "init_args"}`` specification YAML configs and checkpoints hold), so
    every network argument is written once, in the network's signature; the module's own
    arguments are the training recipe. Evaluation is
    [`EvaluationLoop`][]'s.

    Training step: [`compute_losses`][] returns the weighted total under ``"loss"``, the
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
        compile: Run the training step (network forward and losses) and the feature
            extraction through ``torch.compile`` (applied in [`configure_model`][]; weight
            names do not change, so checkpoints of compiled and uncompiled runs load into
            each other).
        channels_last: Keep the network's weights in the ``channels_last`` memory format
            (faster convolutions on GPUs with tensor cores, and under ``bf16-mixed``).
    """

    # The abstract default accepts any network instance; mypy takes only concrete classes
    # as type[...] values.
    network_class: ClassVar[type[VIReIDNetwork]] = VIReIDNetwork  # type: ignore[type-abstract]
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
        compile: bool = False,
        channels_last: bool = False,
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
        self.compile_network = compile
        self.channels_last = channels_last
        self._compiled: CompiledSteps | None = None
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
        """[`compute_losses`][], logged as ``train/<term>``; returns the total."""
        compute_losses = self._compiled.compute_losses if self._compiled else self.compute_losses
        terms = compute_losses(batch)
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
        own_class = class_path(type(self._uncompiled_net()))
        if saved_class != own_class:
            raise WeightsMismatchError(
                f"init_from {self.init_from!r} holds a {saved_class} network, but this "
                f"module trains a {own_class}; choose weights of the same method"
            )
        load_weights_strict(self.net, read_weights(weights_path), source=self.init_from)
        self._initialised_from = self.init_from

    def configure_model(self) -> None:
        """Apply ``channels_last`` and ``compile`` to the network once it is in a Trainer.

        Lightning calls this hook after [`setup`][] (which loads ``init_from``) and
        before it restores a checkpoint. Neither option renames a weight: the network is
        converted in place and the compiled functions are kept beside it, never wrapped
        around it, so checkpoints keep their plain ``net.*`` names. Compilation itself
        happens at the first call.
        """
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if self.compile_network and self._compiled is None:
            self._compiled = CompiledSteps(
                compute_losses=torch.compile(self.compute_losses),
                extract_features=torch.compile(self.net.extract_features),
            )

    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """``net.extract_features``, compiled once [`configure_model`][] applied ``compile``."""
        if self._compiled:
            return self._compiled.extract_features(images, modality)
        return self.net.extract_features(images, modality)

    # Optimisation ------------------------------------------------------------------------

    def lr_factor(self, epoch: int) -> float:
        """Learning-rate multiplier of ``epoch``: linear warm-up, then step decay."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        return self.gamma ** sum(epoch >= milestone for milestone in self.milestones)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
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

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for ``ddp_spawn``: refused at once from a script without a main guard."""
        refuse_unguarded_spawn(type(self).__name__)
        return super().__getstate__()

    # Checkpoints -------------------------------------------------------------------------

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO[bytes],
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        """Lightning's ``load_from_checkpoint``, checked against what the call asks for.

        The file is read with ``weights_only=True`` first (a damaged or foreign file is
        refused in one paragraph, and nothing in it runs). The module class and the
        network's class and trunk must be the checkpoint's: another is refused naming
        both. Called on [`VIReIDModule`][] itself, the module class is the one the
        checkpoint records. ``network`` may be a mapping of network arguments that
        override the checkpoint's (e.g. ``network={"test_feature": "pool"}``), or a whole
        network (an instance or ``{"class_path", "init_args"}``). The network is built
        without its ImageNet initialisation: the checkpoint's weights replace it.

        Raises:
            WeightsMismatchError: the checkpoint holds another module, network or trunk.
            ValueError: the file is not a readable checkpoint, or a network argument is
                given as an argument of the module.
        """
        if isinstance(checkpoint_path, str | os.PathLike) and "://" not in str(checkpoint_path):
            cls, kwargs = _checked_request(cls, Path(checkpoint_path), kwargs)
        # Otherwise a stream or a URL: Lightning reads it, and on_load_checkpoint checks it.
        # Explicit super(): ``cls`` may be the class the checkpoint records.
        with loading_trained_weights():
            return super(VIReIDModule, cls).load_from_checkpoint(  # noqa: UP008
                checkpoint_path, map_location, hparams_file, strict, weights_only, **kwargs
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the module class, its network and trunk and the zoo's version.

        Lightning's ``load_from_checkpoint`` overwrites the saved hyperparameters with the
        arguments of the call; this record keeps what the checkpoint was trained as.
        """
        module, network, arch = self._identity()
        checkpoint[CHECKPOINT_KEY] = {
            "module_class": module,
            "network_class": network,
            "arch": arch,
            "num_classes": self.hparams["network"]["init_args"].get("num_classes"),
            "version": __version__,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check, before loading, that a checkpoint is of this model and its weights fit.

        A checkpoint of another module or network class, or of another trunk, is refused
        naming both. Only the identity classifier may differ in size (e.g. testing a
        SYSU-MM01 model on RegDB): it is then re-initialised with a warning, since
        embeddings do not use it; a resumed fit still needs the same classes. Any other
        difference is refused in one message naming the weights. Names saved through a
        hand-made ``torch.compile(module.net)`` (``net._orig_mod.*``) are matched to this
        module's ([`align_compiled_names`][]).
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
        current = self.state_dict()
        state = align_compiled_names(current, checkpoint.get("state_dict", {}), "the checkpoint")
        checkpoint["state_dict"] = state
        difference = compare_weights(current, state)
        resuming = self._trainer is not None and self.trainer.state.fn == "fit"
        require_fit(
            difference,
            source="the checkpoint",
            target=f"{mine} (it was trained as {trained['described'] or 'another model'})",
            allow_classifier_resize=not resuming,
            hint="Use the config the checkpoint was trained with (model class, arch, dataset).",
        )
        if difference.resized_classifiers:
            for key in difference.resized_classifiers:
                state[key] = current[key]
            found, expected = difference.reshaped[0][1][0], difference.reshaped[0][2][0]
            rank_zero_warn(
                f"the checkpoint's identity classifier has {found} classes and this model's "
                f"{expected}: the classifier is re-initialised (embeddings and test results do "
                "not use it)."
            )

    def _identity(self) -> tuple[str, str, str]:
        network = self._uncompiled_net()
        return class_path(type(self)), class_path(type(network)), network.backbone.arch

    def _uncompiled_net(self) -> VIReIDNetwork:
        """``net``, or the network inside it after a hand-made ``torch.compile(module.net)``."""
        return getattr(self.net, "_orig_mod", self.net)

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
    record = checkpoint.get(CHECKPOINT_KEY, {})
    network = hparams.get("network")
    if "network_class" in record:  # never overwritten by load_from_checkpoint's arguments
        network_name, arch, num_classes = (
            record["network_class"],
            record["arch"],
            record["num_classes"],
        )
    elif isinstance(network, Mapping) and "class_path" in network:
        arguments = network.get("init_args", {})
        network_name, arch = network["class_path"], arguments.get("arch", "?")
        num_classes = arguments.get("num_classes")
    else:
        return {"identity": None, "described": None}
    module = find_module_class(record.get("module_class") or hparams.get("_class_path"))
    network_type = find_network_class(network_name)
    identity = (
        class_path(module) if module else None,
        class_path(network_type) if network_type else network_name,
        arch,
    )
    shown = (identity[0] or "a module", *identity[1:])
    return {"identity": identity, "described": _describe(*shown, num_classes)}


def _checked_request(
    module: type[M], path: Path, kwargs: dict[str, Any]
) -> tuple[type[M], dict[str, Any]]:
    """The module class and arguments ``load_from_checkpoint`` builds, checked first.

    Returns:
        The class (the checkpoint's for [`VIReIDModule`][] itself) and the arguments,
        with a ``network`` mapping of arguments merged into the checkpoint's network.

    Raises:
        WeightsMismatchError: ``module`` is abstract and the checkpoint's module class is
            not one of its subclasses.
    """
    content = read_checkpoint(path)
    trained = describe_checkpoint(content)
    if _is_abstract(module):
        named = module_class_named(trained["identity"] and trained["identity"][0], str(path))
        if not issubclass(named, module):
            raise WeightsMismatchError(
                f"{path} holds a {named.__name__}, which is not a {module.__name__}: load it "
                f"with {named.__name__}.load_from_checkpoint"
            )
        module = named
    saved_network = content.get("hyper_parameters", {}).get("network")
    given = kwargs.get("network")
    if (
        isinstance(given, Mapping)
        and "class_path" not in given
        and isinstance(saved_network, Mapping)
    ):
        kwargs = {
            **kwargs,
            "network": {
                **saved_network,
                "init_args": {**saved_network.get("init_args", {}), **given},
            },
        }
    _check_request(module, trained, kwargs.get("network", saved_network), kwargs, str(path))
    return module, kwargs


def _check_request(
    module: type[VIReIDModule],
    trained: Mapping[str, Any],
    network: object,
    kwargs: Mapping[str, Any],
    source: str,
) -> None:
    """Refuse loading a checkpoint as another module, network class or trunk, naming both.

    Args:
        module: The class ``load_from_checkpoint`` is called on.
        trained: [`describe_checkpoint`][] of the checkpoint.
        network: The network the call builds (the ``network`` argument, or the
            checkpoint's specification).
        kwargs: The call's other arguments.
        source: The checkpoint's path, for messages.
    """
    network_type: type[VIReIDNetwork] | None = module.network_class
    if isinstance(network, VIReIDNetwork):
        network_type, arch = type(network), network.backbone.arch
    else:
        arguments = dict(network) if isinstance(network, Mapping) else {}
        if "class_path" in arguments:
            named = find_network_class(arguments["class_path"])
            if "network" in kwargs or (named and issubclass(named, module.network_class)):
                network_type = named
            arguments = dict(arguments.get("init_args", {}))
        arch = arguments.get("arch", _default(network_type, "arch"))
    asked = (class_path(module), class_path(network_type) if network_type else str(network), arch)
    identity = trained["identity"]
    if identity is not None and (
        identity[1:] != asked[1:] or identity[0] not in (None, asked[0]) or network_type is None
    ):
        if identity[1] == asked[1] and identity[0] in (None, asked[0]):
            hint = (
                "The network's trunk must be the checkpoint's (other network arguments, e.g. "
                "test_feature, may differ)."
            )
        else:
            trained_as = identity[0].rsplit(".", 1)[-1] if identity[0] else "the module it names"
            hint = (
                f"Load it with {trained_as}.load_from_checkpoint, or with "
                "VIReIDModule.load_from_checkpoint, which builds the class the checkpoint records."
            )
        network_name = asked[1].rsplit(".", 1)[-1]
        raise WeightsMismatchError(
            f"{source} holds {trained['described']}, but {module.__name__}.load_from_checkpoint "
            f"asks for {module.__name__}({network_name}, arch={arch!r}). {hint}"
        )
    parameters = inspect.signature(module.network_class.__init__).parameters
    flat = sorted(key for key in kwargs if key in parameters and key != "self")
    if flat:
        raise ValueError(
            f"{flat} are arguments of the network {module.network_class.__name__}, not of "
            f"{module.__name__}: pass them as network={{...}} (they override the checkpoint's "
            f"network arguments), e.g. {module.__name__}.load_from_checkpoint(path, "
            f"network={{{flat[0]!r}: ...}})"
        )


def _is_abstract(module: type[VIReIDModule]) -> bool:
    """Whether ``module`` leaves [`VIReIDModule.compute_losses`][] unimplemented."""
    return getattr(module.compute_losses, "__isabstractmethod__", False)


def _default(network_type: type[VIReIDNetwork] | None, name: str) -> object:
    """The default of a constructor argument of ``network_type`` (None when it has none)."""
    if network_type is None:
        return None
    parameter = inspect.signature(network_type.__init__).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def module_class_named(name: object, source: str) -> type[VIReIDModule]:
    """The zoo module class ``name`` (``module.QualName``) names; nothing else is accepted.

    Raises:
        ValueError: ``name`` is not a LightningModule class of the zoo.
    """
    found = find_module_class(name)
    if found is None:
        known = sorted(k for k, v in MODULE_CLASSES.items() if not inspect.isabstract(v))
        raise ValueError(
            f"{source} names module class {name!r}, which is not a vireid-zoo module (known: "
            f"{known}); use a checkpoint written by a zoo module"
        )
    return found


def find_module_class(name: object) -> type[VIReIDModule] | None:
    """The zoo module class ``name`` (``module.QualName``) names, or None."""
    found = import_zoo_class(name)
    return found if found is not None and issubclass(found, VIReIDModule) else None
