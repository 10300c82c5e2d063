"""Pictures of retrieval results: ranked lists and CMC curves.

Figures are drawn with matplotlib's object API on an Agg canvas, so no display and no
global backend choice is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vireid_zoo.data.datasets import load_image
from vireid_zoo.data.records import Sample
from vireid_zoo.evaluation.functional import Protocol, exclusion_mask

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


def _thumbnail(ax: object, sample: Sample, border: str | None, label: str) -> None:
    image = np.asarray(load_image(sample.path))
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if border is not None:
        height, width = image.shape[:2]
        ax.add_patch(
            Rectangle((0, 0), width - 1, height - 1, fill=False, edgecolor=border, linewidth=4)
        )
    ax.set_title(label, fontsize=7)


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
    columns = 1 + max(len(row) for row in ranked)
    figure = Figure(figsize=(1.1 * columns, 2.1 * len(query)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(query), columns, squeeze=False)
    for row, (probe, results) in enumerate(zip(query, ranked, strict=True)):
        _thumbnail(axes[row][0], probe, None, f"query\nid {probe.pid} cam {probe.camid}")
        for rank, match in enumerate(results, start=1):
            colour = MATCH_COLOUR if match.pid == probe.pid else MISMATCH_COLOUR
            _thumbnail(axes[row][rank], match, colour, f"{rank}\nid {match.pid} cam {match.camid}")
        for column in range(1 + len(results), columns):
            axes[row][column].set_axis_off()
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


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
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)
