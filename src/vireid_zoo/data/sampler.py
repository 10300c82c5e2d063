"""Cross-modality identity sampler: P identities x K visible + K infrared images per step.

Each step takes ``P x world_size`` distinct identities from a running sequence of random
permutations of all identities, drawn from a generator seeded by ``(seed, epoch)`` that
every rank builds identically; rank ``r`` takes identities ``r*P .. (r+1)*P - 1``. So no
identity is shared between ranks within a step, identities are drawn about equally often
over an epoch, and the plan is reshuffled every epoch. (The AGW code draws each step's
identities independently, which leaves some identities out of an epoch.) For each of its
identities a rank yields K ``(visible index, infrared index, augmentation seed)``
triples, so batch position ``j`` holds a visible and an infrared image of the same
person; the seed makes each image's random augmentation a function of ``(seed, epoch)``
alone, whatever the number of workers and across an interrupted and resumed fit.

The class derives from `DistributedSampler` only so that
Lightning recognises it as distributed-aware and leaves it alone: Lightning would
otherwise wrap it in its own distributed sampler, which reshuffles indices and breaks the
P x K structure.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler


class CrossModalityIdentitySampler(DistributedSampler):
    """Yield ``(visible index, infrared index, augmentation seed)`` in P x K identity blocks.

    Args:
        dataset: The training dataset (only its length is used, by the base class).
        visible_labels: Class label of every visible training image.
        infrared_labels: Class label of every infrared training image.
        num_identities: P, identities per step on each rank.
        num_instances: K, images of each modality per identity.
        num_replicas: Number of ranks (processes).
        rank: This process's rank.
        seed: Base seed; the plan of epoch ``e`` depends on ``(seed, e)`` only.
        samples_per_epoch: Images per modality one epoch covers over all ranks; defaults
            to the larger modality's training set size, as in the AGW code.

    Raises:
        ValueError: if an identity lacks one modality, or there are fewer identities
            than ``P x num_replicas``.
    """

    def __init__(
        self,
        dataset: Dataset,
        visible_labels: Sequence[int] | torch.Tensor,
        infrared_labels: Sequence[int] | torch.Tensor,
        *,
        num_identities: int = 8,
        num_instances: int = 4,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        samples_per_epoch: int | None = None,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        if num_identities < 1 or num_instances < 1:
            raise ValueError(
                f"num_identities (P={num_identities}) and num_instances (K={num_instances}) "
                "must be at least 1"
            )
        self.num_identities = num_identities
        self.num_instances = num_instances
        visible = np.asarray(visible_labels, dtype=np.int64)
        infrared = np.asarray(infrared_labels, dtype=np.int64)
        self.identities = np.union1d(visible, infrared)
        self.visible_by_id = {int(i): np.flatnonzero(visible == i) for i in self.identities}
        self.infrared_by_id = {int(i): np.flatnonzero(infrared == i) for i in self.identities}
        one_sided = [
            int(i)
            for i in self.identities
            if not len(self.visible_by_id[int(i)]) or not len(self.infrared_by_id[int(i)])
        ]
        if one_sided:
            raise ValueError(
                f"training identities {one_sided[:10]} (labels) have images in only one "
                "modality; the paired sampler needs both. Remove them from the training set."
            )
        needed = num_identities * num_replicas
        if len(self.identities) < needed:
            raise ValueError(
                f"{len(self.identities)} training identities cannot fill P={num_identities} "
                f"distinct identities on each of {num_replicas} ranks ({needed} per step); "
                "lower num_identities"
            )
        per_epoch = samples_per_epoch or max(len(visible), len(infrared))
        per_step = num_identities * num_instances * num_replicas
        self.steps_per_epoch = max(1, math.ceil(per_epoch / per_step))
        self.start_step = 0
        """Steps of the epoch's plan the next iteration skips (then reset to 0): the steps
        a resumed fit already trained. The plan itself is unchanged."""

    @property
    def batch_size(self) -> int:
        """The per-rank batch size the sampler is built for: P x K."""
        return self.num_identities * self.num_instances

    def __len__(self) -> int:
        return self.steps_per_epoch * self.batch_size

    def _pick(self, rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
        """K indices from ``pool``: without replacement when it holds at least K."""
        replace = len(pool) < self.num_instances
        return rng.choice(pool, self.num_instances, replace=replace)

    def _identity_stream(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Yield each step's ``P x world_size`` distinct identities.

        Identities come from consecutive random permutations; where a step straddles two
        permutations, identities already in the step are deferred to the next step.
        """
        per_step = self.num_identities * self.num_replicas
        queue: list[int] = []
        while True:
            if len(queue) < per_step:
                queue.extend(rng.permutation(self.identities).tolist())
            step: list[int] = []
            deferred: list[int] = []
            while len(step) < per_step:
                identity = queue.pop(0)
                (deferred if identity in step else step).append(identity)
            queue[:0] = deferred
            yield np.asarray(step)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        mine = slice(self.rank * self.num_identities, (self.rank + 1) * self.num_identities)
        identity_steps = self._identity_stream(rng)
        start, self.start_step = self.start_step, 0
        for step in range(self.steps_per_epoch):
            step_ids = next(identity_steps)
            # Draw instances for every rank, so all ranks consume the generator alike.
            picks = [
                (
                    self._pick(rng, self.visible_by_id[int(i)]),
                    self._pick(rng, self.infrared_by_id[int(i)]),
                    rng.integers(2**31, size=self.num_instances),
                )
                for i in step_ids
            ]
            if step < start:  # trained before the fit was resumed; the draws above still count
                continue
            for visible, infrared, seeds in picks[mine]:
                yield from zip(visible.tolist(), infrared.tolist(), seeds.tolist(), strict=True)
