"""A torchmetrics ``Metric`` that scores an evaluation suite across any number of ranks."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from vireid_zoo.core.records import MODALITY_CODES
from vireid_zoo.evaluation.protocols import EvaluationSuite, MultiTrialResult, run_trials
from vireid_zoo.evaluation.rerank import RerankConfig


class RetrievalMetric(Metric):
    """Accumulate embeddings of a suite's images and score every task of the suite.

    Each rank calls [`update`][] with the batches it embedded; ``compute`` gathers all
    ranks' states, drops the duplicate indices that distributed samplers add by padding,
    checks that every suite image was embedded exactly as the suite describes it, and
    scores each task over its trials. The numbers are the same on one process and on
    several.

    Args:
        suite: The images and tasks being evaluated.
        max_rank: CMC length.
        rerank: Opt-in k-reciprocal re-ranking; results say when it was applied.
        **kwargs: Passed to `torchmetrics.Metric` (e.g. ``process_group``).

    ``compute`` returns ``{task name: MultiTrialResult}``.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    # The states (see __init__): lists of batches, or tensors once synchronised across ranks.
    index: list[torch.Tensor] | torch.Tensor
    features: list[torch.Tensor] | torch.Tensor
    pids: list[torch.Tensor] | torch.Tensor
    camids: list[torch.Tensor] | torch.Tensor
    modalities: list[torch.Tensor] | torch.Tensor

    def __init__(
        self,
        suite: EvaluationSuite,
        *,
        max_rank: int = 20,
        rerank: RerankConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.max_rank = max_rank
        self.rerank = rerank
        self._expected = torch.tensor(
            [[s.pid, s.camid, MODALITY_CODES[s.modality]] for s in suite.samples],
            dtype=torch.int64,
        )
        for name in ("index", "features", "pids", "camids", "modalities"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        index: torch.Tensor,
        features: torch.Tensor,
        pids: torch.Tensor,
        camids: torch.Tensor,
        modalities: torch.Tensor,
    ) -> None:
        """Add a batch: suite indices, ``(B, dim)`` embeddings and their labels."""
        if features.dim() != 2 or len(features) != len(index):
            raise ValueError(
                f"features must be (batch, dim) with one row per index, got "
                f"{tuple(features.shape)} for {len(index)} indices"
            )
        _append(self.index, index.detach().long())
        _append(self.features, features.detach().float())
        _append(self.pids, pids.detach().long())
        _append(self.camids, camids.detach().long())
        _append(self.modalities, modalities.detach().long())

    def _gathered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (features, labels) ordered by suite index, one row per suite image."""
        # States are lists of batches, or tensors once synchronised across ranks.
        if isinstance(self.index, list) and not self.index:
            raise RuntimeError("the metric received no batch; nothing to evaluate")
        index = dim_zero_cat(self.index)
        order = torch.argsort(index, stable=True)
        index = index[order]
        first = torch.ones_like(index, dtype=torch.bool)
        first[1:] = index[1:] != index[:-1]
        keep = order[first]
        index = index[first]
        num_images = len(self.suite.samples)
        if len(index) != num_images or not torch.equal(
            index, torch.arange(num_images, device=index.device)
        ):
            missing = sorted(set(range(num_images)) - set(index.tolist()))
            raise RuntimeError(
                f"the metric received {len(index)} distinct images of the {num_images} in the "
                f"suite (missing indices {missing[:10]}, or indices outside the suite); the "
                "evaluation loader must cover the suite exactly"
            )
        labels = torch.stack(
            [
                dim_zero_cat(self.pids)[keep],
                dim_zero_cat(self.camids)[keep],
                dim_zero_cat(self.modalities)[keep],
            ],
            dim=1,
        )
        expected = self._expected.to(labels.device)
        if not torch.equal(labels, expected):
            bad = int((labels != expected).any(dim=1).nonzero()[0])
            raise RuntimeError(
                f"suite image {bad} ({self.suite.samples[bad].path}) was reported with "
                f"pid/camera/modality {labels[bad].tolist()} but the suite says "
                f"{expected[bad].tolist()}; the loader and the suite disagree"
            )
        return dim_zero_cat(self.features)[keep], labels

    def compute(self) -> dict[str, MultiTrialResult]:
        """Score every task of the suite over its trials."""
        features, labels = self._gathered()
        return {
            task.name: run_trials(
                task,
                features,
                labels[:, 0],
                labels[:, 1],
                max_rank=self.max_rank,
                rerank=self.rerank,
            )
            for task in self.suite.tasks
        }


def _append(state: list[torch.Tensor] | torch.Tensor, batch: torch.Tensor) -> None:
    """Add a batch to a state; torchmetrics refuses ``update`` on synchronised states."""
    assert isinstance(state, list)
    state.append(batch)
