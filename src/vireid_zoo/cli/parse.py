"""``vireid-zoo parse``: run a human parser over a dataset and write its part-label maps.

CSCL (Liu et al., IEEE TMM 2025) trains with human parsing; this zoo has the maps
precomputed offline, usually by SCHP on LIP labels ([A]: an assumption of this zoo, see the
table of the CSCL README). This module runs a parser the user supplies — a TorchScript
file (``torch.jit.load``), a ``torch.export`` program (``.pt2``) or, with ``onnxruntime``
installed, an ONNX file (``.onnx``) — that maps ImageNet-normalised RGB images
(B, 3, H, W) to per-pixel labels (B, H', W') or logits (B, C, H', W'). Every image of the
dataset's image trees (training and test) gets a map at its own size (nearest resize) in a
tree parallel to the dataset (``<output>/<relative path>.png``, see
[`vireid_zoo.data.parsing`][]). The output is written into a hidden sibling folder that
takes the output's name only once complete.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vireid_zoo.data import LLCM, SYSUMM01, RegDB, load_image
from vireid_zoo.data.layout import IMAGE_SUFFIXES
from vireid_zoo.data.parsing import MAP_SUFFIX, write_label_map
from vireid_zoo.data.regdb import TRIALS
from vireid_zoo.data.transforms import build_test_transform

Parser = Callable[[torch.Tensor], torch.Tensor]

PARSED_DATASETS = ("sysu_mm01", "regdb", "llcm", "folder")
"""What [`parse_dataset`][] parses: a dataset's training images, or every image of a folder."""


class ParserError(ValueError):
    """The parser file cannot be loaded, fails, or returns something other than labels."""


