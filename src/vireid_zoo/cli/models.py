"""Model commands: ``vireid-zoo demo | publish | export | search | convert``."""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vireid_zoo.cli.data import image_size
from vireid_zoo.cli.lightning import run_lightning
from vireid_zoo.evaluation.results import RESULTS_NAME
from vireid_zoo.hub.publish import publish

if TYPE_CHECKING:
    from vireid_zoo.core.records import Modality


def _demo(args: argparse.Namespace) -> None:
    from vireid_zoo.cli.demo import SIZES, run_demo

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
    with tempfile.TemporaryDirectory() as scratch:
        results = args.results
        if args.config is not None:  # measure the checkpoint now, with that config
            run_lightning(
                [
                    "test",
                    "--config",
                    str(args.config),
                    "--ckpt_path",
                    str(args.checkpoint),
                    "--trainer.logger",
                    "false",
                    "--trainer.default_root_dir",
                    scratch,
                ]
            )
            results = Path(scratch) / RESULTS_NAME
        where = publish(
            args.checkpoint,
            args.repo_id,
            results=results,
            output=args.output,
            private=args.private,
            license=args.license,
        )
    print(f"published {args.checkpoint} as {args.repo_id}: {where}")


def _export(args: argparse.Namespace) -> None:
    from vireid_zoo.deploy.export import to_onnx
    from vireid_zoo.deploy.inference import load_inference_network

    single_file = args.output.suffix == ".onnx"
    if single_file and args.modality == "both":
        raise ValueError(
            f"--output {args.output} names one file, but --modality both writes two: give a "
            "folder, or --modality visible / infrared"
        )
    net = load_inference_network(args.model, allow_untrained=args.allow_untrained)
    modalities: tuple[Modality, ...] = (
        ("visible", "infrared") if args.modality == "both" else (args.modality,)
    )
    for modality in modalities:
        path = args.output if single_file else args.output / f"{net.architecture}_{modality}.onnx"
        # to_onnx compares onnxruntime with PyTorch before it writes anything.
        path = to_onnx(
            net,
            path,
            modality=modality,
            image_size=args.image_size,
            opset=args.opset,
            atol=args.atol,
        )
        print(
            f"{path}: {modality} embedding ({net.embedding_dim}-d), onnxruntime matches "
            f"PyTorch within atol={args.atol:g}"
        )


def _search(args: argparse.Namespace) -> None:
    from vireid_zoo.deploy.inference import load_inference_network
    from vireid_zoo.deploy.retrieval import plot_search, search

    net = load_inference_network(args.model, allow_untrained=args.allow_untrained)
    result = search(
        net,
        args.query,
        args.gallery,
        query_modality=args.query_modality,
        gallery_modality=args.gallery_modality,
        image_size=args.image_size,
        top_k=args.top_k,
        batch_size=args.batch_size,
        device=args.device,
    )
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(("query", "rank", "gallery", "score"))
    for index, query in enumerate(result.query_paths):
        for rank, (path, score) in enumerate(result.ranked(index), start=1):
            writer.writerow((query, rank, path, f"{score:.6f}"))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table.getvalue())
        print(f"ranking of {len(result.query_paths)} queries written to {args.output}")
    else:
        print(table.getvalue(), end="")
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        print(f"ranked lists drawn in {plot_search(result, args.plot, args.max_queries)}")


