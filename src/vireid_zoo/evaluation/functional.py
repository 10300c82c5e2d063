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

The ranking is that of a stable sort of each row (ties broken by gallery order; NaN after
everything, as numpy's ``argsort``), but no row is sorted. A kept item's place among the
query's P positives is ``b``, the number of positives before it in (distance, gallery
index) order, and the rank of the k-th positive (k from 0) is the number of kept items
with ``b <= k``. To find ``b``, each row's distances go through a monotone map into K
(about G / 4) equal-width buckets, so that an item in a lower bucket than a positive is
strictly nearer. One ``scatter_add`` counts the items per bucket; prefix sums of those
counts give ``b`` for every item outside the buckets that hold a positive, and only the
items inside them (a few per positive) are compared with that bucket's positives,
distance then gallery index. Excluded items go to an extra bucket that counts for nothing.
The identity-deduplicated rank of the first positive is 1 + the number of distinct
identities with a kept item before it: those with an item in a lower bucket (listed, or
from each identity's lowest bucket when they are many) and those of the tied items before
it. Rows with an infinite or NaN distance, or all equal, are first replaced by their ranks
under a stable sort. The cost is a few passes over each row, O(G + K) per query whatever
P is, where a sort costs O(G log G). Chunks of queries are scored by worker threads, each
running torch single-threaded, within a bounded working memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

Protocol = Literal["sysu_mm01", "regdb", "llcm"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)

WORK_BUDGET_BYTES = 256 * 2**20
"""Working memory that one evaluation's chunks may use together, whatever the gallery size."""

CHUNK_ELEMENTS = 2**20
"""Distance elements a thread scores at once by default (small enough to stay in cache)."""

_ITEMS_PER_BUCKET = 4
_MIN_BUCKETS = 16
_MAX_BUCKETS = 2**14
"""Buckets per row: a gallery item in four, within these bounds."""

_EARLY_ITEMS_PER_IDENTITY_SCAN = 16
"""Above one item in this many before the first positives, their identities come from
each identity's lowest bucket (one scan of the chunk) instead of a list of the items."""

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


class _Gallery:
    """Gallery labels indexed for the chunks: identity codes and each identity's items."""

    def __init__(self, pids: torch.Tensor, cams: torch.Tensor) -> None:
        self.size = len(pids)
        self.cams = cams
        self.ids, self.codes = torch.unique(pids, return_inverse=True)
        self.num_ids = len(self.ids)
        sizes = torch.bincount(self.codes, minlength=self.num_ids)
        order = torch.argsort(self.codes, stable=True)
        sorted_codes = self.codes[order]
        slot = torch.arange(self.size, device=pids.device) - (sizes.cumsum(0) - sizes)[sorted_codes]
        # groups[c] lists identity c's gallery columns in ascending order, padded with
        # `size`; the extra last row (no identity) is all padding.
        self.groups = torch.full(
            (self.num_ids + 1, int(sizes.max())), self.size, dtype=torch.int64, device=pids.device
        )
        self.groups[sorted_codes, slot] = order
        self.same_room = (cams == SYSU_VISIBLE_SAME_ROOM_CAMERA).nonzero().squeeze(1)

    def codes_of(self, pids: torch.Tensor) -> torch.Tensor:
        """Identity code of each pid, or ``num_ids`` for a pid absent from the gallery."""
        index = torch.searchsorted(self.ids, pids).clamp(max=self.num_ids - 1)
        return torch.where(self.ids[index] == pids, index, self.num_ids)


class _Workspace:
    """Per-thread buffers reused from chunk to chunk (fresh memory costs page faults)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.buffers: dict[str, torch.Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        numel = int(np.prod(shape))
        buffer = self.buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.numel() < numel:
            buffer = self.buffers[name] = torch.empty(numel, dtype=dtype, device=self.device)
        return buffer[:numel].view(shape)


def _row_bytes(num_gallery: int, max_positives: int, num_ids: int) -> int:
    """Working memory of one query's row, at worst.

    Its distances' buffers, the items that share a bucket with a positive (at most
    ``16 P + 64`` before a row is re-bucketed by rank), its positives' tables and its
    identity table.
    """
    tied = min(num_gallery, 16 * max_positives + 64)
    return 32 * num_gallery + 200 * tied + 128 * max_positives + 9 * num_ids


def _pack_columns(mask: torch.Tensor, columns: torch.Tensor, pad: int) -> torch.Tensor:
    """Each row's selected columns in ascending order, padded with ``pad`` to a common width."""
    packed = torch.sort(torch.where(mask, columns, pad), dim=1).values
    return packed[:, : int(mask.sum(dim=1).max())]