def load_parser(path: str | os.PathLike[str], device: str = "cpu") -> Parser:
    """Load a parser file as a labelling function.

    ``.onnx``: ONNX (onnxruntime); ``.pt2``: a ``torch.export`` program; any other suffix:
    TorchScript.

    Raises:
        ParserError: naming the file when it cannot be loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise ParserError(f"parser file {path} does not exist")
    if path.suffix.lower() == ".onnx":
        return _onnx_parser(path, device)
    try:
        if path.suffix.lower() == ".pt2":
            module = torch.export.load(str(path)).module().to(device)
        else:
            module = torch.jit.load(str(path), map_location=device).eval()
    except Exception as error:  # torch raises RuntimeError, ValueError, BadZipFile, ...
        raise ParserError(
            f"cannot load parser {path} ({error}): save it with torch.jit.save (TorchScript), "
            "torch.export.save (.pt2) or as an .onnx file"
        ) from error

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(images.to(device)).cpu()

    return run


def _onnx_parser(path: Path, device: str) -> Parser:
    try:
        import onnxruntime
    except ImportError:
        raise ParserError(
            f"parser {path} is an ONNX file, which needs onnxruntime: "
            "pip install 'vireid-zoo[parsing]' (or export the parser to TorchScript)"
        ) from None
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=providers)
    except Exception as error:  # onnxruntime raises its own exception classes
        raise ParserError(f"cannot load ONNX parser {path}: {error}") from error
    input_name = session.get_inputs()[0].name

    def run(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: images.numpy()})[0])

    return run


def dataset_images(dataset: str, root: str | os.PathLike[str]) -> list[Path]:
    """The images to parse, sorted: a dataset's training images, as its reader lists them.

    Only training uses parsing maps (CSCL's part supervision), so the test images are not
    parsed. SYSU-MM01: the train and val identities (the standard 395); RegDB: the training
    images of all 10 trials; LLCM: the images of ``idx/train_vis.txt`` and
    ``idx/train_nir.txt``; ``folder``: every image under ``root``.

    Raises:
        ValueError: an unknown dataset, or two images that would share a map file.
        FileNotFoundError: a missing root or no image.
    """
    if dataset not in PARSED_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {list(PARSED_DATASETS)}")
    root = Path(root).expanduser()
    if dataset == "sysu_mm01":
        paths = [s.path for s in SYSUMM01(root, check_counts=False).train_samples()]
    elif dataset == "regdb":
        splits = (RegDB(root, trial, check_counts=False) for trial in TRIALS)
        paths = [s.path for split in splits for s in split.train_samples()]
    elif dataset == "llcm":
        paths = [s.path for s in LLCM(root, check_counts=False).train_samples()]
    elif not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    else:
        paths = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    images = sorted({Path(path) for path in paths})
    if not images:
        raise FileNotFoundError(f"no image to parse under {root}")
    by_map: dict[Path, Path] = {}
    for image in images:
        other = by_map.setdefault(image.with_suffix(MAP_SUFFIX), image)
        if other != image:
            raise ValueError(
                f"{other} and {image} would share the map file {image.with_suffix(MAP_SUFFIX).name}"
                ": rename one of them"
            )
    return images


def as_labels(output: object, batch: int, source: str) -> torch.Tensor:
    """Turn a parser's output into (B, H', W') integer labels in 0..255.

    Raises:
        ParserError: naming ``source`` when the output is not labels or logits of the batch.
    """
    if not isinstance(output, torch.Tensor) or output.dim() not in (3, 4):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ParserError(
            f"{source}: the parser returned {shape}; expected a tensor of labels (B, H, W) or "
            "logits (B, C, H, W)"
        )
    if output.shape[0] != batch:
        raise ParserError(
            f"{source}: the parser returned {output.shape[0]} maps for {batch} images"
        )
    if output.dim() == 4:
        output = output.argmax(dim=1)
    elif output.is_floating_point():
        raise ParserError(f"{source}: (B, H, W) parser output must hold integer labels")
    if bool((output < 0).any() or (output > 255).any()):
        raise ParserError(f"{source}: parser labels must be in 0..255 (8-bit PNG maps)")
    return output.long()


@contextmanager
def staged_output(output: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a hidden sibling of ``output`` that replaces it once the block succeeds.

    Raises:
        FileExistsError: ``output`` is a file, or a non-empty folder without ``overwrite``.
    """
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not overwrite)):
        raise FileExistsError(
            f"output '{output}' already exists and is not an empty folder; choose another "
            "output or pass --overwrite to replace it"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    staging = output.parent / f".{output.name}.partial-{tag}"
    staging.mkdir()
    try:
        yield staging
        if output.exists():
            previous = output.parent / f".{output.name}.previous-{tag}"
            output.rename(previous)
            staging.rename(output)
            shutil.rmtree(previous)
        else:
            staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_output_outside(output: Path, root: Path, trees: Sequence[str]) -> None:
    resolved = output.resolve()
    for tree in trees:
        folder = (root / tree).resolve()
        if resolved == folder or folder in resolved.parents or resolved in folder.parents:
            raise ValueError(
                f"output '{output}' overlaps the image folder '{root / tree}': write the maps "
                "to a folder outside the dataset's image trees"
            )


def parse_dataset(
    dataset: str,
    root: str | os.PathLike[str],
    parser: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    image_size: tuple[int, int] = (512, 256),
    batch_size: int = 16,
    overwrite: bool = False,
    device: str = "cpu",
) -> int:
    """Write the part-label map of every training image of a dataset; return how many.

    Args:
        dataset: ``sysu_mm01``, ``regdb``, ``llcm`` (the training images, see
            [`dataset_images`][]) or ``folder`` (every image under root).
        root: The dataset root.
        parser: TorchScript or ONNX file (see the module docstring).
        output: The parsing root to create (the datamodules' ``parsing_root``).
        image_size: ``(height, width)`` the parser sees (bilinear resize, ImageNet
            normalisation); maps are resized back to each image's size (nearest).
        batch_size: Images per parser call.
        overwrite: Replace an existing non-empty ``output`` (only once the new one is done).
        device: Torch device of a TorchScript parser (``cuda`` also selects onnxruntime's
            CUDA provider).

    Raises:
        ParserError: naming the parser or the images it failed on.
        FileExistsError: ``output`` exists and is not empty, without ``overwrite``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    root, output = Path(root).expanduser(), Path(output).expanduser()
    images = dataset_images(dataset, root)
    # The top folders of the parsed images (all of root for a folder: maps are images too).
    trees = ["."] if dataset == "folder" else sorted({p.relative_to(root).parts[0] for p in images})
    _check_output_outside(output, root, trees)
    run = load_parser(parser, device)
    transform = build_test_transform(image_size)
    with staged_output(output, overwrite) as staging:
        for start in range(0, len(images), batch_size):
            paths = images[start : start + batch_size]
            pictures = [load_image(path) for path in paths]
            source = f"parser {parser} on {paths[0]} (and {len(paths) - 1} more images)"
            try:
                raw = run(torch.stack([transform(picture) for picture in pictures]))
            except Exception as error:  # a user's parser may raise anything
                raise ParserError(f"{source} failed: {error}") from error
            labels = as_labels(raw, len(paths), source).numpy().astype(np.uint8)
            for path, picture, label_map in zip(paths, pictures, labels, strict=True):
                resized = Image.fromarray(label_map).resize(picture.size, Image.Resampling.NEAREST)
                target = staging / path.relative_to(root).with_suffix(MAP_SUFFIX)
                target.parent.mkdir(parents=True, exist_ok=True)
                write_label_map(target, np.asarray(resized))
    return len(images)
