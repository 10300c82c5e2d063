"""The Lightning commands: ``vireid-zoo fit | validate | test | predict``."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LightningCLI

from vireid_zoo.cli.recipes import resolve_config_arguments
from vireid_zoo.cli.runs import RunStarted, removed_unless_started, resolve_last
from vireid_zoo.core.classes import import_zoo_class
from vireid_zoo.data import VIReIDDataModule
from vireid_zoo.evaluation.results import summary_table, write_results
from vireid_zoo.hub.checkpoints import (
    CONTRACT_ARGUMENTS,
    read_checkpoint,
    reconcile_data,
    reconcile_network,
)
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.checkpointing import ResumableCheckpoint

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
LIGHTNING_KEYWORDS = ("best", "hpc")
"""``--ckpt_path`` values Lightning resolves itself (``last`` is resolved by the zoo)."""


class VIReIDCLI(LightningCLI):
    """LightningCLI whose model takes its number of classes from the datamodule.

    ``validate``, ``test`` and ``predict`` refuse to run without ``--ckpt_path``: the
    standard scripts' worst trap is silently scoring an untrained model when a checkpoint
    name is wrong. Pass ``--allow_untrained true`` to score random weights on purpose.
    ``--ckpt_path last`` is the newest ``last.ckpt`` of the run folder
    (`resolve_last`), or an error naming where it looked. A
    command that fails before its first batch leaves no run folder behind. ``test``
    prints one summary table and writes every trial to ``test_results.json``.
    """

    def __init__(self, *args: Any, trainer_defaults: dict[str, Any] | None = None, **kwargs: Any):
        self.run_started = RunStarted()
        defaults = dict(trainer_defaults or {})
        given = defaults.get("callbacks") or []
        defaults["callbacks"] = [*(given if isinstance(given, list) else [given]), self.run_started]
        super().__init__(*args, **kwargs | {"trainer_defaults": defaults})

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's subcommands; ``test`` prints its own summary instead of Lightning's."""
        commands = LightningCLI.subcommands()
        commands["test"] = {*commands["test"], "verbose"}
        return commands

    def add_arguments_to_parser(self, parser: Any) -> None:
        """Link ``data.num_classes`` to the model, so it is never typed twice."""
        parser.link_arguments(
            "data.num_classes",
            "model.init_args.network.init_args.num_classes",
            apply_on="instantiate",
        )
        parser.add_argument(
            "--allow_untrained",
            type=bool,
            default=False,
            help="validate/test/predict without --ckpt_path (scores the initial weights)",
        )

    def parse_arguments(self, parser: Any, args: Any) -> None:
        """Parse the command line, a packaged recipe name standing for its file.

        ``--config agw/sysu_mm01`` is the recipe shipped in the package (see
        [`vireid_zoo.cli.recipes`][]), so installed and cloned copies train alike.
        """
        if isinstance(args, dict):
            super().parse_arguments(parser, args)
            return
        given = sys.argv[1:] if args is None else list(args)
        self.config = parser.parse_args(resolve_config_arguments(given))

    def _parse_ckpt_path(self) -> None:
        """Check the checkpoint against the command instead of silently overriding it.

        ``last`` is first resolved to the run's newest ``last.ckpt``. Lightning would
        replace the command's model arguments by the checkpoint's without a word. Here the
        checkpoint must hold the model the command asks for (module, network, trunk and
        every network argument the command sets; evaluation choices ``test_*`` are the
        command's), and network arguments the command leaves at their default are the
        checkpoint's, each reported on stderr. Module arguments (recipe, evaluation
        options) are the command's. The data's input contract (image size, mean, std,
        interpolation) is the checkpoint's likewise: a value left at the default takes
        the checkpoint's, with a note; any other value must equal it.
        """
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path is None or ckpt_path in LIGHTNING_KEYWORDS or "://" in str(ckpt_path):
            return
        config = self.config[subcommand]
        if ckpt_path == "last":
            ckpt_path = resolve_last(config["trainer"].as_dict())
            config["ckpt_path"] = str(ckpt_path)
            print(f"vireid-zoo {subcommand}: --ckpt_path last is {ckpt_path}", file=sys.stderr)
        content = read_checkpoint(Path(ckpt_path))
        model = config["model"]
        effective, notes = reconcile_network(model.as_dict(), content, str(ckpt_path))
        if effective is not None:
            for key, value in effective.items():
                model.init_args.network.init_args[key] = value
        for note in notes:
            print(f"vireid-zoo {subcommand}: network argument {note}", file=sys.stderr)
        data = config["data"]
        arguments = data.init_args.as_dict()
        defaults = _data_defaults(data.get("class_path"))
        effective, notes = reconcile_data(arguments, defaults, content, str(ckpt_path))
        for key, value in effective.items():
            data.init_args[key] = value
        for note in notes:
            print(f"vireid-zoo {subcommand}: data argument {note}", file=sys.stderr)

    def _require_checkpoint(self) -> None:
        config = self.config[self.subcommand]
        if config.get("ckpt_path") is None and not config.get("allow_untrained"):
            raise ValueError(
                f"'{self.subcommand}' was given no --ckpt_path, so it would score the model's "
                "initial (untrained) weights. Pass --ckpt_path PATH to the trained checkpoint, "
                "or --allow_untrained true to do this on purpose."
            )

    def before_validate(self) -> None:
        """Refuse to validate initial weights by accident."""
        self._require_checkpoint()

    def before_test(self) -> None:
        """Refuse to test initial weights by accident."""
        self._require_checkpoint()

    def before_predict(self) -> None:
        """Refuse to predict with initial weights by accident."""
        self._require_checkpoint()

    def fit(self, model: LightningModule, **kwargs: Any) -> None:
        """``Trainer.fit``; a stop by SIGINT / SIGTERM ends in [`TrainingInterrupted`][]."""
        with removed_unless_started(self.trainer, self.run_started):
            try:
                self.trainer.fit(model, **kwargs)
            except (SystemExit, KeyboardInterrupt):
                # Lightning exits (0 on SIGTERM, 1 on Ctrl+C) where it caught the signal.
                # (Trainer.callbacks is set by Lightning's callback connector, undeclared.)
                stopped = next(
                    (
                        callback.interruption
                        for callback in self.trainer.callbacks  # type: ignore[attr-defined]
                        if isinstance(callback, ResumableCheckpoint) and callback.interruption
                    ),
                    None,
                )
                if stopped is None:
                    raise
                raise stopped from None

    def validate(self, model: LightningModule, **kwargs: Any) -> None:
        """``Trainer.validate``."""
        with removed_unless_started(self.trainer, self.run_started):
            self.trainer.validate(model, **kwargs)

    def test(self, model: LightningModule, **kwargs: Any) -> None:
        """``Trainer.test`` without Lightning's metric table ([`after_test`][] prints one)."""
        with removed_unless_started(self.trainer, self.run_started):
            self.trainer.test(model, verbose=False, **kwargs)

    def predict(self, model: LightningModule, **kwargs: Any) -> None:
        """``Trainer.predict``."""
        with removed_unless_started(self.trainer, self.run_started):
            self.trainer.predict(model, **kwargs)

    def after_test(self) -> None:
        """Print one summary table and write ``test_results.json`` beside the logs."""
        # trainer.log_dir is a collective call under DDP: every rank must ask for it.
        directory = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        if self.trainer.is_global_zero:
            results = self.model.results["test"]
            print(f"\n{summary_table(results)}")
            data = self.datamodule
            contract = {
                "input_size": list(data.image_size),
                "mean": list(data.mean),
                "std": list(data.std),
                "interpolation": data.interpolation,
            }
            # The resolved file, not the argument ("last", "best" or a path).
            ckpt_path = self.trainer.ckpt_path
            checkpoint = Path(ckpt_path) if ckpt_path else None
            path = write_results(results, directory, checkpoint, contract, data.dataset_name)
            print(f"\nresults written to {path}")


def _data_defaults(class_path: object) -> dict[str, Any]:
    """The defaults of the contract arguments of the datamodule class ``class_path`` names."""
    found = import_zoo_class(class_path)
    data_class = (
        found if found is not None and issubclass(found, VIReIDDataModule) else VIReIDDataModule
    )
    defaults: dict[str, Any] = {}
    for cls in reversed(data_class.__mro__):
        if "__init__" not in vars(cls) or not issubclass(cls, VIReIDDataModule):
            continue
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if name in CONTRACT_ARGUMENTS and parameter.default is not inspect.Parameter.empty:
                defaults[name] = parameter.default
    return defaults


def run_lightning(argv: Sequence[str] | None) -> None:
    """Run a Lightning command (fit / validate / test / predict); ``None`` reads sys.argv."""
    VIReIDCLI(
        VIReIDModule,
        VIReIDDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=None if argv is None else list(argv),
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False, "allow_abbrev": False},
    )
