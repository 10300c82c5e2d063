"""Train and test AGW on SYSU-MM01 from Python, with the Lightning ``Trainer`` (no CLI).

The same run as ``vireid-zoo fit`` + ``vireid-zoo test``, written out: a datamodule, the
method's LightningModule and a ``Trainer``. With ``--root`` it trains the reference
recipe (ResNet-50 from ImageNet weights, SGD, 80 epochs) on a real SYSU-MM01; without it,
on a small synthetic SYSU-MM01 written in the real layout, with a small network and the
CPU recipe of ``vireid-zoo demo``:

    python examples/train_agw.py                                  # synthetic, a few minutes
    python examples/train_agw.py --root /data/SYSU-MM01 --accelerator gpu --devices 4
    python examples/train_agw.py --smoke                          # seconds: checks the code

The test scores every task of the datamodule (SYSU-MM01 all-search and indoor-search, 10
gallery trials each) and prints a per-trial table of each; the full results are in
``module.results["test"]``. ``--smoke`` trains two steps of a ResNet-18 on tiny images
and tests on one gallery trial: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lightning.pytorch import Trainer, seed_everything

from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.data.synthetic import make_sysu_mm01
from vireid_zoo.models import AGW, AGWModule


def build(args: argparse.Namespace, scratch: Path) -> tuple[SYSUMM01DataModule, AGWModule]:
    """The datamodule and the module of the run ``args`` describe."""
    if args.root is not None:  # the reference recipe on the real dataset
        dm = SYSUMM01DataModule(args.root, num_workers=args.workers)
        network = AGW(dm.num_classes, arch=args.arch or "resnet50", backbone_pretrained=True)
        return dm, AGWModule(network)
    tiny = args.smoke
    root = make_sysu_mm01(
        scratch / "SYSU-MM01",
        num_train_ids=4 if tiny else 24,
        num_val_ids=2 if tiny else 4,
        num_test_ids=3 if tiny else 12,
        images_per_camera=2 if tiny else 3,
        image_size=(32, 16) if tiny else (64, 32),
    )
    dm = SYSUMM01DataModule(
        root,
        image_size=(32, 16) if tiny else (64, 32),
        num_identities=2 if tiny else 8,
        num_instances=2 if tiny else 4,
        modes=("all",) if tiny else ("all", "indoor"),
        trials=1 if tiny else 10,
        num_workers=0 if tiny else args.workers,
        check_counts=False,  # a synthetic dataset is not the published size
    )
    module = AGWModule(
        AGW(dm.num_classes, arch=args.arch or "resnet18"),  # no ImageNet weights (a download)
        optimizer="adam",
        lr=1e-3,
        backbone_lr_ratio=1.0,
        warmup_epochs=1,
        milestones=(max(1, int(0.7 * args.epochs)),),
    )
    return dm, module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="a real SYSU-MM01 (default: synthetic)")
    parser.add_argument("--arch", help="trunk: resnet18/34/50/101 (default: per dataset)")
    parser.add_argument("--epochs", type=int, help="default: 80 (real), 6 (synthetic)")
    parser.add_argument("--accelerator", default="auto", help="cpu, gpu, ... (Lightning's)")
    parser.add_argument("--devices", default="auto", help="e.g. 4 (DDP over 4 GPUs)")
    parser.add_argument("--workers", type=int, default=4, help="data-loading processes")
    parser.add_argument("--output", type=Path, default=Path("outputs/train_agw"))
    parser.add_argument("--smoke", action="store_true", help="tiny run, seconds, on the CPU")
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 1 if args.smoke else (80 if args.root else 6)

    seed_everything(0, workers=True)
    with tempfile.TemporaryDirectory() as scratch:
        dm, module = build(args, Path(scratch))
        trainer = Trainer(
            max_epochs=args.epochs,
            accelerator="cpu" if args.smoke else args.accelerator,
            devices=1 if args.smoke else args.devices,
            strategy="ddp" if args.devices not in ("auto", "1") else "auto",
            default_root_dir=args.output,
            limit_train_batches=2 if args.smoke else None,
            logger=not args.smoke,
            enable_checkpointing=not args.smoke,
            enable_progress_bar=not args.smoke,
            enable_model_summary=not args.smoke,
        )
        trainer.fit(module, datamodule=dm)
        trainer.test(module, datamodule=dm, verbose=False)
    if trainer.is_global_zero:
        for result in module.results["test"].values():
            print(result.table(), end="\n\n")


if __name__ == "__main__":
    main()
