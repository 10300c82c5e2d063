"""Standard train / test transforms and CAJ channel augmentation.

Train (AGW recipe): resize to the input size, zero-pad 10, random crop back to the input
size, horizontal flip, ImageNet normalisation, random erasing (p = 0.5). Test: resize and
normalise. Channel augmentation (Ye et al., "Channel Augmented Joint Learning for
Visible-Infrared Recognition", ICCV 2021) is an option for visible training images:
replace the image by one of its colour channels or its grayscale, and erase a random
rectangle with random values.

With human-parsing maps (CSCL), [`PairedTrainTransform`][] moves each image's part map
with the image's geometric steps and leaves it out of the photometric ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from vireid_zoo.core.contract import IMAGENET_MEAN, IMAGENET_STD

INTERPOLATIONS: dict[str, InterpolationMode] = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "lanczos": InterpolationMode.LANCZOS,
    "nearest": InterpolationMode.NEAREST,
}

GRAYSCALE_WEIGHTS = (0.299, 0.587, 0.114)


class RandomChannelSelection(nn.Module):
    """Replace an RGB image by one of its channels or its grayscale, replicated 3 times.

    The CAJ "channel exchangeable" augmentation: each of R, G, B and grayscale is picked
    with equal chance. Applied with probability ``p`` to a float ``(3, H, W)`` tensor.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Apply the augmentation to one image tensor."""
        if torch.rand(()) >= self.p:
            return image
        choice = int(torch.randint(4, ()))
        if choice < 3:
            channel = image[choice]
        else:
            weights = torch.tensor(GRAYSCALE_WEIGHTS, dtype=image.dtype, device=image.device)
            channel = (image * weights[:, None, None]).sum(dim=0)
        return channel.unsqueeze(0).expand_as(image).clone()


def build_resize(size: Sequence[int], interpolation: str = "bilinear") -> v2.Resize:
    """Return the resize step of every transform: ``size`` = ``(height, width)``, antialiased.

    Part maps (`Mask`) go through it with nearest
    interpolation whatever ``interpolation`` is. The image cache
    ([`vireid_zoo.data.cache`][]) resizes with this same step, so cached pixels equal
    those the transforms compute.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"unknown interpolation {interpolation!r}: use one of {list(INTERPOLATIONS)}"
        )
    return v2.Resize(tuple(size), interpolation=INTERPOLATIONS[interpolation], antialias=True)


def _train_steps(
    image_size: Sequence[int],
    pad: int,
    flip_probability: float,
    random_erasing: float,
    channel_augmentation: bool,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str,
    resize: bool,
) -> tuple[list[nn.Module], list[nn.Module]]:
    """Return the geometric steps (image and part map) and the photometric ones (image)."""
    geometric: list[nn.Module] = [build_resize(image_size, interpolation)] if resize else []
    geometric += [
        v2.Pad(pad, fill=0),
        v2.RandomCrop(tuple(image_size)),
        v2.RandomHorizontalFlip(flip_probability),
    ]
    photometric: list[nn.Module] = [v2.ToDtype(torch.float32, scale=True)]
    if channel_augmentation:
        photometric.append(RandomChannelSelection(p=0.5))
    photometric.append(v2.Normalize(list(mean), list(std)))
    if random_erasing > 0:
        value = "random" if channel_augmentation else 0
        photometric.append(v2.RandomErasing(p=random_erasing, value=value))
    return geometric, photometric


def build_train_transform(
    image_size: Sequence[int] = (288, 144),
    *,
    pad: int = 10,
    flip_probability: float = 0.5,
    random_erasing: float = 0.5,
    channel_augmentation: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bilinear",
    resize: bool = True,
) -> v2.Compose:
    """Return the training transform (PIL RGB image -> normalised float tensor).

    Args:
        image_size: ``(height, width)`` of the network input.
        pad: Zero padding before the random crop.
        flip_probability: Probability of a horizontal flip.
        random_erasing: Probability of random erasing (0 disables it).
        channel_augmentation: Add CAJ channel selection (p = 0.5) before normalisation
            and replace plain random erasing by erasing with random values.
        mean: Normalisation mean.
        std: Normalisation standard deviation.
        interpolation: Resize interpolation.
        resize: Resize to ``image_size`` first. False for inputs already at that size
            (the uint8 tensors of an image cache, resized by the same step): the random
            steps then draw and apply exactly as after the resize, so a seed gives the
            same tensor as from the original image.
    """
    geometric, photometric = _train_steps(
        image_size,
        pad,
        flip_probability,
        random_erasing,
        channel_augmentation,
        mean,
        std,
        interpolation,
        resize,
    )
    return v2.Compose([v2.ToImage(), *geometric, *photometric])


class PairedTrainTransform:
    """The training transform of an image and its part map.

    The part map follows the image's geometric steps with the same random draws (resize
    with nearest interpolation, zero padding as background, crop, flip) and none of the
    photometric ones (channel augmentation, normalisation, random erasing), so every label
    stays on the pixel it describes. Random draws happen in the order of the image-only
    transform: under one seed the image comes out exactly as from
    [`build_train_transform`][].

    Args:
        geometric: Steps applied to the image and the map together.
        photometric: Steps applied to the image only.
    """

    def __init__(self, geometric: Sequence[nn.Module], photometric: Sequence[nn.Module]) -> None:
        self.to_image = v2.ToImage()
        self.geometric = v2.Compose(list(geometric))
        self.photometric = v2.Compose(list(photometric))

    def __call__(
        self, image: Image.Image | torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Map an image and its (H, W) uint8 part map to the image tensor and the map.

        The image is a PIL RGB image or a (3, H, W) uint8 tensor (an image cache's).

        Returns:
            The normalised (3, h, w) float image and the (h, w) long part map.
        """
        picture, mask = self.geometric(self.to_image(image), tv_tensors.Mask(labels[None]))
        return self.photometric(picture), mask[0].as_subclass(torch.Tensor).long()


def build_paired_train_transform(
    image_size: Sequence[int] = (288, 144),
    *,
    pad: int = 10,
    flip_probability: float = 0.5,
    random_erasing: float = 0.5,
    channel_augmentation: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bilinear",
    resize: bool = True,
) -> PairedTrainTransform:
    """Return the training transform of an image and its part map.

    The arguments are those of [`build_train_transform`][].
    """
    geometric, photometric = _train_steps(
        image_size,
        pad,
        flip_probability,
        random_erasing,
        channel_augmentation,
        mean,
        std,
        interpolation,
        resize,
    )
    return PairedTrainTransform(geometric, photometric)


def build_test_transform(
    image_size: Sequence[int] = (288, 144),
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bilinear",
    resize: bool = True,
) -> v2.Compose:
    """Return the test transform: resize, to float, normalise.

    ``resize=False`` leaves the resize out, for inputs already at ``image_size`` (an
    image cache); the other arguments are those of [`build_train_transform`][].
    """
    steps: list[nn.Module] = [v2.ToImage()]
    if resize:
        steps.append(build_resize(image_size, interpolation))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)
