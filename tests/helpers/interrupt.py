"""A callback that signals its own process at a known training step (for interruption tests).

Listed in a test config, so that a ``vireid-zoo fit`` subprocess is interrupted at an
exact point without timing: the signal is delivered before the step runs, and the fit
stops at the end of that step.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


class SendSignal(Callback):
    """Send ``name`` (e.g. ``"SIGINT"``) ``times`` times when a training batch starts.

    Args:
        name: The signal.
        epoch: The epoch (counting from 0).
        batch: The batch of that epoch (counting from 0).
        times: How many signals to send (2 SIGINT: a second Ctrl+C).
        rank: Only the process of this global rank sends it (None: every process).
    """

    def __init__(
        self, name: str, epoch: int, batch: int, times: int = 1, rank: int | None = None
    ) -> None:
        self.signum = signal.Signals[name]
        self.epoch, self.batch, self.times, self.rank = epoch, batch, times, rank

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)
