from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vireid_zoo.core.contract import IMAGENET_MEAN, IMAGENET_STD
from vireid_zoo.data import ImageDecodeError, RandomChannelSelection, load_image
from vireid_zoo.data.transforms import build_test_transform, build_train_transform


def picture(height: int = 40, width: int = 20) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_test_transform_resizes_and_normalises() -> None:
    image = Image.new("RGB", (20, 40), (124, 116, 104))
    out = build_test_transform((32, 16))(image)
    assert out.shape == (3, 32, 16) and out.dtype == torch.float32
    expected = (torch.tensor([124, 116, 104]) / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(
        IMAGENET_STD
    )
    assert torch.allclose(out[:, 10, 8], expected.float(), atol=1e-5)


def test_train_transform_pads_crops_and_keeps_the_size() -> None:
    torch.manual_seed(0)
    transform = build_train_transform((32, 16), random_erasing=0.0, flip_probability=0.0)
    outputs = torch.stack([transform(picture()) for _ in range(8)])
    assert outputs.shape == (8, 3, 32, 16)
    assert not torch.equal(outputs[0], outputs[1]), "the random crop must move the picture"
    black = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    padded = (outputs.permute(0, 2, 3, 1) - black).abs().sum(-1) < 1e-5
    assert padded.any(), "zero padding must show up in some crops"


def test_random_erasing_probability_is_respected() -> None:
    torch.manual_seed(0)
    never = build_train_transform((32, 16), random_erasing=0.0, pad=0, flip_probability=0.0)
    always = build_train_transform((32, 16), random_erasing=1.0, pad=0, flip_probability=0.0)
    image = picture(32, 16)
    assert torch.equal(never(image), never(image))
    erased = always(image)
    assert (erased == 0).all(dim=0).sum() > 0


def test_channel_selection_replicates_one_channel_or_gray() -> None:
    torch.manual_seed(0)
    image = torch.rand(3, 8, 4)
    augment = RandomChannelSelection(p=1.0)
    gray = (image * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
    seen = set()
    for _ in range(40):
        out = augment(image)
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
        matches = [c for c in range(3) if torch.equal(out[0], image[c])]
        if matches:
            seen.add(matches[0])
        else:
            assert torch.allclose(out[0], gray)
            seen.add("gray")
    assert seen == {0, 1, 2, "gray"}
    assert torch.equal(RandomChannelSelection(p=0.0)(image), image)
    with pytest.raises(ValueError):
        RandomChannelSelection(p=1.5)


def test_unknown_interpolation() -> None:
    with pytest.raises(ValueError, match="'cubic'"):
        build_test_transform((32, 16), interpolation="cubic")


def test_single_channel_images_load_as_rgb(tmp_path: Path) -> None:
    path = tmp_path / "ir.jpg"
    Image.new("L", (16, 32), 200).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (16, 32)


def test_undecodable_image_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not a jpeg at all")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        load_image(path)
