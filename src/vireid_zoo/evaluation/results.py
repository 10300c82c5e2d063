"""``test_results.json``: the measured scores of a checkpoint, and the file it names.

``vireid-zoo test`` writes it next to its logs, recording the checkpoint's SHA-256;
``vireid-zoo publish`` only accepts results of the very checkpoint it publishes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vireid_zoo.core.files import file_sha256
from vireid_zoo.core.sources import read_config
from vireid_zoo.evaluation.protocols import MultiTrialResult

RESULTS_NAME = "test_results.json"


def write_results(
    results: dict[str, MultiTrialResult], directory: Path, checkpoint: Path | None
) -> Path:
    """Write ``test_results.json``: every task, and the checkpoint it was measured on."""
    directory.mkdir(parents=True, exist_ok=True)
    local = checkpoint is not None and checkpoint.is_file()  # not a remote (fsspec) path
    record = {
        "checkpoint": str(checkpoint) if checkpoint else None,
        "checkpoint_sha256": file_sha256(checkpoint) if local else None,
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
