"""Write a synthetic SYSU-MM01 tree: [`make_sysu_mm01`][]."""

from __future__ import annotations

import os
from pathlib import Path

from vireid_zoo.core.records import MODALITIES
from vireid_zoo.data.synthetic.checks import (
    _check_image_size,
    _check_int,
    _check_rate,
    _check_split,
)
from vireid_zoo.data.synthetic.render import render_person
from vireid_zoo.data.synthetic.sampling import make_camera, make_identity
from vireid_zoo.data.synthetic.seeding import (
    _DATASET_CODES,
    _STREAM_FOLDERS,
    _generator,
    _image_rng,
)
from vireid_zoo.data.synthetic.writing import (
    _present_cameras,
    _save_image,
    _save_parts,
    _split_ids,
    _staged_trees,
    _write_id_line,
)
from vireid_zoo.data.sysu_mm01 import INFRARED_CAMERAS, VISIBLE_CAMERAS


def make_sysu_mm01(
    root: str | os.PathLike[str],
    *,
    num_train_ids: int = 16,
    num_val_ids: int = 4,
    num_test_ids: int = 8,
    images_per_camera: int = 4,
    image_size: tuple[int, int] = (128, 64),
    missing_camera_rate: float = 0.15,
    seed: int = 0,
    parsing_root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a synthetic SYSU-MM01 tree (layout in the package docstring).

    Args:
        root: Folder to create; it must not exist or be empty.
        num_train_ids: Ids listed in ``exp/train_id.txt`` (at least 2).
        num_val_ids: Ids listed in ``exp/val_id.txt`` (at least 2).
        num_test_ids: Ids listed in ``exp/test_id.txt`` (at least 2).
        images_per_camera: Images in each (id, camera) folder.
        image_size: ``(height, width)`` of every image.
        missing_camera_rate: Probability that an (id, camera) folder is absent; every id
            keeps at least one visible (1, 2, 4, 5) and one infrared (3, 6) camera.
        seed: Seed of everything drawn; the same arguments give byte-identical files.
        parsing_root: Also write each image's true part map (LIP labels, the map it was
            drawn from) as ``<parsing_root>/<image path relative to root>.png``; the
            dataset itself is the same with or without it.

    Returns:
        The dataset root.

    Raises:
        ValueError: On an impossible argument.
        FileExistsError: ``root`` (or ``parsing_root``) exists and is not empty.
    """
    counts = [
        _check_split("num_train_ids", num_train_ids),
        _check_split("num_val_ids", num_val_ids),
        _check_split("num_test_ids", num_test_ids),
    ]
    per_camera = _check_int("images_per_camera", images_per_camera, 1)
    size = _check_image_size(image_size)
    rate = _check_rate(missing_camera_rate)
    seed = _check_int("seed", seed, 0)
    dataset = "sysu_mm01"
    splits = _split_ids(seed, dataset, counts)
    cameras = {cam: make_camera(cam, seed, dataset=dataset) for cam in range(1, 7)}
    root = Path(root)
    with _staged_trees(root, parsing_root) as (staging, parsing):
        for pid in range(1, sum(counts) + 1):
            identity = make_identity(pid, seed)
            folder_rng = _generator(seed, _STREAM_FOLDERS, _DATASET_CODES[dataset], pid)
            visible, infrared = _present_cameras(
                folder_rng, VISIBLE_CAMERAS, INFRARED_CAMERAS, rate
            )
            for modality, cams in zip(MODALITIES, (visible, infrared), strict=True):
                for cam in cams:
                    folder = staging / f"cam{cam}" / f"{pid:04d}"
                    folder.mkdir(parents=True)
                    for index in range(1, per_camera + 1):
                        rng = _image_rng(seed, dataset, pid, cam, index)
                        image, parts = render_person(identity, modality, cameras[cam], rng, size)
                        _save_image(folder / f"{index:04d}.jpg", image)
                        _save_parts(parsing, f"cam{cam}/{pid:04d}/{index:04d}.jpg", parts)
        (staging / "exp").mkdir()
        for name, pids in zip(("train_id", "val_id", "test_id"), splits, strict=True):
            _write_id_line(staging / "exp" / f"{name}.txt", pids)
    return root
