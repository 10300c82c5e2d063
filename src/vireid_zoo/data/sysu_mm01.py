"""SYSU-MM01 (Wu et al., ICCV 2017): reader and the standard / official test protocols."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from vireid_zoo.core.records import Modality, Sample
from vireid_zoo.data.errors import DatasetFormatError, warn_count
from vireid_zoo.data.layout import (
    IdentityCameraFolder,
    flatten,
    folder_groups,
    read_id_list,
    require,
    walk_identity_folders,
)
from vireid_zoo.evaluation.protocols import TaskSpec, seeded_gallery_trial

SearchMode = Literal["all", "indoor"]
TrainSplit = Literal["train+val", "train"]
TestSplit = Literal["test", "val"]
GallerySampling = Literal["standard", "official"]

VISIBLE_CAMERAS = (1, 2, 4, 5)
INFRARED_CAMERAS = (3, 6)
QUERY_CAMERAS = (3, 6)
GALLERY_CAMERAS: dict[str, tuple[int, ...]] = {"all": (1, 2, 4, 5), "indoor": (1, 2)}

PUBLISHED = {
    "train ids": 395,
    "train visible images": 22258,
    "train infrared images": 11909,
    "test ids": 96,
    "query images": 3803,
    "single-shot all-search gallery images": 301,
}

HOW_TO_OBTAIN = (
    "SYSU-MM01 cannot be downloaded automatically: request it from its authors "
    "(https://github.com/wuancong/SYSU-MM01, signed agreement) and unpack it so that the "
    "root holds cam1..cam6 and exp/."
)


class SYSUMM01:
    """Reader for SYSU-MM01.

    Layout: ``root/cam1..cam6/<pid:04d>/<image:04d>.jpg`` and ``root/exp/{train,val,test}
    _id.txt``. Cameras 1, 2, 4, 5 are visible, 3 and 6 infrared; camera 3 is indoors in the
    same room as camera 2.

    Args:
        root: The dataset folder.
        check_counts: Warn when the image or identity counts differ from the published
            dataset (pass False for a deliberate subset).
        permutation_file: The official ``rand_perm_cam.mat`` (SYSU-MM01 evaluation code,
            ``evaluation/data_split/``); needed only for ``sampling="official"``.
    """

    name = "SYSU-MM01"
    protocol = "sysu_mm01"

    def __init__(
        self,
        root: str | Path,
        *,
        check_counts: bool = True,
        permutation_file: str | Path | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.check_counts = check_counts
        self.permutation_file = None if permutation_file is None else Path(permutation_file)
        for camid in (*VISIBLE_CAMERAS, *INFRARED_CAMERAS):
            require(self.name, self.root, f"cam{camid}", HOW_TO_OBTAIN, is_dir=True)
        for split in ("train", "val", "test"):
            require(self.name, self.root, f"exp/{split}_id.txt", HOW_TO_OBTAIN, is_dir=False)

    def ids(self, split: Literal["train", "val", "test"]) -> list[int]:
        """Identities listed in ``exp/<split>_id.txt``."""
        return read_id_list(self.root / "exp" / f"{split}_id.txt")

    def _walk(self, pids: Iterable[int], cameras: tuple[int, ...]) -> list[IdentityCameraFolder]:
        modality: Modality = "infrared" if set(cameras) <= set(INFRARED_CAMERAS) else "visible"
        camera_dirs = [(camid, f"cam{camid}") for camid in cameras]
        return walk_identity_folders(self.root, list(pids), camera_dirs, modality)

    def train_samples(self, split: TrainSplit = "train+val") -> list[Sample]:
        """Training images: visible ones first, then infrared, each in the standard order.

        Args:
            split: ``"train+val"`` (the standard 395 identities) or ``"train"`` when the
                ``val`` identities are held out for model selection.
        """
        pids = self.ids("train") + (self.ids("val") if split == "train+val" else [])
        visible = flatten(self._walk(pids, VISIBLE_CAMERAS))
        infrared = flatten(self._walk(pids, INFRARED_CAMERAS))
        if self.check_counts and split == "train+val":
            warn_count(self.name, "training identities", len(set(pids)), PUBLISHED["train ids"])
            warn_count(
                self.name,
                "visible training images",
                len(visible),
                PUBLISHED["train visible images"],
            )
            warn_count(
                self.name,
                "infrared training images",
                len(infrared),
                PUBLISHED["train infrared images"],
            )
        return visible + infrared

    def query_samples(self, split: TestSplit = "test") -> list[Sample]:
        """Every infrared image (cameras 3, 6) of the test identities, in the standard order.

        The query is the same for the ``all`` and ``indoor`` modes.
        """
        pids = self.ids(split)
        query = flatten(self._walk(pids, QUERY_CAMERAS))
        if self.check_counts and split == "test":
            warn_count(self.name, "test identities", len(pids), PUBLISHED["test ids"])
            warn_count(self.name, "query images", len(query), PUBLISHED["query images"])
        return query

    @cached_property
    def _gallery_folders(self) -> dict[tuple[str, str], list[IdentityCameraFolder]]:
        return {
            (mode, split): self._walk(self.ids(split), GALLERY_CAMERAS[mode])
            for mode in GALLERY_CAMERAS
            for split in ("test", "val")
        }

    def gallery_pool(self, mode: SearchMode = "all", split: TestSplit = "test") -> list[Sample]:
        """Every visible image a gallery of ``mode`` may hold, in the standard order."""
        return flatten(self._folders(mode, split))

    def _folders(self, mode: str, split: str) -> list[IdentityCameraFolder]:
        if mode not in GALLERY_CAMERAS:
            raise ValueError(f"unknown SYSU-MM01 mode {mode!r}: use 'all' or 'indoor'")
        if split not in ("test", "val"):
            raise ValueError(f"unknown SYSU-MM01 test split {split!r}: use 'test' or 'val'")
        return self._gallery_folders[(mode, split)]

    def gallery_trial(
        self,
        trial: int,
        mode: SearchMode = "all",
        shots: int = 1,
        split: TestSplit = "test",
        sampling: GallerySampling = "standard",
    ) -> list[int]:
        """Indices into [`gallery_pool`][] of trial ``trial``'s gallery.

        Args:
            trial: 0..9 for the published protocol.
            mode: ``"all"`` (cameras 1, 2, 4, 5) or ``"indoor"`` (cameras 1, 2).
            shots: 1 (single-shot, the standard) or 10 (multi-shot) images per
                (identity, camera).
            split: ``"test"`` or ``"val"`` (validation on the held-out val identities).
            sampling: ``"standard"``: the ``random.seed(trial)`` + ``random.choice``
                sequence of the AGW code, which every published number uses (multi-shot
                draws ``random.sample`` of ``shots`` images per folder). ``"official"``:
                the permutations of the official MATLAB evaluation
                (``permutation_file``), trial ``t`` being its run ``t + 1``.
        """
        folders = self._folders(mode, split)
        if sampling == "standard":
            trial_indices = seeded_gallery_trial(folder_groups(folders), trial, shots)
        elif sampling == "official":
            trial_indices = self._official_trial(folders, trial, shots)
        else:
            raise ValueError(f"unknown sampling {sampling!r}: use 'standard' or 'official'")
        if self.check_counts and (mode, shots, split) == ("all", 1, "test"):
            warn_count(
                self.name,
                "single-shot all-search gallery images",
                len(trial_indices),
                PUBLISHED["single-shot all-search gallery images"],
            )
        return trial_indices

    def gallery_samples(
        self,
        trial: int,
        mode: SearchMode = "all",
        shots: int = 1,
        split: TestSplit = "test",
        sampling: GallerySampling = "standard",
    ) -> list[Sample]:
        """The gallery of trial ``trial`` (see [`gallery_trial`][] for the arguments)."""
        pool = self.gallery_pool(mode, split)
        return [pool[i] for i in self.gallery_trial(trial, mode, shots, split, sampling)]

    def task(
        self,
        mode: SearchMode = "all",
        trials: Iterable[int] = range(10),
        shots: int = 1,
        split: TestSplit = "test",
        sampling: GallerySampling = "standard",
    ) -> TaskSpec:
        """The evaluation task of one search mode over ``trials``."""
        suffix = "" if shots == 1 else f"-{shots}shot"
        suffix += "" if sampling == "standard" else "-official"
        prefix = "sysu_mm01" if split == "test" else "sysu_mm01_val"
        return TaskSpec(
            name=f"{prefix}/{mode}{suffix}",
            protocol="sysu_mm01",
            query=self.query_samples(split),
            gallery_pool=self.gallery_pool(mode, split),
            trials={t: self.gallery_trial(t, mode, shots, split, sampling) for t in trials},
        )

    @cached_property
    def _permutations(self) -> np.ndarray:
        if self.permutation_file is None:
            raise ValueError(
                "sampling='official' needs the official permutation file: pass "
                "permutation_file='.../rand_perm_cam.mat' (evaluation/data_split/ of "
                "https://github.com/wuancong/SYSU-MM01)"
            )
        from scipy.io import loadmat

        try:
            content = loadmat(self.permutation_file)
        except (OSError, ValueError) as error:
            raise DatasetFormatError(
                f"cannot read the SYSU-MM01 permutation file {self.permutation_file}: {error}"
            ) from error
        if "rand_perm_cam" not in content:
            raise DatasetFormatError(
                f"{self.permutation_file} has no 'rand_perm_cam' variable; it is not the "
                "official rand_perm_cam.mat"
            )
        return content["rand_perm_cam"]

    def _official_trial(
        self, folders: list[IdentityCameraFolder], trial: int, shots: int
    ) -> list[int]:
        """Pick ``shots`` images per folder from row ``trial`` of the official permutations.

        ``rand_perm_cam{cam}{pid}`` is a (10 runs x images) matrix of 1-based positions in
        the folder's sorted file list.
        """
        permutations = self._permutations
        chosen: list[int] = []
        start = 0
        for folder in folders:
            where = f"{self.permutation_file}: camera {folder.camid}, identity {folder.pid}"
            try:
                matrix = np.asarray(permutations[folder.camid - 1, 0][folder.pid - 1, 0])
            except IndexError:
                raise DatasetFormatError(f"{where} is missing from the permutations") from None
            if matrix.ndim != 2 or not 0 <= trial < matrix.shape[0]:
                raise DatasetFormatError(f"{where}: no permutation for trial {trial}")
            if matrix.shape[1] != len(folder.samples):
                raise DatasetFormatError(
                    f"{where}: the permutation covers {matrix.shape[1]} images but the folder "
                    f"holds {len(folder.samples)}; the dataset copy differs from the official one"
                )
            if matrix.shape[1] < shots:
                raise DatasetFormatError(f"{where}: fewer than {shots} images for {shots} shots")
            chosen.extend(start + int(position) - 1 for position in matrix[trial, :shots])
            start += len(folder.samples)
        return chosen
