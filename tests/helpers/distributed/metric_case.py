"""A small in-memory evaluation suite with identity-structured features (no images)."""

from __future__ import annotations

from pathlib import Path

import torch

from vireid_zoo.core.records import Sample
from vireid_zoo.evaluation import EvaluationSuite, MultiTrialResult, TaskSpec, seeded_gallery_trial


def build_case(
    num_ids: int = 9, dim: int = 16, seed: int = 0
) -> tuple[EvaluationSuite, torch.Tensor]:
    """SYSU-like suite: infrared queries (cams 3, 6), visible pool (cams 1, 2, 4, 5)."""
    generator = torch.Generator().manual_seed(seed)
    query, pool, groups = [], [], []
    for pid in range(1, num_ids + 1):
        for camid in (3, 6):
            count = 3 if (pid, camid) == (1, 3) else 2  # an odd suite size makes samplers pad
            query += [
                Sample(Path(f"/q/{pid}/{camid}/{n}.jpg"), pid, camid, "infrared")
                for n in range(count)
            ]
        for camid in (1, 2, 4, 5):
            count = 1 + (pid + camid) % 3
            groups.append(list(range(len(pool), len(pool) + count)))
            pool += [
                Sample(Path(f"/g/{pid}/{camid}/{n}.jpg"), pid, camid, "visible")
                for n in range(count)
            ]
    spec = TaskSpec(
        name="case/all",
        protocol="sysu_mm01",
        query=query,
        gallery_pool=pool,
        trials={t: seeded_gallery_trial(groups, t) for t in range(4)},
    )
    suite = EvaluationSuite.from_specs([spec])
    centres = torch.randn(num_ids + 1, dim, generator=generator)
    features = torch.stack(
        [centres[s.pid] + 0.9 * torch.randn(dim, generator=generator) for s in suite.samples]
    )
    return suite, features


def results_as_json(results: dict[str, MultiTrialResult]) -> dict:
    return {
        name: {
            "per_trial": [
                {"cmc": r.cmc.tolist(), "mAP": r.mAP, "mINP": r.mINP} for r in result.per_trial
            ],
            "mean": result.mean,
        }
        for name, result in results.items()
    }
