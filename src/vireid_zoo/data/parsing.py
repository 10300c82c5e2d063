"""Human-parsing maps as data: a parallel tree of PNG part-label maps and their grouping.

CSCL (Liu et al., "Cross-Modality Semantic Consistency Learning for Visible-Infrared Person
Re-Identification", IEEE TMM 27, 2025) trains with human semantic parsing. The maps are
precomputed offline by a human parser (SCHP on LIP labels, or ``vireid-zoo parse``; [A]: an
assumption of this zoo, see the table of the CSCL README) and stored in a folder tree
parallel to the dataset: the map of ``<dataset root>/<relative path>.<ext>`` is
``<parsing root>/<relative path>.png``, a single-channel PNG of the parser's labels at the
image's size. A [`PartGrouping`][] turns parser labels into part indices ``0..K-1`` (0 is
the background) and marks unreliable pixels (infrared parses are noisy) with an ignore
label; grouped maps use [`IGNORE_INDEX`][] for them. Missing maps are reported, never replaced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vireid_zoo.core.records import Sample
from vireid_zoo.data.errors import ImageDecodeError

IGNORE_INDEX = 255
"""Value of ignored pixels in grouped maps (and the parsing loss's ``ignore_index``)."""

MAP_SUFFIX = ".png"

LIP_FIVE_PARTS: dict[str, tuple[int, ...]] = {
    "background": (0,),
    "head": (1, 2, 4, 13),  # hat, hair, sunglasses, face
    "upper_body": (3, 5, 6, 7, 10, 11, 14, 15),  # glove, upper clothes, dress, coat,
    # jumpsuits, scarf, left and right arm
    "lower_body": (9, 12, 16, 17),  # pants, skirt, left and right leg
    "shoes": (8, 18, 19),  # socks, left and right shoe
}
"""The default grouping ([A], see the CSCL README's table): the 20 LIP labels into K = 5 parts."""

GROUPINGS: dict[str, Mapping[str, Sequence[int]]] = {"lip5": LIP_FIVE_PARTS}
"""Named groupings that ``parsing_grouping`` accepts instead of a mapping."""

_MAP_MODES = ("L", "P", "I;16", "I")


class ParsingMapsNotFoundError(FileNotFoundError):
    """Parsing maps are configured but some training images have none."""


class ParsingMapError(ValueError):
    """A parsing map exists but cannot be used (unreadable, wrong size, unknown label)."""


@dataclass(frozen=True)
class PartGrouping:
    """Parser labels -> part indices ``0..K-1`` (index 0 is the background).

    Attributes:
        names: Part names in index order.
        labels: For each part, the parser labels it gathers.
        ignore_label: Parser label of pixels the parsing loss ignores (None: no such
            label); it becomes [`IGNORE_INDEX`][] in grouped maps.
    """

    names: tuple[str, ...]
    labels: tuple[tuple[int, ...], ...]
    ignore_label: int | None = 255

    def __post_init__(self) -> None:
        if len(self.names) < 2 or len(self.names) != len(self.labels):
            raise ValueError(
                f"a grouping needs a name and a label list for each of at least 2 parts "
                f"(background first), got {self.names!r}"
            )
        if len(self.names) >= IGNORE_INDEX:
            raise ValueError(f"a grouping may have at most {IGNORE_INDEX - 1} parts")
        flat = [label for group in self.labels for label in group]
        if self.ignore_label is not None:
            flat.append(self.ignore_label)
        if any(not 0 <= label < 2**16 for label in flat):
            raise ValueError(f"parser labels must be in 0..65535, got {sorted(set(flat))}")
        repeated = sorted({label for label in flat if flat.count(label) > 1})
        if repeated:
            raise ValueError(
                f"parser labels {repeated} are listed twice (in two parts, or as a part's "
                "label and the ignore label)"
            )

    @classmethod
    def from_config(
        cls, grouping: str | Mapping[str, Sequence[int]] = "lip5", ignore_label: int | None = 255
    ) -> PartGrouping:
        """Build a grouping from a name of [`GROUPINGS`][] or a ``{part: [labels]}`` map.

        The mapping's first entry is the background (index 0); YAML mappings keep their order.
        """
        if isinstance(grouping, str):
            if grouping not in GROUPINGS:
                raise ValueError(
                    f"unknown parsing grouping {grouping!r}: use one of {list(GROUPINGS)} or a "
                    "mapping {part name: [parser labels]} with the background first"
                )
            grouping = GROUPINGS[grouping]
        names = tuple(grouping)
        labels = tuple(tuple(int(label) for label in grouping[name]) for name in names)
        return cls(names, labels, ignore_label)

    @property
    def num_parts(self) -> int:
        """K: the number of part indices, background included."""
        return len(self.names)

    @cached_property
    def _table(self) -> np.ndarray:
        """Parser label -> part index, IGNORE_INDEX, or -1 for a label of no part."""
        table = np.full(2**16, -1, dtype=np.int32)
        for index, group in enumerate(self.labels):
            table[list(group)] = index
        if self.ignore_label is not None:
            table[self.ignore_label] = IGNORE_INDEX
        return table

    def apply(self, raw: np.ndarray, source: Path | str = "<array>") -> np.ndarray:
        """Group a map of parser labels; return uint8 part indices (ignored: IGNORE_INDEX).

        Raises:
            ParsingMapError: naming ``source`` when the map holds a label of no part.
        """
        raw = raw.astype(np.int64)
        in_range = (raw >= 0) & (raw < 2**16)
        grouped = np.where(in_range, self._table[raw.clip(0, 2**16 - 1)], -1)
        unknown = np.unique(raw[grouped < 0])
        if unknown.size:
            raise ParsingMapError(
                f"parsing map {source} holds parser labels {unknown[:10].tolist()} that belong "
                f"to no part of the grouping {dict(zip(self.names, self.labels, strict=True))} "
                f"(ignore label {self.ignore_label}); add them to parsing_grouping"
            )
        return grouped.astype(np.uint8)


def read_label_map(path: Path) -> np.ndarray:
    """Read a single-channel PNG label map as an integer array (H, W).

    Raises:
        ImageDecodeError: naming the file when it cannot be decoded.
        ParsingMapError: naming the file when it is not a single-channel label map.
    """
    try:
        with Image.open(path) as image:
            if image.mode not in _MAP_MODES:
                raise ParsingMapError(
                    f"parsing map {path} has mode {image.mode!r}; expected a single-channel "
                    f"label map (one of {list(_MAP_MODES)}), one parser label per pixel"
                )
            return np.asarray(image).astype(np.int64)
    except (OSError, UnidentifiedImageError) as error:
        raise ImageDecodeError(f"cannot decode parsing map {path}: {error}") from error


def write_label_map(path: Path, labels: np.ndarray) -> None:
    """Write labels (H, W) in 0..255 as an 8-bit single-channel PNG."""
    if labels.ndim != 2 or labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise ValueError(f"{path}: labels must be (H, W) integers in 0..255")
    Image.fromarray(labels.astype(np.uint8), mode="L").save(path, format="PNG")


class PartMaps:
    """The parsing maps of a dataset: locate, check and load them.

    Args:
        image_root: The dataset root that image paths are relative to.
        parsing_root: The parallel tree of maps.
        grouping: How parser labels become parts.
    """

    def __init__(self, image_root: Path, parsing_root: Path, grouping: PartGrouping) -> None:
        self.image_root = Path(image_root)
        self.parsing_root = Path(parsing_root).expanduser()
        self.grouping = grouping

    def path_of(self, image: Path) -> Path:
        """The map of ``image``: the same path relative to the roots, with a ``.png`` suffix."""
        try:
            relative = Path(image).relative_to(self.image_root)
        except ValueError:
            raise ParsingMapError(
                f"image {image} is not under the dataset root {self.image_root}: parsing maps "
                "mirror the dataset tree, so every image must lie under the root"
            ) from None
        return self.parsing_root / relative.with_suffix(MAP_SUFFIX)

    def check(self, samples: Sequence[Sample]) -> None:
        """Check that every sample has a map.

        Raises:
            ParsingMapsNotFoundError: with the number of missing maps and the first one.
        """
        missing = [s.path for s in samples if not self.path_of(s.path).is_file()]
        if missing:
            raise ParsingMapsNotFoundError(
                f"{len(missing)} of {len(samples)} training images have no parsing map under "
                f"parsing_root '{self.parsing_root}'; the first missing is "
                f"'{self.path_of(missing[0])}' (for image '{missing[0]}'). Write the maps "
                "with `vireid-zoo parse` (docs/parsing.md) or fix parsing_root."
            )

    def load(self, image: Path, size: tuple[int, int]) -> torch.Tensor:
        """The grouped map of ``image`` (H, W) uint8, after checking it has ``size`` (W, H).

        Raises:
            ParsingMapError: naming the map when its size differs from the image's.
        """
        path = self.path_of(image)
        if not path.is_file():
            raise ParsingMapsNotFoundError(f"no parsing map {path} for image {image}")
        raw = read_label_map(path)
        if (raw.shape[1], raw.shape[0]) != tuple(size):
            raise ParsingMapError(
                f"parsing map {path} is {raw.shape[1]}x{raw.shape[0]} (WxH) but its image "
                f"{image} is {size[0]}x{size[1]}; maps must have their image's size"
            )
        return torch.from_numpy(self.grouping.apply(raw, path))
