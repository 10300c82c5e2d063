"""The ``vireid-zoo`` command.

Subcommands:
    synthesize  Write a small synthetic dataset in a real dataset's on-disk layout.
    inspect     Validate a dataset folder and print its counts and protocol sizes.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from vireid_zoo.data import LLCM, SYSUMM01, RegDB
from vireid_zoo.data.records import DatasetFormatError, DatasetNotFoundError
from vireid_zoo.data.synthetic import make_llcm, make_regdb, make_sysu_mm01

DATASETS = ("sysu_mm01", "regdb", "llcm")


def _image_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 128x64, got {text!r}"
        ) from None
    return height, width


def _synthesize(args: argparse.Namespace) -> None:
    common = {"image_size": args.image_size, "seed": args.seed}
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the data subcommands."""
    parser = argparse.ArgumentParser(prog="vireid-zoo", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

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
    synth.set_defaults(run=_synthesize)

    inspect = commands.add_parser("inspect", help="validate a dataset folder and count it")
    inspect.add_argument("dataset", choices=DATASETS)
    inspect.add_argument("root", type=Path)
    inspect.add_argument("--trial", type=int, default=1, help="RegDB split, 1..10")
    inspect.set_defaults(run=_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vireid-zoo`` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (DatasetNotFoundError, DatasetFormatError, FileExistsError, ValueError) as error:
        print(f"vireid-zoo {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
