"""CMC, mAP and mINP under each dataset's community-standard rules, vectorised in torch.

The rules are those of the evaluation code that VI-ReID papers share (the AGW baseline's
``eval_sysu`` / ``eval_regdb`` and DEEN's ``eval_llcm``), restated in
``docs/protocols.md``. For each query the gallery is ranked by ascending distance, the
protocol's excluded items are dropped, and then:

* AP is the mean over the positives of (positives up to it) / (its 1-based rank);
* INP is (number of positives) / (1-based rank of the last positive);
* CMC@k is 1 when a positive is within the first k ranks. SYSU-MM01 and LLCM count ranks
  over *distinct identities* (each gallery identity counts once, at its first
  occurrence); RegDB counts ranks over images.

A query without any positive left is *invalid*: it adds nothing to mAP or mINP and an
all-zero row to the CMC sum, which is divided by the number of valid queries.

Instead of sorting every query's gallery, this module ranks only the positives, a chunk
of queries at a time: ranking by ascending distance with ties broken by gallery order
(a stable sort) puts a kept item at rank 1 + the number of kept items that come before it
in (distance, gallery index) order, so a positive's rank is one comparison against its
row. The identity-deduplicated rank of the first positive is 1 + the number of distinct
identities with a kept item before it. Both give exactly the ranks of the sorted lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

Protocol = Literal["sysu_mm01", "regdb", "llcm"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)

WORK_BUDGET_BYTES = 256 * 2**20
"""Working memory a chunk of queries may use, whatever the gallery size."""

SYSU_INFRARED_INDOOR_CAMERA = 3
SYSU_VISIBLE_SAME_ROOM_CAMERA = 2

ArrayLike = torch.Tensor | np.ndarray


@dataclass
class RetrievalResult:
    """Retrieval scores of one query set against one gallery.

    Attributes:
        cmc: Cumulative matching characteristic, fractions in [0, 1], float64, length
            ``max_rank``; ``cmc[k - 1]`` is Rank-k.
        mAP: Mean average precision over the valid queries, in [0, 1].
        mINP: Mean inverse negative penalty over the valid queries, in [0, 1].
        num_queries: Number of queries scored.
        num_valid_queries: Queries with at least one positive left after exclusion.
    """

    cmc: torch.Tensor
    mAP: float
    mINP: float
    num_queries: int
    num_valid_queries: int

    def rank(self, k: int) -> float:
        """Return Rank-k (a fraction); ``k`` counts from 1."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank {k} is outside 1..{len(self.cmc)} (max_rank)")
        return float(self.cmc[k - 1])

    def summary(self, ranks: tuple[int, ...] = (1, 5, 10, 20)) -> dict[str, float]:
        """Return ``{"rank1": ..., "mAP": ..., "mINP": ...}`` as fractions."""
        scores = {f"rank{k}": self.rank(k) for k in ranks if k <= len(self.cmc)}
        scores["mAP"] = self.mAP
        scores["mINP"] = self.mINP
        return scores


def _as_tensor(values: ArrayLike, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    tensor = torch.as_tensor(values)
    if dtype is not None:
        tensor = tensor.to(dtype)
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(tensor.shape)}")
    return tensor


def exclusion_mask(
    protocol: str,
    ranked_pids: torch.Tensor,
    ranked_cams: torch.Tensor,
    query_pids: torch.Tensor,
    query_cams: torch.Tensor,
) -> torch.Tensor:
    """Return True where a ranked gallery item is removed for its query.

    SYSU-MM01: a query from camera 3 loses every camera-2 gallery item, whatever its
    identity (both cameras watch the same room). LLCM: gallery items with the query's
    identity and camera are removed. RegDB: nothing is removed.
    """
    if protocol == "sysu_mm01":
        from_cam3 = (query_cams == SYSU_INFRARED_INDOOR_CAMERA).unsqueeze(1)
        return from_cam3 & (ranked_cams == SYSU_VISIBLE_SAME_ROOM_CAMERA)
    if protocol == "llcm":
        return (ranked_pids == query_pids.unsqueeze(1)) & (ranked_cams == query_cams.unsqueeze(1))
    return torch.zeros_like(ranked_pids, dtype=torch.bool)


