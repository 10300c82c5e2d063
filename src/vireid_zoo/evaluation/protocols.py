"""Query / gallery splits, gallery trials and multi-trial averaging.

An *evaluation suite* is everything one test run embeds and scores: a list of unique
images (each embedded once) and one or more *tasks*. A task is a protocol applied to a
query set and a series of gallery trials, all given as indices into the suite's images.
For SYSU-MM01 and LLCM every trial's gallery is a subset of one *gallery pool*, so gallery
features are extracted once, not once per trial; several tasks (SYSU ``all`` and
``indoor``, RegDB's two directions, LLCM's two directions) share the same images.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from vireid_zoo.core.records import MODALITY_CODES, Sample
from vireid_zoo.evaluation.functional import (
    PROTOCOLS,
    Protocol,
    RetrievalResult,
    evaluate,
    evaluate_features,
)
from vireid_zoo.evaluation.rerank import RerankConfig, k_reciprocal_rerank


def seeded_gallery_trial(groups: Sequence[Sequence[int]], trial: int, shots: int = 1) -> list[int]:
    """Pick a gallery trial the way the standard code does.

    The standard code re-seeds Python's ``random`` with the trial number, then walks the
    gallery's (identity, camera) folders in order (identities ascending, cameras in the
    protocol's order) and, for each folder, appends ``random.choice(sorted files)``.
    The same sequence of calls on a private ``random.Random(trial)`` gives the same
    picks without touching the global generator.

    Args:
        groups: Pool indices of each (identity, camera) folder, in the standard walking
            order; each group in sorted file-name order.
        trial: The trial number, which is also the seed.
        shots: Images per folder: 1 is the standard single-shot gallery; more takes
            ``random.sample`` of that many (all of them where a folder holds fewer), kept
            in file order.

    Returns:
        The chosen pool indices.
    """
    if shots < 1:
        raise ValueError(f"shots must be at least 1, got {shots}")
    rng = random.Random(trial)
    chosen: list[int] = []
    for group in groups:
        if not group:
            raise ValueError("a gallery group is empty; groups come from existing folders")
        if shots == 1:
            chosen.append(rng.choice(group))
        else:
            chosen.extend(sorted(rng.sample(list(group), min(shots, len(group)))))
    return chosen


@dataclass(frozen=True)
class TaskSpec:
    """A protocol applied to a query set and gallery trials drawn from a gallery pool.

    Attributes:
        name: Name used in logged metrics, e.g. ``"sysu_mm01/all"``.
        protocol: The exclusion and CMC rule.
        query: Query images in the standard order.
        gallery_pool: Every image any trial may put in the gallery, in the standard order.
        trials: Trial number -> indices into ``gallery_pool``.
    """

    name: str
    protocol: Protocol
    query: Sequence[Sample]
    gallery_pool: Sequence[Sample]
    trials: dict[int, Sequence[int]]

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}: use one of {list(PROTOCOLS)}")
        if not self.query or not self.gallery_pool or not self.trials:
            raise ValueError(f"task {self.name!r} has no queries, no gallery or no trials")


@dataclass(frozen=True)
class EvaluationTask:
    """A task with its images resolved to indices into an [`EvaluationSuite`][].

    Attributes:
        name: Name used in logged metrics.
        protocol: The exclusion and CMC rule.
        query: Suite indices of the queries, in the standard order.
        trials: Trial numbers, in order.
        galleries: Suite indices of each trial's gallery.
    """

    name: str
    protocol: Protocol
    query: tuple[int, ...]
    trials: tuple[int, ...]
    galleries: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class EvaluationSuite:
    """The unique images of one evaluation run and the tasks scored on them.

    Images are grouped by modality (visible first), keeping first-seen order inside each
    modality, so consecutive batches mostly hold one modality.
    """

    samples: tuple[Sample, ...]
    tasks: tuple[EvaluationTask, ...]

    @classmethod
    def from_specs(cls, specs: Sequence[TaskSpec]) -> EvaluationSuite:
        """Merge task specifications, embedding every distinct image path once."""
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        unique: dict[object, Sample] = {}
        for spec in specs:
            for sample in (*spec.query, *spec.gallery_pool):
                known = unique.setdefault(sample.path, sample)
                if known != sample:
                    raise ValueError(
                        f"image {sample.path} appears with two different labels: {known} and "
                        f"{sample}"
                    )
        ordered = sorted(unique.values(), key=lambda s: MODALITY_CODES[s.modality])
        position = {sample.path: index for index, sample in enumerate(ordered)}
        tasks = []
        for spec in specs:
            pool = [position[s.path] for s in spec.gallery_pool]
            trial_numbers = tuple(sorted(spec.trials))
            tasks.append(
                EvaluationTask(
                    name=spec.name,
                    protocol=spec.protocol,
                    query=tuple(position[s.path] for s in spec.query),
                    trials=trial_numbers,
                    galleries=tuple(tuple(pool[i] for i in spec.trials[t]) for t in trial_numbers),
                )
            )
        return cls(samples=tuple(ordered), tasks=tuple(tasks))


SCORES: tuple[str, ...] = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


@dataclass
class MultiTrialResult:
    """Results of one task over its trials.

    (Not frozen: torchmetrics rebuilds the dataclasses a ``compute`` returns.)

    Attributes:
        name: The task name.
        protocol: The protocol applied.
        trials: Trial numbers, in order.
        per_trial: One result per trial.
        reranking: ``None`` for the plain distance, otherwise a description of the
            re-ranking applied; re-ranked numbers are never comparable to plain ones.
    """

    name: str
    protocol: Protocol
    trials: tuple[int, ...]
    per_trial: tuple[RetrievalResult, ...]
    reranking: str | None = None
    mean: dict[str, float] = field(init=False)
    std: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        summaries = [result.summary() for result in self.per_trial]
        keys = [k for k in SCORES if all(k in s for s in summaries)]
        values = {k: np.array([s[k] for s in summaries], dtype=np.float64) for k in keys}
        self.mean = {k: float(v.mean()) for k, v in values.items()}
        # Population std (ddof=0) over trials, as numpy's default.
        self.std = {k: float(v.std()) for k, v in values.items()}

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready record: protocol, trials, mean, std and every trial's scores."""
        return {
            "protocol": self.protocol,
            "reranking": self.reranking,
            "trials": list(self.trials),
            "mean": self.mean,
            "std": self.std,
            "per_trial": [result.summary() for result in self.per_trial],
            "cmc": self.cmc.tolist(),
        }

    @property
    def cmc(self) -> torch.Tensor:
        """Mean CMC over the trials."""
        return torch.stack([result.cmc for result in self.per_trial]).mean(dim=0)

    def table(self) -> str:
        """Return a plain-text table (percentages): one row per trial, then mean and std."""
        keys = list(self.mean)
        title = f"{self.name} ({self.protocol} protocol"
        title += f", {self.reranking})" if self.reranking else ")"
        lines = [title, "trial   " + "".join(f"{k:>9}" for k in keys)]
        for trial, result in zip(self.trials, self.per_trial, strict=True):
            row = result.summary()
            lines.append(f"{trial:<8}" + "".join(f"{100 * row[k]:9.2f}" for k in keys))
        lines.append("mean    " + "".join(f"{100 * self.mean[k]:9.2f}" for k in keys))
        lines.append("std     " + "".join(f"{100 * self.std[k]:9.2f}" for k in keys))
        return "\n".join(lines)


