from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "helpers" / "distributed"))

from metric_case import build_case, results_as_json  # noqa: E402

from vireid_zoo.core.records import MODALITY_CODES
from vireid_zoo.evaluation import (  # noqa: E402
    RerankConfig,
    RetrievalMetric,
    cosine_distance,
    evaluate,
    k_reciprocal_rerank,
)

WORKER = Path(__file__).parents[1] / "helpers" / "distributed" / "metric_worker.py"


def labels_of(suite, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = torch.tensor(
        [
            [
                suite.samples[i].pid,
                suite.samples[i].camid,
                MODALITY_CODES[suite.samples[i].modality],
            ]
            for i in indices.tolist()
        ]
    )
    return rows[:, 0], rows[:, 1], rows[:, 2]


def feed(metric: RetrievalMetric, suite, features: torch.Tensor, order: list[int], batch: int = 5):
    for start in range(0, len(order), batch):
        index = torch.tensor(order[start : start + batch])
        metric.update(index, features[index], *labels_of(suite, index))


def direct_results(suite, features: torch.Tensor) -> list[tuple[torch.Tensor, float, float]]:
    """Per-trial scores computed directly with `evaluate` on the standard distance."""
    task = suite.tasks[0]
    q = torch.tensor(task.query)
    pids = torch.tensor([s.pid for s in suite.samples])
    cams = torch.tensor([s.camid for s in suite.samples])
    out = []
    for gallery in task.galleries:
        g = torch.tensor(gallery)
        r = evaluate(
            cosine_distance(features[q], features[g]),
            pids[q],
            pids[g],
            cams[q],
            cams[g],
            protocol=task.protocol,
        )
        out.append((r.cmc, r.mAP, r.mINP))
    return out


def test_metric_equals_direct_evaluation_per_trial() -> None:
    suite, features = build_case()
    metric = RetrievalMetric(suite)
    feed(metric, suite, features, list(range(len(suite.samples)))[::-1])
    result = metric.compute()["case/all"]
    assert result.trials == (0, 1, 2, 3) and result.reranking is None
    for trial_result, (cmc, mAP, mINP) in zip(
        result.per_trial, direct_results(suite, features), strict=True
    ):
        assert torch.equal(trial_result.cmc, cmc)
        assert trial_result.mAP == mAP and trial_result.mINP == mINP
    assert result.mean["mAP"] == pytest.approx(
        sum(r[1] for r in direct_results(suite, features)) / 4
    )
    assert 0 < result.mean["rank1"] <= 1


def test_duplicates_from_padding_are_dropped() -> None:
    suite, features = build_case()
    clean, padded = RetrievalMetric(suite), RetrievalMetric(suite)
    order = list(range(len(suite.samples)))
    feed(clean, suite, features, order)
    feed(padded, suite, features, order + order[:7] + order[3:5])
    assert results_as_json(clean.compute()) == results_as_json(padded.compute())


def test_missing_images_fail_loudly() -> None:
    suite, features = build_case()
    metric = RetrievalMetric(suite)
    feed(metric, suite, features, list(range(len(suite.samples) - 2)))
    with pytest.raises(RuntimeError, match="distinct images of the .*missing indices"):
        metric.compute()


def test_labels_disagreeing_with_the_suite_fail_loudly() -> None:
    suite, features = build_case()
    metric = RetrievalMetric(suite)
    index = torch.arange(len(suite.samples))
    pids, cams, modalities = labels_of(suite, index)
    modalities = modalities.clone()
    modalities[4] = 1 - modalities[4]
    metric.update(index, features, pids, cams, modalities)
    with pytest.raises(RuntimeError, match="suite image 4 .* loader and the suite disagree"):
        metric.compute()


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_empty_metric_fails_loudly() -> None:
    suite, _ = build_case()
    with pytest.raises(RuntimeError, match="no batch"):
        RetrievalMetric(suite).compute()


def test_reranking_is_opt_in_and_labelled() -> None:
    suite, features = build_case()
    config = RerankConfig(k1=6, k2=3, lambda_value=0.3)
    metric = RetrievalMetric(suite, rerank=config)
    feed(metric, suite, features, list(range(len(suite.samples))))
    result = metric.compute()["case/all"]
    assert result.reranking == config.label()
    assert config.label() in result.table()
    task = suite.tasks[0]
    q, g = torch.tensor(task.query), torch.tensor(task.galleries[0])
    pids = torch.tensor([s.pid for s in suite.samples])
    cams = torch.tensor([s.camid for s in suite.samples])
    expected = evaluate(
        k_reciprocal_rerank(features[q], features[g], config),
        pids[q],
        pids[g],
        cams[q],
        cams[g],
        protocol="sysu_mm01",
    )
    assert result.per_trial[0].mAP == expected.mAP


@pytest.mark.distributed
def test_two_gloo_processes_give_the_single_process_numbers(tmp_path: Path) -> None:
    suite, features = build_case()
    single = RetrievalMetric(suite)
    feed(single, suite, features, list(range(len(suite.samples))))
    expected = results_as_json(single.compute())
    assert len(suite.samples) % 2 == 1, "an odd suite makes the distributed sampler pad"

    out = tmp_path / "results.json"
    init = tmp_path / "init"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(WORKER.parent), os.environ.get("PYTHONPATH")])
        ),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), "2", str(init), str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert json.loads(out.read_text()) == expected
