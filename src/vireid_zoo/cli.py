"""The ``vireid-zoo`` command.

Subcommands:
    fit, validate, test, predict
                Lightning's commands (LightningCLI): ``vireid-zoo fit --config CONFIG``.
    demo        Train and evaluate a small AGW on synthetic data, on the CPU.
    synthesize  Write a small synthetic dataset in a real dataset's on-disk layout.
    inspect     Validate a dataset folder and print its counts and protocol sizes.
    parse       Write human-parsing maps of a dataset with a TorchScript / ONNX parser.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningCLI

from vireid_zoo.data import LLCM, SYSUMM01, RegDB, VIReIDDataModule
from vireid_zoo.data.records import DatasetFormatError, DatasetNotFoundError, ImageDecodeError
from vireid_zoo.data.synthetic import make_llcm, make_regdb, make_sysu_mm01
from vireid_zoo.hub import WeightsMismatchError
from vireid_zoo.models.base import CheckpointMismatchError, VIReIDModule
from vireid_zoo.publish import publish, write_results

DATASETS = ("sysu_mm01", "regdb", "llcm")
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
USER_ERRORS = (
    DatasetNotFoundError,
    DatasetFormatError,
    ImageDecodeError,
    CheckpointMismatchError,
    WeightsMismatchError,
    FileExistsError,
    FileNotFoundError,
    ValueError,
)


class VIReIDCLI(LightningCLI):
    """LightningCLI whose model takes its number of classes from the datamodule.

    ``validate``, ``test`` and ``predict`` refuse to run without ``--ckpt_path``: the
    standard scripts' worst trap is silently scoring an untrained model when a checkpoint
    name is wrong. Pass ``--allow_untrained true`` to score random weights on purpose.
    """

    def add_arguments_to_parser(self, parser: Any) -> None:
        """Link ``data.num_classes`` to the model, so it is never typed twice."""
        parser.link_arguments(
            "data.num_classes", "model.init_args.num_classes", apply_on="instantiate"
        )
        parser.add_argument(
            "--allow_untrained",
            type=bool,
            default=False,
            help="validate/test/predict without --ckpt_path (scores the initial weights)",
        )

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
            ckpt_path = self.config[self.subcommand].get("ckpt_path")
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


def _image_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 128x64, got {text!r}"
        ) from None
    return height, width


def _synthesize(args: argparse.Namespace) -> None:
    common = {"image_size": args.image_size, "seed": args.seed, "parsing_root": args.parsing_root}
    if args.dataset == "sysu_mm01":
        root = make_sysu_mm01(
            args.root,
            num_train_ids=args.ids,
            num_test_ids=max(2, args.ids // 2),
            images_per_camera=args.images,
            **common,
        )
    elif args.dataset == "regdb":
        root = make_regdb(args.root, num_ids=args.ids, images_per_modality=args.images, **common)
    else:
        root = make_llcm(
            args.root,
            num_train_ids=args.ids,
            num_test_ids=max(2, args.ids // 2),
            images_per_camera=args.images,
            **common,
        )
    print(f"wrote a synthetic {args.dataset} dataset to {root}")


def _inspect(args: argparse.Namespace) -> None:
    rows: list[tuple[str, int]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.dataset == "sysu_mm01":
            sysu = SYSUMM01(args.root)
            train = sysu.train_samples()
            rows += [
                ("training identities", len({s.pid for s in train})),
                ("visible training images", sum(s.modality == "visible" for s in train)),
                ("infrared training images", sum(s.modality == "infrared" for s in train)),
                ("query images (infrared)", len(sysu.query_samples())),
            ]
            for mode in ("all", "indoor"):
                rows.append((f"{mode}-search gallery pool", len(sysu.gallery_pool(mode))))
                rows.append(
                    (f"{mode}-search single-shot gallery", len(sysu.gallery_trial(0, mode)))
                )
        elif args.dataset == "regdb":
            regdb = RegDB(args.root, args.trial)
            train = regdb.train_samples()
            rows += [
                (f"training images (trial {args.trial})", len(train)),
                ("training identities", len({s.pid for s in train})),
                ("visible test images", len(regdb.query_samples("visible_to_thermal"))),
                ("thermal test images", len(regdb.query_samples("thermal_to_visible"))),
            ]
        else:
            llcm = LLCM(args.root)
            train = llcm.train_samples()
            rows += [
                ("training identities", len({s.pid for s in train})),
                ("training images", len(train)),
                ("IR-to-VIS queries", len(llcm.query_samples("ir_to_vis"))),
                ("IR-to-VIS single-shot gallery", len(llcm.gallery_trial(0, "ir_to_vis"))),
                ("VIS-to-IR queries", len(llcm.query_samples("vis_to_ir"))),
                ("VIS-to-IR single-shot gallery", len(llcm.gallery_trial(0, "vis_to_ir"))),
            ]
    width = max(len(name) for name, _ in rows)
    print(f"{args.dataset} at {args.root}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>7,}")
    for warning in caught:
        print(f"  warning: {warning.message}")


def _parse(args: argparse.Namespace) -> None:
    from vireid_zoo.parse import parse_dataset

    count = parse_dataset(
        args.dataset,
        args.root,
        args.parser,
        args.output,
        image_size=args.image_size,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        device=args.device,
    )
    print(f"wrote {count} parsing maps to {args.output}")


def _demo(args: argparse.Namespace) -> None:
    from vireid_zoo.demo import SIZES, run_demo

    preset = SIZES[args.size]
    print(
        f"vireid-zoo demo ({args.size}): synthetic SYSU-MM01 with {preset.train_ids} training "
        f"and {preset.test_ids} test identities at {preset.image_size[0]}x"
        f"{preset.image_size[1]}, AGW (ResNet-18) trained on the CPU, then scored under the "
        "SYSU-MM01 protocol (10 trials)."
    )
    result = run_demo(
        args.output,
        size=args.size,
        epochs=args.epochs,
        max_minutes=args.minutes,
        cache_dir=args.cache_dir,
        seed=args.seed,
    )
    print()
    print(result.table)
    print(f"\nranked list: {result.ranked_list}\nCMC curves:  {result.cmc_curve}")
    print(f"finished in {result.seconds / 60:.1f} minutes")


def _publish(args: argparse.Namespace) -> None:
    where = publish(
        args.checkpoint,
        args.repo_id,
        results=args.results,
        config=args.config,
        output=args.output,
        private=args.private,
        license=args.license,
    )
    print(f"published {args.checkpoint} as {args.repo_id}: {where}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the data subcommands."""
    parser = argparse.ArgumentParser(
        prog="vireid-zoo",
        description="Visible-infrared person re-identification: train, evaluate, inspect data.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in LIGHTNING_COMMANDS:
        commands.add_parser(
            command, add_help=False, help=f"Lightning's {command} (vireid-zoo {command} --help)"
        )

    demo = commands.add_parser("demo", help="train and evaluate a small AGW on synthetic data")
    demo.add_argument("--output", type=Path, default=Path("outputs/demo"), help="picture folder")
    demo.add_argument("--size", choices=("tiny", "small", "large"), default="small")
    demo.add_argument("--epochs", type=int, help="training epochs (default: the size's)")
    demo.add_argument("--minutes", type=float, default=6.0, help="cap on the training time")
    demo.add_argument("--cache-dir", type=Path, help="dataset cache (~/.cache/vireid-zoo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    publisher = commands.add_parser(
        "publish", help="push a trained checkpoint's weights, config and card to the Hub"
    )
    publisher.add_argument("checkpoint", type=Path, help="checkpoint written by 'fit'")
    publisher.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    measured = publisher.add_mutually_exclusive_group()
    measured.add_argument("--results", type=Path, help="test_results.json of the checkpoint")
    measured.add_argument("--config", type=Path, help="a test config: evaluate it now")
    publisher.add_argument("--output", type=Path, help="write the folder here, do not push")
    publisher.add_argument("--private", action="store_true")
    publisher.add_argument("--license", default="apache-2.0")
    publisher.set_defaults(run=_publish)

    synth = commands.add_parser("synthesize", help="write a synthetic dataset")
    synth.add_argument("dataset", choices=DATASETS)
    synth.add_argument("root", type=Path, help="folder to create (must not exist or be empty)")
    synth.add_argument(
        "--ids",
        type=int,
        default=32,
        help="identities: SYSU-MM01 train (+ 4 val), LLCM train, RegDB all",
    )
    synth.add_argument("--images", type=int, default=4, help="images per camera / modality")
    synth.add_argument("--image-size", type=_image_size, default=(128, 64), help="HxW")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--parsing-root", type=Path, help="also write the true part maps here")
    synth.set_defaults(run=_synthesize)

    inspect = commands.add_parser("inspect", help="validate a dataset folder and count it")
    inspect.add_argument("dataset", choices=DATASETS)
    inspect.add_argument("root", type=Path)
    inspect.add_argument("--trial", type=int, default=1, help="RegDB split, 1..10")
    inspect.set_defaults(run=_inspect)

    parse = commands.add_parser("parse", help="write human-parsing maps with a parser file")
    parse.add_argument("dataset", choices=(*DATASETS, "folder"), help="folder: every image")
    parse.add_argument("root", type=Path, help="the dataset root")
    parse.add_argument("--parser", type=Path, required=True, help="TorchScript or .onnx file")
    parse.add_argument("--output", type=Path, required=True, help="the parsing root to write")
    parse.add_argument("--image-size", type=_image_size, default=(512, 256), help="parser HxW")
    parse.add_argument("--batch-size", type=int, default=16)
    parse.add_argument("--device", default="cpu", help="torch device of the parser")
    parse.add_argument("--overwrite", action="store_true", help="replace a non-empty output")
    parse.set_defaults(run=_parse)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vireid-zoo`` console script.

    Errors caused by the user's input (a missing dataset, a malformed file, a checkpoint of
    another model, ...) are reported in one paragraph, without a traceback.
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
