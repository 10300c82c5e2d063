"""Dataset commands: ``vireid-zoo synthesize | inspect | parse``."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from vireid_zoo.data import LLCM, SYSUMM01, RegDB
from vireid_zoo.data.errors import DatasetCountWarning, DatasetFormatError
from vireid_zoo.data.synthetic import make_llcm, make_regdb, make_sysu_mm01

DATASETS = ("sysu_mm01", "regdb", "llcm")


def image_size(text: str) -> tuple[int, int]:
    """Parse ``HEIGHTxWIDTH`` (e.g. ``128x64``) for argparse."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 128x64, got {text!r}"
        ) from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"image sides must be >= 1 pixel, got {text!r}")
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
    reader: SYSUMM01 | RegDB | LLCM
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.dataset == "sysu_mm01":
            reader = sysu = SYSUMM01(args.root)
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
            reader = regdb = RegDB(args.root, args.trial)
            train = regdb.train_samples()
            rows += [
                (f"training images (trial {args.trial})", len(train)),
                ("training identities", len({s.pid for s in train})),
                ("visible test images", len(regdb.query_samples("visible_to_thermal"))),
                ("thermal test images", len(regdb.query_samples("thermal_to_visible"))),
            ]
        else:
            reader = llcm = LLCM(args.root)
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
    if args.verify:
        _verify(reader, args)


def _verify(reader: SYSUMM01 | RegDB | LLCM, args: argparse.Namespace) -> None:
    """Decode every image and check the identity lists; list every problem, then fail."""
    from vireid_zoo.data.verify import verify_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetCountWarning)  # the counts are reported above
        found = verify_dataset(reader, workers=args.workers)
    print(f"verified: {found.images:,} images decoded")
    for path, reason in found.bad_images:
        print(f"  bad image: {path}: {reason}")
    for error in found.errors:
        print(f"  error: {error}")
    for note in found.notes:
        print(f"  note: {note}")
    if not found.ok:
        raise DatasetFormatError(
            f"{args.dataset} at {args.root} failed verification: "
            f"{len(found.bad_images)} of {found.images:,} images cannot be decoded and "
            f"{len(found.errors)} identity-list errors (each listed above). Replace bad images "
            "with intact copies from the original archive and fix the lists, then run "
            "'vireid-zoo inspect --verify' again."
        )


def _parse(args: argparse.Namespace) -> None:
    from vireid_zoo.cli.parse import parse_dataset

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


def add_commands(commands: Any) -> None:
    """Add the dataset subcommands to ``commands`` (an argparse subparsers action)."""
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
    synth.add_argument("--image-size", type=image_size, default=(128, 64), help="HxW")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--parsing-root", type=Path, help="also write the true part maps here")
    synth.set_defaults(run=_synthesize)

    inspect = commands.add_parser("inspect", help="validate a dataset folder and count it")
    inspect.add_argument("dataset", choices=DATASETS)
    inspect.add_argument("root", type=Path)
    inspect.add_argument("--trial", type=int, default=1, help="RegDB split, 1..10")
    inspect.add_argument(
        "--verify",
        action="store_true",
        help="also decode every image and check the identity lists (lists every problem)",
    )
    inspect.add_argument("--workers", type=int, help="decoding threads (default: CPUs, <= 8)")
    inspect.set_defaults(run=_inspect)

    parse = commands.add_parser("parse", help="write human-parsing maps with a parser file")
    parse.add_argument("dataset", choices=(*DATASETS, "folder"), help="folder: every image")
    parse.add_argument("root", type=Path, help="the dataset root")
    parse.add_argument("--parser", type=Path, required=True, help="TorchScript or .onnx file")
    parse.add_argument("--output", type=Path, required=True, help="the parsing root to write")
    parse.add_argument("--image-size", type=image_size, default=(512, 256), help="parser HxW")
    parse.add_argument("--batch-size", type=int, default=16)
    parse.add_argument("--device", default="cpu", help="torch device of the parser")
    parse.add_argument("--overwrite", action="store_true", help="replace a non-empty output")
    parse.set_defaults(run=_parse)
