"""Opt-in cache of pre-resized images: one memory-mapped uint8 ``.npy`` file per split.

Decoding a full-size JPEG and resizing it is most of a training item's cost when the
images are large (SYSU-MM01's visible crops). An [`ImageCache`][] decodes and resizes
every image of a split once, with the transforms' own resize step
([`build_resize`][]), and stores the uint8 results as the
rows of an ``(N, 3, H, W)`` array in ``<folder>/<name>-<H>x<W>-<key>.npy``. Training and
evaluation then read rows of the memory-mapped file and run only the steps after the
resize (pad, crop, flip, erasing, normalisation). The resize draws no random number, so
under one seed the random steps draw and apply exactly as they would after resizing the
decoded file: the tensors are bit-identical with and without the cache.

The ``key`` is a hash of the cache format, the image size, the interpolation, the Pillow
and torchvision versions (which produce the pixels) and every file's path, size and
modification time, in order. Any change to a dataset's file list or to the input size
names another file, built on first use; old files are never read again (delete them to
reclaim the space). A file is written under a temporary name in the same folder and
renamed once complete, so an interrupted build leaves nothing a later run would read,
and processes that build at once (DDP ranks on several nodes) each write their own
temporary file and rename it over the same, identical result.

Human-parsing maps (CSCL) are cached the same way in ``<name>-parsing-<H>x<W>-<key>.npy``
(``(N, H, W)`` part indices, resized with nearest interpolation as the paired transform
resizes them), keyed also by the maps' files and the part grouping.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from tqdm import tqdm

from vireid_zoo.data.datasets import load_image
from vireid_zoo.data.errors import ImageDecodeError
from vireid_zoo.data.parsing import PartMaps
from vireid_zoo.data.transforms import build_resize

CACHE_FORMAT = 1
"""Version of the file layout; part of every key, so a new layout never reads an old file."""

log = logging.getLogger(__name__)


class ImageCacheError(OSError):
    """The image cache folder cannot be written, or one of its files cannot be read."""


def _unique(files: Iterable[Path | str]) -> list[Path]:
    """The files in order, each once."""
    return list(dict.fromkeys(Path(file) for file in files))


def _file_entries(files: Sequence[Path]) -> list[tuple[str, int, int]]:
    """``(path, size, modification time in ns)`` of every file: what invalidates a cache."""
    entries = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"image {file} of the dataset does not exist (it was listed when the dataset "
                "was read); restore it or rebuild the file list"
            ) from None
        entries.append((str(file), stat.st_size, stat.st_mtime_ns))
    return entries


def _digest(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _image_size(file: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header."""
    try:
        with Image.open(file) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ImageDecodeError(f"cannot decode image {file}: {error}") from error


def _open(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Memory-map a cache file read-only, checking it holds a uint8 array of ``shape``."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise ImageCacheError(
            f"cannot read the image cache file {path}: {error}. Delete it; it is rebuilt "
            "on next use."
        ) from error
    if array.shape != shape or array.dtype != np.uint8:
        raise ImageCacheError(
            f"the image cache file {path} holds a {array.dtype} array of shape {array.shape}, "
            f"expected uint8 {shape}; it was not written by this cache. Delete it; it is "
            "rebuilt on next use."
        )
    return array


class CachedArrays:
    """The rows of one cache file, looked up by the path of the image they come from.

    The file is memory-mapped on first access in each process (pickling, e.g. to a
    DataLoader worker, drops the map and each worker opens its own), so rows are read
    through the page cache and the array is never loaded whole.

    Args:
        path: The ``.npy`` file.
        files: The images of its rows, in row order.
        item_shape: Shape of one row: ``(3, H, W)`` for images, ``(H, W)`` for part maps.
    """

    def __init__(self, path: Path, files: Sequence[Path], item_shape: Sequence[int]) -> None:
        self.path = Path(path)
        self.files = [Path(file) for file in files]
        self.rows = {file: row for row, file in enumerate(self.files)}
        self.item_shape = tuple(item_shape)
        self._array: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        """The read-only memory-mapped ``(N, *item_shape)`` uint8 array."""
        if self._array is None:
            self._array = _open(self.path, (len(self.files), *self.item_shape))
        return self._array

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, file: object) -> bool:
        return isinstance(file, str | Path) and Path(file) in self.rows

    def __getitem__(self, file: Path | str) -> torch.Tensor:
        """The cached uint8 tensor of ``file`` (a copy of its row)."""
        try:
            row = self.rows[Path(file)]
        except KeyError:
            raise KeyError(
                f"{file} is not one of the {len(self)} images of the cache {self.path}"
            ) from None
        return torch.from_numpy(np.array(self.array[row]))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}


class _Resized(Dataset):
    """Item ``i``: file ``i`` decoded and resized exactly as the transforms do it.

    Images: RGB (as [`load_image`][]), ``(3, H, W)`` uint8.
    With ``maps``: the grouped part map of the image, ``(H, W)`` uint8, resized with
    nearest interpolation (the resize step's treatment of masks).
    """

    def __init__(
        self,
        files: Sequence[Path],
        image_size: tuple[int, int],
        interpolation: str,
        maps: PartMaps | None = None,
    ) -> None:
        self.files = list(files)
        self.to_image = v2.ToImage()
        self.resize = build_resize(image_size, interpolation)
        self.maps = maps

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        file = self.files[index]
        if self.maps is None:
            resized = self.resize(self.to_image(load_image(file)))
        else:
            labels = self.maps.load(file, _image_size(file))
            resized = self.resize(tv_tensors.Mask(labels[None]))[0]
        return resized.as_subclass(torch.Tensor).contiguous()


