"""The opt-in pre-resized image cache: same tensors, invalidation, atomic builds, errors.

The session datasets hold 32x16 images; the datamodules here ask for another input size,
so the cache really resizes (at the images' own size the resize is a no-op).
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image

from conftest import copy_dataset
from vireid_zoo.data import (
    LLCMDataModule,
    PairedTrainDataset,
    RegDBDataModule,
    SYSUMM01DataModule,
)
from vireid_zoo.data import cache as cache_module
from vireid_zoo.data.cache import ImageCache, ImageCacheError
from vireid_zoo.data.parsing import PartGrouping, PartMaps
from vireid_zoo.data.transforms import build_train_transform

SMALL = {
    "image_size": (24, 12),
    "num_identities": 3,
    "num_instances": 2,
    "num_workers": 0,
    "test_batch_size": 16,
    "check_counts": False,
}
MODULES = {
    "sysu_root": SYSUMM01DataModule,
    "regdb_root": RegDBDataModule,
    "llcm_root": LLCMDataModule,
}


def cache_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def first_batches(dm: SYSUMM01DataModule, count: int = 2, epoch: int = 1) -> list[dict]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == count:
            break
    return batches


def assert_same_batches(left: list[dict], right: list[dict]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert set(a) == set(b)
        for key in a:
            assert torch.equal(a[key], b[key]), key


# Same tensors -------------------------------------------------------------------------


@pytest.mark.parametrize("root_fixture", list(MODULES))
def test_cached_training_batches_equal_decoded_ones(
    root_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    root = request.getfixturevalue(root_fixture)
    cls = MODULES[root_fixture]
    options = {**SMALL, "channel_augmentation": True}
    decoded = first_batches(cls(root, **options))
    cached = first_batches(cls(root, image_cache=tmp_path / "cache", **options))
    assert_same_batches(cached, decoded)
    assert decoded[0]["visible"].shape == (6, 3, 24, 12)
    assert len(cache_files(tmp_path / "cache")) == 1


def test_cached_batches_are_the_same_in_worker_processes(sysu_root: Path, tmp_path: Path) -> None:
    decoded = first_batches(SYSUMM01DataModule(sysu_root, **SMALL))
    options = {**SMALL, "num_workers": 2}
    cached = first_batches(SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **options))
    assert_same_batches(cached, decoded)


def test_upsampled_and_bicubic_cache_equals_decoding(sysu_root: Path, tmp_path: Path) -> None:
    options = {**SMALL, "image_size": (40, 20), "interpolation": "bicubic"}
    decoded = first_batches(SYSUMM01DataModule(sysu_root, **options), count=1)
    cached = first_batches(SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **options), count=1)
    assert_same_batches(cached, decoded)


def test_cached_evaluation_loaders_equal_decoded_ones(sysu_root: Path, tmp_path: Path) -> None:
    options = {**SMALL, "validation": True, "trials": 2}
    plain = SYSUMM01DataModule(sysu_root, **options)
    cached = SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **options)
    for name in ("test_dataloader", "val_dataloader", "predict_dataloader"):
        assert_same_batches(list(getattr(cached, name)()), list(getattr(plain, name)()))
    names = cache_files(tmp_path)
    assert len(names) == 2
    assert [n.split("-")[1] for n in names] == ["test", "val"]


def test_the_cached_pixels_are_the_transform_resize(sysu_root: Path, tmp_path: Path) -> None:
    dm = SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **SMALL)
    dataset = dm.train_dataloader().dataset
    sample = dataset.visible[0]
    resize_only = build_train_transform((24, 12)).transforms[:2]  # ToImage, Resize
    with Image.open(sample.path) as image:
        expected = image.convert("RGB")
    for step in resize_only:
        expected = step(expected)
    cached = dataset.image_cache[sample.path]
    assert cached.dtype == torch.uint8 and cached.shape == (3, 24, 12)
    assert torch.equal(cached, expected.as_subclass(torch.Tensor))


# Parsing maps -------------------------------------------------------------------------


def test_cached_parsing_batches_equal_decoded_ones(
    sysu_with_maps: tuple[Path, Path], tmp_path: Path
) -> None:
    root, parsing = sysu_with_maps
    options = {**SMALL, "parsing_root": parsing}
    decoded = first_batches(SYSUMM01DataModule(root, **options))
    cached = first_batches(SYSUMM01DataModule(root, image_cache=tmp_path, **options))
    assert "visible_parsing" in cached[0]
    assert_same_batches(cached, decoded)
    names = cache_files(tmp_path)
    assert len(names) == 2 and sum("-parsing-" in n for n in names) == 1


def test_a_changed_map_rebuilds_only_the_map_cache(
    sysu_with_maps: tuple[Path, Path], tmp_path: Path
) -> None:
    root, parsing = sysu_with_maps
    maps = Path(shutil.copytree(parsing, tmp_path / "parsing"))
    options = {**SMALL, "parsing_root": maps, "image_cache": tmp_path / "cache"}
    dm = SYSUMM01DataModule(root, **options)
    first_batches(dm, count=1)
    before = cache_files(tmp_path / "cache")
    changed = maps / dm._train_samples[0].path.relative_to(root).with_suffix(".png")
    with Image.open(changed) as image:
        labels = np.asarray(image).copy()
    labels[:] = 0
    Image.fromarray(labels, mode="L").save(changed)
    first_batches(SYSUMM01DataModule(root, **options), count=1)
    after = cache_files(tmp_path / "cache")
    added = sorted(set(after) - set(before))
    assert len(added) == 1 and "-parsing-" in added[0]


def test_parsing_with_cached_images_needs_cached_maps(
    sysu_with_maps: tuple[Path, Path], tmp_path: Path
) -> None:
    root, parsing = sysu_with_maps
    dm = SYSUMM01DataModule(root, **SMALL)
    samples = dm._train_samples
    images = ImageCache(tmp_path, (24, 12)).images("t", [s.path for s in samples])
    maps = PartMaps(root, parsing, PartGrouping.from_config())
    transform = build_train_transform((24, 12), resize=False)
    with pytest.raises(ValueError, match="cache both the images and the maps"):
        PairedTrainDataset(samples, transform, transform, parsing=maps, image_cache=images)


# Invalidation and reuse ---------------------------------------------------------------


def test_a_cache_is_built_once_and_reused(
    sysu_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_batches(SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **SMALL), count=1)
    names = cache_files(tmp_path)

    def refuse(*args: object) -> None:
        raise AssertionError("the cache must not be rebuilt")

    monkeypatch.setattr(ImageCache, "_build", refuse)
    first_batches(SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **SMALL), count=1)
    assert cache_files(tmp_path) == names


def test_another_image_size_or_interpolation_is_another_cache(
    sysu_root: Path, tmp_path: Path
) -> None:
    for options in ({}, {"image_size": (28, 14)}, {"interpolation": "bicubic"}):
        dm = SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **{**SMALL, **options})
        dm.train_dataloader()
    names = cache_files(tmp_path)
    assert len(names) == 3
    assert sum("-28x14-" in n for n in names) == 1 and sum("-24x12-" in n for n in names) == 2


def test_a_changed_or_removed_image_invalidates_the_cache(sysu_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(sysu_root, tmp_path)
    folder = tmp_path / "cache"

    def cached_train() -> tuple[list[str], PairedTrainDataset]:
        dm = SYSUMM01DataModule(root, image_cache=folder, **SMALL)
        dataset = dm.train_dataloader().dataset
        return cache_files(folder), dataset

    names, dataset = cached_train()
    changed, removed = dataset.visible[0].path, dataset.visible[-1].path
    Image.new("RGB", (16, 32), (255, 0, 0)).save(changed)
    names_changed, dataset = cached_train()
    assert len(names_changed) == 2
    red = dataset.image_cache[changed]
    assert (red[0] > 200).all() and (red[1:] < 50).all(), "the new pixels are cached"

    removed.unlink()
    names_removed, dataset = cached_train()
    assert len(names_removed) == 3
    assert removed not in dataset.image_cache and len(dataset.image_cache) == len(
        dataset.visible
    ) + len(dataset.infrared)


def test_a_touched_file_invalidates_the_cache(sysu_root: Path, tmp_path: Path) -> None:
    files = sorted(copy_dataset(sysu_root, tmp_path).rglob("*.jpg"))[:4]
    cache = ImageCache(tmp_path / "cache", (24, 12), progress=False)
    first = cache.images("x", files)
    stat = files[0].stat()
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = cache.images("x", files)
    assert first.path != second.path
    assert cache.images("x", files).path == second.path


# Atomic builds, concurrent builders ---------------------------------------------------


def test_an_interrupted_build_leaves_no_cache(
    sysu_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = cache_module._Resized.__getitem__

    def fail_at_three(self: cache_module._Resized, index: int) -> torch.Tensor:
        if index == 3:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(cache_module._Resized, "__getitem__", fail_at_three)
    dm = SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **SMALL)
    with pytest.raises(KeyboardInterrupt):
        dm.train_dataloader()
    assert cache_files(tmp_path) == [], "neither a cache nor a temporary file is left"
    monkeypatch.undo()
    decoded = first_batches(SYSUMM01DataModule(sysu_root, **SMALL), count=1)
    cached = first_batches(SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **SMALL), count=1)
    assert_same_batches(cached, decoded)


def test_a_concurrent_rebuild_replaces_the_file_under_open_readers(
    sysu_root: Path, tmp_path: Path
) -> None:
    files = sorted(sysu_root.rglob("*.jpg"))[:5]
    cache = ImageCache(tmp_path, (24, 12), progress=False)
    reader = cache.images("x", files)
    before = [reader[f] for f in files]
    # A second process that found the file missing too builds and renames it over.
    source = cache_module._Resized(files, (24, 12), "bilinear")
    cache._build(reader.path, source, (3, 24, 12), "x images")
    assert cache_files(tmp_path) == [reader.path.name]
    assert all(torch.equal(reader[f], b) for f, b in zip(files, before, strict=True))
    fresh = cache.images("x", files)
    assert all(torch.equal(fresh[f], b) for f, b in zip(files, before, strict=True))


def test_pickling_drops_the_memory_map(sysu_root: Path, tmp_path: Path) -> None:
    files = sorted(sysu_root.rglob("*.jpg"))[:3]
    arrays = ImageCache(tmp_path, (24, 12), progress=False).images("x", files)
    first = arrays[files[1]]
    assert arrays._array is not None
    copy = pickle.loads(pickle.dumps(arrays))
    assert copy._array is None and len(pickle.dumps(arrays)) < 10_000
    assert torch.equal(copy[files[1]], first)
    with pytest.raises(KeyError, match="is not one of the 3 images"):
        arrays[tmp_path / "other.jpg"]


# prepare_data and DDP -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "splits"),
    [
        (TrainerFn.FITTING, ["train", "val"]),
        (TrainerFn.VALIDATING, ["val"]),
        (TrainerFn.TESTING, ["test"]),
        (TrainerFn.PREDICTING, ["test"]),
    ],
)
def test_prepare_data_builds_the_splits_of_the_run(
    stage: TrainerFn, splits: list[str], sysu_root: Path, tmp_path: Path
) -> None:
    dm = SYSUMM01DataModule(sysu_root, image_cache=tmp_path, validation=True, trials=1, **SMALL)
    dm.trainer = SimpleNamespace(state=SimpleNamespace(fn=stage))  # type: ignore[assignment]
    dm.prepare_data()
    assert [name.split("-")[1] for name in cache_files(tmp_path)] == splits


def test_prepare_data_does_nothing_without_a_cache(sysu_root: Path) -> None:
    dm = SYSUMM01DataModule(sysu_root, **SMALL)
    dm.trainer = SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.FITTING))  # type: ignore[assignment]
    dm.prepare_data()
    assert dm._caches == {}


# Errors -------------------------------------------------------------------------------


def test_an_unwritable_cache_folder_is_named_with_the_fix(sysu_root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    dm = SYSUMM01DataModule(sysu_root, image_cache=blocker / "cache", **SMALL)
    with pytest.raises(ImageCacheError, match="cannot create the image cache folder") as error:
        dm.train_dataloader()
    assert str(blocker / "cache") in str(error.value) and "image_cache" in str(error.value)


def test_too_little_disk_space_is_reported_before_building(
    sysu_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module.shutil, "disk_usage", lambda path: SimpleNamespace(free=1000))
    dm = SYSUMM01DataModule(sysu_root, image_cache=tmp_path, **SMALL)
    with pytest.raises(ImageCacheError, match="GiB free") as error:
        dm.train_dataloader()
    assert str(tmp_path) in str(error.value)
    assert cache_files(tmp_path) == []


def test_a_damaged_cache_file_is_refused_with_the_fix(sysu_root: Path, tmp_path: Path) -> None:
    files = sorted(sysu_root.rglob("*.jpg"))[:3]
    cache = ImageCache(tmp_path, (24, 12), progress=False)
    path = cache.images("x", files).path
    np.save(path, np.zeros((2, 3, 24, 12), dtype=np.uint8))
    with pytest.raises(ImageCacheError, match="Delete it"):
        cache.images("x", files)[files[0]]
    path.write_bytes(b"garbage")
    with pytest.raises(ImageCacheError, match="cannot read"):
        cache.images("x", files)[files[0]]


def test_the_cache_argument_is_usable_from_a_yaml_config(sysu_root: Path, tmp_path: Path) -> None:
    from jsonargparse import ArgumentParser

    config = tmp_path / "data.yaml"
    config.write_text(
        f"data:\n  root: {sysu_root}\n  image_cache: {tmp_path / 'cache'}\n  check_counts: false\n"
    )
    parser = ArgumentParser()
    parser.add_class_arguments(SYSUMM01DataModule, "data")
    parser.add_argument("--config", action="config")
    dm = parser.instantiate(parser.parse_args(["--config", str(config)])).data
    assert dm.image_cache == tmp_path / "cache"
