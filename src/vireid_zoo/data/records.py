"""Image records, modality names and the errors every dataset reader raises."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Modality = Literal["visible", "infrared"]
"""The two imaging modalities. Thermal (RegDB) and near-infrared (SYSU-MM01, LLCM) are both
``"infrared"``: what matters to a model is which stem an image goes through."""

MODALITIES: tuple[Modality, Modality] = ("visible", "infrared")
MODALITY_CODES: dict[str, int] = {"visible": 0, "infrared": 1}
"""Integer codes used in batches (``batch["modality"]``) and in the evaluation metric."""


def modality_code(modality: str) -> int:
    """Return the integer code of ``modality``, with a clear error for any other value."""
    try:
        return MODALITY_CODES[modality]
    except KeyError:
        raise ValueError(
            f"unknown modality {modality!r}: use one of {list(MODALITY_CODES)} "
            "(thermal and near-infrared images are both 'infrared')"
        ) from None


@dataclass(frozen=True, order=True)
class Sample:
    """One image of a person.

    Attributes:
        path: Absolute path of the image file.
        pid: Person identity as the dataset names it (not a training label).
        camid: Camera number as the dataset names it (SYSU-MM01 and LLCM: 1..9; RegDB:
            1 for visible, 2 for thermal).
        modality: ``"visible"`` or ``"infrared"``; it decides which stem embeds the image.
    """

    path: Path
    pid: int
    camid: int
    modality: Modality


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root, or a folder or file the layout requires, is missing.

    The message names the root, what is missing and how to obtain the dataset; none of the
    datasets can be downloaded automatically, because each needs a signed agreement.
    """

    def __init__(self, dataset: str, root: Path, missing: str, how_to_obtain: str) -> None:
        self.dataset = dataset
        self.root = Path(root)
        self.missing = missing
        super().__init__(
            f"{dataset} not found under root '{self.root}': missing {missing}. "
            f"{how_to_obtain} Then pass the folder that directly contains the layout "
            f"shown in docs/datasets.md as `root`."
        )


class DatasetFormatError(ValueError):
    """A file of the dataset exists but its content does not follow the layout."""


class ImageDecodeError(OSError):
    """An image file exists but cannot be decoded."""


class DatasetCountWarning(UserWarning):
    """The dataset holds a different number of images or identities than published."""


def warn_count(dataset: str, what: str, found: int, published: int) -> None:
    """Warn with both numbers when ``found`` differs from the published count."""
    if found != published:
        warnings.warn(
            f"{dataset}: found {found} {what}, the published dataset has {published}. "
            "Results will not be comparable to published numbers; check that the dataset "
            "is complete and unmodified (pass check_counts=False for a deliberate subset).",
            DatasetCountWarning,
            stacklevel=3,
        )
