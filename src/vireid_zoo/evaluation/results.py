"""``test_results.json``: the measured scores of a checkpoint, and what they were measured on.

``vireid-zoo test`` writes it next to its logs, recording the checkpoint's SHA-256 and the
input contract the images were given at (size, normalisation, interpolation); every
task records its protocol, trials, mean, std and each trial's scores. ``vireid-zoo
publish`` only accepts results of the very checkpoint it publishes, measured at that
checkpoint's input contract.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vireid_zoo.core.files import file_sha256
from vireid_zoo.core.sources import read_config
from vireid_zoo.evaluation.protocols import MultiTrialResult

RESULTS_NAME = "test_results.json"
SUMMARY_SCORES = ("rank1", "rank10", "rank20", "mAP", "mINP")
"""The scores of the printed summary (every score is in the JSON)."""


def write_results(
    results: Mapping[str, MultiTrialResult],
    directory: Path,
    checkpoint: Path | None,
    input_contract: Mapping[str, Any],
    dataset: str,
) -> Path:
    """Write ``test_results.json``: every task, its checkpoint and the input it was given.

    Args:
        results: Each task's results.
        directory: Where to write the file.
        checkpoint: The checkpoint tested (its SHA-256 is recorded when it is a local file).
        input_contract: ``input_size`` (height, width), ``mean``, ``std`` and
            ``interpolation`` of the test images.
        dataset: The datamodule's dataset name.
    """
    directory.mkdir(parents=True, exist_ok=True)
    # Only a local file is hashed, not a remote (fsspec) path.
    local = checkpoint if checkpoint is not None and checkpoint.is_file() else None
    record = {
        "checkpoint": str(checkpoint) if checkpoint else None,
        "checkpoint_sha256": file_sha256(local) if local is not None else None,
        "dataset": dataset,
        "input_contract": json.loads(json.dumps(dict(input_contract))),
        "tasks": {name: result.to_dict() for name, result in results.items()},
    }
    path = directory / RESULTS_NAME
    path.write_text(json.dumps(record, indent=2))
    return path


def read_results(path: Path, origin: str) -> dict[str, Any]:
    """A ``test_results.json`` with at least one task; errors name ``origin``."""
    record = read_config(path)
    if not isinstance(record, dict) or not record.get("tasks"):
        raise ValueError(
            f"{origin} holds no test results ({path} has no 'tasks'): it is not a "
            f"{RESULTS_NAME} written by 'vireid-zoo test'"
        )
    return record


def summary_table(
    results: Mapping[str, MultiTrialResult], scores: Sequence[str] = SUMMARY_SCORES
) -> str:
    """One row per task: mean ± std over its trials, in percent, with protocol and trials."""
    task_width = max(len("task"), *(len(name) for name in results))
    protocol_width = max(len("protocol"), *(len(r.protocol) for r in results.values()))
    header = f"{'task':<{task_width}}  {'protocol':<{protocol_width}}  trials" + "".join(
        f"{score:>15}" for score in scores
    )
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        cells = "".join(
            f"{100 * result.mean[s]:>8.2f} ±{100 * result.std[s]:>5.2f}" for s in scores
        )
        rerank = f"  ({result.reranking})" if result.reranking else ""
        lines.append(
            f"{name:<{task_width}}  {result.protocol:<{protocol_width}}  "
            f"{len(result.trials):>6}{cells}{rerank}"
        )
    lines.append(f"(percent, mean ± std over the gallery trials; every trial in {RESULTS_NAME})")
    return "\n".join(lines)