def run_trials(
    task: EvaluationTask,
    features: torch.Tensor,
    pids: torch.Tensor,
    camids: torch.Tensor,
    *,
    max_rank: int = 20,
    rerank: RerankConfig | None = None,
) -> MultiTrialResult:
    """Score ``task`` on every trial from the features of the suite's images.

    The distance is the standard one ([`cosine_distance`][], float32), computed in
    chunks of queries, so memory stays bounded whatever the gallery size.

    Args:
        task: The task; its indices address the rows of ``features``.
        features: ``(num_suite_images, dim)`` embeddings.
        pids: Identity of every suite image.
        camids: Camera of every suite image.
        max_rank: CMC length.
        rerank: Apply k-reciprocal re-ranking to each trial (never on by default); the
            result is labelled with it.
    """
    query = torch.as_tensor(task.query, device=features.device)
    query_features, query_pids, query_cams = features[query], pids[query], camids[query]
    results = []
    for gallery_indices in task.galleries:
        gallery = torch.as_tensor(gallery_indices, device=features.device)
        labels = (query_pids, pids[gallery], query_cams, camids[gallery])
        if rerank is None:
            result = evaluate_features(
                query_features,
                features[gallery],
                *labels,
                protocol=task.protocol,
                max_rank=max_rank,
            )
        else:
            distance = k_reciprocal_rerank(query_features, features[gallery], rerank)
            result = evaluate(distance, *labels, protocol=task.protocol, max_rank=max_rank)
        results.append(result)
    return MultiTrialResult(
        name=task.name,
        protocol=task.protocol,
        trials=task.trials,
        per_trial=tuple(results),
        reranking=None if rerank is None else rerank.label(),
    )
