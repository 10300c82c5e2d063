"""Write a synthetic RegDB tree: [`make_regdb`][]."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vireid_zoo.core.records import MODALITIES, Modality
from vireid_zoo.data.regdb import TRIALS
from vireid_zoo.data.synthetic.checks import _check_image_size, _check_int
from vireid_zoo.data.synthetic.render import render_person
from vireid_zoo.data.synthetic.sampling import draw_pose, make_camera, make_identity
from vireid_zoo.data.synthetic.seeding import (
    _DATASET_CODES,
    _STREAM_FOLDERS,
    _STREAM_SPLIT,
    _generator,
    _image_rng,
)
from vireid_zoo.data.synthetic.writing import (
    _save_image,
    _save_parts,
    _staged_trees,
    _write_lines,
)


def make_regdb(
    root: str | os.PathLike[str],
    *,
    num_ids: int = 20,
    images_per_modality: int = 10,
    image_size: tuple[int, int] = (128, 64),
    seed: int = 0,
    parsing_root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a synthetic RegDB tree (layout in the package docstring).

    Image ``k`` of a person is a visible/thermal pair sharing a frame index and a view
    (front or back), as in the real dataset; each modality has its own camera and pose.

    Args:
        root: Folder to create; it must not exist or be empty.
        num_ids: Number of persons, even and at least 4: each of the 10 trials trains on a
            random half and tests on the other half.
        images_per_modality: Visible images, and thermal images, per person.
        image_size: ``(height, width)`` of every image.
        seed: Seed of everything drawn; the same arguments give byte-identical files.
        parsing_root: Also write each image's true part map (LIP labels) as
            ``<parsing_root>/<image path relative to root>.png`` (see [`make_sysu_mm01`][]).

    Returns:
        The dataset root.

    Raises:
        ValueError: On an impossible argument.
        FileExistsError: ``root`` (or ``parsing_root``) exists and is not empty.
    """
    total = _check_int("num_ids", num_ids, 4)
    if total % 2:
        raise ValueError(f"num_ids must be even (each trial splits the ids in halves), got {total}")
    per_modality = _check_int("images_per_modality", images_per_modality, 1)
    size = _check_image_size(image_size)
    seed = _check_int("seed", seed, 0)
    dataset = "regdb"
    trees: dict[Modality, tuple[str, str, int]] = {
        "visible": ("Visible", "v", 1),
        "infrared": ("Thermal", "t", 2),
    }
    cameras = {cam: make_camera(cam, seed, dataset=dataset) for _, _, cam in trees.values()}
    files: dict[str, dict[int, list[str]]] = {"visible": {}, "infrared": {}}
    root = Path(root)
    with _staged_trees(root, parsing_root) as (staging, parsing):
        for pid in range(1, total + 1):
            identity = make_identity(pid, seed)
            for modality in MODALITIES:
                (staging / trees[modality][0] / str(pid)).mkdir(parents=True)
                files[modality][pid] = []
            for index in range(1, per_modality + 1):
                frame = (pid - 1) * per_modality + index
                view_rng = _generator(seed, _STREAM_FOLDERS, _DATASET_CODES[dataset], pid, index)
                facing_away = bool(view_rng.random() < 0.3)
                view = "back" if facing_away else "front"
                for modality, (tree, letter, cam) in trees.items():
                    rng = _image_rng(seed, dataset, pid, cam, index)
                    pose = draw_pose(rng, cameras[cam], facing_away=facing_away)
                    image, parts = render_person(identity, modality, cameras[cam], rng, size, pose)
                    name = f"{identity.gender}_{view}_{letter}_{frame:05d}_{pid}.bmp"
                    _save_image(staging / tree / str(pid) / name, image)
                    _save_parts(parsing, f"{tree}/{pid}/{name}", parts)
                    files[modality][pid].append(f"{tree}/{pid}/{name}")
        (staging / "idx").mkdir()
        for trial in TRIALS:
            order = _generator(seed, _STREAM_SPLIT, _DATASET_CODES[dataset], trial).permutation(
                np.arange(1, total + 1)
            )
            halves = {"train": sorted(order[: total // 2]), "test": sorted(order[total // 2 :])}
            for split, pids in halves.items():
                for modality, file_stem in (("visible", "visible"), ("infrared", "thermal")):
                    lines = [
                        f"{path} {label}"
                        for label, pid in enumerate(pids)
                        for path in files[modality][int(pid)]
                    ]
                    _write_lines(staging / "idx" / f"{split}_{file_stem}_{trial}.txt", lines)
    return root
