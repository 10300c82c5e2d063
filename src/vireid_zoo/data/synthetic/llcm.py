"""Write a synthetic LLCM tree: [`make_llcm`][]."""

from __future__ import annotations

import os
from pathlib import Path

from vireid_zoo.core.records import MODALITIES, Modality, modality_code
from vireid_zoo.data.llcm import INFRARED_CAMERAS, VISIBLE_CAMERAS
from vireid_zoo.data.synthetic.appearance import CameraAppearance, Identity
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
    _write_lines,
)

_LLCM_SUFFIXES: dict[Modality, str] = {"visible": "vis", "infrared": "nir"}


def _write_llcm_folder(
    staging: tuple[Path, Path | None],
    folder: str,
    identity: Identity,
    modality: Modality,
    camera: CameraAppearance,
    seed: int,
    size: tuple[int, int],
    count: int,
) -> list[str]:
    """Write ``count`` frames of one LLCM (id, camera, modality) sequence; return their names.

    ``staging`` holds the dataset folder and the part-map folder (or None); ``folder`` is
    the sequence's folder relative to both.
    """
    key = (identity.pid, camera.camera, modality_code(modality))
    sequence_rng = _generator(seed, _STREAM_FOLDERS, _DATASET_CODES["llcm"], *key)
    sequence = int(sequence_rng.integers(100000, 1000000))
    first_frame = int(sequence_rng.integers(100, 5000))
    images, parsing = staging
    (images / folder).mkdir(parents=True)
    names = []
    for index in range(count):
        rng = _image_rng(seed, "llcm", *key, index)
        image, parts = render_person(identity, modality, camera, rng, size)
        name = (
            f"{identity.pid:04d}_c{camera.camera:02d}_s{sequence}_f{first_frame + 10 * index}"
            f"_{_LLCM_SUFFIXES[modality]}.jpg"
        )
        _save_image(images / folder / name, image)
        _save_parts(parsing, f"{folder}/{name}", parts)
        names.append(name)
    return names


def make_llcm(
    root: str | os.PathLike[str],
    *,
    num_train_ids: int = 16,
    num_test_ids: int = 8,
    images_per_camera: int = 3,
    image_size: tuple[int, int] = (128, 64),
    missing_camera_rate: float = 0.15,
    seed: int = 0,
    parsing_root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a synthetic LLCM tree (layout in the package docstring).

    Cameras switch modality: camera K shows the same scene in ``*_vis/camK`` and
    ``*_nir/camK`` (there is no near-infrared camera 3). Visible images are dim and noisy,
    as in the low-light real dataset.

    Args:
        root: Folder to create; it must not exist or be empty.
        num_train_ids: Training ids (at least 2); labels 0..n-1 in ascending pid order.
        num_test_ids: Test ids (at least 2), listed in ``idx/test_id.txt``.
        images_per_camera: Images in each (id, camera, modality) folder.
        image_size: ``(height, width)`` of every image.
        missing_camera_rate: Probability that an (id, camera, modality) folder is absent;
            every id keeps at least one visible and one near-infrared camera.
        seed: Seed of everything drawn; the same arguments give byte-identical files.
        parsing_root: Also write each image's true part map (LIP labels) as
            ``<parsing_root>/<image path relative to root>.png`` (see [`make_sysu_mm01`][]).

    Returns:
        The dataset root.

    Raises:
        ValueError: On an impossible argument.
        FileExistsError: ``root`` (or ``parsing_root``) exists and is not empty.
    """
    counts = [
        _check_split("num_train_ids", num_train_ids),
        _check_split("num_test_ids", num_test_ids),
    ]
    per_camera = _check_int("images_per_camera", images_per_camera, 1)
    size = _check_image_size(image_size)
    rate = _check_rate(missing_camera_rate)
    seed = _check_int("seed", seed, 0)
    dataset = "llcm"
    train_ids, test_ids = _split_ids(seed, dataset, counts)
    cameras = {
        cam: make_camera(cam, seed, dataset=dataset, low_light=True) for cam in VISIBLE_CAMERAS
    }
    root = Path(root)
    with _staged_trees(root, parsing_root) as (staging, parsing):
        (staging / "idx").mkdir()
        for split, pids in (("train", train_ids), ("test", test_ids)):
            lines: dict[str, list[str]] = {modality: [] for modality in MODALITIES}
            for label, pid in enumerate(pids):
                identity = make_identity(pid, seed)
                folder_rng = _generator(seed, _STREAM_FOLDERS, _DATASET_CODES[dataset], pid)
                present = _present_cameras(folder_rng, VISIBLE_CAMERAS, INFRARED_CAMERAS, rate)
                for modality, cams in zip(MODALITIES, present, strict=True):
                    for cam in cams:
                        folder = f"{split}_{_LLCM_SUFFIXES[modality]}/cam{cam}/{pid:04d}"
                        names = _write_llcm_folder(
                            (staging, parsing),
                            folder,
                            identity,
                            modality,
                            cameras[cam],
                            seed,
                            size,
                            per_camera,
                        )
                        listed_label = label if split == "train" else pid
                        lines[modality] += [f"{folder}/{name} {listed_label}" for name in names]
            for modality, suffix in _LLCM_SUFFIXES.items():
                _write_lines(staging / "idx" / f"{split}_{suffix}.txt", lines[modality])
        _write_id_line(staging / "idx" / "test_id.txt", test_ids)
    return root
