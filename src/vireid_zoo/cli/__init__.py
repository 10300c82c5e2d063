"""The ``vireid-zoo`` command.

Subcommands:
    fit, validate, test, predict
                Lightning's commands (LightningCLI): ``vireid-zoo fit --config CONFIG``.
    demo        Train and evaluate a small AGW on synthetic data, on the CPU.
    publish     Push a trained checkpoint's weights, config and card to the Hub.
    export      Export a network's embedding to ONNX, with a parity check.
    search      Rank a gallery folder for each query image.
    recipe      List the packaged recipes, print one or copy it to edit.
    convert     Convert a checkpoint of another codebase (agw) into a zoo folder.
    synthesize  Write a small synthetic dataset in a real dataset's on-disk layout.
    inspect     Validate a dataset folder and print its counts and protocol sizes.
    parse       Write human-parsing maps of a dataset with a TorchScript / ONNX parser.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from lightning.pytorch.utilities.exceptions import SIGTERMException

from vireid_zoo.cli import data, models, recipes
from vireid_zoo.cli.lightning import LIGHTNING_COMMANDS, VIReIDCLI, run_lightning
from vireid_zoo.core.weights import WeightsMismatchError
from vireid_zoo.data.errors import DatasetFormatError, DatasetNotFoundError, ImageDecodeError
from vireid_zoo.models.checkpointing import TrainingInterrupted

__all__ = ["VIReIDCLI", "build_parser", "main", "one_paragraph", "run_lightning"]

USER_ERRORS = (
    DatasetNotFoundError,
    DatasetFormatError,
    ImageDecodeError,
    WeightsMismatchError,
    FileExistsError,
    FileNotFoundError,
    ImportError,
    ValueError,
)

NOISE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Expected a <class 'NoneType'>",
    "Given value type:",
    "Given value:",
)


def one_paragraph(message: str) -> str:
    """Condense a configuration error into one paragraph.

    jsonargparse reports a bad ``model``/``data`` entry as a union check against every
    candidate type; only the reasons the intended class gave matter.
    """
    lines = [line.strip().lstrip("- ").strip() for line in message.splitlines()]
    kept = [line for line in lines if line and not line.startswith(NOISE)]
    return " ".join(kept)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the non-Lightning subcommands."""
    parser = argparse.ArgumentParser(
        prog="vireid-zoo",
        description="Visible-infrared person re-identification: train, evaluate, inspect data.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in LIGHTNING_COMMANDS:
        commands.add_parser(
            command, add_help=False, help=f"Lightning's {command} (vireid-zoo {command} --help)"
        )
    models.add_commands(commands)
    recipes.add_command(commands)
    data.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vireid-zoo`` console script.

    Errors caused by the user's input (a missing dataset, a malformed file, a checkpoint of
    another model, ...) are reported in one paragraph, without a traceback, with status 2.
    A command stopped by SIGINT or SIGTERM returns 130 or 143, as a shell reports a
    process ended by that signal.
    """
    given = list(sys.argv[1:] if argv is None else argv)
    command = given[0] if given else None
    try:
        if command in LIGHTNING_COMMANDS:
            run_lightning(argv)
        else:
            args = build_parser().parse_args(given)
            args.run(args)
    except argparse.ArgumentError as error:
        print(
            f"vireid-zoo {command}: configuration error: {one_paragraph(str(error))} "
            f"(see 'vireid-zoo {command} --help' and '--print_config')",
            file=sys.stderr,
        )
        return 2
    except USER_ERRORS as error:
        print(f"vireid-zoo {command}: error: {one_paragraph(str(error))}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stopped:
        if not stopped.reported:
            print(f"vireid-zoo {command}: {stopped}", file=sys.stderr)
        return stopped.exit_code
    except SIGTERMException:  # Lightning stopped on SIGTERM (no ResumableCheckpoint to report)
        print(f"vireid-zoo {command}: stopped by SIGTERM", file=sys.stderr)
        return 128 + int(signal.SIGTERM)
    return 0
