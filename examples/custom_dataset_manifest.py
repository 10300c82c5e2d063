"""Use your own images: write a CSV manifest, then train and test on it.

A manifest lists every image with its identity, camera, modality and split
(``path,pid,camera,modality,split``; see docs/datasets.md). This script writes one for
images stored as

    IMAGES/visible/<camera>/<identity>/<file>     e.g. visible/cam1/0007/a.jpg
    IMAGES/infrared/<camera>/<identity>/<file>    e.g. infrared/cam3/0007/b.png

(``<camera>`` a folder whose name ends with the camera number, ``<identity>`` a folder
named by an integer): identities are split at random into training and test identities,
and the test identities' infrared images become the queries, their visible images the
gallery. ``ManifestDataModule`` then trains a small AGW on it and scores it (the
``llcm`` rule: a gallery image of the query's identity *and* camera is not counted).
Adapt :func:`write_manifest` to however your images are organised.

    python examples/custom_dataset_manifest.py --images /data/my_cameras
    python examples/custom_dataset_manifest.py            # a synthetic IMAGES folder
    python examples/custom_dataset_manifest.py --smoke    # seconds: checks the code
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shutil
import tempfile
from pathlib import Path

from lightning.pytorch import Trainer, seed_everything

from vireid_zoo.data import ManifestDataModule
from vireid_zoo.data.layout import IMAGE_SUFFIXES
from vireid_zoo.data.synthetic import make_sysu_mm01
from vireid_zoo.models import AGW, AGWModule

MODALITIES = ("visible", "infrared")
SYSU_CAMERAS = {
    1: "visible",
    2: "visible",
    3: "infrared",
    4: "visible",
    5: "visible",
    6: "infrared",
}


def write_manifest(
    images: Path, manifest: Path, test_fraction: float = 0.5, seed: int = 0
) -> dict[str, int]:
    """Write the manifest of an ``IMAGES/<modality>/<camera>/<identity>/<file>`` tree.

    Args:
        images: The image tree.
        manifest: The CSV file to write (paths in it are relative to its folder).
        test_fraction: Fraction of the identities held out for testing.
        seed: Seed of the identity split.

    Returns:
        Number of rows per split.

    Raises:
        ValueError: A camera or identity folder that does not follow the layout, or too
            few identities to split.
    """
    rows: list[tuple[Path, int, int, str]] = []
    for modality in MODALITIES:
        for camera_dir in sorted(p for p in (images / modality).glob("*") if p.is_dir()):
            camera = re.search(r"(\d+)$", camera_dir.name)
            if camera is None:
                raise ValueError(f"{camera_dir}: a camera folder's name must end with a number")
            for identity_dir in sorted(p for p in camera_dir.iterdir() if p.is_dir()):
                if not identity_dir.name.isdigit():
                    raise ValueError(f"{identity_dir}: an identity folder is named by an integer")
                rows += [
                    (path, int(identity_dir.name), int(camera.group(1)), modality)
                    for path in sorted(identity_dir.iterdir())
                    if path.suffix.lower() in IMAGE_SUFFIXES
                ]
    identities = sorted({pid for _, pid, _, _ in rows})
    if len(identities) < 4:
        raise ValueError(f"{images}: found {len(identities)} identities, need at least 4")
    test = set(random.Random(seed).sample(identities, round(test_fraction * len(identities))))
    counts = {"train": 0, "query": 0, "gallery": 0}
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "pid", "camera", "modality", "split"])
        for path, pid, camera, modality in rows:
            split = "train" if pid not in test else "query" if modality == "infrared" else "gallery"
            relative = Path(os.path.relpath(path, manifest.parent)).as_posix()
            writer.writerow([relative, pid, camera, modality, split])
            counts[split] += 1
    return counts


def synthetic_images(folder: Path, tiny: bool) -> Path:
    """An ``IMAGES`` tree made from a synthetic SYSU-MM01 (for trying the script)."""
    sysu = make_sysu_mm01(
        folder / "sysu",
        num_train_ids=4 if tiny else 24,
        num_val_ids=2 if tiny else 4,
        num_test_ids=2 if tiny else 8,
        images_per_camera=2 if tiny else 3,
        image_size=(32, 16) if tiny else (64, 32),
    )
    images = folder / "images"
    for camera, modality in SYSU_CAMERAS.items():
        shutil.copytree(sysu / f"cam{camera}", images / modality / f"cam{camera}")
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, help="your image tree (default: synthetic)")
    parser.add_argument("--manifest", type=Path, help="CSV to write (default: IMAGES/manifest.csv)")
    parser.add_argument("--test-fraction", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, help="default: 6 (1 with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny run, seconds, on the CPU")
    args = parser.parse_args()
    tiny = args.smoke

    seed_everything(0, workers=True)
    with tempfile.TemporaryDirectory() as scratch:
        images = args.images or synthetic_images(Path(scratch), tiny)
        manifest = args.manifest or images / "manifest.csv"
        counts = write_manifest(images, manifest, args.test_fraction)
        print(f"wrote {manifest}: " + ", ".join(f"{n} {split}" for split, n in counts.items()))

        dm = ManifestDataModule(
            manifest,
            protocol="llcm",
            image_size=(32, 16) if tiny else (128, 64),
            num_identities=2 if tiny else 4,
            num_instances=2 if tiny else 4,
            num_workers=0,
        )
        module = AGWModule(
            AGW(dm.num_classes, arch="resnet18"),  # no ImageNet weights: they need a download
            optimizer="adam",
            lr=1e-3,
            backbone_lr_ratio=1.0,
            warmup_epochs=1,
        )
        trainer = Trainer(
            max_epochs=args.epochs or (1 if tiny else 6),
            accelerator="cpu" if tiny else "auto",
            limit_train_batches=2 if tiny else None,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=not tiny,
            enable_model_summary=False,
        )
        trainer.fit(module, datamodule=dm)
        trainer.test(module, datamodule=dm, verbose=False)
        for result in module.results["test"].values():
            print(result.table())


if __name__ == "__main__":
    main()
