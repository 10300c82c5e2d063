"""Search a gallery of images with a trained network, without a dataset or a Trainer.

[`search`][] embeds the query images with the stem of their modality and the gallery
images with the stem of theirs, ranks the gallery of each query by cosine similarity and
keeps the ``top_k`` best; [`plot_search`][] draws the result. Images are given as a
folder (searched recursively) or a list of files; nothing about identities is known, so
nothing is scored, only ranked.

The input contract (size, normalisation, interpolation) defaults to the one the network
was published with (``net.pretrained_cfg``, set when weights are loaded with
``create_model("hf-hub:...")`` or ``"local-dir:..."``), else to the zoo's defaults
(288 x 144, ImageNet mean and std, bilinear).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from vireid_zoo.core.records import Modality, modality_code
from vireid_zoo.data.datasets import Transform, load_image
from vireid_zoo.data.layout import IMAGE_SUFFIXES
from vireid_zoo.data.transforms import INTERPOLATIONS, build_test_transform
from vireid_zoo.deploy.visualization import plot_image_rows
from vireid_zoo.evaluation.functional import cosine_distance
from vireid_zoo.models.network import VIReIDNetwork

ImageSource = str | Path | Sequence[str | Path]
"""A folder of images (searched recursively), one image file, or a list of image files."""


@dataclass(frozen=True)
class InputSpec:
    """What the network expects of its input images.

    Attributes:
        image_size: ``(height, width)`` images are resized to.
        mean: Normalisation mean (RGB).
        std: Normalisation standard deviation (RGB).
        interpolation: Resize interpolation.
    """

    image_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str


def input_spec(
    net: VIReIDNetwork,
    image_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    interpolation: str | None = None,
) -> InputSpec:
    """Resolve the input contract: each argument given, else the network's published one.

    Args:
        net: The network; its ``pretrained_cfg`` (or, for untrained weights, its
            ``default_pretrained_cfg()``) supplies every argument left as None.
        image_size: ``(height, width)``.
        mean: Normalisation mean (3 values).
        std: Normalisation standard deviation (3 values).
        interpolation: Resize interpolation.

    Raises:
        ValueError: A size that is not two positive integers, a mean or std that is not
            three values (std positive), or an unknown interpolation.
    """
    config = net.pretrained_cfg or net.default_pretrained_cfg()
    size = tuple(int(v) for v in (config.input_size if image_size is None else image_size))
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size!r}")
    mean = tuple(float(v) for v in (config.mean if mean is None else mean))
    std = tuple(float(v) for v in (config.std if std is None else std))
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"need 3 mean and 3 positive std values, got mean={mean}, std={std}")
    interpolation = interpolation or config.interpolation
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}: {interpolation!r}")
    return InputSpec(size, mean, std, interpolation)


@dataclass(frozen=True)
class SearchResult:
    """The ranked gallery of each query.

    Attributes:
        query_paths: The query images; row ``i`` of ``indices`` and ``scores`` is query ``i``.
        gallery_paths: The gallery images; ``indices`` point into this list.
        indices: (Q, k) long: each query's ``k`` most similar gallery images, best first.
        scores: (Q, k) float: their cosine similarities, descending along each row (equal
            scores keep gallery order).
        query_modality: Modality (stem) the queries were embedded with.
        gallery_modality: Modality (stem) the gallery was embedded with.
    """

    query_paths: list[Path]
    gallery_paths: list[Path]
    indices: torch.Tensor
    scores: torch.Tensor
    query_modality: Modality
    gallery_modality: Modality

    def ranked(self, query: int) -> list[tuple[Path, float]]:
        """The ranked ``(gallery path, score)`` pairs of query number ``query``."""
        return [
            (self.gallery_paths[index], score)
            for index, score in zip(
                self.indices[query].tolist(), self.scores[query].tolist(), strict=True
            )
        ]


def find_images(source: ImageSource, role: str = "image") -> list[Path]:
    """List the image files of a folder, or check a list of files.

    Args:
        source: A folder (every file with an image suffix below it, in any subfolder,
            sorted by path; hidden files and folders, whose names start with ``.``, are
            skipped), a single image file, or a sequence of image files (kept in order).
        role: What the images are for (``"query"``, ``"gallery"``), for error messages.

    Raises:
        FileNotFoundError: A path that does not exist.
        ValueError: No images (an empty list, or a folder without image files).
    """
    if isinstance(source, str | Path):
        root = Path(source).expanduser()
        if root.is_dir():
            paths = sorted(
                path
                for path in root.rglob("*")
                if path.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in path.relative_to(root).parts)
                and path.is_file()
            )
            if not paths:
                raise ValueError(
                    f"no {role} images in folder {root}: expected files ending in "
                    f"{', '.join(sorted(IMAGE_SUFFIXES))} (searched recursively)"
                )
            return paths
        source = [root]
    paths = [Path(path).expanduser() for path in source]
    if not paths:
        raise ValueError(f"the list of {role} images is empty")
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{role} path(s) not found (neither a folder nor an image file): "
            + ", ".join(missing[:5])
        )
    return paths


@contextmanager
def _evaluating(net: VIReIDNetwork, device: torch.device) -> Iterator[None]:
    """Run ``net`` in eval mode on ``device``, then restore its mode and device."""
    first = next(net.parameters(), None)
    home = first.device if first is not None else torch.device("cpu")
    training = net.training
    net.to(device).eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        net.to(home).train(training)


def embed_images(
    net: VIReIDNetwork,
    paths: Sequence[Path],
    *,
    modality: Modality,
    transform: Transform,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Embed image files of one modality, in order.

    Args:
        net: The network (evaluated in eval mode; its mode and device are restored).
        paths: Image files.
        modality: Their modality: it chooses the stem.
        transform: PIL image -> normalised (3, H, W) tensor.
        batch_size: Images per forward pass.
        device: Where the network runs.

    Returns:
        (len(paths), D) float32 L2-normalised embeddings, on the CPU.

    Raises:
        ImageDecodeError: naming a file that cannot be decoded.
    """
    modality_code(modality)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    features = []
    with _evaluating(net, device):
        for start in range(0, len(paths), batch_size):
            batch = [transform(load_image(path)) for path in paths[start : start + batch_size]]
            embedded = net.extract_features(torch.stack(batch).to(device), modality)
            features.append(embedded.float().cpu())
    return torch.cat(features)


