"""RegDB (Nguyen et al., Sensors 2017): reader and the visible/thermal test protocols."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from vireid_zoo.core.records import Modality, Sample
from vireid_zoo.data.errors import warn_count
from vireid_zoo.data.layout import read_index_file, require
from vireid_zoo.evaluation.protocols import TaskSpec

Direction = Literal["visible_to_thermal", "thermal_to_visible"]
DIRECTIONS: tuple[Direction, Direction] = ("visible_to_thermal", "thermal_to_visible")
TRIALS = range(1, 11)

VISIBLE_CAMERA = 1
THERMAL_CAMERA = 2
PUBLISHED_IMAGES_PER_SPLIT = 2060
PUBLISHED_IDS_PER_SPLIT = 206

HOW_TO_OBTAIN = (
    "RegDB cannot be downloaded automatically: request it from its authors (Dongguk "
    "University, signed agreement); the idx/ files of the 10 standard splits come with the "
    "AGW baseline (github.com/mangye16/Cross-Modal-Re-ID-baseline)."
)


class RegDB:
    """Reader for one trial (split) of RegDB.

    Layout: ``root/Visible/...bmp``, ``root/Thermal/...bmp`` and
    ``root/idx/{train,test}_{visible,thermal}_{t}.txt`` for t = 1..10. Each trial is its own
    206/206 identity split; a model is trained and tested on the same trial, so a reader
    is bound to one trial and refuses another trial's test set.

    Args:
        root: The dataset folder.
        trial: The split, 1..10.
        check_counts: Warn when counts differ from the published dataset.
    """

    name = "RegDB"
    protocol = "regdb"

    def __init__(self, root: str | Path, trial: int, *, check_counts: bool = True) -> None:
        if trial not in TRIALS:
            raise ValueError(f"RegDB trial must be one of 1..10, got {trial}")
        self.root = Path(root).expanduser()
        self.trial = trial
        self.check_counts = check_counts
        for folder in ("Visible", "Thermal"):
            require(self.name, self.root, folder, HOW_TO_OBTAIN, is_dir=True)
        for split in ("train", "test"):
            for modality in ("visible", "thermal"):
                require(
                    self.name,
                    self.root,
                    self._index_name(split, modality),
                    HOW_TO_OBTAIN,
                    is_dir=False,
                )

    def _index_name(self, split: str, modality: str) -> str:
        return f"idx/{split}_{modality}_{self.trial}.txt"

    def _read(self, split: str, modality: Literal["visible", "thermal"]) -> list[Sample]:
        entries = read_index_file(self.root, self.root / self._index_name(split, modality))
        sample_modality: Modality = "visible" if modality == "visible" else "infrared"
        camid = VISIBLE_CAMERA if modality == "visible" else THERMAL_CAMERA
        samples = [
            Sample(self.root / entry.relative_path, entry.label, camid, sample_modality)
            for entry in entries
        ]
        if self.check_counts:
            what = f"{split} {modality} images (trial {self.trial})"
            warn_count(self.name, what, len(samples), PUBLISHED_IMAGES_PER_SPLIT)
            what = f"{split} {modality} identities (trial {self.trial})"
            warn_count(self.name, what, len({s.pid for s in samples}), PUBLISHED_IDS_PER_SPLIT)
        return samples

    def train_samples(self) -> list[Sample]:
        """Training images of this trial: visible ones, then thermal, in index-file order."""
        return self._read("train", "visible") + self._read("train", "thermal")

    def query_samples(self, direction: Direction = "visible_to_thermal") -> list[Sample]:
        """Queries: the test images of the direction's source modality, in index order."""
        return self._read("test", self._modalities(direction)[0])

    def gallery_samples(
        self, trial: int | None = None, direction: Direction = "visible_to_thermal"
    ) -> list[Sample]:
        """Gallery: every test image of the direction's target modality (no sampling).

        Args:
            trial: Must be this reader's trial (or None): testing on another trial's split
                would put that trial's training identities in the test set.
            direction: ``"visible_to_thermal"`` or ``"thermal_to_visible"``.
        """
        if trial is not None and trial != self.trial:
            raise ValueError(
                f"this RegDB reader is bound to trial {self.trial}; trial {trial}'s test set "
                f"overlaps trial {self.trial}'s training identities. Use RegDB(root, "
                f"trial={trial}) with a model trained on trial {trial}"
            )
        return self._read("test", self._modalities(direction)[1])

    @staticmethod
    def _modalities(direction: str) -> tuple[Literal["visible", "thermal"], ...]:
        if direction == "visible_to_thermal":
            return ("visible", "thermal")
        if direction == "thermal_to_visible":
            return ("thermal", "visible")
        raise ValueError(f"unknown RegDB direction {direction!r}: use one of {list(DIRECTIONS)}")

    def task(self, direction: Direction = "visible_to_thermal") -> TaskSpec:
        """The evaluation task of one direction (a single trial: this reader's)."""
        gallery = self.gallery_samples(direction=direction)
        return TaskSpec(
            name=f"regdb/{direction}",
            protocol="regdb",
            query=self.query_samples(direction),
            gallery_pool=gallery,
            trials={self.trial: list(range(len(gallery)))},
        )
