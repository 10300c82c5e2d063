"""Every method of the zoo on the demo's synthetic data and budget, next to AGW.

For each method, in a fresh process: the demo's synthetic SYSU-MM01 (``--size``, cached),
the method's LightningModule with the demo's CPU recipe (``vireid_zoo.cli.demo.demo_recipe``:
ResNet-18 without ImageNet weights, Adam, the size's epochs), ``Trainer.fit``, then the
SYSU-MM01 test protocol (all-search and indoor, 10 trials). Prints the trained mAP and
Rank-1 (mean ± std over trials), training images/s (visible + infrared, data loading
excluded) and the process's peak memory, each relative to AGW. A method that trains with
human-parsing maps (``requires_parsing = True``: CSCL) gets the same images written
together with their true part maps (``vireid_zoo.cli.demo.synthetic_sysu_with_parsing``).

Usage: ``python benchmarks/compare_methods.py [--size small] [--methods agw,mhn]
[--epochs N] [--set ARG=VALUE ...] [--no-reference]``. ``--set`` passes a constructor
argument to every method but the AGW reference (an ablation, e.g. ``--methods emif --set
gaussian_divergence=kl``); VALUE is read as JSON when it parses, else as a string.
``--no-reference`` trains only the listed methods (for an ablation whose AGW row is known:
the ``x AGW`` columns are then left empty). ``--save DIR`` keeps each trained network in
``DIR/<method>`` (``save_pretrained``), for probes such as ``benchmarks/probe_trained.py``.
On a 2-core CPU the ``small`` size takes about 6 minutes per method.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

import torch
from lightning.pytorch import seed_everything

sys.path.insert(0, os.path.dirname(__file__))
from measure import TrainingThroughput, peak_memory_mb, run_isolated  # noqa: E402
from vireid_zoo.cli.demo import (
    SIZES,
    cpu_trainer,
    default_cache_dir,
    demo_datamodule,
    demo_recipe,
    synthetic_sysu,
    synthetic_sysu_with_parsing,
)

METHODS = {
    "agw": "vireid_zoo.models.agw.AGWModule",
    "mhn": "vireid_zoo.models.mhn.MHNModule",
    "emif": "vireid_zoo.models.emif.EMIFModule",
    "cscl": "vireid_zoo.models.cscl.CSCLModule",
}
"""Method name -> LightningModule class path; every method is trained alike."""


def parse_setting(text: str) -> tuple[str, object]:
    """``ARG=VALUE`` -> (ARG, VALUE read as JSON, or the string itself)."""
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected ARG=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def worker(
    method: str,
    size: str,
    epochs: int | None,
    seed: int,
    settings: dict[str, object],
    save: str | None = None,
) -> dict[str, object]:
    preset = SIZES[size]
    epochs = epochs or preset.epochs
    module_path, class_name = METHODS[method].rsplit(".", 1)
    module_class = getattr(importlib.import_module(module_path), class_name)
    parsing_root = None
    if getattr(module_class, "requires_parsing", False):  # trains with part maps (CSCL)
        root, parsing_root = synthetic_sysu_with_parsing(preset, default_cache_dir(), seed)
    else:
        root = synthetic_sysu(preset, default_cache_dir(), seed)
    seed_everything(seed, verbose=False)
    dm = demo_datamodule(preset, root, seed, parsing_root)
    module = demo_recipe(module_class, dm.num_classes, epochs, **settings)
    meter = TrainingThroughput(warmup=2)
    cpu_trainer(False, max_epochs=epochs, callbacks=[meter]).fit(module, datamodule=dm)
    cpu_trainer(False).test(module, datamodule=dm, verbose=False)
    results = module.results["test"]
    if save is not None:
        module.net.save_pretrained(os.path.join(save, method))
    return {
        "scores": {task: {"mean": r.mean, "std": r.std} for task, r in results.items()},
        "images_per_second": meter.images_per_second,
        "peak_mb": peak_memory_mb(torch.device("cpu")),
        "parameters": sum(p.numel() for p in module.net.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        dest="settings",
        type=parse_setting,
        action="append",
        default=[],
        metavar="ARG=VALUE",
        help="constructor argument for every method but the AGW reference (repeatable)",
    )
    parser.add_argument("--save", metavar="DIR", help="keep each trained network in DIR/<method>")
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="do not train the AGW reference unless listed (no 'x AGW' ratios)",
    )
    args = parser.parse_args()
    methods = args.methods.split(",")
    if args.worker:
        settings = dict(args.settings) if methods[0] != "agw" else {}
        report = worker(methods[0], args.size, args.epochs, args.seed, settings, args.save)
        print(json.dumps(report))
        return
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; known: {sorted(METHODS)}")
    if "agw" not in methods and not args.no_reference:
        methods.insert(0, "agw")
    preset = SIZES[args.size]
    print(
        f"demo size {args.size!r}: synthetic SYSU-MM01, {preset.train_ids} training ids, "
        f"{preset.test_ids} test ids, {preset.image_size[0]}x{preset.image_size[1]}, "
        f"{args.epochs or preset.epochs} epochs, ResNet-18 without ImageNet weights, CPU "
        f"({torch.get_num_threads()} threads)"
    )
    extra = ["--size", args.size, "--seed", str(args.seed)]
    extra += ["--epochs", str(args.epochs)] if args.epochs else []
    extra += ["--save", args.save] if args.save else []
    for name, value in args.settings:
        extra += ["--set", f"{name}={json.dumps(value)}"]
        print(f"every method but AGW: {name}={value!r}")
    reports = {m: run_isolated(__file__, "--methods", m, *extra) for m in methods}
    base = reports.get("agw")
    header = (
        f"{'method':<8}{'all mAP':>15}{'all R1':>15}{'indoor mAP':>15}{'params M':>10}"
        f"{'img/s':>8}{'x AGW':>7}{'peak MB':>9}{'x AGW':>7}"
    )
    print(header)
    print("-" * len(header))
    for method, report in reports.items():
        scores = report["scores"]
        cells = "".join(
            f"{100 * scores[task]['mean'][key]:>8.2f} ±{100 * scores[task]['std'][key]:>5.2f}"
            for task, key in (
                ("sysu_mm01/all", "mAP"),
                ("sysu_mm01/all", "rank1"),
                ("sysu_mm01/indoor", "mAP"),
            )
        )
        speed = memory = "-"
        if base is not None:
            speed = f"{report['images_per_second'] / base['images_per_second']:.2f}"
            memory = f"{report['peak_mb'] / base['peak_mb']:.2f}"
        print(
            f"{method:<8}{cells}{report['parameters'] / 1e6:>10.2f}"
            f"{report['images_per_second']:>8.1f}{speed:>7}{report['peak_mb']:>9.0f}"
            f"{memory:>7}"
        )


if __name__ == "__main__":
    main()