def top_k_similar(
    query: torch.Tensor, gallery: torch.Tensor, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's ``top_k`` most cosine-similar gallery rows, best first.

    Args:
        query: (Q, D) features.
        gallery: (G, D) features.
        top_k: Ranks to keep; more than G keeps all G.

    Returns:
        ``(indices, scores)``, both (Q, min(top_k, G)); equal scores keep gallery order.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    similarity = -cosine_distance(query, gallery)
    scores, indices = torch.sort(similarity, dim=1, descending=True, stable=True)
    keep = min(top_k, gallery.shape[0])
    return indices[:, :keep], scores[:, :keep]


def search(
    net: VIReIDNetwork,
    query: ImageSource,
    gallery: ImageSource,
    *,
    query_modality: Modality,
    gallery_modality: Modality,
    image_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    interpolation: str | None = None,
    top_k: int = 10,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> SearchResult:
    """Rank the gallery images of each query image by cosine similarity.

    Args:
        net: A trained network.
        query: Query images: a folder (recursive), an image file or a list of files.
        gallery: Gallery images, likewise.
        query_modality: Modality of every query image (``"visible"`` or ``"infrared"``);
            it chooses the stem they go through.
        gallery_modality: Modality of every gallery image.
        image_size: ``(height, width)``; None: the network's (see [`input_spec`][]).
        mean: Normalisation mean; None: the network's.
        std: Normalisation standard deviation; None: the network's.
        interpolation: Resize interpolation; None: the network's.
        top_k: Ranks kept per query; clamped to the gallery's size.
        batch_size: Images per forward pass.
        device: Where the network runs (it is moved back afterwards).

    Returns:
        The ranked lists ([`SearchResult`][]).

    Raises:
        ValueError: An unknown modality, ``top_k`` or ``batch_size`` below 1, or a folder
            or list without images (named).
        FileNotFoundError: A listed image that does not exist.
        ImageDecodeError: naming an image file that cannot be decoded.
    """
    modality_code(query_modality)
    modality_code(gallery_modality)
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    spec = input_spec(net, image_size, mean, std, interpolation)
    transform = build_test_transform(
        spec.image_size, mean=spec.mean, std=spec.std, interpolation=spec.interpolation
    )
    query_paths = find_images(query, "query")
    gallery_paths = find_images(gallery, "gallery")
    options = {"transform": transform, "batch_size": batch_size, "device": device}
    query_features = embed_images(net, query_paths, modality=query_modality, **options)
    gallery_features = embed_images(net, gallery_paths, modality=gallery_modality, **options)
    indices, scores = top_k_similar(query_features, gallery_features, top_k)
    return SearchResult(
        query_paths, gallery_paths, indices, scores, query_modality, gallery_modality
    )


def plot_search(
    result: SearchResult, path: str | Path, max_queries: int = 8, *, title: str = ""
) -> Path:
    """Draw the first ``max_queries`` queries, each beside its ranked gallery images.

    Captions give the rank and score of each gallery image and every image's path
    relative to the folder common to its side (e.g. ``0012/0001.jpg``); identities are
    unknown, so nothing is coloured as a match.

    Args:
        result: A [`search`][] result.
        path: PNG file to write.
        max_queries: Rows to draw (at most the number of queries).
        title: Figure title; by default the modalities searched.

    Returns:
        The written path.
    """
    if max_queries < 1:
        raise ValueError(f"max_queries must be >= 1, got {max_queries}")
    query_names = _relative_names(result.query_paths)
    gallery_names = _relative_names(result.gallery_paths)
    rows: list[list[Path]] = []
    captions: list[list[str]] = []
    for number, query_path in enumerate(result.query_paths[:max_queries]):
        ranked = zip(result.indices[number].tolist(), result.scores[number].tolist(), strict=True)
        row, caption = [query_path], [f"query\n{query_names[number]}"]
        for rank, (index, score) in enumerate(ranked, start=1):
            row.append(result.gallery_paths[index])
            caption.append(f"{rank}: {score:.3f}\n{gallery_names[index]}")
        rows.append(row)
        captions.append(caption)
    title = title or f"{result.query_modality} query -> {result.gallery_modality} gallery"
    return plot_image_rows(rows, captions, path, title=title)


def _relative_names(paths: Sequence[Path], length: int = 16) -> list[str]:
    """Paths relative to their common folder, cut to ``length`` characters (keeping the end)."""
    absolute = [path.absolute() for path in paths]
    root = Path(os.path.commonpath([path.parent for path in absolute]))
    names = [path.relative_to(root).as_posix() for path in absolute]
    return [name if len(name) <= length else "..." + name[-(length - 3) :] for name in names]
