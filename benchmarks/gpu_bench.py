"""The GPU measurements of benchmarks/gpu.sh: AGW-ResNet50 at 288x144 on CUDA.

Subcommands (gpu.sh runs each in its own process, under its own time limit):

* ``variant NAME``: training and extraction images/s of one variant of
  benchmarks/train_speed.py (``fp32``, ``bf16``, ``channels_last``, ``compile``, ``all``);
* ``ddp --devices N``: fp32 training images/s of DDP over N GPUs (all ranks together),
  one process per GPU started by Lightning, synthetic in-memory batches on every rank
  (P x K per rank, as the recipe);
* ``report``: every result as a table, each figure with its ratio against the baseline of
  the same run (fp32 on one GPU; DDP on N GPUs against DDP on one).

Each measurement writes ``<work>/<name>.json``; ``report`` reads them and says which are
missing (a step that failed or ran out of time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(__file__))
import train_speed  # noqa: E402

SETTING = [
    "--arch",
    "resnet50",
    "--image-size",
    "288x144",
    "--identities",
    "8",
    "--instances",
    "4",
    "--extract-batch",
    "128",
    "--warmup",
    "3",
    "--steps",
    "10",
    "--device",
    "cuda",
]
"""The AGW reference setting: ResNet-50, 288x144, 8 ids x (4 + 4) images per step."""


def measure(argv: list[str], name: str, work: Path) -> None:
    """Run one variant (train + extract) or one DDP size and write its JSON."""
    args = train_speed.parse([*SETTING, *argv])
    device = torch.device(args.device)
    if name.startswith("ddp"):
        result: dict[str, Any] = train_speed.train(args, train_speed.VARIANTS["fp32"], device)
        if result["rank"] != 0:  # Lightning runs this script once per GPU
            return
    else:
        variant = train_speed.VARIANTS[args.variant]
        result = {
            "train": train_speed.train(args, variant, device),
            "extract": train_speed.extract(args, variant, device),
        }
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.json").write_text(json.dumps(result))
    print(f"{name}: {json.dumps(result)}")


def _read(work: Path, name: str) -> dict[str, Any] | None:
    path = work / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def report(work: Path, variants: list[str], gpus: int) -> None:
    """Print every result with its ratio to the baseline measured in the same run."""
    results = {name: _read(work, name) for name in variants}
    baseline = results.get("fp32")
    print(f"{'variant':<14}{'train img/s':>12}{'x fp32':>8}{'extract img/s':>15}{'x fp32':>8}")
    for name, result in results.items():
        if result is None:
            print(f"{name:<14}  no result (the step failed or ran out of time: see above)")
            continue
        cells = []
        for mode in ("train", "extract"):
            rate = result[mode]["images_per_second"]
            ratio = rate / baseline[mode]["images_per_second"] if baseline else float("nan")
            cells.append(f"{rate:>{12 if mode == 'train' else 15}.1f}{ratio:>8.2f}")
        print(f"{name:<14}{''.join(cells)}")
    one, many = _read(work, "ddp1"), _read(work, f"ddp{gpus}")
    print(f"\nDDP, fp32 training, all ranks together ({gpus} GPU(s) on this machine):")
    for label, result in ((1, one), (gpus, many)):
        rate = f"{result['images_per_second']:.1f} img/s" if result else "no result"
        print(f"  {label} GPU(s): {rate}")
    if one and many and gpus > 1:
        ratio = many["images_per_second"] / one["images_per_second"]
        print(f"  {gpus} / 1 GPU: x{ratio:.2f} (scaling efficiency {ratio / gpus:.0%})")


def main() -> None:
    """``variant NAME | ddp --devices N | report`` (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("variant", "ddp", "report"))
    parser.add_argument("name", nargs="?", help="the variant (variant)")
    parser.add_argument("--work", type=Path, required=True, help="folder of the results")
    parser.add_argument("--devices", type=int, default=1, help="GPUs (ddp)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs of the machine (report)")
    parser.add_argument("--variants", default="fp32,bf16,channels_last,compile")
    args = parser.parse_args()
    if args.command == "variant":
        if args.name not in train_speed.VARIANTS:
            parser.error(f"variant must be one of {list(train_speed.VARIANTS)}")
        measure(["--variant", args.name], args.name, args.work)
    elif args.command == "ddp":
        measure(["--devices", str(args.devices)], f"ddp{args.devices}", args.work)
    else:
        report(args.work, args.variants.split(","), args.gpus)


if __name__ == "__main__":
    main()