def _stable_ranks(rows: torch.Tensor) -> torch.Tensor:
    """Replace each row by its items' 0-based places in a stable sort (NaN last)."""
    order = torch.sort(rows, dim=1, stable=True).indices
    places = torch.arange(rows.shape[1], device=rows.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, places).to(rows.dtype)


def _chunk_scores(
    dist: torch.Tensor,
    query_pids: torch.Tensor,
    query_cams: torch.Tensor,
    gallery: _Gallery,
    protocol: str,
    num_buckets: int,
    work: _Workspace,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Score a chunk of queries.

    Returns:
        ``(first_rank, ap, inp, valid)``: the CMC rank of the first positive under the
        protocol's convention (a large number for invalid queries), AP, INP (0 for
        invalid queries) and the validity mask, each of length ``len(dist)``.
    """
    device = dist.device
    num_query, num_gallery = dist.shape
    first_rank = torch.full((num_query,), torch.iinfo(torch.int64).max, device=device)
    ap = torch.zeros(num_query, dtype=torch.float64, device=device)
    inp = torch.zeros(num_query, dtype=torch.float64, device=device)

    # The query's identity in the gallery: its positives and (LLCM) its excluded items.
    query_codes = gallery.codes_of(query_pids)
    group = gallery.groups[query_codes]
    in_group = group < num_gallery
    group_cams = gallery.cams[group.clamp(max=num_gallery - 1)]
    excluded_in_group = None
    if protocol == "llcm":
        excluded_in_group = in_group & (group_cams == query_cams.unsqueeze(1))
        positive = in_group & ~excluded_in_group
    elif protocol == "sysu_mm01":
        from_cam3 = (query_cams == SYSU_INFRARED_INDOOR_CAMERA).unsqueeze(1)
        positive = in_group & ~(from_cam3 & (group_cams == SYSU_VISIBLE_SAME_ROOM_CAMERA))
    else:
        positive = in_group
    num_positives = positive.sum(dim=1)
    valid = num_positives > 0
    rows = valid.nonzero().squeeze(1)
    if len(rows) == 0:
        return first_rank, ap, inp, valid
    if len(rows) < num_query:  # score the valid queries only
        dist = dist[rows]
        query_cams, query_codes, group, positive = (
            t[rows] for t in (query_cams, query_codes, group, positive)
        )
        num_positives = num_positives[rows]
        if excluded_in_group is not None:
            excluded_in_group = excluded_in_group[rows]
    if not dist.is_floating_point():
        dist = dist.to(torch.float64)  # exact for integers below 2**53
    elif dist.element_size() < 4:
        dist = dist.float()  # exact for float16 / bfloat16
    dist = dist.contiguous()
    n = len(dist)
    row_ids = torch.arange(n, device=device).unsqueeze(1)

    # Bucket index q = (d - min) * (K - 1) / (max - min), truncated: each step is a
    # correctly rounded monotone operation, so d_i < d_j whenever q_i < q_j. Rows whose
    # range is unusable (an infinite or NaN distance, all equal) are first replaced by
    # their ranks under a stable sort, and so, on a second pass, are rows whose positives
    # share their buckets with too many items (an outlier stretching the range, large
    # tie groups): ranks spread evenly over the buckets.
    nowhere = num_buckets  # excluded items go to bucket K, which counts for nothing
    slots = num_buckets + 1
    per_bucket = -(-num_gallery // num_buckets)
    crowded = None
    while True:
        low, high = dist.amin(dim=1), dist.amax(dim=1)
        span = high - low
        scale = (num_buckets - 1) / span
        unusable = ~(torch.isfinite(scale) & torch.isfinite(span) & (span > 0))
        if crowded is not None:
            unusable |= crowded
        if bool(unusable.any()):
            bad = unusable.nonzero().squeeze(1)
            dist = dist.clone()
            dist[bad] = _stable_ranks(dist[bad])
            low[bad] = 0
            scale[bad] = (num_buckets - 1) / (num_gallery - 1) if num_gallery > 1 else 0
        scaled = work.take("scaled", (n, num_gallery), dist.dtype)
        torch.sub(dist, low.to(dist.dtype).unsqueeze(1), out=scaled)
        scaled.mul_(scale.to(dist.dtype).unsqueeze(1))
        bucket = work.take("bucket", (n, num_gallery), torch.int64)
        bucket.copy_(scaled)
        if excluded_in_group is not None and bool(excluded_in_group.any()):
            columns = _pack_columns(excluded_in_group, group, num_gallery)
            flat = (row_ids * num_gallery + columns)[columns < num_gallery]
            bucket.view(-1).index_fill_(0, flat, nowhere)
        if protocol == "sysu_mm01" and len(gallery.same_room):
            cam3_rows = (query_cams == SYSU_INFRARED_INDOOR_CAMERA).nonzero()
            if len(cam3_rows):
                bucket[cam3_rows, gallery.same_room.unsqueeze(0)] = nowhere

        # The positives in (distance, gallery index) order, and their buckets.
        columns = _pack_columns(positive, group, num_gallery)
        width = columns.shape[1]
        real = columns < num_gallery
        columns = columns.clamp(max=num_gallery - 1)
        pos_dist, order = torch.sort(
            dist.gather(1, columns).masked_fill_(~real, float("inf")), dim=1, stable=True
        )
        pos_cols = columns.gather(1, order)
        pos_bucket = bucket.gather(1, pos_cols)

        # Items per bucket, and the work of comparing the items of the positives' buckets
        # with those positives (its sum over the positives of their bucket's items).
        counts = work.take("counts", (n, slots), torch.int32).zero_()
        ones = torch.ones(1, dtype=torch.int32, device=device).expand(n, num_gallery)
        counts.scatter_add_(1, bucket, ones)
        at = pos_bucket.masked_fill(~real, 0)
        items_at = counts.gather(1, at).long().masked_fill_(~real, 0)
        if crowded is not None:
            break
        crowded = items_at.sum(dim=1) > 4 * per_bucket * num_positives + 64
        if not bool(crowded.any()):
            break

    upto = torch.cumsum(
        counts, 1, dtype=torch.int32, out=work.take("upto", (n, slots), torch.int32)
    )
    upto_at = upto.gather(1, at).long()
    below_at = upto_at - items_at
    kept = upto[:, num_buckets - 1 : num_buckets].long()
    # hist[k]: kept items with exactly k positives before them. Those in no positive's
    # bucket lie between the buckets of positives k - 1 and k.
    hist = torch.empty((n, width + 1), dtype=torch.int64, device=device)
    hist[:, :width] = torch.where(real, below_at, kept)
    hist[:, width:] = kept
    hist[:, 1:] -= torch.where(real, upto_at, kept)
    hist.clamp_(min=0)

    # Mark the positives' buckets (1) and find the items there. For the identity-
    # deduplicated CMC, the identities before the first positive's bucket come from the
    # items there (marked 2) when they are few, else from each identity's lowest bucket.
    dedup = protocol != "regdb"
    early_total = int(below_at[:, 0].sum()) if dedup else 0
    early_by_identity = early_total * _EARLY_ITEMS_PER_IDENTITY_SCAN > n * num_gallery
    marks = work.take("marks", (n, slots), torch.uint8).zero_()
    keys = row_ids * slots + torch.where(real, pos_bucket, nowhere)
    marks.view(-1).index_fill_(0, keys.view(-1), 1)
    marks[:, nowhere] = 0
    if dedup and not early_by_identity:
        marks.masked_fill_(torch.arange(slots, device=device) < pos_bucket[:, :1], 2)
    marked = torch.gather(marks, 1, bucket, out=work.take("marked", (n, num_gallery), torch.uint8))
    flat = marked.view(-1).nonzero().squeeze(1)
    if dedup and not early_by_identity:
        mark = marked.view(-1).index_select(0, flat)
        early = flat.index_select(0, (mark == 2).nonzero().squeeze(1))
        flat = flat.index_select(0, (mark == 1).nonzero().squeeze(1))

    # Exact b of the items in the positives' buckets: its lower buckets' positives, plus
    # those of its bucket that come before it (a positive gets its own index).
    row = torch.div(flat, num_gallery, rounding_mode="floor")
    col = flat - row * num_gallery
    cell = row * slots + bucket.view(-1).index_select(0, flat)
    first = work.take("first", (n * slots,), torch.int64)
    first.scatter_reduce_(
        0, keys.view(-1), torch.arange(n * width, device=device), "amin", include_self=False
    )
    in_bucket = work.take("in_bucket", (n * slots,), torch.int64).zero_()
    in_bucket.index_add_(0, keys.view(-1), real.view(-1).long())
    start = first.index_select(0, cell)
    count = in_bucket.index_select(0, cell)
    item_dist = dist.view(-1).index_select(0, flat)
    before = start - row * width
    active = torch.arange(len(flat), device=device)
    for step in range(int(count.max()) if len(count) else 0):
        if step:
            active = active.index_select(0, (count.index_select(0, active) > step).nonzero()[:, 0])
        where = start.index_select(0, active) + step
        other_dist = pos_dist.view(-1).index_select(0, where)
        other_col = pos_cols.view(-1).index_select(0, where)
        this_dist = item_dist.index_select(0, active)
        earlier = (other_dist < this_dist) | (
            (other_dist == this_dist) & (other_col < col.index_select(0, active))
        )
        before.index_add_(0, active, earlier.long())
    hist.view(-1).index_add_(0, row * (width + 1) + before, torch.ones_like(before))
    ranks = hist.cumsum(dim=1)[:, :width]

    # ranks[:, k] is the rank of the k-th positive (0-based): AP, INP and the CMC rank.
    hits = torch.arange(1, width + 1, dtype=torch.float64, device=device)
    precision = (hits / ranks.to(torch.float64)).masked_fill_(~real, 0)
    ap[rows] = precision.sum(dim=1) / num_positives
    last = ranks.gather(1, (num_positives - 1).unsqueeze(1)).squeeze(1)
    inp[rows] = num_positives.to(torch.float64) / last
    if dedup:
        # Distinct identities with a kept item before the first positive: those of the
        # items in lower buckets than its bucket, and of the items of its bucket with no
        # positive before them (the first positive itself, of the query's identity, is
        # dropped at the end).
        num_ids = gallery.num_ids
        if early_by_identity:
            lowest = work.take("lowest", (n, num_ids), torch.int64).fill_(nowhere)
            codes = gallery.codes.expand(n, num_gallery)
            lowest.scatter_reduce_(1, codes, bucket, "amin")
            seen = (lowest < pos_bucket[:, :1]).to(torch.uint8)
        else:
            early_row = torch.div(early, num_gallery, rounding_mode="floor")
            early_col = early - early_row * num_gallery
            seen = work.take("seen", (n, num_ids), torch.uint8).zero_()
            seen.view(-1).index_fill_(0, early_row * num_ids + gallery.codes[early_col], 1)
        first_tied = (before == 0).nonzero().squeeze(1)
        tied_row, tied_col = row.index_select(0, first_tied), col.index_select(0, first_tied)
        seen.view(-1).index_fill_(0, tied_row * num_ids + gallery.codes[tied_col], 1)
        seen.scatter_(1, query_codes.unsqueeze(1), 0)
        first_rank[rows] = seen.sum(dim=1, dtype=torch.int64) + 1
    else:
        first_rank[rows] = ranks[:, 0]
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
            standard code uses ``-(q @ g.T)`` on L2-normalised features. Items are ranked
            by their exact values in the given dtype (float32 ranks as its float64
            upcast would); ties are broken by gallery order and NaN ranks last.
        query_pids: Identity of each query.
        gallery_pids: Identity of each gallery item.
        query_cams: Camera of each query (ignored by ``"regdb"``).
        gallery_cams: Camera of each gallery item (ignored by ``"regdb"``).
        protocol: ``"sysu_mm01"`` (camera-3 queries exclude camera-2 gallery items;
            identity-deduplicated CMC), ``"llcm"`` (same identity and camera excluded;
            identity-deduplicated CMC) or ``"regdb"`` (no exclusion; image-level CMC).
        max_rank: Length of the returned CMC. Where fewer distinct identities (or images)
            than ``max_rank`` remain, the curve holds its last value.
        chunk_size: Queries scored at once. By default about ``CHUNK_ELEMENTS`` distances
            per chunk, within ``WORK_BUDGET_BYTES`` (256 MB) for all chunks in flight,
            whatever the gallery size. On the CPU, chunks are scored by
            ``torch.get_num_threads()`` threads, each running torch single-threaded
            meanwhile.

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
        lambda start, stop, work: dist[start:stop],
        (dist.shape[0], dist.shape[1]),
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
    one chunk of queries at a time, so a 20,000 x 20,000 evaluation needs a few hundred MB
    beyond the features.

    Args:
        query_features: ``(num_query, dim)`` embeddings (normalised here).
        gallery_features: ``(num_gallery, dim)`` embeddings (normalised here).
        query_pids: Identity of each query.
        gallery_pids: Identity of each gallery item.
        query_cams: Camera of each query.
        gallery_cams: Camera of each gallery item.
        protocol: The exclusion and CMC rule, as in [`evaluate`][].
        max_rank: CMC length.
        chunk_size: Queries scored at once (default as in [`evaluate`][]).
        dtype: Precision of the distance. The standard code multiplies float32 features;
            float64 costs about twice the time on CPUs and far more on most GPUs.
    """
    gallery_t = torch.nn.functional.normalize(gallery_features.to(dtype), dim=1).T

    def distance_chunk(start: int, stop: int, work: _Workspace) -> torch.Tensor:
        query = torch.nn.functional.normalize(query_features[start:stop].to(dtype), dim=1)
        out = work.take("distance", (stop - start, gallery_t.shape[1]), query.dtype)
        return torch.matmul(query, gallery_t, out=out).neg_()

    return _evaluate_chunked(
        distance_chunk,
        (len(query_features), gallery_t.shape[1]),
        gallery_t.device,
        query_pids,
        gallery_pids,
        query_cams,
        gallery_cams,
        protocol=protocol,
        max_rank=max_rank,
        chunk_size=chunk_size,
    )


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _forget_pool() -> None:
    """In a forked child: the parent's threads do not exist there."""
    global _pool_lock, _pool, _pool_size
    _pool_lock, _pool, _pool_size = threading.Lock(), None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _scoring_pool(size: int) -> ThreadPoolExecutor:
    """Return a pool of at least ``size`` threads whose torch ops run single-threaded.

    Chunks are scored by these threads instead of by OpenMP inside each torch op: many
    small OpenMP regions, each waiting for all its threads, stall whenever another process
    takes a core, where independent threads do not. The threads persist (starting one
    and switching torch's thread count cost milliseconds each time) and hold no memory
    between evaluations. Their torch setting is per thread: the caller's number of
    threads is restored once they have started.
    """
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < size:
            threads = torch.get_num_threads()
            started = threading.Barrier(size)
            pool = ThreadPoolExecutor(
                size,
                thread_name_prefix="vireid-eval",
                initializer=torch.set_num_threads,
                initargs=(1,),
            )
            list(pool.map(lambda _: started.wait(timeout=60), range(size)))
            torch.set_num_threads(threads)
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = pool, size
        return _pool


