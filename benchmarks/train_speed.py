"""AGW training and feature-extraction throughput, and Lightning's overhead.

Measures, each in a fresh process (so peak memory is its own):

* ``bare``: the training step (forward of a paired batch, CE + WRT, backward, SGD step)
  in a plain PyTorch loop over in-memory batches;
* ``lightning``: the same step through ``Trainer.fit(AGWModule)`` over a DataLoader of
  the same in-memory batches (so the ratio to ``bare`` is the framework's overhead, not
  data loading);
* ``extract``: ``extract_features`` of a batch in eval mode (``--channels-last`` to try
  that memory format).

Images per second count visible + infrared images. Inputs are random tensors at the real
input size (288x144 for AGW); the model is AGW with ImageNet-shaped random weights.

Usage: ``python benchmarks/train_speed.py [--arch resnet50] [--image-size 288x144]
[--steps 4] [--warmup 2] [--device cpu|cuda] [--precision 32|16-mixed|bf16-mixed]``.
On a 2-core CPU the default ResNet-50 run takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from lightning.pytorch import Trainer, seed_everything
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(__file__))
from measure import TrainingThroughput, peak_memory_mb, run_isolated  # noqa: E402
from vireid_zoo.models import AGW, AGWModule  # noqa: E402


class RandomPairs(Dataset):
    """``length`` identical-shape paired batches of random images (P ids x K)."""

    def __init__(self, length: int, ids: int, instances: int, size: tuple[int, int]) -> None:
        generator = torch.Generator().manual_seed(0)
        labels = torch.arange(ids).repeat_interleave(instances)
        self.batch = {
            "visible": torch.randn(len(labels), 3, *size, generator=generator),
            "infrared": torch.randn(len(labels), 3, *size, generator=generator),
            "visible_pid": labels,
            "infrared_pid": labels,
        }
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.batch


def build(args: argparse.Namespace) -> AGWModule:
    seed_everything(0, verbose=False)
    module = AGWModule(AGW(395, arch=args.arch))
    return module.to(memory_format=torch.channels_last) if args.channels_last else module


def bare(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    module = build(args).to(device).train()
    optimizer = module.configure_optimizers()["optimizer"]
    batch = {k: v.to(device) for k, v in RandomPairs(1, *args.batch, args.size)[0].items()}
    autocast = torch.autocast(device.type, dtype=args.dtype, enabled=args.dtype is not None)
    seconds = 0.0
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        with autocast:
            output = module.net.forward_pair(batch["visible"], batch["infrared"])
            labels = torch.cat([batch["visible_pid"], batch["infrared_pid"]])
            loss = module.identity_loss(output.logits, labels) + module.triplet_loss(
                output.pool.float(), labels
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            seconds += time.perf_counter() - started
    images = 2 * len(batch["visible"]) * args.steps
    return {"images_per_second": images / seconds, "peak_mb": peak_memory_mb(device)}


def lightning(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    module = build(args)
    meter = TrainingThroughput(warmup=args.warmup)
    loader = DataLoader(
        RandomPairs(args.warmup + args.steps + 1, *args.batch, args.size),
        batch_size=None,
    )
    trainer = Trainer(
        accelerator=device.type,
        devices=1,
        max_steps=args.warmup + args.steps + 1,
        precision=args.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[meter],
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    return {"images_per_second": meter.images_per_second, "peak_mb": peak_memory_mb(device)}


@torch.no_grad()
def extract(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    net = build(args).net.to(device).eval()
    images = torch.randn(args.extract_batch, 3, *args.size, device=device)
    if args.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device.type, dtype=args.dtype, enabled=args.dtype is not None)
    seconds = 0.0
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        with autocast:
            net.extract_features(images, "visible" if step % 2 else "infrared")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            seconds += time.perf_counter() - started
    return {
        "images_per_second": args.extract_batch * args.steps / seconds,
        "peak_mb": peak_memory_mb(device),
    }


MODES = {"bare": bare, "lightning": lightning, "extract": extract}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--image-size", default="288x144")
    parser.add_argument("--identities", type=int, default=8, help="P")
    parser.add_argument("--instances", type=int, default=4, help="K")
    parser.add_argument("--extract-batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--precision", default="32-true", choices=("32-true", "16-mixed", "bf16-mixed")
    )
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args(argv)
    args.size = tuple(int(v) for v in args.image_size.split("x"))
    args.batch = (args.identities, args.instances)
    args.dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(args.precision)
    return args


def main() -> None:
    args = parse(sys.argv[1:])
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(MODES[args.mode](args, torch.device(args.device))))
        return
    passthrough = sys.argv[1:]
    images = 2 * args.identities * args.instances
    print(
        f"AGW-{args.arch} at {args.image_size}, batch {args.identities} ids x "
        f"({args.instances} + {args.instances}) = {images} images, precision "
        f"{args.precision}{', channels_last' if args.channels_last else ''}, device "
        f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.warmup} warm-up + {args.steps} timed steps"
    )
    results = {mode: run_isolated(__file__, "--mode", mode, *passthrough) for mode in MODES}
    print(f"{'mode':<11}{'images/s':>10}{'ms/image':>10}{'peak MB':>10}")
    for mode, result in results.items():
        rate = result["images_per_second"]
        print(f"{mode:<11}{rate:>10.2f}{1000 / rate:>10.1f}{result['peak_mb']:>10.0f}")
    ratio = results["lightning"]["images_per_second"] / results["bare"]["images_per_second"]
    print(f"Lightning / bare PyTorch training throughput: {ratio:.3f}")


if __name__ == "__main__":
    main()
