"""Verifying a dataset before training: every image decoded, identity lists checked.

The readers check the layout (folders, index files, id lists) but never decode an image,
so a corrupt file would otherwise surface only when the sampler draws it, mid-training.
[`verify_dataset`][] decodes every image the protocols use, collects every file that
fails (not only the first), and checks the identity lists: an evaluation identity with no
image, and an identity listed for both training and testing (a leak), are errors.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from vireid_zoo.core.records import Sample
from vireid_zoo.data.datasets import load_image
from vireid_zoo.data.errors import ImageDecodeError
from vireid_zoo.data.llcm import LLCM
from vireid_zoo.data.regdb import RegDB
from vireid_zoo.data.sysu_mm01 import SYSUMM01

Reader = SYSUMM01 | RegDB | LLCM


@dataclass
class Verification:
    """What [`verify_dataset`][] found.

    Attributes:
        images: Number of distinct image files decoded.
        bad_images: ``(path, reason)`` of every file that cannot be decoded.
        errors: Identity-list problems that make the protocol wrong (leaks, evaluation
            identities without images).
        notes: Findings that do not stop a run but change what it measures.
    """

    images: int = 0
    bad_images: list[tuple[Path, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no image is bad and no identity list is wrong."""
        return not self.bad_images and not self.errors


def decode_images(
    paths: Sequence[Path], *, workers: int | None = None, progress: bool | None = None
) -> list[tuple[Path, str]]:
    """Decode every image; return ``(path, reason)`` for each that fails, in ``paths`` order.

    Args:
        paths: The image files.
        workers: Decoding threads (default: the CPU count, at most 8).
        progress: Show a progress bar on stderr (None: when stderr is a terminal).
    """

    def check(path: Path) -> str | None:
        try:
            load_image(path)
        except ImageDecodeError as error:
            return str(error.__cause__ or error)
        return None

    threads = workers or min(8, os.cpu_count() or 1)
    with (
        ThreadPoolExecutor(threads) as pool,
        tqdm(
            total=len(paths),
            desc="decoding images",
            unit="img",
            file=sys.stderr,
            disable=None if progress is None else not progress,
            mininterval=1.0,
        ) as bar,
    ):
        failures = []
        for path, reason in zip(paths, pool.map(check, paths), strict=True):
            bar.update()
            if reason is not None:
                failures.append((path, reason))
    return failures


def verify_dataset(
    reader: Reader, *, workers: int | None = None, progress: bool | None = None
) -> Verification:
    """Decode every image of a dataset and check its identity lists.

    Args:
        reader: A [`SYSUMM01`][], [`RegDB`][] (its trial) or [`LLCM`][] reader.
        workers: Decoding threads (default: the CPU count, at most 8).
        progress: Show a progress bar on stderr (None: when stderr is a terminal).
    """
    result = Verification()
    if isinstance(reader, SYSUMM01):
        samples = _sysu_mm01(reader, result)
    elif isinstance(reader, RegDB):
        samples = _regdb(reader, result)
    else:
        samples = _llcm(reader, result)
    paths = sorted({sample.path for sample in samples})
    result.images = len(paths)
    result.bad_images = decode_images(paths, workers=workers, progress=progress)
    return result


def _sysu_mm01(reader: SYSUMM01, result: Verification) -> list[Sample]:
    lists = {split: set(reader.ids(split)) for split in ("train", "val", "test")}
    for first, second in (("train", "test"), ("val", "test"), ("train", "val")):
        _shared(result, lists[first], lists[second], f"exp/{first}_id.txt", f"exp/{second}_id.txt")
    evaluated = []
    for split in ("test", "val"):
        query, gallery = reader.query_samples(split), reader.gallery_pool("all", split)
        _evaluation_images(result, f"exp/{split}_id.txt", lists[split], query, gallery)
        evaluated += query + gallery
    return reader.train_samples() + evaluated


def _regdb(reader: RegDB, result: Verification) -> list[Sample]:
    train = reader.train_samples()
    test = reader.query_samples("visible_to_thermal") + reader.query_samples("thermal_to_visible")
    # Index labels restart at 0 in each file: a person is the folder of its images.
    train_people = {_person(reader.root, s) for s in train}
    test_people = {_person(reader.root, s) for s in test}
    trial = reader.trial
    _shared(
        result,
        train_people,
        test_people,
        f"idx/train_*_{trial}.txt",
        f"idx/test_*_{trial}.txt",
        what="person folders",
    )
    return train + test


def _llcm(reader: LLCM, result: Verification) -> list[Sample]:
    train = reader.train_samples()
    test_ids = set(reader.test_ids())
    query, gallery = reader.query_samples("ir_to_vis"), reader.gallery_pool("ir_to_vis")
    _evaluation_images(result, "idx/test_id.txt", test_ids, query, gallery)
    # Training labels are class indices: the identity is the training image's folder.
    folders = {sample.path.parent.name for sample in train}
    if all(name.isdigit() for name in folders):
        train_ids = {int(name) for name in folders}
        _shared(result, train_ids, test_ids, "idx/train_*.txt (folders)", "idx/test_id.txt")
    else:
        result.notes.append(
            "the training images' folders are not identity numbers, so the training and "
            "test identities could not be compared"
        )
    return train + query + gallery


def _person(root: Path, sample: Sample) -> str:
    relative = sample.path.relative_to(root)
    return relative.parent.as_posix().split("/", 1)[-1]  # Visible/<person> ~ Thermal/<person>


def _shared(
    result: Verification,
    first: AbstractSet[object],
    second: AbstractSet[object],
    first_name: str,
    second_name: str,
    what: str = "identities",
) -> None:
    shared = sorted(first & second, key=str)
    if shared:
        result.errors.append(
            f"{len(shared)} {what} are in both {first_name} and {second_name} (a leak: the "
            f"model would be tested on people it trained on): {_listed(shared)}"
        )


def _evaluation_images(
    result: Verification,
    list_name: str,
    ids: set[int],
    query: Iterable[Sample],
    gallery: Iterable[Sample],
) -> None:
    queried, galleried = {s.pid for s in query}, {s.pid for s in gallery}
    empty = sorted(ids - queried - galleried)
    if empty:
        result.errors.append(
            f"{len(empty)} identities of {list_name} have no image at all: {_listed(empty)}; "
            "restore their folders or remove them from the list"
        )
    consequences = (
        (queried - galleried, "no gallery image, so their queries cannot be matched"),
        (galleried - queried, "no query image, so they are never queried"),
    )
    for missing, consequence in consequences:
        if missing:
            result.notes.append(
                f"{len(missing)} identities of {list_name} have {consequence}: "
                f"{_listed(sorted(missing))}"
            )


def _listed(values: Sequence[object]) -> str:
    return ", ".join(map(str, values))
