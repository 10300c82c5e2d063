"""A user's own dataset, described by a CSV manifest."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from vireid_zoo.core.records import MODALITY_CODES, Modality, Sample
from vireid_zoo.data.errors import DatasetFormatError, DatasetNotFoundError
from vireid_zoo.evaluation.functional import PROTOCOLS, Protocol
from vireid_zoo.evaluation.protocols import TaskSpec, seeded_gallery_trial

Split = Literal["train", "query", "gallery"]
COLUMNS = ("path", "pid", "camera", "modality", "split")
SPLITS: tuple[str, ...] = ("train", "query", "gallery")


class ManifestDataset:
    """A dataset listed in a CSV file with the header ``path,pid,camera,modality,split``.

    ``path`` is relative to ``root`` (by default the manifest's folder) or absolute;
    ``pid`` and ``camera`` are integers; ``modality`` is ``visible`` or ``infrared``;
    ``split`` is ``train``, ``query`` or ``gallery``. Every row is checked when the
    manifest is read, and the first bad row is reported with its line number.

    Args:
        manifest: The CSV file.
        root: Folder that relative paths start from; defaults to the manifest's folder.
        protocol: Exclusion and CMC rule for evaluation. ``"llcm"`` removes gallery images
            of the query's identity and camera (the usual re-identification rule) and
            counts identity-deduplicated CMC; ``"regdb"`` removes nothing and counts
            image-level CMC; ``"sysu_mm01"`` applies SYSU-MM01's camera 3 / camera 2 rule.
    """

    name = "manifest"

    def __init__(
        self, manifest: str | Path, root: str | Path | None = None, protocol: Protocol = "llcm"
    ) -> None:
        self.manifest = Path(manifest).expanduser()
        if not self.manifest.is_file():
            raise DatasetNotFoundError(
                "manifest dataset",
                self.manifest.parent,
                f"the manifest '{self.manifest.name}'",
                "Write a CSV with the header path,pid,camera,modality,split (docs/datasets.md).",
            )
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}: use one of {list(PROTOCOLS)}")
        self.root = Path(root).expanduser() if root is not None else self.manifest.parent
        self.protocol = protocol
        self._splits = self._read()

    def _read(self) -> dict[str, list[Sample]]:
        splits: dict[str, list[Sample]] = {split: [] for split in SPLITS}
        with self.manifest.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            missing = [column for column in COLUMNS if column not in header]
            if missing:
                raise DatasetFormatError(
                    f"{self.manifest}: missing column(s) {missing}; the header must be "
                    f"{','.join(COLUMNS)} (found {','.join(header) or 'nothing'})"
                )
            for row in reader:
                split, sample = self._parse(row, reader.line_num)
                splits[split].append(sample)
        empty = [split for split, samples in splits.items() if not samples]
        if empty:
            raise DatasetFormatError(f"{self.manifest}: no rows for split(s) {empty}")
        return splits

    def _parse(self, row: dict[str, str], line: int) -> tuple[str, Sample]:
        where = f"{self.manifest} line {line}"
        values = {column: (row.get(column) or "").strip() for column in COLUMNS}
        if values["split"] not in SPLITS:
            raise DatasetFormatError(
                f"{where}: split {values['split']!r} is not one of {list(SPLITS)}"
            )
        if values["modality"] not in MODALITY_CODES:
            raise DatasetFormatError(
                f"{where}: modality {values['modality']!r} is not one of {list(MODALITY_CODES)}"
            )
        try:
            pid, camid = int(values["pid"]), int(values["camera"])
        except ValueError:
            raise DatasetFormatError(
                f"{where}: pid {values['pid']!r} and camera {values['camera']!r} must be integers"
            ) from None
        path = Path(values["path"])
        path = path if path.is_absolute() else self.root / path
        if not path.is_file():
            raise DatasetFormatError(f"{where}: image '{path}' does not exist")
        modality: Modality = "visible" if values["modality"] == "visible" else "infrared"
        return values["split"], Sample(path, pid, camid, modality)

    def train_samples(self) -> list[Sample]:
        """Rows of split ``train``, in manifest order."""
        return list(self._splits["train"])

    def query_samples(self) -> list[Sample]:
        """Rows of split ``query``, in manifest order."""
        return list(self._splits["query"])

    def gallery_pool(self) -> list[Sample]:
        """Rows of split ``gallery``, in manifest order."""
        return list(self._splits["gallery"])

    def gallery_trial(self, trial: int, shots: int | None = None) -> list[int]:
        """Indices into [`gallery_pool`][] for trial ``trial``.

        Args:
            trial: The trial number (also the seed).
            shots: ``None`` keeps the whole gallery; ``k`` draws ``k`` images per
                (identity, camera) with the standard seeded sequence (identities
                ascending, cameras ascending, files in manifest order).
        """
        pool = self._splits["gallery"]
        if shots is None:
            return list(range(len(pool)))
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, sample in enumerate(pool):
            groups[(sample.pid, sample.camid)].append(index)
        return seeded_gallery_trial([groups[key] for key in sorted(groups)], trial, shots)

    def gallery_samples(self, trial: int = 0, shots: int | None = None) -> list[Sample]:
        """The gallery of trial ``trial`` (see [`gallery_trial`][])."""
        pool = self._splits["gallery"]
        return [pool[i] for i in self.gallery_trial(trial, shots)]

    def task(self, trials: Iterable[int] = (0,), shots: int | None = None) -> TaskSpec:
        """The evaluation task over ``trials``."""
        return TaskSpec(
            name=f"{self.name}/{self.manifest.stem}",
            protocol=self.protocol,
            query=self.query_samples(),
            gallery_pool=self.gallery_pool(),
            trials={t: self.gallery_trial(t, shots) for t in trials},
        )
