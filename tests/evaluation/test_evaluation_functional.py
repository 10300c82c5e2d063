"""Tests of the vectorised retrieval metrics against hand-worked cases and a reference loop.

Conventions in the hand cases: a gallery row is listed in gallery order as ``g0, g1, ...``
with its distance, identity and camera; "kept" lists the ranked gallery after the
protocol's exclusions; ranks are 1-based. AP = mean over positives of (positives so far) /
rank, INP = (number of positives) / (rank of the last positive).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from fractions import Fraction

import numpy as np
import pytest
import torch

from helpers.reference_eval import reference_evaluate
from vireid_zoo.evaluation import functional
from vireid_zoo.evaluation.functional import (
    PROTOCOLS,
    RetrievalResult,
    cosine_distance,
    evaluate,
    evaluate_features,
)


def _evaluate(
    distances: list[list[float]],
    query_pids: list[int],
    gallery_pids: list[int],
    query_cams: list[int],
    gallery_cams: list[int],
    protocol: str,
    max_rank: int,
) -> RetrievalResult:
    """Evaluate with the vectorised code and check the reference loop agrees."""
    arrays = (
        np.array(distances, dtype=np.float64),
        np.array(query_pids),
        np.array(gallery_pids),
        np.array(query_cams),
        np.array(gallery_cams),
    )
    result = evaluate(*arrays, protocol=protocol, max_rank=max_rank)
    reference = reference_evaluate(*arrays, protocol=protocol, max_rank=max_rank)
    np.testing.assert_array_equal(result.cmc.numpy(), reference.cmc)
    assert result.mAP == pytest.approx(reference.mAP, abs=1e-12)
    assert result.mINP == pytest.approx(reference.mINP, abs=1e-12)
    assert result.num_valid_queries == reference.num_valid_queries
    return result


def _check(
    result: RetrievalResult, cmc: list[float], ap: Fraction | float, inp: Fraction | float
) -> None:
    np.testing.assert_allclose(result.cmc.numpy(), cmc, rtol=0, atol=1e-15)
    assert len(result.cmc) == len(cmc)
    assert result.mAP == pytest.approx(float(ap), abs=1e-15)
    assert result.mINP == pytest.approx(float(inp), abs=1e-15)


# The gallery of the SYSU-MM01 rule cases (one distance row shared by both queries):
#   g0: d=0.1 pid 2 cam 2 | g1: d=0.2 pid 1 cam 2 | g2: d=0.3 pid 1 cam 1
#   g3: d=0.4 pid 3 cam 4 | g4: d=0.5 pid 1 cam 5
SYSU_ROW = [0.1, 0.2, 0.3, 0.4, 0.5]
SYSU_GALLERY_PIDS = [2, 1, 1, 3, 1]
SYSU_GALLERY_CAMS = [2, 2, 1, 4, 5]


def test_sysu_cam3_query_loses_every_cam2_item_whatever_its_identity() -> None:
    # Query pid 1, cam 3: g0 (pid 2) and g1 (pid 1, a positive) are both removed.
    # Kept: g2 (1, +), g3 (3), g4 (1, +) -> positives at ranks 1 and 3.
    # AP = (1/1 + 2/3) / 2 = 5/6; INP = 2/3.
    # Distinct ids in order: 1, 3 -> Rank-1 hit; only 2 ids, the curve holds at 1.
    result = _evaluate([SYSU_ROW], [1], SYSU_GALLERY_PIDS, [3], SYSU_GALLERY_CAMS, "sysu_mm01", 5)
    _check(result, [1, 1, 1, 1, 1], Fraction(5, 6), Fraction(2, 3))


def test_sysu_cam6_query_loses_nothing() -> None:
    # Query pid 1, cam 6: nothing removed. Ranked: g0 (2), g1 (1, +), g2 (1, +), g3 (3),
    # g4 (1, +) -> positives at ranks 2, 3, 5.
    # AP = (1/2 + 2/3 + 3/5) / 3 = 53/90; INP = 3/5.
    # Distinct ids in order: 2, 1, 3 -> the query id is the 2nd distinct id.
    result = _evaluate([SYSU_ROW], [1], SYSU_GALLERY_PIDS, [6], SYSU_GALLERY_CAMS, "sysu_mm01", 5)
    _check(result, [0, 1, 1, 1, 1], Fraction(53, 90), Fraction(3, 5))


def test_sysu_rule_changes_rank1_and_ap_and_queries_average() -> None:
    # The same distance row from a cam-3 and a cam-6 query: Rank-1 is 1 vs 0, AP 5/6 vs
    # 53/90 (the two tests above). Together: CMC = mean of the rows, mAP = (5/6 + 53/90)/2
    # = 32/45, mINP = (2/3 + 3/5) / 2 = 19/30.
    result = _evaluate(
        [SYSU_ROW, SYSU_ROW], [1, 1], SYSU_GALLERY_PIDS, [3, 6], SYSU_GALLERY_CAMS, "sysu_mm01", 5
    )
    _check(result, [0.5, 1, 1, 1, 1], Fraction(32, 45), Fraction(19, 30))
    assert result.num_queries == result.num_valid_queries == 2


# The gallery of the LLCM rule case:
#   g0: d=0.1 pid 1 cam 4 | g1: d=0.2 pid 2 cam 4 | g2: d=0.3 pid 1 cam 7
#   g3: d=0.4 pid 2 cam 1 | g4: d=0.5 pid 3 cam 4 | g5: d=0.6 pid 1 cam 4
LLCM_ROW = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
LLCM_GALLERY_PIDS = [1, 2, 1, 2, 3, 1]
LLCM_GALLERY_CAMS = [4, 4, 7, 1, 4, 4]


def test_llcm_removes_same_identity_same_camera_only() -> None:
    # Query pid 1, cam 4: g0 and g5 (pid 1, cam 4) are removed; g2 (pid 1, cam 7: same id,
    # other camera) and g1, g4 (other id, cam 4: same camera) are kept.
    # Kept: g1 (2), g2 (1, +), g3 (2), g4 (3) -> one positive, at rank 2.
    # AP = 1/2; INP = 1/2; distinct ids 2, 1, 3 -> identity rank 2.
    result = _evaluate([LLCM_ROW], [1], LLCM_GALLERY_PIDS, [4], LLCM_GALLERY_CAMS, "llcm", 5)
    _check(result, [0, 1, 1, 1, 1], Fraction(1, 2), Fraction(1, 2))


def test_llcm_second_query_and_average() -> None:
    # Query pid 2, cam 4: only g1 (pid 2, cam 4) is removed.
    # Kept: g0 (1), g2 (1), g3 (2, +), g4 (3), g5 (1) -> positive at image rank 3, AP = INP
    # = 1/3; distinct ids 1, 2, 3 -> identity rank 2 (image-level CMC would say rank 3).
    # With the pid-1 query above: mAP = mINP = (1/2 + 1/3) / 2 = 5/12.
    second = _evaluate([LLCM_ROW], [2], LLCM_GALLERY_PIDS, [4], LLCM_GALLERY_CAMS, "llcm", 5)
    _check(second, [0, 1, 1, 1, 1], Fraction(1, 3), Fraction(1, 3))
    both = _evaluate(
        [LLCM_ROW, LLCM_ROW], [1, 2], LLCM_GALLERY_PIDS, [4, 4], LLCM_GALLERY_CAMS, "llcm", 5
    )
    _check(both, [0, 1, 1, 1, 1], Fraction(5, 12), Fraction(5, 12))


def test_regdb_removes_nothing_even_same_identity_same_camera() -> None:
    # The LLCM gallery scored as RegDB: nothing removed. Query pid 1: positives g0, g2, g5
    # at ranks 1, 3, 6. AP = (1 + 2/3 + 3/6) / 3 = 13/18; INP = 3/6; image-level CMC.
    result = _evaluate([LLCM_ROW], [1], LLCM_GALLERY_PIDS, [4], LLCM_GALLERY_CAMS, "regdb", 5)
    _check(result, [1, 1, 1, 1, 1], Fraction(13, 18), Fraction(1, 2))


def test_regdb_ignores_cameras_where_llcm_would_remove_every_positive() -> None:
    # g0: d=0.1 pid 1 | g1: d=0.2 pid 2 | g2: d=0.3 pid 1, every camera equal to the query's.
    # RegDB: positives at 1 and 3: AP = (1 + 2/3) / 2 = 5/6, INP = 2/3.
    # LLCM removes g0 and g2 (same id, same camera): no positive left.
    args = ([[0.1, 0.2, 0.3]], [1], [1, 2, 1], [1], [1, 1, 1])
    _check(_evaluate(*args, "regdb", 3), [1, 1, 1], Fraction(5, 6), Fraction(2, 3))
    with pytest.raises(ValueError, match="no query has a matching identity"):
        evaluate(*(np.array(a) for a in args), protocol="llcm")


def test_identity_deduplicated_cmc_differs_from_image_level_at_rank_k() -> None:
    # g0..g5: d = 0.1..0.6, pids 2, 2, 3, 1, 1, 4, cameras 1; query pid 1 (cam 6 for SYSU,
    # so nothing is removed). Positives at image ranks 4 and 5: AP = (1/4 + 2/5) / 2 =
    # 13/40, INP = 2/5 under both protocols.
    # RegDB (image level): first positive at rank 4 -> CMC 0, 0, 0, 1, 1, 1.
    # SYSU (identities): distinct ids 2, 3, 1, 4 -> rank 3 -> CMC 0, 0, 1, 1, 1, 1.
    args = ([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], [1], [2, 2, 3, 1, 1, 4], [6], [1] * 6)
    _check(_evaluate(*args, "regdb", 6), [0, 0, 0, 1, 1, 1], Fraction(13, 40), Fraction(2, 5))
    _check(_evaluate(*args, "sysu_mm01", 6), [0, 0, 1, 1, 1, 1], Fraction(13, 40), Fraction(2, 5))
    _check(_evaluate(*args, "llcm", 6), [0, 0, 1, 1, 1, 1], Fraction(13, 40), Fraction(2, 5))


def test_invalid_query_adds_a_zero_row_and_is_not_averaged() -> None:
    # Gallery g0: pid 1 cam 2 | g1: pid 2 cam 1 | g2: pid 3 cam 4; d = 0.1, 0.2, 0.3.
    # q0: pid 1, cam 3 -> g0, its only positive, is removed (cam 2): invalid.
    # q1: pid 2, cam 6 -> ids 1, 2, 3: positive at rank 2, AP = INP = 1/2, CMC 0, 1, 1, 1.
    # CMC = (zero row + q1's row) / 1 valid query; mAP = mINP = 1/2 (q1 only).
    # Dividing by both queries would give 0, 0.5, 0.5, 0.5 instead.
    row = [0.1, 0.2, 0.3]
    result = _evaluate([row, row], [1, 2], [1, 2, 3], [3, 6], [2, 1, 4], "sysu_mm01", 4)
    _check(result, [0, 1, 1, 1], Fraction(1, 2), Fraction(1, 2))
    assert (result.num_queries, result.num_valid_queries) == (2, 1)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ties_are_broken_by_gallery_order(protocol: str) -> None:
    # Every distance equals 0.5, so the ranking is the gallery order (a stable sort).
    # Gallery pids 2, 1, 1, 2 (cameras 1), query pid 1 (cam 6): positives at 2 and 3:
    # AP = (1/2 + 2/3) / 2 = 7/12, INP = 2/3; Rank-1 = 0 (either CMC convention).
    # Gallery pids 1, 2, 1, 2: positives at 1 and 3: AP = (1 + 2/3) / 2 = 5/6, INP = 2/3.
    tied = [[0.5] * 4]
    first = _evaluate(tied, [1], [2, 1, 1, 2], [6], [1] * 4, protocol, 3)
    _check(first, [0, 1, 1], Fraction(7, 12), Fraction(2, 3))
    second = _evaluate(tied, [1], [1, 2, 1, 2], [6], [1] * 4, protocol, 3)
    _check(second, [1, 1, 1], Fraction(5, 6), Fraction(2, 3))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_curve_holds_its_last_value_past_the_available_ranks(protocol: str) -> None:
    # Three gallery images with three identities, query pid 3 ranked third; max_rank 20.
    # Both conventions: rank 3 -> CMC 0, 0, 1 and then 1 up to length 20.
    # AP = 1/3, INP = 1/3.
    result = _evaluate([[0.1, 0.2, 0.3]], [3], [1, 2, 3], [6], [1, 1, 1], protocol, 20)
    _check(result, [0, 0] + [1] * 18, Fraction(1, 3), Fraction(1, 3))


def test_minp_by_hand() -> None:
    # q0: pid 1, gallery pids 2, 1, 3, 4, 1, 5 at d = 0.1..0.6: positives at ranks 2, 5:
    #     AP = (1/2 + 2/5) / 2 = 9/20, INP = 2/5.
    # q1: pid 3, d = 0.5, 0.6, 0.1, 0.2, 0.3, 0.4 -> g2 (pid 3) first: AP = INP = 1.
    # mAP = (9/20 + 1) / 2 = 29/40; mINP = (2/5 + 1) / 2 = 7/10.
    # CMC: q0 hit at rank 2, q1 at rank 1 -> 0.5, 1, 1, 1, 1, 1.
    distances = [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.5, 0.6, 0.1, 0.2, 0.3, 0.4]]
    result = _evaluate(distances, [1, 3], [2, 1, 3, 4, 1, 5], [1, 1], [2] * 6, "regdb", 6)
    _check(result, [0.5, 1, 1, 1, 1, 1], Fraction(29, 40), Fraction(7, 10))


def _random_problem(
    rng: np.random.Generator, protocol: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    num_query = int(rng.integers(1, 13))
    num_gallery = int(rng.integers(1, 26))
    ids = rng.choice(np.array([0, 3, 7, 11, 2**40]), size=int(rng.integers(1, 6)), replace=False)
    query_pids = rng.choice(ids, size=num_query)
    gallery_pids = rng.choice(ids, size=num_gallery)
    if protocol == "sysu_mm01":
        query_cams = rng.choice([3, 6], size=num_query)
        gallery_cams = rng.choice([1, 2, 4, 5], size=num_gallery)
    else:
        query_cams = rng.integers(1, 4, size=num_query)
        gallery_cams = rng.integers(1, 4, size=num_gallery)
    distances = rng.standard_normal((num_query, num_gallery))
    if rng.random() < 0.5:
        distances = np.round(distances, 1)  # many exact ties
    return distances, query_pids, gallery_pids, query_cams, gallery_cams


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_random_problems_agree_with_the_reference_loop(
    protocol: str, chunk_size: int | None
) -> None:
    rng = np.random.default_rng([PROTOCOLS.index(protocol), chunk_size or 0])
    checked = 0
    for _ in range(250):
        problem = _random_problem(rng, protocol)
        max_rank = int(rng.integers(1, 30))
        try:
            reference = reference_evaluate(*problem, protocol=protocol, max_rank=max_rank)
        except ValueError:
            with pytest.raises(ValueError, match="no query has a matching identity"):
                evaluate(*problem, protocol=protocol, max_rank=max_rank, chunk_size=chunk_size)
            continue
        result = evaluate(*problem, protocol=protocol, max_rank=max_rank, chunk_size=chunk_size)
        assert result.cmc.dtype == torch.float64
        np.testing.assert_array_equal(result.cmc.numpy(), reference.cmc)
        assert abs(result.mAP - reference.mAP) <= 1e-12
        assert abs(result.mINP - reference.mINP) <= 1e-12
        assert result.num_queries == reference.num_queries
        assert result.num_valid_queries == reference.num_valid_queries
        checked += 1
    assert checked > 150


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_larger_random_problem_across_chunk_sizes(protocol: str) -> None:
    rng = np.random.default_rng(7)
    num_query, num_gallery = 157, 90
    query_pids = rng.integers(0, 30, size=num_query)
    gallery_pids = rng.integers(0, 30, size=num_gallery)
    if protocol == "sysu_mm01":
        query_cams = rng.choice([3, 6], size=num_query)
        gallery_cams = rng.choice([1, 2, 4, 5], size=num_gallery)
    else:
        query_cams = rng.integers(1, 10, size=num_query)
        gallery_cams = rng.integers(1, 10, size=num_gallery)
    problem = (
        rng.standard_normal((num_query, num_gallery)),
        query_pids,
        gallery_pids,
        query_cams,
        gallery_cams,
    )
    reference = reference_evaluate(*problem, protocol=protocol, max_rank=20)
    for chunk_size in (None, 1, 3, 7, 156, 157, 1000):
        result = evaluate(*problem, protocol=protocol, chunk_size=chunk_size)
        np.testing.assert_array_equal(result.cmc.numpy(), reference.cmc)
        assert abs(result.mAP - reference.mAP) <= 1e-12
        assert abs(result.mINP - reference.mINP) <= 1e-12


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_evaluate_features_equals_evaluate_of_cosine_distance(
    protocol: str, chunk_size: int | None
) -> None:
    # Random features have no (near-)ties, so the ulp-level differences between computing
    # the distance per chunk and all at once cannot change any ranking.
    generator = torch.Generator().manual_seed(3)
    query = torch.randn(41, 16, generator=generator)
    gallery = torch.randn(29, 16, generator=generator)
    query_pids = torch.randint(0, 6, (41,), generator=generator)
    gallery_pids = torch.randint(0, 6, (29,), generator=generator)
    if protocol == "sysu_mm01":
        query_cams = torch.tensor([3, 6])[torch.randint(0, 2, (41,), generator=generator)]
        gallery_cams = torch.tensor([1, 2, 4, 5])[torch.randint(0, 4, (29,), generator=generator)]
    else:
        query_cams = torch.randint(1, 4, (41,), generator=generator)
        gallery_cams = torch.randint(1, 4, (29,), generator=generator)
    labels = (query_pids, gallery_pids, query_cams, gallery_cams)
    from_features = evaluate_features(
        query, gallery, *labels, protocol=protocol, chunk_size=chunk_size
    )
    from_distances = evaluate(cosine_distance(query, gallery), *labels, protocol=protocol)
    torch.testing.assert_close(from_features.cmc, from_distances.cmc, rtol=0, atol=0)
    assert from_features.mAP == pytest.approx(from_distances.mAP, abs=1e-12)
    assert from_features.mINP == pytest.approx(from_distances.mINP, abs=1e-12)
    assert from_features.num_valid_queries == from_distances.num_valid_queries


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cosine_distance_is_minus_the_dot_product_of_normalised_features(
    dtype: torch.dtype,
) -> None:
    query = torch.tensor([[3.0, 4.0]])
    gallery = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-6.0, -8.0]])
    expected = torch.tensor([[-0.6, -0.8, 1.0]], dtype=dtype)
    torch.testing.assert_close(cosine_distance(query, gallery, dtype=dtype), expected)
    assert cosine_distance(query, gallery).dtype == torch.float32


def test_numpy_and_torch_inputs_give_the_same_result() -> None:
    rng = np.random.default_rng(11)
    problem = (
        rng.standard_normal((12, 9)),
        rng.integers(0, 4, size=12),
        rng.integers(0, 4, size=9),
        rng.integers(1, 4, size=12),
        rng.integers(1, 4, size=9),
    )
    for protocol in PROTOCOLS:
        from_numpy = evaluate(*problem, protocol=protocol)
        from_torch = evaluate(*(torch.from_numpy(a) for a in problem), protocol=protocol)
        torch.testing.assert_close(from_numpy.cmc, from_torch.cmc, rtol=0, atol=0)
        assert from_numpy.mAP == from_torch.mAP
        assert from_numpy.mINP == from_torch.mINP


def _tiny_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return np.array([[0.1, 0.2]]), np.array([1]), np.array([1, 2]), np.array([6]), np.array([1, 1])


def test_unknown_protocol_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown protocol 'market'.*sysu_mm01"):
        evaluate(*_tiny_problem(), protocol="market")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        (0, np.array([0.1, 0.2]), "distmat must be 2-D"),
        (1, np.array([1, 2]), "query_pids has 2 entries but the distances are 1 x 2"),
        (2, np.array([1, 2, 3]), "gallery_pids has 3 entries"),
        (3, np.array([6, 6]), "query_cams has 2 entries"),
        (4, np.array([1]), "gallery_cams has 1 entries"),
        (2, np.array([[1, 2]]), "gallery_pids must be 1-D"),
    ],
)
def test_shape_mismatch_is_rejected(position: int, value: np.ndarray, message: str) -> None:
    problem = list(_tiny_problem())
    problem[position] = value
    with pytest.raises(ValueError, match=message):
        evaluate(*problem, protocol="regdb")


def test_empty_input_is_rejected() -> None:
    empty = np.zeros((0, 2))
    with pytest.raises(ValueError, match="empty 0 x 2"):
        evaluate(empty, np.array([], dtype=int), np.array([1, 2]), [], [1, 1], protocol="regdb")
    with pytest.raises(ValueError, match="empty 1 x 0"):
        evaluate(np.zeros((1, 0)), [1], np.array([], dtype=int), [1], [], protocol="regdb")


def test_all_queries_invalid_is_rejected_with_a_hint() -> None:
    distances, _, gallery_pids, query_cams, gallery_cams = _tiny_problem()
    with pytest.raises(ValueError, match=r"no query has a matching identity.*'regdb'"):
        evaluate(distances, [5], gallery_pids, query_cams, gallery_cams, protocol="regdb")


def test_max_rank_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_rank must be at least 1"):
        evaluate(*_tiny_problem(), protocol="regdb", max_rank=0)


# The bucket-count algorithm: its special paths, forced on random problems and checked
# against the per-query reference loop (exact CMC, mAP and mINP to 1e-12).


def _assert_matches_reference(
    problem: tuple[np.ndarray, ...], protocol: str, max_rank: int = 20, **kwargs: object
) -> RetrievalResult | None:
    try:
        reference = reference_evaluate(*problem, protocol=protocol, max_rank=max_rank)
    except ValueError:
        with pytest.raises(ValueError, match="no query has a matching identity"):
            evaluate(*problem, protocol=protocol, max_rank=max_rank, **kwargs)
        return None
    result = evaluate(*problem, protocol=protocol, max_rank=max_rank, **kwargs)
    np.testing.assert_array_equal(result.cmc.numpy(), reference.cmc)
    assert abs(result.mAP - reference.mAP) <= 1e-12
    assert abs(result.mINP - reference.mINP) <= 1e-12
    assert result.num_queries == reference.num_queries
    assert result.num_valid_queries == reference.num_valid_queries
    return result


def _with_specials(rng: np.random.Generator, distances: np.ndarray) -> np.ndarray:
    """Sprinkle ties, infinities, NaN or constant rows into some problems."""
    distances = distances.copy()
    choice = rng.random()
    if choice < 0.1:
        distances[rng.random(distances.shape) < 0.3] = np.inf
    elif choice < 0.2:
        distances[rng.random(distances.shape) < 0.3] = -np.inf
    elif choice < 0.3:
        distances[rng.random(distances.shape) < 0.3] = np.nan
    elif choice < 0.4:
        distances[rng.integers(len(distances))] = 0.25  # one row of equal distances
    elif choice < 0.5:
        distances = np.round(distances, 0)  # few distinct values: large tie groups
    return distances


@pytest.mark.parametrize("buckets", [1, 2, 3, 16])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_few_buckets_put_many_items_beside_the_positives(
    protocol: str, buckets: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With K buckets per row whatever the gallery, most items share a bucket with a
    # positive (K = 1: every item), so most ranks come from the exact comparisons.
    monkeypatch.setattr(functional, "_MIN_BUCKETS", buckets)
    monkeypatch.setattr(functional, "_ITEMS_PER_BUCKET", 10**9)
    rng = np.random.default_rng([buckets, PROTOCOLS.index(protocol)])
    checked = 0
    for _ in range(120):
        distances, *labels = _random_problem(rng, protocol)
        problem = (_with_specials(rng, distances), *labels)
        chunk_size = [None, 1, 4][int(rng.integers(3))]
        max_rank = int(rng.integers(1, 30))
        checked += (
            _assert_matches_reference(problem, protocol, max_rank, chunk_size=chunk_size)
            is not None
        )
    assert checked > 70


@pytest.mark.parametrize("items_per_scan", [0, 10**9])
@pytest.mark.parametrize("protocol", ["sysu_mm01", "llcm"])
def test_identities_before_the_first_positive_listed_or_scanned(
    protocol: str, items_per_scan: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 0: always list the items before the first positive's bucket; 10**9: always take
    # each identity's lowest bucket. Both give the distinct identities before it.
    monkeypatch.setattr(functional, "_EARLY_ITEMS_PER_IDENTITY_SCAN", items_per_scan)
    rng = np.random.default_rng([items_per_scan % 7, PROTOCOLS.index(protocol)])
    for buckets in (1, 3, 16):
        monkeypatch.setattr(functional, "_MIN_BUCKETS", buckets)
        for _ in range(60):
            distances, *labels = _random_problem(rng, protocol)
            _assert_matches_reference((_with_specials(rng, distances), *labels), protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infinite_and_nan_distances_rank_as_a_stable_sort_does(protocol: str) -> None:
    # g0: inf pid 1 | g1: nan pid 1 | g2: 0.3 pid 2 | g3: -inf pid 2 | g4: inf pid 1
    # Stable order (NaN last): g3 (2), g2 (2), g0 (1, +), g4 (1, +), g1 (1, +).
    # Query pid 1 (cam 6; gallery cams 1): positives at ranks 3, 4, 5.
    # AP = (1/3 + 2/4 + 3/5) / 3 = 43/90; INP = 3/5; identities 2, 1 -> rank 2;
    # images -> rank 3.
    row = [[np.inf, np.nan, 0.3, -np.inf, np.inf]]
    result = _evaluate(row, [1], [1, 1, 2, 2, 1], [6], [1] * 5, protocol, 4)
    cmc = [0, 0, 1, 1] if protocol == "regdb" else [0, 1, 1, 1]
    _check(result, cmc, Fraction(43, 90), Fraction(3, 5))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rows_of_equal_distances_rank_in_gallery_order(protocol: str) -> None:
    # Every distance of both rows is 7: the ranking is the gallery order. Gallery pids
    # 3, 1, 2, 1 (cams 1); q0 pid 1: positives at 2, 4 -> AP = (1/2 + 2/4) / 2 = 1/2,
    # INP = 2/4; q1 pid 2: positive at 3 -> AP = INP = 1/3.
    # Identities: q0 sees 3 then 1 -> rank 2; q1 sees 3, 1, 2 -> rank 3.
    result = _evaluate([[7, 7, 7, 7]] * 2, [1, 2], [3, 1, 2, 1], [6, 6], [1] * 4, protocol, 4)
    # Both CMC conventions: q0 hits at rank 2, q1 at rank 3.
    _check(result, [0, 0.5, 1, 1], Fraction(5, 12), Fraction(5, 12))


def test_a_query_whose_positives_are_all_excluded_is_invalid_beside_valid_ones() -> None:
    rng = np.random.default_rng(5)
    num_gallery = 40
    gallery_pids = np.repeat(np.arange(8), 5)
    distances = rng.standard_normal((6, num_gallery))
    # LLCM: query 0 (pid 0, cam 4) meets pid 0 only on camera 4; SYSU: query 0 (pid 0,
    # cam 3) meets pid 0 only on camera 2. Both are invalid, the other queries are not.
    llcm_cams = rng.integers(1, 4, size=num_gallery)
    llcm_cams[gallery_pids == 0] = 4
    llcm = (distances, np.arange(6), gallery_pids, np.array([4, 1, 1, 2, 2, 3]), llcm_cams)
    sysu_cams = rng.choice([1, 4, 5], size=num_gallery)
    sysu_cams[gallery_pids == 0] = 2
    sysu = (distances, np.arange(6), gallery_pids, np.array([3, 6, 3, 6, 3, 6]), sysu_cams)
    for problem, protocol in ((llcm, "llcm"), (sysu, "sysu_mm01")):
        for chunk_size in (None, 1, 2, 5):
            result = _assert_matches_reference(problem, protocol, chunk_size=chunk_size)
            assert result is not None
            assert (result.num_queries, result.num_valid_queries) == (6, 5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_many_positives_with_ties_and_max_rank_beyond_the_gallery(protocol: str) -> None:
    # Two identities of 150 images each, distances on a coarse grid (many ties between
    # and among positives), max_rank 400 > 300 images > 2 identities.
    rng = np.random.default_rng(PROTOCOLS.index(protocol))
    gallery_pids = rng.permutation(np.repeat([4, 9], 150))
    gallery_cams = rng.choice([1, 2, 4, 5], size=300)
    query_pids = rng.choice([4, 9], size=23)
    query_cams = rng.choice([3, 6], size=23)
    distances = np.round(rng.standard_normal((23, 300)), 1)
    problem = (distances, query_pids, gallery_pids, query_cams, gallery_cams)
    for chunk_size in (None, 1, 7):
        _assert_matches_reference(problem, protocol, max_rank=400, chunk_size=chunk_size)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_larger_problem_against_the_reference_with_threads(protocol: str) -> None:
    # A few hundred queries against 1,500 images of 60 identities: real bucket counts,
    # items before the first positive scanned by identity, several chunks on 1 to 3
    # threads.
    rng = np.random.default_rng(11 + PROTOCOLS.index(protocol))
    num_query, num_gallery = 230, 1500
    gallery_pids = rng.integers(0, 60, size=num_gallery)
    query_pids = rng.integers(0, 64, size=num_query)  # some identities absent: invalid
    if protocol == "sysu_mm01":
        query_cams = rng.choice([3, 6], size=num_query)
        gallery_cams = rng.choice([1, 2, 4, 5], size=num_gallery)
    else:
        query_cams = rng.integers(1, 10, size=num_query)
        gallery_cams = rng.integers(1, 10, size=num_gallery)
    distances = rng.standard_normal((num_query, num_gallery))
    distances[:, ::7] = np.round(distances[:, ::7], 2)  # some ties
    problem = (distances, query_pids, gallery_pids, query_cams, gallery_cams)
    threads = torch.get_num_threads()
    try:
        for num_threads, chunk_size in ((1, None), (2, None), (3, 17), (2, 1)):
            torch.set_num_threads(num_threads)
            _assert_matches_reference(problem, protocol, chunk_size=chunk_size)
            assert torch.get_num_threads() == num_threads
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_float32_and_other_dtypes_rank_as_their_float64_values(protocol: str) -> None:
    rng = np.random.default_rng(3)
    distances = np.round(rng.standard_normal((30, 50)), 2)
    labels = (
        rng.integers(0, 6, size=30),
        rng.integers(0, 6, size=50),
        rng.choice([3, 6], size=30),
        rng.choice([1, 2, 4, 5], size=50),
    )
    as64 = evaluate(
        torch.tensor(distances, dtype=torch.float32).double(), *labels, protocol=protocol
    )
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        low = torch.tensor(distances, dtype=dtype)
        result = evaluate(low, *labels, protocol=protocol)
        upcast = evaluate(low.double(), *labels, protocol=protocol)
        torch.testing.assert_close(result.cmc, upcast.cmc, rtol=0, atol=0)
        assert (result.mAP, result.mINP) == (upcast.mAP, upcast.mINP)
        if dtype == torch.float32:
            assert (result.mAP, result.mINP) == (as64.mAP, as64.mINP)
    scaled = np.round(distances * 100).astype(np.int64)  # the same order, as integers
    from_ints = evaluate(scaled, *labels, protocol=protocol)
    from_floats = evaluate(scaled.astype(np.float64), *labels, protocol=protocol)
    assert (from_ints.mAP, from_ints.mINP) == (from_floats.mAP, from_floats.mINP)


def test_a_non_contiguous_matrix_gives_the_same_result() -> None:
    rng = np.random.default_rng(8)
    gallery_by_query = rng.standard_normal((45, 31))  # transposed below: a strided view
    labels = (
        rng.integers(0, 5, 31),
        rng.integers(0, 5, 45),
        rng.integers(1, 4, 31),
        rng.integers(1, 4, 45),
    )
    view = torch.from_numpy(gallery_by_query).T
    assert not view.is_contiguous()
    for protocol in PROTOCOLS:
        strided = evaluate(view, *labels, protocol=protocol, chunk_size=4)
        packed = evaluate(view.contiguous(), *labels, protocol=protocol, chunk_size=4)
        torch.testing.assert_close(strided.cmc, packed.cmc, rtol=0, atol=0)
        assert (strided.mAP, strided.mINP) == (packed.mAP, packed.mINP)


def test_one_gallery_item() -> None:
    for protocol in PROTOCOLS:
        result = _evaluate([[0.5], [np.inf], [-1.0]], [1, 1, 2], [1], [6, 6, 6], [1], protocol, 3)
        _check(result, [1, 1, 1], 1, 1)
        assert result.num_valid_queries == 2


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        evaluate(*_tiny_problem(), protocol="regdb", chunk_size=0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_crowded_buckets_are_re_bucketed_by_rank(protocol: str) -> None:
    # An outlier stretches each row's range so that nearly every item shares the bucket
    # of the positives, and a tie group of 200 equal distances holds positives too: such
    # rows are ranked by a stable sort and bucketed again. Mixed with ordinary rows.
    rng = np.random.default_rng(21 + PROTOCOLS.index(protocol))
    num_query, num_gallery = 40, 600
    distances = rng.standard_normal((num_query, num_gallery))
    distances[::3, 5] = -1e9
    distances[1::3, 100:300] = 0.5
    gallery_pids = rng.integers(0, 30, size=num_gallery)
    query_pids = rng.integers(0, 30, size=num_query)
    if protocol == "sysu_mm01":
        query_cams = rng.choice([3, 6], size=num_query)
        gallery_cams = rng.choice([1, 2, 4, 5], size=num_gallery)
    else:
        query_cams = rng.integers(1, 4, size=num_query)
        gallery_cams = rng.integers(1, 4, size=num_gallery)
    problem = (distances, query_pids, gallery_pids, query_cams, gallery_cams)
    for chunk_size in (None, 1, 6):
        _assert_matches_reference(problem, protocol, chunk_size=chunk_size)


def test_a_forked_child_evaluates_with_its_own_threads() -> None:
    # The worker threads of the parent do not exist in a forked child (a DataLoader
    # worker, say): the child starts its own and gives the parent's numbers.
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    rng = np.random.default_rng(2)
    problem = (
        rng.standard_normal((50, 40)),
        rng.integers(0, 5, 50),
        rng.integers(0, 5, 40),
        rng.integers(1, 4, 50),
        rng.integers(1, 4, 40),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        expected = evaluate(*problem, protocol="llcm", chunk_size=5).mAP  # starts the pool
        context = multiprocessing.get_context("fork")
        with context.Pool(1) as pool:
            in_child = pool.apply_async(_child_map, (problem,)).get(timeout=120)
    finally:
        torch.set_num_threads(threads)
    assert in_child == expected


def _child_map(problem: tuple[np.ndarray, ...]) -> float:
    torch.set_num_threads(2)
    return evaluate(*problem, protocol="llcm", chunk_size=5).mAP


@pytest.mark.parametrize("mode", ["inference", "grad", "autocast"])
def test_worker_threads_follow_the_callers_inference_mode_and_record_no_graph(
    mode: str,
) -> None:
    # A Lightning test loop evaluates under torch.inference_mode(): its tensors are
    # inference tensors, which the worker threads (whose modes are their own) must be
    # able to fill. Features that require grad give the same numbers and no graph, and
    # an autocast region does not lower the distance's precision.
    generator = torch.Generator().manual_seed(4)
    query = torch.randn(60, 8, generator=generator, requires_grad=mode == "grad")
    gallery = torch.randn(30, 8, generator=generator)
    labels = (
        torch.randint(0, 4, (60,), generator=generator),
        torch.randint(0, 4, (30,), generator=generator),
        torch.randint(1, 4, (60,), generator=generator),
        torch.randint(1, 4, (30,), generator=generator),
    )
    expected = evaluate_features(query.detach(), gallery, *labels, protocol="llcm")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        if mode == "inference":
            context = torch.inference_mode()
        elif mode == "autocast":
            context = torch.autocast("cpu", dtype=torch.bfloat16)
        else:
            context = contextlib.nullcontext()
        with context:
            result = evaluate_features(query, gallery, *labels, protocol="llcm", chunk_size=7)
            inline = evaluate_features(query, gallery, *labels, protocol="llcm", chunk_size=60)
        assert (inline.mAP, inline.mINP) == (expected.mAP, expected.mINP)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(result.cmc, expected.cmc, rtol=0, atol=0)
    assert (result.mAP, result.mINP) == (expected.mAP, expected.mINP)
    assert not result.cmc.requires_grad
