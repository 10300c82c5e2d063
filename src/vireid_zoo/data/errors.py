"""The errors and warnings every dataset reader raises."""

from __future__ import annotations

import warnings
from pathlib import Path


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
