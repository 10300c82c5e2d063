"""One rank of a gloo process group that feeds its shard of a suite to RetrievalMetric.

Run by tests/test_metric.py as ``python metric_worker.py RANK WORLD_SIZE INIT_FILE OUT``;
rank 0 writes the computed results to OUT as JSON.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from metric_case import build_case, results_as_json
from torch.utils.data import DistributedSampler

from vireid_zoo.core.records import MODALITY_CODES
from vireid_zoo.evaluation import RetrievalMetric


def main() -> None:
    rank, world_size, init_file, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    suite, features = build_case()
    # Lightning's evaluation sampler: no shuffle, the last ranks padded with repeats.
    indices = list(DistributedSampler(range(len(suite.samples)), world_size, rank, shuffle=False))
    metric = RetrievalMetric(suite)
    for start in range(0, len(indices), 7):
        batch = torch.tensor(indices[start : start + 7])
        labels = torch.tensor(
            [
                [
                    suite.samples[i].pid,
                    suite.samples[i].camid,
                    MODALITY_CODES[suite.samples[i].modality],
                ]
                for i in batch
            ]
        )
        metric.update(batch, features[batch], labels[:, 0], labels[:, 1], labels[:, 2])
    results = metric.compute()
    if rank == 0:
        with open(out, "w") as handle:
            json.dump(results_as_json(results), handle)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
