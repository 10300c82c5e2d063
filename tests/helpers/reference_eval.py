"""A deliberately simple, per-query reference for the retrieval metrics.

Written from the words of ``PROTOCOLS.md`` ("Metrics"), one query at a time in plain
numpy, so that it can serve as an independent oracle for the vectorised code in
``vireid_zoo.evaluation.functional``. It favours obviousness over speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IDENTITY_DEDUPLICATED_PROTOCOLS = ("sysu_mm01", "llcm")


@dataclass(frozen=True)
class ReferenceResult:
    """Scores of the reference loop: CMC (fractions), mAP, mINP and query counts."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_queries: int
    num_valid_queries: int


def removed_items(
    protocol: str,
    query_pid: int,
    query_cam: int,
    gallery_pids: np.ndarray,
    gallery_cams: np.ndarray,
) -> np.ndarray:
    """Return True for each gallery item the protocol removes for this query."""
    if protocol == "sysu_mm01":
        # Cameras 2 and 3 watch the same room: a cam-3 query loses every cam-2 item.
        return np.full(len(gallery_pids), query_cam == 3) & (gallery_cams == 2)
    if protocol == "llcm":
        return (gallery_pids == query_pid) & (gallery_cams == query_cam)
    if protocol == "regdb":
        return np.zeros(len(gallery_pids), dtype=bool)
    raise ValueError(f"unknown protocol {protocol!r}")


def first_occurrences(pids: np.ndarray) -> list[int]:
    """Return the pids in order, keeping only the first occurrence of each."""
    seen: set[int] = set()
    distinct: list[int] = []
    for pid in pids.tolist():
        if pid not in seen:
            seen.add(pid)
            distinct.append(pid)
    return distinct


def cmc_row(ranked: list[int] | np.ndarray, query_pid: int, max_rank: int) -> np.ndarray:
    """CMC of one query over a ranked list; the curve holds its last value past its end."""
    hits = np.cumsum(np.asarray(ranked) == query_pid) > 0
    row = np.zeros(max_rank)
    if len(hits) == 0:
        return row
    usable = min(max_rank, len(hits))
    row[:usable] = hits[:usable]
    row[usable:] = hits[usable - 1]
    return row


def reference_evaluate(
    distmat: np.ndarray,
    query_pids: np.ndarray,
    gallery_pids: np.ndarray,
    query_cams: np.ndarray,
    gallery_cams: np.ndarray,
    protocol: str,
    max_rank: int = 20,
) -> ReferenceResult:
    """Score a distance matrix one query at a time (see the module docstring).

    Raises:
        ValueError: When no query keeps a positive.
    """
    distmat = np.asarray(distmat)
    gallery_pids = np.asarray(gallery_pids)
    gallery_cams = np.asarray(gallery_cams)
    cmc_sum = np.zeros(max_rank)
    aps: list[float] = []
    inps: list[float] = []
    for q in range(len(distmat)):
        query_pid = int(query_pids[q])
        order = np.argsort(distmat[q], kind="stable")
        removed = removed_items(protocol, query_pid, int(query_cams[q]), gallery_pids, gallery_cams)
        kept_pids = gallery_pids[order][~removed[order]]
        positive_ranks = np.flatnonzero(kept_pids == query_pid) + 1  # 1-based
        if len(positive_ranks) == 0:
            continue  # invalid: an all-zero CMC row, nothing for mAP / mINP
        aps.append(float(np.mean(np.arange(1, len(positive_ranks) + 1) / positive_ranks)))
        inps.append(len(positive_ranks) / float(positive_ranks[-1]))
        if protocol in IDENTITY_DEDUPLICATED_PROTOCOLS:
            cmc_sum += cmc_row(first_occurrences(kept_pids), query_pid, max_rank)
        else:
            cmc_sum += cmc_row(kept_pids, query_pid, max_rank)
    if not aps:
        raise ValueError("every query is invalid")
    return ReferenceResult(
        cmc=cmc_sum / len(aps),
        mAP=float(np.mean(aps)),
        mINP=float(np.mean(inps)),
        num_queries=len(distmat),
        num_valid_queries=len(aps),
    )
