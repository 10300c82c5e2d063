"""Measurement helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


class TrainingThroughput(Callback):
    """Time training batches after ``warmup`` steps; images = visible + infrared."""

    def __init__(self, warmup: int = 2) -> None:
        self.warmup = warmup
        self.images = 0
        self.seconds = 0.0
        self._started = 0.0

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Start the batch's clock."""
        self._started = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Count the batch once the warm-up steps are over."""
        if trainer.global_step > self.warmup:
            self.seconds += time.perf_counter() - self._started
            self.images += len(batch["visible"]) + len(batch["infrared"])

    @property
    def images_per_second(self) -> float:
        """Timed images per second."""
        return self.images / self.seconds if self.seconds else float("nan")


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on ``device``, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(script: str, *args: str) -> dict[str, Any]:
    """Run ``script --worker ARGS`` in a fresh process (clean peak memory); return its JSON."""
    completed = subprocess.run(
        [sys.executable, script, "--worker", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
