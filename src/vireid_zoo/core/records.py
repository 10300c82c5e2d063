"""Image records and modality names: the vocabulary every layer of the zoo shares."""

from __future__ import annotations

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
