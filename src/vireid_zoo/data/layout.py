"""Strict readers for the files every dataset layout is made of.

Each function fails with an error that names the file (and line) and says how to fix it;
nothing is skipped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vireid_zoo.core.records import Modality, Sample
from vireid_zoo.data.errors import DatasetFormatError, DatasetNotFoundError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def require(dataset: str, root: Path, relative: str, how_to_obtain: str, *, is_dir: bool) -> Path:
    """Return ``root / relative`` or raise [`DatasetNotFoundError`][] naming it."""
    if not root.is_dir():
        raise DatasetNotFoundError(dataset, root, "the root folder itself", how_to_obtain)
    path = root / relative
    if not (path.is_dir() if is_dir else path.is_file()):
        kind = "folder" if is_dir else "file"
        raise DatasetNotFoundError(dataset, root, f"the {kind} '{relative}'", how_to_obtain)
    return path


def read_id_list(path: Path) -> list[int]:
    """Read a one-line, comma-separated list of integer identities (``exp/test_id.txt``)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) != 1:
        raise DatasetFormatError(
            f"{path}: expected exactly one line of comma-separated integer ids, found "
            f"{len(lines)} non-empty lines"
        )
    ids = []
    for position, token in enumerate(lines[0].split(","), start=1):
        try:
            ids.append(int(token))
        except ValueError:
            raise DatasetFormatError(
                f"{path} line 1, entry {position}: {token!r} is not an integer id; the file "
                "must hold one line such as '1,2,6,10'"
            ) from None
    if len(set(ids)) != len(ids):
        raise DatasetFormatError(f"{path}: some ids are listed twice")
    return ids


@dataclass(frozen=True)
class IndexEntry:
    """One line of an index file: ``<path relative to root> <integer label>``."""

    relative_path: str
    label: int
    line_number: int


def read_index_file(root: Path, path: Path) -> list[IndexEntry]:
    """Read an index file of ``<relative path> <label>`` lines and check every image exists.

    Raises:
        DatasetFormatError: naming the file and line of a malformed line, or of an image
            that does not exist under ``root``.
    """
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0]:
            raise DatasetFormatError(
                f"{path} line {number}: expected '<relative path> <integer label>' separated "
                f"by one space, got {line!r}"
            )
        try:
            label = int(parts[1])
        except ValueError:
            raise DatasetFormatError(
                f"{path} line {number}: label {parts[1]!r} is not an integer"
            ) from None
        if not (root / parts[0]).is_file():
            raise DatasetFormatError(
                f"{path} line {number}: image '{parts[0]}' does not exist under {root}; the "
                "dataset is incomplete or the index belongs to another copy of it"
            )
        entries.append(IndexEntry(parts[0], label, number))
    if not entries:
        raise DatasetFormatError(f"{path}: the index file is empty")
    return entries


def list_images(folder: Path) -> list[str]:
    """Return the image file names of ``folder`` in sorted order.

    Raises:
        DatasetFormatError: if the folder holds anything but image files, because the
            standard readers would pick such a file up as an image.
    """
    names = sorted(entry.name for entry in folder.iterdir())
    strays = [name for name in names if Path(name).suffix.lower() not in IMAGE_SUFFIXES]
    if strays:
        raise DatasetFormatError(
            f"{folder} holds files that are not images: {strays[:5]}; remove them (the "
            "standard protocol lists every file of an identity folder as an image)"
        )
    if not names:
        raise DatasetFormatError(f"{folder} is an empty identity folder; remove it or restore it")
    return names


@dataclass(frozen=True)
class IdentityCameraFolder:
    """The images of one identity under one camera, in sorted file order."""

    pid: int
    camid: int
    samples: tuple[Sample, ...]


def walk_identity_folders(
    root: Path,
    pids: Sequence[int],
    camera_dirs: Sequence[tuple[int, str]],
    modality: Modality,
) -> list[IdentityCameraFolder]:
    """Walk ``<camera dir>/<pid as 4 digits>/`` folders in the standard order.

    The order is the one of the standard code: identities ascending (outer loop), cameras
    in the given order (inner loop), files sorted by name; (identity, camera) folders that
    do not exist are passed over, as not every identity is seen by every camera.

    Args:
        root: Dataset root.
        pids: Identities to walk (any order; they are sorted).
        camera_dirs: ``(camera number, folder relative to root)`` pairs in protocol order.
        modality: Modality of every image found.
    """
    folders = []
    for pid in sorted(pids):
        for camid, camera_dir in camera_dirs:
            folder = root / camera_dir / f"{pid:04d}"
            if folder.is_dir():
                samples = tuple(
                    Sample(folder / name, pid, camid, modality) for name in list_images(folder)
                )
                folders.append(IdentityCameraFolder(pid, camid, samples))
    return folders


def flatten(folders: Sequence[IdentityCameraFolder]) -> list[Sample]:
    """Concatenate the samples of ``folders`` in order."""
    return [sample for folder in folders for sample in folder.samples]


def folder_groups(folders: Sequence[IdentityCameraFolder]) -> list[list[int]]:
    """Return, for each folder, the indices its samples take in [`flatten`][]'s list."""
    groups, start = [], 0
    for folder in folders:
        groups.append(list(range(start, start + len(folder.samples))))
        start += len(folder.samples)
    return groups
