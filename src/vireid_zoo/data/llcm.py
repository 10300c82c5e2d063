"""LLCM (Zhang and Wang, CVPR 2023): reader and the IR-to-VIS / VIS-to-IR protocols."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Literal

from vireid_zoo.core.records import Modality, Sample
from vireid_zoo.data.errors import DatasetFormatError, warn_count
from vireid_zoo.data.layout import (
    IdentityCameraFolder,
    IndexEntry,
    flatten,
    folder_groups,
    read_id_list,
    read_index_file,
    require,
    walk_identity_folders,
)
from vireid_zoo.evaluation.protocols import TaskSpec, seeded_gallery_trial

Direction = Literal["ir_to_vis", "vis_to_ir"]
DIRECTIONS: tuple[Direction, Direction] = ("ir_to_vis", "vis_to_ir")

VISIBLE_CAMERAS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
INFRARED_CAMERAS = (1, 2, 4, 5, 6, 7, 8, 9)
PUBLISHED_TRAIN_IDS = 713
PUBLISHED_TEST_IDS = 351

CAMERA_FOLDER = re.compile(r"^cam(\d+)$")
CAMERA_IN_NAME = re.compile(r"_c(\d+)_")

HOW_TO_OBTAIN = (
    "LLCM cannot be downloaded automatically: send the signed agreement to its authors "
    "(https://github.com/ZYK100/LLCM) and unpack it so that the root holds idx/, test_vis/ "
    "and test_nir/."
)


def camera_from_relative_path(relative_path: str) -> int | None:
    """Camera number from a path relative to the root: a ``camK`` folder, else ``_cK_``.

    Only the path relative to the dataset root is parsed, so a root whose own path
    contains "cam" cannot confuse it.
    """
    path = PurePosixPath(relative_path)
    for part in path.parts[:-1]:
        match = CAMERA_FOLDER.match(part)
        if match:
            return int(match.group(1))
    match = CAMERA_IN_NAME.search(path.name)
    return int(match.group(1)) if match else None


class LLCM:
    """Reader for LLCM.

    Layout: ``root/idx/{train_vis,train_nir,test_vis,test_nir}.txt`` (``<relative path>
    <label>`` lines), ``root/idx/test_id.txt`` (one comma-separated line) and the test trees
    ``root/test_vis/cam1..cam9/<pid:04d>/*.jpg`` and ``root/test_nir/cam{1,2,4..9}/...``
    (there is no near-infrared camera 3). Cameras switch between modalities, so camera
    numbers are shared by the two trees.

    Args:
        root: The dataset folder.
        check_counts: Warn when identity counts differ from the published dataset.
    """

    name = "LLCM"
    protocol = "llcm"

    def __init__(self, root: str | Path, *, check_counts: bool = True) -> None:
        self.root = Path(root).expanduser()
        self.check_counts = check_counts
        for index in ("train_vis", "train_nir", "test_id"):
            require(self.name, self.root, f"idx/{index}.txt", HOW_TO_OBTAIN, is_dir=False)
        for tree in ("test_vis", "test_nir"):
            require(self.name, self.root, tree, HOW_TO_OBTAIN, is_dir=True)

    def _train(self, index: str, modality: Modality) -> list[Sample]:
        index_path = self.root / "idx" / f"{index}.txt"
        return [
            Sample(self.root / e.relative_path, e.label, self._camera(index_path, e), modality)
            for e in read_index_file(self.root, index_path)
        ]

    @staticmethod
    def _camera(index_path: Path, entry: IndexEntry) -> int:
        camid = camera_from_relative_path(entry.relative_path)
        if camid is None:
            raise DatasetFormatError(
                f"{index_path} line {entry.line_number}: no camera in '{entry.relative_path}' "
                "(expected a 'camK' folder or '_cK_' in the file name)"
            )
        return camid

    def train_samples(self) -> list[Sample]:
        """Training images from ``idx/train_vis.txt`` then ``idx/train_nir.txt``.

        Identities are the index files' labels; cameras come from the relative paths.
        """
        visible = self._train("train_vis", "visible")
        infrared = self._train("train_nir", "infrared")
        if self.check_counts:
            train_ids = len({s.pid for s in visible + infrared})
            warn_count(self.name, "training identities", train_ids, PUBLISHED_TRAIN_IDS)
        return visible + infrared

    def test_ids(self) -> list[int]:
        """Identities listed in ``idx/test_id.txt``."""
        ids = read_id_list(self.root / "idx" / "test_id.txt")
        if self.check_counts:
            warn_count(self.name, "test identities", len(ids), PUBLISHED_TEST_IDS)
        return ids

    @cached_property
    def _test_folders(self) -> dict[Modality, list[IdentityCameraFolder]]:
        ids = self.test_ids()
        return {
            "visible": walk_identity_folders(
                self.root, ids, [(c, f"test_vis/cam{c}") for c in VISIBLE_CAMERAS], "visible"
            ),
            "infrared": walk_identity_folders(
                self.root, ids, [(c, f"test_nir/cam{c}") for c in INFRARED_CAMERAS], "infrared"
            ),
        }

    @staticmethod
    def _modalities(direction: str) -> tuple[Modality, Modality]:
        if direction == "ir_to_vis":
            return ("infrared", "visible")
        if direction == "vis_to_ir":
            return ("visible", "infrared")
        raise ValueError(f"unknown LLCM direction {direction!r}: use one of {list(DIRECTIONS)}")

    def query_samples(self, direction: Direction = "ir_to_vis") -> list[Sample]:
        """Every test image of the direction's source modality, in the standard order.

        ``"ir_to_vis"``: all ``test_nir`` images; ``"vis_to_ir"``: all ``test_vis`` images.
        (DEEN's test script swaps query and gallery roles in its VIS-to-IR branch; this
        reader uses the plain meaning, see docs/protocols.md.)
        """
        return flatten(self._test_folders[self._modalities(direction)[0]])

    def gallery_pool(self, direction: Direction = "ir_to_vis") -> list[Sample]:
        """Every test image of the direction's target modality, in the standard order."""
        return flatten(self._test_folders[self._modalities(direction)[1]])

    def gallery_trial(self, trial: int, direction: Direction = "ir_to_vis") -> list[int]:
        """Indices into [`gallery_pool`][]: one seeded ``random.choice`` per folder."""
        folders = self._test_folders[self._modalities(direction)[1]]
        return seeded_gallery_trial(folder_groups(folders), trial, shots=1)

    def gallery_samples(self, trial: int, direction: Direction = "ir_to_vis") -> list[Sample]:
        """The gallery of trial ``trial`` (0..9 in the published protocol)."""
        pool = self.gallery_pool(direction)
        return [pool[i] for i in self.gallery_trial(trial, direction)]

    def task(
        self, direction: Direction = "ir_to_vis", trials: Iterable[int] = range(10)
    ) -> TaskSpec:
        """The evaluation task of one direction over ``trials``."""
        return TaskSpec(
            name=f"llcm/{direction}",
            protocol="llcm",
            query=self.query_samples(direction),
            gallery_pool=self.gallery_pool(direction),
            trials={t: self.gallery_trial(t, direction) for t in trials},
        )
