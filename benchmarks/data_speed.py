"""Data-loader throughput: decoding every item with PIL against the pre-resized image cache.

For each dataset (synthetic trees in the real on-disk layouts, written with the images at
the real datasets' sizes, see ``SIZES``), each loader and each number of DataLoader
workers, images per second with ``image_cache=None`` (PIL decode + resize per item, the
baseline) and with ``image_cache`` (rows of the memory-mapped uint8 cache), and their
ratio. Every figure is printed next to its baseline from the same run.

* ``train``: the datamodule's own ``train_dataloader()``: the cross-modality identity
  sampler, P x K = 8 x 4 pairs (64 images) a batch, the full AGW training transform at
  the input size (288x144 by default) with CAJ channel augmentation on visible images;
* ``test``: the datamodule's test dataset (its test transform and images) in a
  DataLoader of batch ``--test-batch`` (64) that reads the test suite repeatedly, so
  every case times the same number of images.

Workers: ``0`` runs the loading in the main process (the per-item cost without
inter-process transfer), ``1`` in one worker process (a worker's throughput) and ``2``
in two. Each case discards ``2 x workers + 2`` batches (worker start-up, then the
prefetched backlog) and times the next ``--images`` images, ``--repeats`` times (the best
is kept: load from other processes only slows a case down). The main process runs with
``--threads`` torch threads (1, like a DataLoader worker). Images count visible +
infrared images. Two rates per case: ``wall`` images per second, what the loader
delivered on this machine at its current load, and images per CPU-second of the loading
processes (the workers, read from ``/proc``; the main process without workers), i.e. a
worker's capacity on a core of its own, which other processes' load barely changes. The
target of issue 15 is 200 images/s per worker (an H100-class GPU trains AGW-ResNet50 at
thousands of images/s; 16 cores); ``per worker / target`` divides the CPU-second rate by
it. A last table times the
``transfer`` ceiling: items that are ready-made float32 image pairs (a copy each), so only
collation and the hand-over from worker processes to the main process remain.

Image sizes (height x width) of the synthetic files, ``SIZES``; the real datasets' images
vary and are not redistributable, so these are stated assumptions (override them with
``--size sysu_mm01.visible=640x320``):

* SYSU-MM01 visible 480x240: cameras 1 and 2 are Kinect V1 (640x480 RGB frames, the
  dataset's README), so their person crops are at most 480 pixels tall; outdoor
  cameras 4 and 5 give crops of that order. Infrared 384x192: smaller crops from the two
  IR cameras.
* RegDB 128x64, visible and thermal: the dataset's small, fixed-size crops.
* LLCM 320x160, visible and near-infrared: mid-sized crops from a 9-camera surveillance
  network.

A JPEG's decode time grows with its pixel count, so these figures scale accordingly for
other sizes; the cached path does not depend on the file size at all.

Usage: ``python benchmarks/data_speed.py [--datasets sysu_mm01,regdb,llcm]
[--workers 0,1,2] [--loaders train,test] [--images 1536] [--data-dir DIR]``. On a
2-core CPU the default run takes about 3 minutes, a third of it writing the datasets
(reused from ``--data-dir`` on later runs). Timings on a shared machine vary with its
load, which is printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import PIL
import torch
import torchvision
from PIL import features
from torch.utils.data import DataLoader, Dataset, Sampler

from vireid_zoo.data import LLCMDataModule, RegDBDataModule, SYSUMM01DataModule
from vireid_zoo.data.datamodule import VIReIDDataModule
from vireid_zoo.data.synthetic import make_llcm, make_regdb, make_sysu_mm01

TARGET_PER_WORKER = 200.0

SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "sysu_mm01": {"visible": (480, 240), "infrared": (384, 192)},
    "regdb": {"visible": (128, 64), "infrared": (128, 64)},
    "llcm": {"visible": (320, 160), "infrared": (320, 160)},
}
"""(height, width) of the synthetic images, per dataset and modality (see the docstring)."""

WRITERS: dict[str, tuple[Callable[..., Path], dict[str, Any], tuple[str, ...]]] = {
    # writer, its arguments, the top-level folders of the infrared images
    "sysu_mm01": (
        make_sysu_mm01,
        {"num_train_ids": 16, "num_val_ids": 4, "num_test_ids": 8, "images_per_camera": 3},
        ("cam3", "cam6"),
    ),
    "regdb": (make_regdb, {"num_ids": 20, "images_per_modality": 10}, ("Thermal",)),
    "llcm": (
        make_llcm,
        {"num_train_ids": 16, "num_test_ids": 8, "images_per_camera": 2},
        ("train_nir", "test_nir"),
    ),
}

MODULES: dict[str, type[VIReIDDataModule]] = {
    "sysu_mm01": SYSUMM01DataModule,
    "regdb": RegDBDataModule,
    "llcm": LLCMDataModule,
}


def _size(text: str) -> tuple[int, int]:
    height, width = text.lower().split("x")
    return int(height), int(width)


def write_dataset(name: str, folder: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    """The synthetic ``name`` tree with visible and infrared images at ``sizes``.

    The writer draws the layout independently of the image size, so a second tree with
    the infrared size has the same files; its infrared folders replace the first's.
    """
    visible, infrared = sizes["visible"], sizes["infrared"]
    root = folder / f"{name}-{visible[0]}x{visible[1]}-{infrared[0]}x{infrared[1]}"
    if root.exists():
        return root
    writer, options, infrared_folders = WRITERS[name]
    started = time.perf_counter()
    staging = folder / f".{root.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    writer(staging / "tree", image_size=visible, seed=0, **options)
    if infrared != visible:
        writer(staging / "infrared", image_size=infrared, seed=0, **options)
        for sub in infrared_folders:
            shutil.rmtree(staging / "tree" / sub)
            shutil.copytree(staging / "infrared" / sub, staging / "tree" / sub)
    (staging / "tree").rename(root)
    shutil.rmtree(staging)
    count = sum(1 for p in root.rglob("*") if p.suffix in (".jpg", ".bmp"))
    print(f"  wrote {name}: {count} images in {time.perf_counter() - started:.0f} s")
    return root


class Repeat(Sampler[int]):
    """Indices ``0..length-1`` over and over, ``total`` in all."""

    def __init__(self, length: int, total: int) -> None:
        self.length, self.total = length, total

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[int]:
        return (i % self.length for i in range(self.total))


class ReadyPairs(Dataset):
    """Paired training items whose images are ready: a copy of one float32 tensor each."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.image = torch.randn(3, *size)
        self.label = torch.tensor(0)

    def __len__(self) -> int:
        return 2**31

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "visible": self.image.clone(),
            "infrared": self.image.clone(),
            "visible_pid": self.label,
            "infrared_pid": self.label,
        }


