"""AGW training and feature-extraction throughput: speed-up variants and Lightning's overhead.

Measures, each in a fresh process (so peak memory and compilation are its own):

* ``train``: ``Trainer.fit(AGWModule)`` over a DataLoader of identical in-memory paired
  batches, one row per variant: ``fp32`` (32-true, eager, the baseline), ``bf16``
  (bf16-mixed), ``fp16`` (16-mixed; very slow on CPUs without float16 kernels, off by
  default there), ``channels_last`` and ``compile`` (the module arguments of the same
  names) and ``all`` (bf16 + channels_last + compile);
* ``extract``: ``extract_features`` of a batch in eval mode, for the same variants;
* ``bare``: the fp32 training step (forward, CE + WRT, backward, SGD step) in a plain
  PyTorch loop, so ``fp32 / bare`` is the framework's overhead, not data loading.

Every figure is also printed as a ratio against the ``fp32`` row of the same run. Images
per second count visible + infrared images; inputs are random tensors at the real input
size (288x144); the network is AGW with random weights. The timed steps follow
``--warmup`` untimed ones (which include compilation).

Usage: ``python benchmarks/train_speed.py [--arch resnet18|resnet50] [--image-size 288x144]
[--identities 4] [--instances 2] [--steps 3] [--warmup 2] [--device cpu|cuda]
[--variants fp32,bf16,channels_last,compile]``. The default (ResNet-18, 16 training
images per step) takes a few minutes on a 2-core CPU, most of it compiling; ``--arch
resnet50 --identities 8 --instances 4`` is the AGW reference setting (benchmarks/gpu.sh
runs it on GPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch import Trainer, seed_everything
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(__file__))
from measure import TrainingThroughput, peak_memory_mb, run_isolated  # noqa: E402
from vireid_zoo.models import AGW, AGWModule  # noqa: E402


@dataclass(frozen=True)
class Variant:
    """One way to run the same training: precision, memory format, compilation."""

    precision: str = "32-true"
    channels_last: bool = False
    compile: bool = False

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for float32."""
        return {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(self.precision)


VARIANTS = {
    "fp32": Variant(),
    "bf16": Variant(precision="bf16-mixed"),
    "fp16": Variant(precision="16-mixed"),
    "channels_last": Variant(channels_last=True),
    "compile": Variant(compile=True),
    "all": Variant(precision="bf16-mixed", channels_last=True, compile=True),
}
BASELINE = "fp32"


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


def build(args: argparse.Namespace, variant: Variant) -> AGWModule:
    """AGW with the variant's module arguments (395 identities, as SYSU-MM01)."""
    seed_everything(0, verbose=False)
    return AGWModule(
        AGW(395, arch=args.arch),
        compile=variant.compile,
        channels_last=variant.channels_last,
    )


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(args: argparse.Namespace, variant: Variant, device: torch.device) -> dict[str, float]:
    """Lightning training throughput; with ``--devices N`` > 1, DDP over N GPUs."""
    module = build(args, variant)
    meter = TrainingThroughput(warmup=args.warmup)
    steps = args.warmup + args.steps + 1
    # The distributed sampler gives each rank len / N items: every rank gets `steps`.
    loader = DataLoader(RandomPairs(steps * args.devices, *args.batch, args.size), batch_size=None)
    trainer = Trainer(
        accelerator=device.type,
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_steps=steps,
        precision=variant.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[meter],
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader)
    # Ranks step in lockstep (gradients are all-reduced): rank 0's rate times the ranks.
    return {
        "images_per_second": meter.images_per_second * trainer.world_size,
        "peak_mb": peak_memory_mb(device),
        "rank": trainer.global_rank,
    }


@torch.no_grad()
def extract(args: argparse.Namespace, variant: Variant, device: torch.device) -> dict[str, float]:
    """``extract_features`` throughput in eval mode, through the module (so compiled)."""
    module = build(args, variant).to(device).eval()
    module.configure_model()  # what the Trainer does: channels_last, compile
    images = torch.randn(args.extract_batch, 3, *args.size, device=device)
    autocast = torch.autocast(device.type, dtype=variant.dtype, enabled=variant.dtype is not None)
    seconds = 0.0
    for step in range(args.warmup + args.steps):
        synchronize(device)
        started = time.perf_counter()
        with autocast:
            module.extract_features(images, "visible")
        synchronize(device)
        if step >= args.warmup:
            seconds += time.perf_counter() - started
    return {
        "images_per_second": args.extract_batch * args.steps / seconds,
        "peak_mb": peak_memory_mb(device),
    }


def bare(args: argparse.Namespace, variant: Variant, device: torch.device) -> dict[str, float]:
    """The fp32 training step in a plain PyTorch loop (no Lightning)."""
    module = build(args, Variant()).to(device).train()
    optimizer = module.configure_optimizers()["optimizer"]
    batch = {k: v.to(device) for k, v in RandomPairs(1, *args.batch, args.size)[0].items()}
    seconds = 0.0
    for step in range(args.warmup + args.steps):
        synchronize(device)
        started = time.perf_counter()
        loss = module.compute_losses(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        if step >= args.warmup:
            seconds += time.perf_counter() - started
    images = 2 * len(batch["visible"]) * args.steps
    return {"images_per_second": images / seconds, "peak_mb": peak_memory_mb(device)}


MODES = {"train": train, "extract": extract, "bare": bare}


def parser() -> argparse.ArgumentParser:
    """The command line (shared with benchmarks/gpu_bench.py)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, default=BASELINE, help=argparse.SUPPRESS)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image-size", default="288x144")
    parser.add_argument("--identities", type=int, default=4, help="P")
    parser.add_argument("--instances", type=int, default=2, help="K")
    parser.add_argument("--extract-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--devices", type=int, default=1, help="GPUs (DDP when > 1)")
    parser.add_argument(
        "--variants",
        default=None,
        help=f"comma-separated, from {', '.join(VARIANTS)} (default: all but fp16 and all "
        "on the CPU, all but fp16 on a GPU)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse and derive sizes; check the variant names."""
    args = parser().parse_args(argv)
    args.size = tuple(int(v) for v in args.image_size.split("x"))
    args.batch = (args.identities, args.instances)
    if args.variants is None:
        default = ["fp32", "bf16", "channels_last", "compile"]
        args.variants = default + (["all"] if args.device.startswith("cuda") else [])
    else:
        args.variants = args.variants.split(",")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or BASELINE not in args.variants:
        raise SystemExit(f"--variants must include {BASELINE!r} and name only {list(VARIANTS)}")
    return args


def measure_all(args: argparse.Namespace, passthrough: list[str]) -> dict[str, Any]:
    """Every mode and variant, each in a fresh process."""
    results: dict[str, Any] = {"bare": run_isolated(__file__, "--mode", "bare", *passthrough)}
    for mode in ("train", "extract"):
        results[mode] = {
            name: run_isolated(__file__, "--mode", mode, "--variant", name, *passthrough)
            for name in args.variants
        }
    return results


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """One table per mode with ratios against fp32 of the same run, then the overhead."""
    for mode in ("train", "extract"):
        rows = results[mode]
        baseline = rows[BASELINE]["images_per_second"]
        print(f"\n{mode:<14}{'images/s':>10}{'x fp32':>8}{'peak MB':>10}")
        for name, row in rows.items():
            rate = row["images_per_second"]
            print(f"{name:<14}{rate:>10.2f}{rate / baseline:>8.2f}{row['peak_mb']:>10.0f}")
    ratio = results["train"][BASELINE]["images_per_second"] / results["bare"]["images_per_second"]
    print(f"\nLightning fp32 / bare PyTorch training throughput: {ratio:.3f}")


def main() -> None:
    """Run one measurement (``--worker``) or all of them and print the report."""
    args = parse(sys.argv[1:])
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        result = MODES[args.mode](args, VARIANTS[args.variant], torch.device(args.device))
        if result.get("rank", 0) == 0:  # DDP ranks > 0 run this script too
            print(json.dumps(result))
        return
    passthrough = _without_option(sys.argv[1:], "--variants")
    images = 2 * args.identities * args.instances
    print(
        f"AGW-{args.arch} at {args.image_size}, batch {args.identities} ids x "
        f"({args.instances} + {args.instances}) = {images} images, extraction batch "
        f"{args.extract_batch}, device {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.warmup} warm-up + {args.steps} timed steps"
    )
    report(args, measure_all(args, passthrough))


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE``."""
    kept: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
        elif item == option:
            skip = True
        elif not item.startswith(f"{option}="):
            kept.append(item)
    return kept


if __name__ == "__main__":
    main()
