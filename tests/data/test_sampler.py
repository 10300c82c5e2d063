from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DistributedSampler

from vireid_zoo.data import CrossModalityIdentitySampler

P, K = 4, 3


def labels(num_ids: int, per_id_visible: int, per_id_infrared: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    visible = rng.permutation(np.repeat(np.arange(num_ids), per_id_visible))
    infrared = rng.permutation(np.repeat(np.arange(num_ids), per_id_infrared))
    return visible, infrared


def make(visible, infrared, rank=0, replicas=1, seed=0, **kwargs) -> CrossModalityIdentitySampler:
    return CrossModalityIdentitySampler(
        list(range(max(len(visible), len(infrared)))),
        visible,
        infrared,
        num_identities=P,
        num_instances=K,
        num_replicas=replicas,
        rank=rank,
        seed=seed,
        **kwargs,
    )


def batches(sampler: CrossModalityIdentitySampler) -> list[list[tuple[int, int]]]:
    pairs = list(sampler)
    assert len(pairs) == len(sampler)
    size = sampler.batch_size
    return [pairs[i : i + size] for i in range(0, len(pairs), size)]


def test_batches_hold_p_identities_with_k_aligned_pairs() -> None:
    visible, infrared = labels(12, 6, 5)
    sampler = make(visible, infrared)
    assert sampler.batch_size == P * K
    for batch in batches(sampler):
        vis_ids = [visible[v] for v, _, _ in batch]
        ir_ids = [infrared[i] for _, i, _ in batch]
        assert vis_ids == ir_ids, "position j must pair one identity's visible and infrared image"
        blocks = [vis_ids[j : j + K] for j in range(0, P * K, K)]
        assert all(len(set(block)) == 1 for block in blocks)
        assert len({block[0] for block in blocks}) == P
        # Without replacement when an identity has at least K images of a modality.
        for j in range(0, P * K, K):
            assert len({v for v, _, _ in batch[j : j + K]}) == K
            assert len({i for _, i, _ in batch[j : j + K]}) == K


def test_identities_with_fewer_than_k_images_are_sampled_with_replacement() -> None:
    visible, infrared = labels(6, 1, 2)
    sampler = make(visible, infrared)
    for batch in batches(sampler):
        assert [visible[v] for v, _, _ in batch] == [infrared[i] for _, i, _ in batch]


def test_epoch_length_covers_the_larger_modality() -> None:
    visible, infrared = labels(10, 7, 3)
    sampler = make(visible, infrared)
    assert len(sampler) == int(np.ceil(70 / (P * K))) * P * K
    assert len(make(visible, infrared, samples_per_epoch=24)) == 2 * P * K


def test_ranks_never_share_an_identity_within_a_step_and_split_the_epoch() -> None:
    visible, infrared = labels(20, 4, 4)
    replicas = 3
    per_rank = [
        batches(make(visible, infrared, rank=r, replicas=replicas)) for r in range(replicas)
    ]
    assert len({len(b) for b in per_rank}) == 1
    single = make(visible, infrared)
    assert len(per_rank[0]) == int(np.ceil(len(single) / (P * K) / replicas))
    for step in range(len(per_rank[0])):
        ids = [{int(visible[v]) for v, _, _ in per_rank[r][step]} for r in range(replicas)]
        assert all(len(s) == P for s in ids)
        assert len(set().union(*ids)) == P * replicas


def test_plan_is_reshuffled_per_epoch_and_reproducible_from_the_seed() -> None:
    visible, infrared = labels(12, 4, 4)
    sampler = make(visible, infrared, seed=7)
    sampler.set_epoch(0)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch0 != epoch1
    again = make(visible, infrared, seed=7)
    again.set_epoch(1)
    assert list(again) == epoch1
    other_seed = make(visible, infrared, seed=8)
    other_seed.set_epoch(1)
    assert list(other_seed) != epoch1


def test_every_identity_is_drawn_over_an_epoch() -> None:
    visible, infrared = labels(12, 4, 4)
    drawn = {int(visible[v]) for v, _, _ in make(visible, infrared)}
    assert drawn == set(range(12))


def test_is_a_distributed_sampler_so_lightning_does_not_rewrap_it() -> None:
    visible, infrared = labels(12, 4, 4)
    assert isinstance(make(visible, infrared), DistributedSampler)


def test_identity_missing_a_modality_is_refused() -> None:
    visible = np.array([0, 0, 1, 1, 2, 2])
    infrared = np.array([0, 1, 1])
    with pytest.raises(ValueError, match=r"identities \[2\].*only one modality"):
        make(visible, infrared)


def test_too_few_identities_for_all_ranks() -> None:
    visible, infrared = labels(6, 4, 4)
    make(visible, infrared, replicas=1)
    with pytest.raises(ValueError, match="6 training identities cannot fill P=4 .* 2 ranks"):
        make(visible, infrared, rank=0, replicas=2)


def test_augmentation_seeds_depend_on_seed_and_epoch_only() -> None:
    visible, infrared = labels(12, 4, 4)
    first, second = make(visible, infrared, seed=3), make(visible, infrared, seed=3)
    first.set_epoch(2)
    second.set_epoch(2)
    seeds = [s for _, _, s in first]
    assert seeds == [s for _, _, s in second]
    assert len(set(seeds)) == len(seeds), "every image gets its own augmentation seed"
    second.set_epoch(3)
    assert seeds != [s for _, _, s in second]


def test_start_step_skips_the_steps_already_trained_once() -> None:
    visible, infrared = labels(12, 4, 4)
    sampler = make(visible, infrared, seed=7)
    sampler.set_epoch(3)
    whole = list(sampler)
    assert sampler.steps_per_epoch > 2
    sampler.start_step = 2
    assert list(sampler) == whole[2 * sampler.batch_size :]  # the same plan, from step 2
    assert list(sampler) == whole  # the next iteration starts at step 0 again