class ImageCache:
    """A folder of pre-resized image caches, each built on first use.

    Args:
        folder: Where the cache files live; created when a cache is first built.
        image_size: ``(height, width)`` the images are resized to: the network input.
        interpolation: Resize interpolation, as the transforms'.
        num_workers: Processes that decode images while a cache is built (0: this one).
        progress: Show a progress bar on stderr while building.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        image_size: Sequence[int],
        interpolation: str = "bilinear",
        *,
        num_workers: int = 0,
        progress: bool = True,
    ) -> None:
        self.folder = Path(folder).expanduser()
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be (height, width) >= 1, got {image_size!r}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        build_resize(self.image_size, interpolation)  # rejects an unknown interpolation
        self.interpolation = interpolation
        self.num_workers = num_workers
        self.progress = progress

    def _common(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "image_size": list(self.image_size),
            "interpolation": self.interpolation,
            "pillow": PIL.__version__,
            "torchvision": torchvision.__version__,
        }

    @property
    def _size_tag(self) -> str:
        return f"{self.image_size[0]}x{self.image_size[1]}"

    def images(self, name: str, files: Iterable[Path | str]) -> CachedArrays:
        """The cache of ``files``, decoded as RGB and resized; built if missing.

        Args:
            name: Names the file, e.g. ``"sysu_mm01-train"``.
            files: The images, in the order of the rows.

        Raises:
            ImageCacheError: when the folder cannot be written or a file cannot be read.
            ImageDecodeError: naming an image that cannot be decoded (while building).
        """
        files = _unique(files)
        key = _digest({"kind": "images", "files": _file_entries(files), **self._common()})
        path = self.folder / f"{name}-{self._size_tag}-{key}.npy"
        shape = (3, *self.image_size)
        source = _Resized(files, self.image_size, self.interpolation)
        self._ensure(path, source, shape, f"{name} images")
        return CachedArrays(path, files, shape)

    def part_maps(self, name: str, files: Iterable[Path | str], maps: PartMaps) -> CachedArrays:
        """The cache of the grouped parsing maps of ``files``, resized; built if missing.

        Raises:
            ImageCacheError: when the folder cannot be written or a file cannot be read.
            ParsingMapError: naming a map of the wrong size or with unknown labels.
        """
        files = _unique(files)
        grouping = maps.grouping
        payload = {
            "kind": "parsing",
            "files": _file_entries(files),
            "maps": _file_entries([maps.path_of(file) for file in files]),
            "grouping": [list(grouping.names), [list(g) for g in grouping.labels]],
            "ignore_label": grouping.ignore_label,
            **self._common(),
        }
        path = self.folder / f"{name}-parsing-{self._size_tag}-{_digest(payload)}.npy"
        source = _Resized(files, self.image_size, self.interpolation, maps=maps)
        self._ensure(path, source, self.image_size, f"{name} parsing maps")
        return CachedArrays(path, files, self.image_size)

    def _ensure(self, path: Path, source: _Resized, item_shape: tuple[int, ...], what: str) -> None:
        if not path.is_file():
            self._build(path, source, item_shape, what)

    def _writable_folder(self, nbytes: int, what: str) -> None:
        fix = (
            "Set the datamodule's image_cache to a folder you can write to with enough "
            "space, or to null to decode images on the fly."
        )
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ImageCacheError(
                f"cannot create the image cache folder {self.folder}: {error}. {fix}"
            ) from error
        free = shutil.disk_usage(self.folder).free
        if free < nbytes + 2**20:
            raise ImageCacheError(
                f"the cache of {what} needs {nbytes / 2**30:.2f} GiB but the image cache "
                f"folder {self.folder} has {free / 2**30:.2f} GiB free. {fix}"
            )

    def _build(self, path: Path, source: _Resized, item_shape: tuple[int, ...], what: str) -> None:
        if not len(source):
            raise ValueError(f"no images to cache for {what}")
        shape = (len(source), *item_shape)
        nbytes = int(np.prod(shape))
        self._writable_folder(nbytes, what)
        temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        log.info(
            "building image cache %s: %d %s at %s (%.2f GiB)",
            path,
            len(source),
            what,
            self._size_tag,
            nbytes / 2**30,
        )
        started = time.perf_counter()
        try:
            try:
                array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
            except OSError as error:
                raise ImageCacheError(
                    f"cannot write the image cache file {temporary}: {error}. Set the "
                    "datamodule's image_cache to a folder you can write to, or to null to "
                    "decode images on the fly."
                ) from error
            loader = DataLoader(source, batch_size=None, num_workers=self.num_workers)
            with tqdm(
                total=len(source),
                desc=f"caching {what} at {self._size_tag}",
                unit="img",
                file=sys.stderr,
                disable=not self.progress,
                mininterval=1.0,
            ) as bar:
                for row, item in enumerate(loader):
                    array[row] = item.numpy()
                    bar.update()
            array.flush()
            del array
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        log.info("built image cache %s in %.1f s", path, time.perf_counter() - started)
