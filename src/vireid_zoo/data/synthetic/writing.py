"""Shared dataset writing: staged roots, image and list files, id and camera splits."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from vireid_zoo.data.parsing import MAP_SUFFIX, write_label_map
from vireid_zoo.data.synthetic.seeding import _DATASET_CODES, _STREAM_SPLIT, _generator

_JPEG_QUALITY = 90


@contextmanager
def _staged_directory(root: Path) -> Iterator[Path]:
    """Yield a hidden sibling folder of ``root`` that becomes ``root`` on success.

    Raises:
        FileExistsError: ``root`` exists and is not an empty directory.
    """
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"dataset root '{root}' already exists and is not an empty folder; "
            "remove it or choose another root"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        yield staging
        if root.exists():
            root.rmdir()
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def _staged_trees(
    root: Path, parsing_root: str | os.PathLike[str] | None
) -> Iterator[tuple[Path, Path | None]]:
    """Stage the dataset and, when ``parsing_root`` is given, its tree of part maps.

    Both become visible only once the dataset is complete (the part maps first).

    Raises:
        ValueError: ``parsing_root`` is ``root`` or one contains the other.
        FileExistsError: ``root`` or ``parsing_root`` exists and is not an empty directory.
    """
    if parsing_root is None:
        with _staged_directory(root) as staging:
            yield staging, None
        return
    parsing_root = Path(parsing_root)
    images, maps = root.resolve(), parsing_root.resolve()
    if images == maps or images in maps.parents or maps in images.parents:
        raise ValueError(
            f"parsing_root '{parsing_root}' must be a folder outside the dataset root "
            f"'{root}' (and not contain it): the part maps form a parallel tree"
        )
    with _staged_directory(root) as staging, _staged_directory(parsing_root) as parsing:
        yield staging, parsing


def _save_parts(parsing: Path | None, relative: str, parts: np.ndarray) -> None:
    """Save the LIP part map of image ``relative`` in the parallel tree, if there is one."""
    if parsing is not None:
        path = parsing / Path(relative).with_suffix(MAP_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_label_map(path, parts)


def _save_image(path: Path, image: np.ndarray) -> None:
    """Save ``image`` (RGB or single-channel uint8) as JPEG or BMP after its suffix."""
    if path.suffix == ".jpg":
        Image.fromarray(image).save(path, format="JPEG", quality=_JPEG_QUALITY)
    else:
        Image.fromarray(image).save(path, format="BMP")


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_id_line(path: Path, pids: Sequence[int]) -> None:
    path.write_text(",".join(str(pid) for pid in pids), encoding="utf-8")


def _split_ids(seed: int, dataset: str, counts: Sequence[int]) -> list[list[int]]:
    """Shuffle pids 1..sum(counts) and cut them into sorted splits of the given sizes."""
    rng = _generator(seed, _STREAM_SPLIT, _DATASET_CODES[dataset])
    order = rng.permutation(np.arange(1, sum(counts) + 1))
    bounds = np.cumsum([0, *counts])
    return [
        sorted(int(pid) for pid in order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _present_cameras(
    rng: np.random.Generator,
    visible: Sequence[int],
    infrared: Sequence[int],
    missing_rate: float,
) -> tuple[list[int], list[int]]:
    """Drop cameras at ``missing_rate``, keeping at least one of each modality."""
    kept = []
    for cameras in (visible, infrared):
        keep = rng.random(len(cameras)) >= missing_rate
        rescue = int(rng.integers(len(cameras)))
        if not keep.any():
            keep[rescue] = True
        kept.append([camera for camera, present in zip(cameras, keep, strict=True) if present])
    return kept[0], kept[1]
