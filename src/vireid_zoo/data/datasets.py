"""Torch datasets: paired visible/infrared training items and evaluation images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from vireid_zoo.core.records import MODALITY_CODES, Sample
from vireid_zoo.data.errors import ImageDecodeError

if TYPE_CHECKING:
    from vireid_zoo.data.cache import CachedArrays
    from vireid_zoo.data.parsing import PartMaps
    from vireid_zoo.evaluation.protocols import EvaluationSuite

Transform = Callable[[Image.Image | torch.Tensor], torch.Tensor]
PairedTransform = Callable[
    [Image.Image | torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]


def load_image(path: Path) -> Image.Image:
    """Open an image as 3-channel RGB (infrared images are often stored single-channel).

    Raises:
        ImageDecodeError: naming the file when it cannot be read or decoded.
    """
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ImageDecodeError(
            f"cannot decode image {path}: {error}. Replace the file with an intact copy "
            "from the original dataset archive."
        ) from error


def training_labels(samples: Sequence[Sample]) -> dict[int, int]:
    """Map each training identity to a class label 0..N-1 in ascending identity order."""
    return {pid: label for label, pid in enumerate(sorted({s.pid for s in samples}))}


class PairedTrainDataset(Dataset):
    """Training items indexed by ``(visible index, infrared index, augmentation seed)``.

    The identity sampler yields pairs of the same identity, so position ``j`` of a batch
    holds a visible and an infrared image of one person. The random transforms run under
    the given seed (on a forked generator), so augmentation is reproducible from the
    sampler's seed and epoch alone.

    Args:
        samples: Training images of both modalities.
        visible_transform: Transform of visible images; with ``parsing``, a transform of
            an image and its part map
            ([`PairedTrainTransform`][vireid_zoo.data.transforms.PairedTrainTransform]).
        infrared_transform: Transform of infrared images (likewise).
        parsing: The human-parsing maps of the images (CSCL), or None.
        image_cache: Pre-resized images of ``samples``
            ([`images`][vireid_zoo.data.cache.ImageCache.images]), read instead of decoding
            the files; the transforms then get ``(3, H, W)`` uint8 tensors at the input
            size and must not resize (build them with ``resize=False``).
        parsing_cache: Pre-resized part maps of ``samples``
            ([`part_maps`][vireid_zoo.data.cache.ImageCache.part_maps]); required with
            ``parsing`` and ``image_cache``, since maps must have their image's size.

    Items are dicts: ``visible``, ``infrared`` (image tensors) and ``visible_pid``,
    ``infrared_pid`` (training class labels 0..num_classes-1, not raw identities); with
    ``parsing`` also ``visible_parsing``, ``infrared_parsing``: (H, W) long part maps
    transformed with their images (ignored pixels:
    [`IGNORE_INDEX`][vireid_zoo.data.parsing.IGNORE_INDEX]).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        visible_transform: Transform | PairedTransform,
        infrared_transform: Transform | PairedTransform,
        parsing: PartMaps | None = None,
        image_cache: CachedArrays | None = None,
        parsing_cache: CachedArrays | None = None,
    ) -> None:
        if parsing is not None and (image_cache is None) != (parsing_cache is None):
            raise ValueError(
                "with parsing maps, cache both the images and the maps or neither: a cached "
                "image is already resized, its map must be too"
            )
        self.parsing = parsing
        self.image_cache = image_cache
        self.parsing_cache = parsing_cache
        self.visible = [s for s in samples if s.modality == "visible"]
        self.infrared = [s for s in samples if s.modality == "infrared"]
        self.labels = training_labels(samples)
        self.visible_transform = visible_transform
        self.infrared_transform = infrared_transform
        self.visible_labels = torch.tensor([self.labels[s.pid] for s in self.visible])
        self.infrared_labels = torch.tensor([self.labels[s.pid] for s in self.infrared])

    @property
    def num_classes(self) -> int:
        """Number of training identities."""
        return len(self.labels)

    def __len__(self) -> int:
        return max(len(self.visible), len(self.infrared))

    def _image(self, sample: Sample) -> Image.Image | torch.Tensor:
        if self.image_cache is None:
            return load_image(sample.path)
        return self.image_cache[sample.path]

    def _part_map(self, sample: Sample, image: Image.Image | torch.Tensor) -> torch.Tensor:
        if self.parsing_cache is not None:
            return self.parsing_cache[sample.path]
        assert self.parsing is not None and isinstance(image, Image.Image)
        return self.parsing.load(sample.path, image.size)

    def __getitem__(self, item: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        visible_index, infrared_index, seed = item
        visible, infrared = self.visible[visible_index], self.infrared[infrared_index]
        visible_image, infrared_image = self._image(visible), self._image(infrared)
        pair = {
            "visible_pid": self.visible_labels[visible_index],
            "infrared_pid": self.infrared_labels[infrared_index],
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # The transforms take an image alone without parsing maps, an image and its
            # map with them (see Args).
            if self.parsing is None:
                pair["visible"] = cast(Transform, self.visible_transform)(visible_image)
                pair["infrared"] = cast(Transform, self.infrared_transform)(infrared_image)
            else:
                visible_map = self._part_map(visible, visible_image)
                infrared_map = self._part_map(infrared, infrared_image)
                pair["visible"], pair["visible_parsing"] = cast(
                    PairedTransform, self.visible_transform
                )(visible_image, visible_map)
                pair["infrared"], pair["infrared_parsing"] = cast(
                    PairedTransform, self.infrared_transform
                )(infrared_image, infrared_map)
        return pair


class EvaluationDataset(Dataset):
    """The images of an evaluation suite.

    Items are dicts: ``image``, ``pid``, ``camid``, ``modality`` (0 visible, 1 infrared)
    and ``index`` (position in the suite, used to drop the duplicates that distributed
    samplers add).

    Args:
        samples: The images, in suite order.
        transform: The test transform.
        suite: The suite the images belong to, if any; models read the tasks from it.
        image_cache: Pre-resized images of ``samples``, read instead of decoding the
            files; ``transform`` then gets ``(3, H, W)`` uint8 tensors and must not resize
            (``build_test_transform(..., resize=False)``).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Transform,
        suite: EvaluationSuite | None = None,
        image_cache: CachedArrays | None = None,
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.suite = suite
        self.image_cache = image_cache

    @classmethod
    def from_suite(
        cls,
        suite: EvaluationSuite,
        transform: Transform,
        image_cache: CachedArrays | None = None,
    ) -> EvaluationDataset:
        """Every image of ``suite``, in suite order, with the suite attached."""
        return cls(suite.samples, transform, suite=suite, image_cache=image_cache)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        image: Image.Image | torch.Tensor
        if self.image_cache is None:
            image = load_image(sample.path)
        else:
            image = self.image_cache[sample.path]
        return {
            "image": self.transform(image),
            "pid": torch.tensor(sample.pid),
            "camid": torch.tensor(sample.camid),
            "modality": torch.tensor(MODALITY_CODES[sample.modality]),
            "index": torch.tensor(index),
        }