def transfer(args: argparse.Namespace, workers: int) -> dict[str, float]:
    """Rates of ready-made paired batches: collation and worker hand-over only."""
    skip = 2 * workers + 2
    pairs = args.identities * args.instances
    count = max(1, round(args.images / (2 * pairs)))
    data = DataLoader(ReadyPairs(args.image_size), batch_size=pairs, num_workers=workers)
    return timed(data, skip, count, "visible,infrared")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes (Linux /proc); this process's when ``pids`` is empty."""
    if not pids:
        return time.process_time()
    ticks = 0
    for pid in pids:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rfind(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def timed(data: DataLoader, skip: int, count: int, key: str) -> dict[str, float]:
    """Rates over ``count`` batches after ``skip`` untimed ones.

    Returns:
        ``wall``: images per second; ``cpu``: images per CPU-second of the processes that
        load (the workers, or this process without workers): a worker's capacity on an
        otherwise idle core, which load from other processes does not change.
    """
    batches = iter(data)
    try:
        pids = [w.pid for w in getattr(batches, "_workers", [])]
        for _ in range(skip):
            next(batches)
        images = 0
        cpu, started = _cpu_seconds(pids), time.perf_counter()
        for _ in range(count):
            batch = next(batches)
            images += sum(len(batch[k]) for k in key.split(","))
        wall, cpu = time.perf_counter() - started, _cpu_seconds(pids) - cpu
        return {"wall": images / wall, "cpu": images / cpu if cpu > 0 else float("nan")}
    finally:
        del batches, data
        gc.collect()


def measure(
    args: argparse.Namespace, name: str, root: Path, loader: str, workers: int, cache: Path | None
) -> dict[str, float]:
    """Rates of one case (see :func:`timed`); ``cache`` None decodes with PIL."""
    skip = 2 * workers + 2
    if loader == "train":
        pairs = args.identities * args.instances
        count = max(1, round(args.images / (2 * pairs)))
        dm = MODULES[name](
            root,
            image_size=args.image_size,
            num_identities=args.identities,
            num_instances=args.instances,
            num_workers=workers,
            samples_per_epoch=(skip + count) * pairs,
            channel_augmentation=True,
            check_counts=False,
            image_cache=cache,
        )
        return timed(dm.train_dataloader(), skip, count, "visible,infrared")
    count = max(1, round(args.images / args.test_batch))
    dm = MODULES[name](root, image_size=args.image_size, check_counts=False, image_cache=cache)
    dataset = dm.test_dataloader().dataset
    data = DataLoader(
        dataset,
        batch_size=args.test_batch,
        sampler=Repeat(len(dataset), (skip + count) * args.test_batch),
        num_workers=workers,
    )
    return timed(data, skip, count, "image")


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The best of repeated runs, per rate: load from other processes only slows one down."""
    return {key: max(run[key] for run in runs) for key in runs[0]}


def build_caches(args: argparse.Namespace, name: str, root: Path, cache: Path) -> dict:
    """Build the train and test caches of ``name`` in this process; return their rates."""
    dm = MODULES[name](
        root, image_size=args.image_size, num_workers=0, check_counts=False, image_cache=cache
    )
    rates = {}
    for split in ("train", "test"):
        started = time.perf_counter()
        arrays = dm._cached(split)
        assert arrays is not None
        rates[split] = len(arrays) / (time.perf_counter() - started)
    return rates


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="sysu_mm01,regdb,llcm")
    parser.add_argument("--loaders", default="train,test")
    parser.add_argument("--workers", default="0,1,2", help="DataLoader workers to time")
    parser.add_argument("--image-size", default="288x144", help="network input, HxW")
    parser.add_argument("--identities", type=int, default=8, help="P")
    parser.add_argument("--instances", type=int, default=4, help="K")
    parser.add_argument("--test-batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=1536, help="timed images per case")
    parser.add_argument("--repeats", type=int, default=1, help="time each case N times")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="DATASET.MODALITY=HxW",
        help="override a synthetic image size, e.g. sysu_mm01.visible=640x320",
    )
    parser.add_argument("--data-dir", type=Path, help="keep (and reuse) the datasets here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.image_size = _size(args.image_size)
    args.datasets = args.datasets.split(",")
    args.loaders = args.loaders.split(",")
    args.workers = [int(w) for w in args.workers.split(",")]
    args.sizes = {name: dict(sizes) for name, sizes in SIZES.items()}
    for override in args.size:
        key, value = override.split("=")
        dataset, modality = key.split(".")
        args.sizes[dataset][modality] = _size(value)
    return args


def main() -> None:
    args = parse(sys.argv[1:])
    torch.set_num_threads(args.threads)
    height, width = args.image_size
    print(
        f"Data loading at {height}x{width}; train batch {args.identities} ids x "
        f"({args.instances} + {args.instances}) images, test batch {args.test_batch}; "
        f"{args.images} timed images per case; torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, Pillow {PIL.__version__} (libjpeg-turbo "
        f"{features.check_feature('libjpeg_turbo')}), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="vireid-data-speed-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        results: list[dict[str, Any]] = []
        for name in args.datasets:
            sizes = args.sizes[name]
            root = write_dataset(name, data_dir, sizes)
            cache = Path(scratch) / "cache" / name
            build = build_caches(args, name, root, cache)
            shown = ", ".join(f"{m} {h}x{w}" for m, (h, w) in sizes.items())
            print(
                f"\n{name} ({shown}): cache built at {build['train']:.0f} (train) and "
                f"{build['test']:.0f} (test) images/s in one process"
            )
            print(
                f"{'':<15}{'wall images/s':^30}{'images per loading CPU-s':^30}"
                f"{'per worker / target':^22}"
            )
            print(
                f"{'loader':<7}{'workers':>8}"
                + f"{'PIL':>10}{'cache':>10}{'cache/PIL':>10}" * 2
                + f"{'PIL':>11}{'cache':>11}"
            )
            for loader in args.loaders:
                for workers in args.workers:
                    runs: dict[str, list[dict[str, float]]] = {"pil": [], "cache": []}
                    for _ in range(args.repeats):
                        runs["pil"].append(measure(args, name, root, loader, workers, None))
                        runs["cache"].append(measure(args, name, root, loader, workers, cache))
                    pil, cached = best(runs["pil"]), best(runs["cache"])
                    row = {
                        "dataset": name,
                        "loader": loader,
                        "workers": workers,
                        "pil": pil,
                        "cache": cached,
                        "cache_over_pil": {k: cached[k] / pil[k] for k in pil},
                        # a worker's capacity: images per CPU-second of one loading process
                        "per_worker_over_target": {
                            "pil": pil["cpu"] / TARGET_PER_WORKER,
                            "cache": cached["cpu"] / TARGET_PER_WORKER,
                        },
                    }
                    results.append(row)
                    figures = "".join(
                        f"{pil[k]:>10.0f}{cached[k]:>10.0f}{cached[k] / pil[k]:>10.2f}"
                        for k in ("wall", "cpu")
                    )
                    target = row["per_worker_over_target"]
                    print(
                        f"{loader:<7}{workers:>8}{figures}"
                        f"{target['pil']:>11.2f}{target['cache']:>11.2f}"
                    )
        print(f"\ntransfer ceiling at {height}x{width} (float32 pairs, no decode or augmentation)")
        print(f"{'workers':>7}{'wall img/s':>12}{'img/CPU-s':>11}")
        for workers in args.workers:
            rate = best([transfer(args, workers) for _ in range(args.repeats)])
            print(f"{workers:>7}{rate['wall']:>12.0f}{rate['cpu']:>11.0f}")
            results.append({"loader": "transfer", "workers": workers, **rate})
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