def _convert(args: argparse.Namespace) -> None:
    from vireid_zoo.hub.conversion import convert_checkpoint, write_test_checkpoint

    if args.output.exists() and (not args.output.is_dir() or any(args.output.iterdir())):
        raise FileExistsError(f"--output {args.output} exists and is not an empty folder")
    overrides = {"pooling": args.pooling, "test_feature": args.test_feature}
    if args.dataset:
        overrides["dataset"] = args.dataset
    net = convert_checkpoint(args.path, args.codebase, **overrides)
    net.save_pretrained(args.output)
    cfg = net.pretrained_cfg
    source = cfg.source if cfg and cfg.source else {}
    reported = ", ".join(
        f"{name} {100 * value:.2f}%" for name, value in source.get("reported_metrics", {}).items()
    )
    print(
        f"converted {args.path} (codebase {args.codebase}, epoch {source.get('epoch')}, "
        f"sha256 {source.get('sha256')}) to {net.architecture}: "
        + ", ".join(f"{k}={v!r}" for k, v in {**source["variant"], **source["chosen"]}.items())
        + f"\n{source.get('note', '')}"
        + f"\nreported by {source.get('reported_by')}, not measured by vireid-zoo: "
        + (reported or "none stored")
        + f"\nwrote {args.output} (model.safetensors, config.json, README.md); load it with "
        f"vireid_zoo.create_model('local-dir:{args.output}')"
    )
    if args.checkpoint:
        path = write_test_checkpoint(net, args.checkpoint)
        print(
            f"wrote {path}: measure it with 'vireid-zoo test --config CONFIG --ckpt_path "
            f"{path}', then 'vireid-zoo publish {path} --results test_results.json'"
        )


def _add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="hf-hub:ORG/NAME[@REV], local-dir:PATH, a saved folder, a *.ckpt checkpoint or a "
        "published name",
    )
    parser.add_argument(
        "--allow-untrained",
        action="store_true",
        help="accept an architecture name (random weights)",
    )
    parser.add_argument("--image-size", type=image_size, help="HxW (default: the model's)")


def add_commands(commands: Any) -> None:
    """Add the model subcommands to ``commands`` (an argparse subparsers action)."""
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
    publisher.add_argument(
        "--license", help="licence of the weights (default: apache-2.0; converted: 'other')"
    )
    publisher.set_defaults(run=_publish)

    exporter = commands.add_parser("export", help="export the embedding to ONNX (parity-checked)")
    _add_model_argument(exporter)
    exporter.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        help="a folder (one file per modality) or, for one modality, a .onnx file",
    )
    exporter.add_argument("--modality", choices=("visible", "infrared", "both"), default="both")
    exporter.add_argument("--opset", type=int, default=17)
    exporter.add_argument("--atol", type=float, default=1e-4, help="parity tolerance")
    exporter.set_defaults(run=_export)

    searcher = commands.add_parser("search", help="rank a gallery folder for each query image")
    _add_model_argument(searcher)
    searcher.add_argument("--query", type=Path, required=True, help="image folder or file")
    searcher.add_argument("--gallery", type=Path, required=True, help="image folder or file")
    searcher.add_argument("--query-modality", choices=("visible", "infrared"), required=True)
    searcher.add_argument("--gallery-modality", choices=("visible", "infrared"), required=True)
    searcher.add_argument("--top-k", type=int, default=10)
    searcher.add_argument("--batch-size", type=int, default=64)
    searcher.add_argument("--device", default="cpu")
    searcher.add_argument("--output", type=Path, help="CSV of query,rank,gallery,score")
    searcher.add_argument("--plot", type=Path, help="PNG of the ranked lists")
    searcher.add_argument("--max-queries", type=int, default=8, help="rows in the picture")
    searcher.set_defaults(run=_search)

    converter = commands.add_parser(
        "convert", help="convert a checkpoint of another codebase into a zoo folder"
    )
    converter.add_argument("path", type=Path, help="the checkpoint (e.g. a .t file of agw)")
    converter.add_argument(
        "--codebase", default="agw", help="the codebase that wrote it (known: agw)"
    )
    converter.add_argument(
        "--output", "-o", type=Path, required=True, help="the zoo folder to write"
    )
    converter.add_argument(
        "--pooling",
        choices=("gem", "avg"),
        default="gem",
        help="agw: the pooling it was trained with, which the weights do not tell: gem "
        "(--method agw, the reference default) or avg (--method base)",
    )
    converter.add_argument(
        "--dataset", help="training dataset to record (default: from the file name, if any)"
    )
    converter.add_argument("--test-feature", choices=("bn", "pool"), default="bn")
    converter.add_argument(
        "--checkpoint",
        type=Path,
        help="also write a Lightning checkpoint of it, for 'vireid-zoo test' and 'publish'",
    )
    converter.set_defaults(run=_convert)