def _evaluate_chunked(
    distance_chunk: Callable[[int, int, _Workspace], torch.Tensor],
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
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
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
    gallery = _Gallery(g_pids, g_cams)
    num_buckets = max(_MIN_BUCKETS, min(num_gallery // _ITEMS_PER_BUCKET, _MAX_BUCKETS))
    first_rank = torch.empty(num_query, dtype=torch.int64, device=device)
    ap = torch.empty(num_query, dtype=torch.float64, device=device)
    inp = torch.empty(num_query, dtype=torch.float64, device=device)
    valid = torch.empty(num_query, dtype=torch.bool, device=device)

    threads = torch.get_num_threads() if device.type == "cpu" else 1
    if chunk_size is None:
        row_bytes = _row_bytes(num_gallery, gallery.groups.shape[1], gallery.num_ids)
        by_budget = WORK_BUDGET_BYTES // (threads * row_bytes)
        by_cache = CHUNK_ELEMENTS // num_gallery
        chunk_size = max(1, min(by_budget, by_cache, -(-num_query // threads)))
    starts = iter(range(0, num_query, chunk_size))
    starts_lock = threading.Lock()

    # Grad, inference and autocast modes are per thread: the workers take the caller's
    # inference mode (a Lightning test loop's outputs are inference tensors), record no
    # graph and, like the caller's thread, never autocast (`dtype` is the distance's).
    inference = torch.is_inference_mode_enabled()
    autocast = device.type in ("cpu", "cuda")

    def score_chunks() -> None:
        with (
            torch.inference_mode(inference),
            torch.no_grad(),
            torch.autocast(device.type, enabled=False) if autocast else nullcontext(),
        ):
            _score_chunks()

    def _score_chunks() -> None:
        work = _Workspace(device)
        while True:
            with starts_lock:
                start = next(starts, None)
            if start is None:
                return
            stop = min(start + chunk_size, num_query)
            scores = _chunk_scores(
                distance_chunk(start, stop, work),
                q_pids[start:stop],
                q_cams[start:stop],
                gallery,
                protocol,
                num_buckets,
                work,
            )
            for output, chunk in zip((first_rank, ap, inp, valid), scores, strict=True):
                output[start:stop] = chunk

    workers = min(threads, -(-num_query // chunk_size))
    if workers > 1:
        pool = _scoring_pool(threads)
        for done in [pool.submit(score_chunks) for _ in range(workers)]:
            done.result()
    else:
        score_chunks()

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