def _positive_ranks(
    dist: torch.Tensor, keep: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, budget: int
) -> torch.Tensor:
    """Kept rank (1-based) of each positive ``(rows[i], cols[i])`` of a chunk.

    A kept item ``j`` comes before a positive at column ``c`` when its distance is smaller,
    or equal with ``j < c`` (the stable-sort order).
    """
    num_gallery = dist.shape[1]
    columns = torch.arange(num_gallery, device=dist.device)
    ranks = torch.empty(len(rows), dtype=torch.int64, device=dist.device)
    block = max(1, budget // num_gallery)
    for start in range(0, len(rows), block):
        r, c = rows[start : start + block], cols[start : start + block]
        row_dist = dist[r]
        pos_dist = row_dist.gather(1, c.unsqueeze(1))
        before = (row_dist < pos_dist) | ((row_dist == pos_dist) & (columns < c.unsqueeze(1)))
        ranks[start : start + block] = (before & keep[r]).sum(dim=1) + 1
    return ranks


def _chunk_scores(
    dist: torch.Tensor,
    query_pids: torch.Tensor,
    query_cams: torch.Tensor,
    gallery_pids: torch.Tensor,
    gallery_pid_codes: torch.Tensor,
    num_gallery_ids: int,
    gallery_cams: torch.Tensor,
    protocol: str,
    budget: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Score a chunk of queries.

    Returns:
        ``(first_rank, ap, inp, valid)``: the CMC rank of the first positive under the
        protocol's convention (a large number for invalid queries), AP, INP (0 for
        invalid queries) and the validity mask, each of length ``len(dist)``.
    """
    num_query = len(dist)
    ranked_pids = gallery_pids.unsqueeze(0).expand(num_query, -1)
    ranked_cams = gallery_cams.unsqueeze(0).expand(num_query, -1)
    keep = ~exclusion_mask(protocol, ranked_pids, ranked_cams, query_pids, query_cams)
    positives = (ranked_pids == query_pids.unsqueeze(1)) & keep
    num_positives = positives.sum(dim=1)
    valid = num_positives > 0

    rows, cols = positives.nonzero(as_tuple=True)
    ranks = _positive_ranks(dist, keep, rows, cols, budget)
    # Order each query's positives by rank: the i-th positive (0-based) then has i + 1
    # positives up to it, and AP averages (i + 1) / rank over them.
    order = torch.argsort(rows * (dist.shape[1] + 1) + ranks)
    rows, ranks, cols = rows[order], ranks[order], cols[order]
    row_start = torch.cumsum(num_positives, dim=0) - num_positives
    hits_so_far = torch.arange(len(rows), device=dist.device) - row_start[rows] + 1
    precision = hits_so_far.to(torch.float64) / ranks.to(torch.float64)
    ap = torch.zeros(num_query, dtype=torch.float64, device=dist.device)
    ap.index_add_(0, rows, precision)
    ap = ap / num_positives.clamp(min=1)
    last_rank = torch.ones(num_query, dtype=torch.int64, device=dist.device)
    last_rank.scatter_reduce_(0, rows, ranks, reduce="amax")
    inp = num_positives.to(torch.float64) / last_rank.to(torch.float64)

    never = torch.iinfo(torch.int64).max
    first_is = hits_so_far == 1
    first_rank = torch.full((num_query,), never, dtype=torch.int64, device=dist.device)
    first_rank[rows[first_is]] = ranks[first_is]
    if protocol != "regdb":
        # Distinct identities with a kept item before the first positive.
        first_col = torch.zeros(num_query, dtype=torch.int64, device=dist.device)
        first_col[rows[first_is]] = cols[first_is]
        first_dist = dist.gather(1, first_col.unsqueeze(1))
        columns = torch.arange(dist.shape[1], device=dist.device)
        before = keep & (
            (dist < first_dist) | ((dist == first_dist) & (columns < first_col.unsqueeze(1)))
        )
        seen = torch.zeros((num_query, num_gallery_ids), dtype=torch.uint8, device=dist.device)
        codes = gallery_pid_codes.unsqueeze(0).expand(num_query, -1)
        seen.scatter_reduce_(1, codes, before.to(torch.uint8), reduce="amax")
        earlier_ids = seen.sum(dim=1, dtype=torch.int64)
        first_rank = torch.where(valid, earlier_ids + 1, first_rank)
    return first_rank, ap, inp, valid


def evaluate(
    distmat: ArrayLike,
    query_pids: ArrayLike,
    gallery_pids: ArrayLike,
    query_cams: ArrayLike,
    gallery_cams: ArrayLike,
    *,
    protocol: Protocol,
    max_rank: int = 20,
    chunk_size: int | None = None,
) -> RetrievalResult:
    """Score a query x gallery distance matrix under a dataset's standard protocol.

    Args:
        distmat: ``(num_query, num_gallery)`` distances, smaller is more similar. The
            standard code uses ``-(q @ g.T)`` on L2-normalised features; pass float64 to
            rank exactly as it does. Ties are broken by gallery order.
        query_pids: Identity of each query.
        gallery_pids: Identity of each gallery item.
        query_cams: Camera of each query (ignored by ``"regdb"``).
        gallery_cams: Camera of each gallery item (ignored by ``"regdb"``).
        protocol: ``"sysu_mm01"`` (camera-3 queries exclude camera-2 gallery items;
            identity-deduplicated CMC), ``"llcm"`` (same identity and camera excluded;
            identity-deduplicated CMC) or ``"regdb"`` (no exclusion; image-level CMC).
        max_rank: Length of the returned CMC. Where fewer distinct identities (or images)
            than ``max_rank`` remain, the curve holds its last value.
        chunk_size: Queries scored at once; by default chosen to keep each chunk's working
            memory within ``WORK_BUDGET_BYTES`` (256 MB) whatever the gallery size.

    Returns:
        The [`RetrievalResult`][].

    Raises:
        ValueError: On an unknown protocol, inconsistent shapes, or when no query has a
            positive left in the gallery (every query invalid).
    """
    dist = torch.as_tensor(distmat)
    if dist.dim() != 2:
        raise ValueError(f"distmat must be 2-D (queries x gallery), got {tuple(dist.shape)}")
    return _evaluate_chunked(
        lambda start, stop: dist[start:stop],
        dist.shape,
        dist.device,
        query_pids,
        gallery_pids,
        query_cams,
        gallery_cams,
        protocol=protocol,
        max_rank=max_rank,
        chunk_size=chunk_size,
    )


def evaluate_features(
    query_features: torch.Tensor,
    gallery_features: torch.Tensor,
    query_pids: ArrayLike,
    gallery_pids: ArrayLike,
    query_cams: ArrayLike,
    gallery_cams: ArrayLike,
    *,
    protocol: Protocol,
    max_rank: int = 20,
    chunk_size: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> RetrievalResult:
    """Like [`evaluate`][], from features, never holding the whole distance matrix.

    The distance is the standard one, ``-(q @ g.T)`` of L2-normalised features, computed
    one chunk of queries at a time, so a 20,000 x 20,000 evaluation needs a few hundred MB.

    Args:
        query_features: ``(num_query, dim)`` embeddings (normalised here).
        gallery_features: ``(num_gallery, dim)`` embeddings (normalised here).
        query_pids: Identity of each query.
        gallery_pids: Identity of each gallery item.
        query_cams: Camera of each query.
        gallery_cams: Camera of each gallery item.
        protocol: The exclusion and CMC rule, as in [`evaluate`][].
        max_rank: CMC length.
        chunk_size: Queries scored at once (default: within ``WORK_BUDGET_BYTES``).
        dtype: Precision of the distance. The standard code multiplies float32 features;
            float64 costs about twice the time on CPUs and far more on most GPUs.
    """
    query = torch.nn.functional.normalize(query_features.to(dtype), dim=1)
    gallery_t = torch.nn.functional.normalize(gallery_features.to(dtype), dim=1).T
    return _evaluate_chunked(
        lambda start, stop: -(query[start:stop] @ gallery_t),
        (len(query), gallery_t.shape[1]),
        query.device,
        query_pids,
        gallery_pids,
        query_cams,
        gallery_cams,
        protocol=protocol,
        max_rank=max_rank,
        chunk_size=chunk_size,
    )


def _evaluate_chunked(
    distance_chunk: Callable[[int, int], torch.Tensor],
    shape: tuple[int, int],
    device: torch.device,
    query_pids: ArrayLike,
    gallery_pids: ArrayLike,
    query_cams: ArrayLike,
    gallery_cams: ArrayLike,
    *,
    protocol: str,
    max_rank: int,
    chunk_size: int | None,
) -> RetrievalResult:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: use one of {list(PROTOCOLS)}")
    if max_rank < 1:
        raise ValueError(f"max_rank must be at least 1, got {max_rank}")
    num_query, num_gallery = shape
    q_pids = _as_tensor(query_pids, "query_pids", torch.int64)
    g_pids = _as_tensor(gallery_pids, "gallery_pids", torch.int64)
    q_cams = _as_tensor(query_cams, "query_cams", torch.int64)
    g_cams = _as_tensor(gallery_cams, "gallery_cams", torch.int64)
    for name, tensor, expected in (
        ("query_pids", q_pids, num_query),
        ("query_cams", q_cams, num_query),
        ("gallery_pids", g_pids, num_gallery),
        ("gallery_cams", g_cams, num_gallery),
    ):
        if len(tensor) != expected:
            raise ValueError(
                f"{name} has {len(tensor)} entries but the distances are "
                f"{num_query} x {num_gallery}"
            )
    if num_query == 0 or num_gallery == 0:
        raise ValueError(f"cannot evaluate an empty {num_query} x {num_gallery} distance matrix")

    q_pids, g_pids, q_cams, g_cams = (t.to(device) for t in (q_pids, g_pids, q_cams, g_cams))
    unique_ids, pid_codes = torch.unique(g_pids, return_inverse=True)
    budget = WORK_BUDGET_BYTES // 64  # elements: measured ~50 bytes of work per element
    if chunk_size is None:
        chunk_size = max(1, budget // num_gallery)

    first_rank = torch.empty(num_query, dtype=torch.int64, device=device)
    ap = torch.empty(num_query, dtype=torch.float64, device=device)
    inp = torch.empty(num_query, dtype=torch.float64, device=device)
    valid = torch.empty(num_query, dtype=torch.bool, device=device)
    for start in range(0, num_query, chunk_size):
        stop = min(start + chunk_size, num_query)
        scores = _chunk_scores(
            distance_chunk(start, stop),
            q_pids[start:stop],
            q_cams[start:stop],
            g_pids,
            pid_codes,
            len(unique_ids),
            g_cams,
            protocol,
            budget,
        )
        for output, chunk in zip((first_rank, ap, inp, valid), scores, strict=True):
            output[start:stop] = chunk
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            "no query has a matching identity in the gallery after the protocol's exclusions; "
            "check that queries and gallery come from the same identities and that the "
            f"protocol ({protocol!r}) is the one of this dataset"
        )
    ks = torch.arange(1, max_rank + 1, device=device)
    hits = (first_rank.unsqueeze(1) <= ks.unsqueeze(0)).to(torch.float64)
    return RetrievalResult(
        cmc=(hits.sum(dim=0) / num_valid).cpu(),
        mAP=float(ap[valid].mean()),
        mINP=float(inp[valid].mean()),
        num_queries=num_query,
        num_valid_queries=num_valid,
    )


def cosine_distance(
    query: torch.Tensor, gallery: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Return the standard distance ``-(q @ g.T)`` of L2-normalised features.

    The standard code multiplies float32 features; pass ``dtype=torch.float64`` for a
    float64 product.
    """
    query = torch.nn.functional.normalize(query.to(dtype), dim=1)
    gallery = torch.nn.functional.normalize(gallery.to(dtype), dim=1)
    return -(query @ gallery.T)
