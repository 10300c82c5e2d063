"""Human-parsing maps as data: grouping, loading, augmentation, synthetic maps, `parse`."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vireid_zoo.cli import main
from vireid_zoo.cli.parse import dataset_images, parse_dataset
from vireid_zoo.core.contract import IMAGENET_MEAN, IMAGENET_STD
from vireid_zoo.data import LLCMDataModule, RegDBDataModule, SYSUMM01DataModule
from vireid_zoo.data.parsing import (
    IGNORE_INDEX,
    LIP_FIVE_PARTS,
    ParsingMapError,
    ParsingMapsNotFoundError,
    PartGrouping,
    PartMaps,
    read_label_map,
    write_label_map,
)
from vireid_zoo.data.synthetic import (
    LIP_LABELS,
    make_camera,
    make_identity,
    make_llcm,
    make_regdb,
    make_sysu_mm01,
    render_person,
)
from vireid_zoo.data.synthetic.seeding import _image_rng
from vireid_zoo.data.sysu_mm01 import SYSUMM01
from vireid_zoo.data.transforms import build_paired_train_transform, build_train_transform

SMALL = {
    "image_size": (32, 16),
    "num_identities": 3,
    "num_instances": 2,
    "num_workers": 0,
    "check_counts": False,
}


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# Grouping -------------------------------------------------------------------------------


def test_lip_grouping_gives_five_parts_with_background_first() -> None:
    grouping = PartGrouping.from_config("lip5")
    assert grouping.names == ("background", "head", "upper_body", "lower_body", "shoes")
    assert grouping.num_parts == 5
    lip = LIP_LABELS
    raw = np.array(
        [
            [lip["background"], lip["hat"], lip["hair"], lip["face"]],
            [lip["upper_clothes"], lip["left_arm"], lip["right_arm"], lip["pants"]],
            [lip["left_leg"], lip["right_leg"], lip["left_shoe"], 255],
        ]
    )
    expected = [[0, 1, 1, 1], [2, 2, 2, 3], [3, 3, 4, IGNORE_INDEX]]
    assert grouping.apply(raw).tolist() == expected
    covered = sorted(label for labels in LIP_FIVE_PARTS.values() for label in labels)
    assert covered == list(range(20)), "every LIP label belongs to exactly one part"


def test_custom_grouping_and_ignore_label() -> None:
    grouping = PartGrouping.from_config({"bg": [0], "person": [1, 2, 3]}, ignore_label=7)
    raw = np.array([[0, 1, 2, 3, 7]])
    assert grouping.apply(raw).tolist() == [[0, 1, 1, 1, IGNORE_INDEX]]
    with pytest.raises(ParsingMapError, match=r"map\.png holds parser labels \[5\]"):
        grouping.apply(np.array([[0, 5]]), "map.png")
    no_ignore = PartGrouping.from_config({"bg": [0], "person": [1]}, ignore_label=None)
    with pytest.raises(ParsingMapError, match=r"\[255\]"):
        no_ignore.apply(np.array([[255]]))


@pytest.mark.parametrize(
    "grouping,ignore,message",
    [
        ({"bg": [0], "a": [1], "b": [1]}, 255, r"\[1\] are listed twice"),
        ({"bg": [0], "a": [1]}, 1, r"\[1\] are listed twice"),
        ({"bg": [0]}, 255, "at least 2 parts"),
        ("atr", 255, "unknown parsing grouping 'atr'"),
    ],
)
def test_impossible_groupings_are_refused(grouping, ignore, message) -> None:
    with pytest.raises(ValueError, match=message):
        PartGrouping.from_config(grouping, ignore)


# Reading maps ---------------------------------------------------------------------------


def test_missing_maps_are_reported_with_the_first_and_the_count(
    sysu_with_maps: tuple[Path, Path], tmp_path: Path
) -> None:
    root, parsing = sysu_with_maps
    damaged = Path(shutil.copytree(parsing, tmp_path / "parsing"))
    dm = SYSUMM01DataModule(root, parsing_root=damaged, **SMALL)
    samples = dm._train_samples
    removed = [samples[5], samples[2]]
    for sample in removed:
        (damaged / sample.path.relative_to(root)).with_suffix(".png").unlink()
    with pytest.raises(ParsingMapsNotFoundError) as error:
        dm.train_dataloader()
    message = str(error.value)
    first = (damaged / samples[2].path.relative_to(root)).with_suffix(".png")
    assert f"2 of {len(samples)} training images" in message
    assert f"first missing is '{first}'" in message and "vireid-zoo parse" in message


def test_map_of_another_size_or_mode_names_the_file(tmp_path: Path) -> None:
    maps = PartMaps(tmp_path / "images", tmp_path / "maps", PartGrouping.from_config())
    path = tmp_path / "maps" / "a" / "b.png"
    path.parent.mkdir(parents=True)
    write_label_map(path, np.zeros((8, 4), dtype=np.uint8))
    with pytest.raises(ParsingMapError, match=r"b\.png is 4x8 .* is 5x8"):
        maps.load(tmp_path / "images" / "a" / "b.jpg", (5, 8))
    Image.new("RGB", (4, 8)).save(path)
    with pytest.raises(ParsingMapError, match=r"b\.png has mode 'RGB'"):
        read_label_map(path)
    with pytest.raises(ParsingMapError, match="not under the dataset root"):
        maps.path_of(tmp_path / "elsewhere.jpg")


def test_training_batches_carry_maps_only_when_configured(
    sysu_with_maps: tuple[Path, Path],
) -> None:
    root, parsing = sysu_with_maps
    plain = next(iter(SYSUMM01DataModule(root, **SMALL).train_dataloader()))
    assert "visible_parsing" not in plain
    batch = next(iter(SYSUMM01DataModule(root, parsing_root=parsing, **SMALL).train_dataloader()))
    for modality in ("visible", "infrared"):
        maps = batch[f"{modality}_parsing"]
        assert maps.shape == (6, 32, 16) and maps.dtype == torch.long
        assert set(maps.unique().tolist()) <= {0, 1, 2, 3, 4, IGNORE_INDEX}
        assert (maps > 0).any(), "a person is parsed in every batch"
    # The images are those of the same plan without maps: maps do not change augmentation.
    torch.testing.assert_close(batch["visible"], plain["visible"])
    torch.testing.assert_close(batch["infrared"], plain["infrared"])


def test_every_datamodule_takes_the_parsing_arguments(tmp_path: Path) -> None:
    regdb = make_regdb(
        tmp_path / "RegDB",
        num_ids=4,
        images_per_modality=2,
        image_size=(32, 16),
        parsing_root=tmp_path / "regdb_parsing",
    )
    llcm = make_llcm(
        tmp_path / "LLCM",
        num_train_ids=3,
        num_test_ids=2,
        images_per_camera=1,
        image_size=(32, 16),
        parsing_root=tmp_path / "llcm_parsing",
    )
    small = {**SMALL, "num_identities": 2, "num_instances": 1}
    for dm in (
        RegDBDataModule(regdb, parsing_root=tmp_path / "regdb_parsing", **small),
        LLCMDataModule(llcm, parsing_root=tmp_path / "llcm_parsing", **small),
    ):
        batch = next(iter(dm.train_dataloader()))
        assert batch["infrared_parsing"].shape == (2, 32, 16)


# Augmentation ---------------------------------------------------------------------------


def coordinate_picture(height: int = 20, width: int = 12) -> tuple[Image.Image, torch.Tensor]:
    """An image whose pixel (r, c) is (10 r + 5, 10 c + 5, 128), a map labelling it r W + c + 1."""
    rows, columns = np.mgrid[0:height, 0:width]
    pixels = np.stack([10 * rows + 5, 10 * columns + 5, np.full_like(rows, 128)], axis=-1)
    pixels = pixels.astype(np.uint8)
    labels = torch.from_numpy((rows * width + columns + 1).astype(np.uint8))
    return Image.fromarray(pixels), labels


def decode(image: torch.Tensor) -> np.ndarray:
    """Back from a normalised tensor to the uint8 pixels."""
    mean, std = (
        torch.tensor(IMAGENET_MEAN)[:, None, None],
        torch.tensor(IMAGENET_STD)[:, None, None],
    )
    return ((image * std + mean) * 255).round().numpy().astype(int)


@pytest.mark.parametrize("seed", range(6))
def test_the_map_follows_the_image_through_pad_crop_and_flip(seed: int) -> None:
    picture, labels = coordinate_picture()
    transform = build_paired_train_transform((20, 12), pad=4, random_erasing=0.0)
    torch.manual_seed(seed)
    image, parts = transform(picture, labels)
    assert image.shape == (3, 20, 12) and parts.shape == (20, 12) and parts.dtype == torch.long
    pixels = decode(image)
    padded = parts == 0
    assert torch.equal(padded, torch.from_numpy((pixels == 0).all(axis=0))), "padding is background"
    rows, columns = pixels[0] // 10, pixels[1] // 10  # (10 r + 5) // 10 = r
    expected = torch.from_numpy(rows * 12 + columns + 1)
    assert torch.equal(parts[~padded], expected[~padded]), "each label stays on its pixel"


def test_resize_is_nearest_and_erasing_and_photometry_leave_the_map_alone() -> None:
    picture, _ = coordinate_picture(40, 20)
    labels = torch.zeros(40, 20, dtype=torch.uint8)
    labels[:, 10:] = 3
    plain = build_paired_train_transform((20, 10), random_erasing=0.0)
    erasing = build_paired_train_transform((20, 10), random_erasing=1.0, channel_augmentation=True)
    for seed in range(4):
        torch.manual_seed(seed)
        image, parts = plain(picture, labels)
        torch.manual_seed(seed)
        erased, erased_parts = erasing(picture, labels)
        assert set(parts.unique().tolist()) <= {0, 3}, "nearest: no interpolated label"
        assert torch.equal(parts, erased_parts)
        assert not torch.equal(image, erased)


def test_the_paired_transform_draws_like_the_image_transform() -> None:
    picture, labels = coordinate_picture()
    for seed in range(4):
        torch.manual_seed(seed)
        alone = build_train_transform((20, 12), channel_augmentation=True)(picture)
        torch.manual_seed(seed)
        paired, _ = build_paired_train_transform((20, 12), channel_augmentation=True)(
            picture, labels
        )
        torch.testing.assert_close(alone, paired)


# Synthetic maps -------------------------------------------------------------------------


def test_synthetic_maps_are_the_rendered_parts(sysu_with_maps: tuple[Path, Path]) -> None:
    root, parsing = sysu_with_maps
    images = sorted(root.glob("cam*/*/*.jpg"))
    maps = sorted(parsing.rglob("*.png"))
    assert [p.relative_to(parsing).with_suffix(".jpg") for p in maps] == [
        p.relative_to(root) for p in images
    ]
    for path in (images[0], images[-1]):
        cam, pid, index = int(path.parts[-3][3:]), int(path.parts[-2]), int(path.stem)
        modality = "infrared" if cam in (3, 6) else "visible"
        camera = make_camera(cam, 3, dataset="sysu_mm01")
        rng = _image_rng(3, "sysu_mm01", pid, cam, index)
        _, parts = render_person(make_identity(pid, 3), modality, camera, rng, (32, 16))
        stored = read_label_map((parsing / path.relative_to(root)).with_suffix(".png"))
        assert np.array_equal(stored, parts)


def test_writing_maps_leaves_the_dataset_byte_identical(
    sysu_with_maps: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = sysu_with_maps
    kwargs = {"num_train_ids": 4, "num_val_ids": 2, "num_test_ids": 2, "images_per_camera": 2}
    plain = make_sysu_mm01(tmp_path / "plain", image_size=(32, 16), seed=3, **kwargs)
    assert tree_digest(plain) == tree_digest(root)
    with pytest.raises(ValueError, match="outside the dataset root"):
        make_sysu_mm01(tmp_path / "x", parsing_root=tmp_path / "x" / "maps", **kwargs)


def test_regdb_and_llcm_writers_write_one_map_per_image(tmp_path: Path) -> None:
    regdb = make_regdb(
        tmp_path / "R", num_ids=4, images_per_modality=1, parsing_root=tmp_path / "RP"
    )
    llcm = make_llcm(
        tmp_path / "L",
        num_train_ids=2,
        num_test_ids=2,
        images_per_camera=1,
        parsing_root=tmp_path / "LP",
    )
    for root, maps, suffix in ((regdb, tmp_path / "RP", "*.bmp"), (llcm, tmp_path / "LP", "*.jpg")):
        images = sorted(p.relative_to(root).with_suffix("") for p in root.rglob(suffix))
        written = sorted(p.relative_to(maps).with_suffix("") for p in maps.rglob("*.png"))
        assert images == written and images


# The parse command ----------------------------------------------------------------------


class ThresholdParser(torch.nn.Module):
    """Labels a pixel upper clothes (5) where its red channel is above the mean, else 0."""

    def __init__(self, logits: bool) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        person = images[:, 0] > images[:, 0].mean()
        if self.logits:  # at half resolution: the maps are resized back to each image
            half = person[:, ::2, ::2]
            scores = torch.zeros(images.shape[0], 6, half.shape[1], half.shape[2])
            scores[:, 5] = half.float()
            scores[:, 0] = (~half).float()
            return scores
        return person.long() * 5


def save_parser(path: Path, logits: bool = False) -> Path:
    torch.jit.save(torch.jit.script(ThresholdParser(logits)), str(path))
    return path


@pytest.mark.parametrize("logits", [False, True])
def test_parse_writes_maps_that_load(
    sysu_with_maps: tuple[Path, Path], tmp_path: Path, logits: bool
) -> None:
    root, _ = sysu_with_maps
    parser = save_parser(tmp_path / "parser.pt", logits)
    output = tmp_path / "parsed"
    argv = ["parse", "sysu_mm01", str(root), "--parser", str(parser), "--output", str(output)]
    assert main([*argv, "--image-size", "16x8", "--batch-size", "5"]) == 0
    images = training_images(root)
    maps = sorted(output.rglob("*.png"))
    assert [m.relative_to(output) for m in maps] == [
        i.relative_to(root).with_suffix(".png") for i in images
    ], "the training images, and only them"
    for path in images[:3]:
        stored = read_label_map((output / path.relative_to(root)).with_suffix(".png"))
        assert stored.shape == (32, 16) and set(np.unique(stored)) <= {0, 5}
    batch = next(iter(SYSUMM01DataModule(root, parsing_root=output, **SMALL).train_dataloader()))
    assert set(batch["visible_parsing"].unique().tolist()) <= {0, 2}, "5 = upper clothes -> 2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging left"


def test_parse_refuses_to_overwrite_and_replaces_only_when_asked(
    sysu_with_maps: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = sysu_with_maps
    parser = save_parser(tmp_path / "parser.pt")
    output = tmp_path / "parsed"
    output.mkdir()
    (output / "old.txt").write_text("keep")
    argv = ["parse", "sysu_mm01", str(root), "--parser", str(parser), "--output", str(output)]
    assert main([*argv, "--image-size", "16x8"]) == 2
    assert "--overwrite" in capsys.readouterr().err and (output / "old.txt").is_file()
    assert main([*argv, "--image-size", "16x8", "--overwrite"]) == 0
    assert not (output / "old.txt").exists() and any(output.rglob("*.png"))
    inside = ["--output", str(root / "cam1" / "maps")]
    assert main([*argv[:-2], *inside]) == 2
    assert "overlaps the image folder" in capsys.readouterr().err
    assert not (root / "cam1" / "maps").exists()


class BrokenParser(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(1, 2))


def test_a_failing_parser_names_the_file_and_leaves_nothing(
    sysu_with_maps: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = sysu_with_maps
    parser = tmp_path / "broken.pt"
    torch.jit.save(torch.jit.script(BrokenParser()), str(parser))
    output = tmp_path / "parsed"
    argv = ["parse", "sysu_mm01", str(root), "--parser", str(parser), "--output", str(output)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "broken.pt" in err and "(B, H, W)" in err
    assert not output.exists() and os.listdir(tmp_path) == ["broken.pt"]
    not_torchscript = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(1)}, not_torchscript)
    assert main([*argv[:4], str(not_torchscript), *argv[5:]]) == 2
    assert "weights.pt" in capsys.readouterr().err
    not_a_program = tmp_path / "corrupt.pt2"
    not_a_program.write_bytes(b"not a zip archive")
    assert main([*argv[:4], str(not_a_program), *argv[5:]]) == 2
    assert "corrupt.pt2" in capsys.readouterr().err


def test_parse_a_torch_export_program(sysu_with_maps: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = sysu_with_maps
    program = torch.export.export(
        ThresholdParser(logits=False),
        (torch.randn(2, 3, 16, 8),),
        dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
    )
    torch.export.save(program, str(tmp_path / "parser.pt2"))
    output = tmp_path / "maps"
    count = parse_dataset("sysu_mm01", root, tmp_path / "parser.pt2", output, image_size=(16, 8))
    assert count == len(training_images(root)) == len(list(output.rglob("*.png")))


def test_parse_an_onnx_parser(sysu_with_maps: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    root, _ = sysu_with_maps
    parser = tmp_path / "parser.onnx"
    torch.onnx.export(
        ThresholdParser(logits=True),
        (torch.randn(2, 3, 16, 8),),
        str(parser),
        input_names=["images"],
        dynamic_axes={"images": {0: "batch"}},
        dynamo=False,
    )
    count = parse_dataset("sysu_mm01", root, parser, tmp_path / "maps", image_size=(16, 8))
    assert count == len(training_images(root))
    batch = next(
        iter(SYSUMM01DataModule(root, parsing_root=tmp_path / "maps", **SMALL).train_dataloader())
    )
    assert set(batch["visible_parsing"].unique().tolist()) <= {0, 2}


def training_images(root: Path) -> list[Path]:
    """The images `vireid-zoo parse sysu_mm01` parses: the reader's training images."""
    return sorted(Path(s.path) for s in SYSUMM01(root, check_counts=False).train_samples())


def test_parse_lists_training_images_only(sysu_with_maps: tuple[Path, Path]) -> None:
    root, _ = sysu_with_maps
    images = dataset_images("sysu_mm01", root)
    assert images == training_images(root)
    assert len(images) < len(list(root.glob("cam*/*/*.jpg")))  # the test images are left out


def test_parse_refuses_two_images_of_one_map(tmp_path: Path) -> None:
    for suffix in (".jpg", ".png"):
        Image.new("RGB", (8, 16)).save(tmp_path / f"person{suffix}")
    with pytest.raises(ValueError, match="would share the map file person.png"):
        dataset_images("folder", tmp_path)
