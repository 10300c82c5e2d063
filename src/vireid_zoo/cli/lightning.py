"""The Lightning commands: ``vireid-zoo fit | validate | test | predict``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningCLI

from vireid_zoo.cli.recipes import resolve_config_arguments
from vireid_zoo.data import VIReIDDataModule
from vireid_zoo.evaluation.results import write_results
from vireid_zoo.hub.checkpoints import read_checkpoint, reconcile_network
from vireid_zoo.models.base import VIReIDModule

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


class VIReIDCLI(LightningCLI):
    """LightningCLI whose model takes its number of classes from the datamodule.

    ``validate``, ``test`` and ``predict`` refuse to run without ``--ckpt_path``: the
    standard scripts' worst trap is silently scoring an untrained model when a checkpoint
    name is wrong. Pass ``--allow_untrained true`` to score random weights on purpose.
    """

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

        Lightning would replace the command's model arguments by the checkpoint's without a
        word. Here the checkpoint must hold the model the command asks for (module, network,
        trunk and every network argument the command sets; evaluation choices ``test_*``
        are the command's), and network arguments the command leaves at their default are
        the checkpoint's, each reported on stderr. Module arguments (recipe, evaluation
        options) are the command's.
        """
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path is None or not Path(ckpt_path).is_file():
            return
        content = read_checkpoint(Path(ckpt_path))
        model = self.config[subcommand]["model"]
        effective, notes = reconcile_network(model.as_dict(), content, str(ckpt_path))
        if effective is not None:
            for key, value in effective.items():
                model.init_args.network.init_args[key] = value
        for note in notes:
            print(f"vireid-zoo {subcommand}: network argument {note}", file=sys.stderr)

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

    def after_test(self) -> None:
        """Print every task's table and write ``test_results.json`` beside the logs."""
        # trainer.log_dir is a collective call under DDP: every rank must ask for it.
        directory = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        if self.trainer.is_global_zero:
            results = self.model.results["test"]
            for result in results.values():
                print(f"\n{result.table()}")
            # The resolved file, not the argument ("last", "best" or a path).
            ckpt_path = self.trainer.ckpt_path
            path = write_results(results, directory, Path(ckpt_path) if ckpt_path else None)
            print(f"\nresults written to {path}")


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
