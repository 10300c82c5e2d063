"""Pictures of retrieval results: ranked lists and CMC curves.

Figures are drawn with matplotlib's object API on an Agg canvas, so no display and no
global backend choice is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from vireid_zoo.core.records import Sample
from vireid_zoo.data.datasets import load_image
from vireid_zoo.evaluation.functional import Protocol, exclusion_mask

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MATCH_COLOUR = "#1a9850"
MISMATCH_COLOUR = "#d73027"


def rank_gallery(
    distances: torch.Tensor,
    query: Sequence[Sample],
    gallery: Sequence[Sample],
    *,
    protocol: Protocol,
    top_k: int = 10,
) -> list[list[int]]:
    """The ``top_k`` gallery indices of each query, after the protocol's exclusions.

    Args:
        distances: (num_query, num_gallery) distances, smaller is more similar.
        query: Query images (their identity and camera decide the exclusions).
        gallery: Gallery images.
        protocol: The exclusion rule (``"sysu_mm01"``, ``"regdb"``, ``"llcm"``).
        top_k: Ranks to keep.
    """
    gallery_pids = torch.tensor([s.pid for s in gallery]).expand(len(query), -1)
    gallery_cams = torch.tensor([s.camid for s in gallery]).expand(len(query), -1)
    excluded = exclusion_mask(
        protocol,
        gallery_pids,
        gallery_cams,
        torch.tensor([s.pid for s in query]),
        torch.tensor([s.camid for s in query]),
    )
    masked = distances.masked_fill(excluded, float("inf"))
    order = torch.argsort(masked, dim=1, stable=True)
    kept = torch.gather(~excluded, 1, order)
    return [row[keep][:top_k].tolist() for row, keep in zip(order, kept, strict=True)]


def _thumbnail(ax: Axes, image_path: Path, frame: str | None, caption: str) -> None:
    image = np.asarray(load_image(image_path))
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if frame is not None:
        height, width = image.shape[:2]
        ax.add_patch(
            Rectangle((0, 0), width - 1, height - 1, fill=False, edgecolor=frame, linewidth=4)
        )
    ax.set_title(caption, fontsize=7)


def plot_image_rows(
    rows: Sequence[Sequence[str | Path]],
    captions: Sequence[Sequence[str]],
    path: str | Path,
    *,
    frames: Sequence[Sequence[str | None]] | None = None,
    title: str = "",
) -> Path:
    """Draw rows of captioned images, e.g. each query followed by its ranked gallery.

    Args:
        rows: Image files, one sequence per row (rows may differ in length).
        captions: One caption per image, shaped like ``rows``.
        path: PNG file to write.
        frames: Optional frame colour per image (None: no frame), shaped like ``rows``.
        title: Figure title.

    Returns:
        The written path.

    Raises:
        ValueError: ``rows`` is empty, or ``captions`` or ``frames`` is not shaped like it.
    """
    shape = [len(row) for row in rows]
    if not any(shape):
        raise ValueError("plot_image_rows needs at least one image")
    frames = frames if frames is not None else [[None] * length for length in shape]
    if [len(row) for row in captions] != shape or [len(row) for row in frames] != shape:
        raise ValueError("captions and frames must hold one entry per image of rows")
    columns = max(shape)
    figure = Figure(figsize=(1.1 * columns, 2.1 * len(rows)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for row, (images, texts, colours) in enumerate(zip(rows, captions, frames, strict=True)):
        for column, (image, text, colour) in enumerate(zip(images, texts, colours, strict=True)):
            _thumbnail(axes[row][column], Path(image), colour, text)
        for column in range(len(images), columns):
            axes[row][column].set_axis_off()
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def plot_ranked_lists(
    query: Sequence[Sample],
    ranked: Sequence[Sequence[Sample]],
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Draw each query beside its ranked gallery images, matches framed in green.

    Args:
        query: One image per row.
        ranked: For each query, its top gallery images in rank order.
        path: PNG file to write.
        title: Figure title.

    Returns:
        The written path.
    """
    rows: list[list[Path]] = []
    captions: list[list[str]] = []
    frames: list[list[str | None]] = []
    for probe, results in zip(query, ranked, strict=True):
        rows.append([probe.path, *(match.path for match in results)])
        captions.append(
            [
                f"query\nid {probe.pid} cam {probe.camid}",
                *(
                    f"{rank}\nid {match.pid} cam {match.camid}"
                    for rank, match in enumerate(results, start=1)
                ),
            ]
        )
        frames.append(
            [None, *(MATCH_COLOUR if m.pid == probe.pid else MISMATCH_COLOUR for m in results)]
        )
    return plot_image_rows(rows, captions, path, frames=frames, title=title)


def plot_cmc(curves: Mapping[str, torch.Tensor], path: str | Path, *, title: str = "CMC") -> Path:
    """Plot CMC curves (fractions, rank 1 first) in percent against rank.

    Args:
        curves: Legend label -> CMC.
        path: PNG file to write.
        title: Figure title.

    Returns:
        The written path.
    """
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for label, cmc in curves.items():
        ranks = np.arange(1, len(cmc) + 1)
        ax.plot(ranks, 100 * np.asarray(cmc, dtype=float), marker="o", markersize=3, label=label)
    ax.set_xlabel("rank")
    locator = ax.xaxis.get_major_locator()
    assert isinstance(locator, MaxNLocator)  # the default AutoLocator is one
    locator.set_params(integer=True)
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)
