"""Tests of the optional k-reciprocal re-ranking."""

from __future__ import annotations

import pytest
import torch

from vireid_zoo.evaluation.functional import RetrievalResult, cosine_distance, evaluate
from vireid_zoo.evaluation.rerank import RerankConfig, k_reciprocal_rerank


def _score(
    distances: torch.Tensor, query_pids: torch.Tensor, gallery_pids: torch.Tensor
) -> RetrievalResult:
    query_cams, gallery_cams = torch.ones_like(query_pids), torch.ones_like(gallery_pids)
    return evaluate(
        distances.double(), query_pids, gallery_pids, query_cams, gallery_cams, protocol="regdb"
    )


def _clusters(
    num_ids: int, per_id: int, noise: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.eye(16)[:num_ids]
    pids = torch.arange(num_ids).repeat_interleave(per_id)
    query = centres[pids] + noise * torch.randn(len(pids), 16, generator=generator)
    gallery = centres[pids] + noise * torch.randn(len(pids), 16, generator=generator)
    return query, gallery, pids, pids.clone()


def test_shape_and_dtype() -> None:
    query, gallery, _, _ = _clusters(3, 4, 0.3, seed=0)
    for dtype in (torch.float32, torch.float64):
        distances = k_reciprocal_rerank(query.to(dtype), gallery[:7].to(dtype))
        assert distances.shape == (12, 7)
        assert distances.dtype == torch.float32
        assert torch.isfinite(distances).all()
        assert (distances >= 0).all()


def test_clearly_clustered_problem_is_not_hurt() -> None:
    query, gallery, query_pids, gallery_pids = _clusters(4, 6, 0.6, seed=1)
    before = _score(cosine_distance(query, gallery), query_pids, gallery_pids)
    after = _score(k_reciprocal_rerank(query, gallery), query_pids, gallery_pids)
    assert before.rank(1) == after.rank(1) == 1.0
    assert before.mAP < 1.0  # the original ranking is not perfect: room to hurt or help
    assert after.mAP >= before.mAP - 1e-12
    assert after.mINP >= before.mINP - 1e-12


def _outlier_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One query q of identity 0 whose nearest gallery image x has identity 1.

    All items sit near the direction e0 (norm 10) with small orthogonal offsets, so the
    distances follow the offsets: x is 1.0 from q; the three identity-0 gallery images
    a1..a3 are 1.10, 1.15, 1.20 from q along their own axes (so q is the nearest item of
    each of them); five identity-1 gallery images b0..b4 sit about 0.3 from x, beyond it
    (about 1.3 from q). Hence x leads q's ranking, but x's four nearest neighbours are
    b0..b4, not q: x is not a 4-reciprocal neighbour of q, while a1..a3 are.
    """
    axes = torch.eye(12, dtype=torch.float64)
    q = 10.0 * axes[0]
    x = q + 1.0 * axes[1]
    same_id = [q + radius * axes[2 + i] for i, radius in enumerate((1.10, 1.15, 1.20))]
    other_id = [x + 0.3 * axes[1] + (0.10 + 0.01 * j) * axes[5 + j] for j in range(5)]
    gallery = torch.stack([x, *same_id, *other_id])
    return q[None], gallery, torch.tensor([0]), torch.tensor([1, 0, 0, 0, 1, 1, 1, 1, 1])


def test_outlier_problem_is_as_described() -> None:
    query, gallery, _, _ = _outlier_problem()
    everything = torch.cat([query, gallery])  # 0: q, 1: x, 2-4: a1..a3, 5-9: b0..b4
    distances = cosine_distance(everything, everything)
    order = distances.argsort(dim=1)
    assert order[0, 1] == 1  # x is q's nearest neighbour
    assert set(order[1, 1:6].tolist()) == {5, 6, 7, 8, 9}  # x's 5 nearest: b0..b4
    assert (order[2:5, 1] == 0).all()  # q is the nearest neighbour of a1..a3


@pytest.mark.parametrize("k2", [1, 3])
def test_rerank_demotes_an_outlier_whose_reciprocal_neighbours_disagree(k2: int) -> None:
    query, gallery, query_pids, gallery_pids = _outlier_problem()
    before = _score(cosine_distance(query, gallery), query_pids, gallery_pids)
    reranked = k_reciprocal_rerank(query, gallery, RerankConfig(k1=4, k2=k2, lambda_value=0.3))
    after = _score(reranked, query_pids, gallery_pids)
    assert before.rank(1) == 0.0  # x first
    assert reranked[0].argmin() in (1, 2, 3)  # an identity-0 image first
    assert after.rank(1) == 1.0
    assert after.mAP == pytest.approx(1.0)  # a1..a3 now lead the ranking
    assert before.mAP < 0.7


def test_lambda_one_keeps_the_original_order() -> None:
    generator = torch.Generator().manual_seed(5)
    query = torch.randn(40, 16, generator=generator)
    gallery = torch.randn(30, 16, generator=generator)
    reranked = k_reciprocal_rerank(query, gallery, RerankConfig(lambda_value=1.0))
    original = cosine_distance(query, gallery)
    assert torch.equal(reranked.argsort(dim=1), original.argsort(dim=1))


def test_small_problems_with_more_neighbours_than_items() -> None:
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    gallery = torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 1.0]])
    distances = k_reciprocal_rerank(query, gallery)  # k1 = 20 > 5 items
    assert distances.shape == (2, 3)
    assert distances[0].argmin() == 0
    assert distances[1].argmin() == 1


def test_identical_features_do_not_break_it() -> None:
    query = torch.ones(3, 4)
    gallery = torch.ones(5, 4)
    distances = k_reciprocal_rerank(query, gallery, RerankConfig(k1=2, k2=2))
    assert torch.isfinite(distances).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k1": 0}, "k1 must be an integer >= 1"),
        ({"k2": 0}, "k2 must be an integer >= 1"),
        ({"k1": 2.5}, "k1 must be an integer"),
        ({"k2": True}, "k2 must be an integer"),
        ({"lambda_value": -0.1}, r"lambda_value must be in \[0, 1\]"),
        ({"lambda_value": 1.5}, r"lambda_value must be in \[0, 1\]"),
        ({"lambda_value": float("nan")}, r"lambda_value must be in \[0, 1\]"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RerankConfig(**kwargs)


def test_config_boundaries_are_allowed() -> None:
    RerankConfig(k1=1, k2=1, lambda_value=0.0)
    RerankConfig(lambda_value=1.0)


def test_label() -> None:
    assert RerankConfig().label() == "k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)"
    assert RerankConfig(k1=30, k2=1, lambda_value=0.25).label() == (
        "k-reciprocal re-ranking (k1=30, k2=1, lambda=0.25)"
    )


@pytest.mark.parametrize(
    ("query", "gallery", "message"),
    [
        (torch.zeros(0, 4), torch.ones(2, 4), "query_features must be a non-empty 2-D"),
        (torch.ones(2, 4), torch.ones(4), "gallery_features must be a non-empty 2-D"),
        (torch.ones(2, 4), torch.ones(3, 5), "differ in dimension: 4 vs 5"),
    ],
)
def test_bad_features_are_rejected(
    query: torch.Tensor, gallery: torch.Tensor, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        k_reciprocal_rerank(query, gallery)


def test_result_feeds_the_evaluation() -> None:
    query, gallery, query_pids, gallery_pids = _clusters(3, 4, 0.3, seed=2)
    result = _score(k_reciprocal_rerank(query, gallery), query_pids, gallery_pids)
    assert isinstance(result, RetrievalResult)
