"""The checkpointing policy of a fit: a resumable ``last.ckpt``, kept up to date and safe.

[`ResumableCheckpoint`][] is a Lightning callback, for ``vireid-zoo fit`` (every shipped
config lists it) and for a ``Trainer`` built in Python alike:

- ``last.ckpt`` is written at the end of every training epoch and, with
  ``every_n_train_steps``, every N steps within an epoch;
- SIGINT (Ctrl+C) or SIGTERM (a scheduler's pre-emption) stops the fit at the end of the
  current training step (the next optimiser step with gradient accumulation; after the
  validation, if one is under way) and writes ``last.ckpt`` there, every rank at the same
  step; the fit then raises [`TrainingInterrupted`][], and ``vireid-zoo fit`` exits
  with status 130 (SIGINT) or 143 (SIGTERM). A second Ctrl+C stops at once, without a
  checkpoint of that point;
- any other exception during a single-process fit writes ``on_exception.ckpt`` beside
  it, for inspection or an explicit resumption (it never replaces ``last.ckpt``: the
  failure may have left the weights unusable);
- every file is written atomically: into a temporary file of the same folder, flushed
  to disk, then renamed over the previous one, so a checkpoint is never half-written.

Every checkpoint is resumable: with a zoo datamodule, a fit resumed from a checkpoint
written within an epoch continues at the next step of that epoch's plan
([`ResumableTrainLoader`][vireid_zoo.data.resumable.ResumableTrainLoader]) and ends with the weights
of the uninterrupted fit.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

LAST_NAME = "last.ckpt"
"""The resumable checkpoint of a fit (``--ckpt_path last`` resolves to the newest one)."""
EXCEPTION_NAME = "on_exception.ckpt"
"""What a fit that failed with an exception left (never chosen by ``--ckpt_path last``)."""
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_VERSION = re.compile(r"version_(\d+)")


class TrainingInterrupted(Exception):
    """A fit stopped by SIGINT or SIGTERM; its resumable checkpoint, if one was written.

    Attributes:
        signal: The signal that stopped the fit.
        checkpoint: The checkpoint written where it stopped, or None (a second Ctrl+C
            stops at once, mid-step, where no checkpoint can be resumed exactly).
        exit_code: The shell's status for a process ended by that signal (128 + number):
            130 for SIGINT, 143 for SIGTERM.
        reported: Whether the message needs no printing: already printed (when
            Lightning, not this exception, ended the fit), or left to rank 0.
    """

    def __init__(
        self, signum: signal.Signals, checkpoint: Path | None, message: str, reported: bool = False
    ) -> None:
        super().__init__(message)
        self.signal = signum
        self.checkpoint = checkpoint
        self.exit_code = 128 + int(signum)
        self.reported = reported


class ResumableCheckpoint(Checkpoint):
    """Keep a resumable ``last.ckpt`` of a fit, and write one when the fit is stopped.

    See the module's description for the policy. The checkpoints' folder follows
    Lightning's ``ModelCheckpoint``: ``<save_dir>/<name>/<version>/checkpoints`` of the
    first logger (``lightning_logs/version_N/checkpoints`` with the default logger), or
    ``<default_root_dir>/checkpoints`` without a logger.

    Args:
        dirpath: The checkpoints' folder instead (several fits given the same folder
            overwrite each other's ``last.ckpt``).
        every_n_train_steps: Also write ``last.ckpt`` every N training steps (optimiser
            steps) within an epoch; None writes it at epoch ends only.
        handle_signals: Stop on SIGINT / SIGTERM with a checkpoint (installed while the
            fit runs, in the main thread); False leaves both signals to Lightning and
            Python.

    Raises:
        ValueError: ``every_n_train_steps`` below 1.
    """

    def __init__(
        self,
        dirpath: str | Path | None = None,
        every_n_train_steps: int | None = None,
        handle_signals: bool = True,
    ) -> None:
        super().__init__()
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ValueError(
                f"every_n_train_steps={every_n_train_steps}: give a number of steps >= 1, or "
                "None to write last.ckpt at epoch ends only"
            )
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.handle_signals = handle_signals
        self.interruption: TrainingInterrupted | None = None
        """Set when a signal stopped the fit (also when Lightning raised for it)."""
        self._signal: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._active = False
        self._enabled = False
        self._training = False
        self._global_zero = True

    @property
    def last_path(self) -> Path:
        """``<dirpath>/last.ckpt`` (the folder is known once the fit has started)."""
        if self.dirpath is None:
            raise RuntimeError("ResumableCheckpoint.dirpath is resolved when a fit starts")
        return self.dirpath / LAST_NAME

    # Lightning hooks ----------------------------------------------------------------------

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """For a fit: check the trainer's checkpointing, resolve the folder.

        Raises:
            ValueError: another ResumableCheckpoint, or a ``ModelCheckpoint`` with
                ``save_last``, would also write ``last.ckpt``; or the folder is a URL
                (checkpoints are renamed into place, which needs a local or mounted file
                system).
        """
        # Lightning's connectors set Trainer.fast_dev_run and .callbacks; the class does not
        # declare them.
        self._enabled = stage == TrainerFn.FITTING and not trainer.fast_dev_run  # type: ignore[attr-defined]
        if not self._enabled:
            return
        callbacks = trainer.callbacks  # type: ignore[attr-defined]
        if sum(isinstance(c, ResumableCheckpoint) for c in callbacks) > 1:
            raise ValueError(
                "the trainer has several ResumableCheckpoint callbacks, which would write the "
                "same last.ckpt and both handle SIGINT / SIGTERM: keep one"
            )
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.save_last:
                raise ValueError(
                    "a ModelCheckpoint with save_last set writes last.ckpt beside "
                    "ResumableCheckpoint's (not atomically, and perhaps as last-v1.ckpt): set "
                    "save_last: false on it (it may still keep the top-k checkpoints)"
                )
        folder = str(trainer.strategy.broadcast(str(self._resolve_dirpath(trainer))))
        if "://" in folder:
            raise ValueError(
                f"ResumableCheckpoint writes {folder!r}, a URL: it renames each checkpoint into "
                "place atomically, which needs a local or mounted folder. Set "
                "default_root_dir / the logger's save_dir / dirpath to such a folder."
            )
        self.dirpath = Path(folder)
        self._global_zero = trainer.is_global_zero
        self.interruption, self._signal, self._training = None, None, False
        self._previous, self._active = {}, False
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            # The handlers before Lightning adds its own: chained to, and given back.
            self._previous = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Training starts: take over SIGINT and SIGTERM; a failure now leaves a checkpoint.

        Installed only now, after Lightning has added its own SIGTERM handler, which
        stops a fit wherever its loops check (within gradient accumulation too, where the
        accumulated gradients would be lost): this callback's handler replaces it, stops
        at the end of an optimiser step and chains to the handlers found at ``setup``.
        Lightning gives back the handlers it found when the fit ends, so none of this
        callback's is left installed. (Before training starts there is nothing to
        checkpoint: a signal then stops the fit as Lightning and Python do.)
        """
        self._training = True
        if self._previous:
            for signum in HANDLED_SIGNALS:
                signal.signal(signum, self._on_signal)
            self._active = True

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Write ``last.ckpt`` every N steps, or where a signal asked the fit to stop.

        Only after an optimiser step: within gradient accumulation the accumulated
        gradients are in no checkpoint.
        """
        stepped = (batch_idx + 1) % trainer.accumulate_grad_batches == 0 or (
            trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        )
        if not self._enabled or not stepped:
            return
        signum = self._agreed_signal(trainer)
        every = self.every_n_train_steps
        if signum is not None or (every is not None and trainer.global_step % every == 0):
            self._save(trainer, self.last_path)
        if signum is None:
            return
        name = signal.Signals(signum).name
        raise TrainingInterrupted(
            signal.Signals(signum),
            self.last_path,
            f"interrupted by {name} in epoch {trainer.current_epoch}, after step "
            f"{trainer.global_step}; the resumable checkpoint of that point is "
            f"{self.last_path}. Resume with --ckpt_path last (vireid-zoo) or "
            f"ckpt_path='{self.last_path}' (Trainer.fit).",
            reported=not trainer.is_global_zero,  # one process reports it
        )

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write ``last.ckpt`` at the end of every training epoch."""
        if self._enabled:
            self._save(trainer, self.last_path)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        """Checkpoint a stop that Lightning raised, or the state a failure left."""
        self._restore_handlers()
        if not self._enabled or isinstance(exception, TrainingInterrupted):
            return
        if isinstance(exception, SIGTERMException):
            # Lightning stopped on SIGTERM before this callback took the signal over.
            saved = self._training and self._save_after_failure(trainer, self.last_path)
            self._interrupted(signal.SIGTERM, self.last_path if saved else None, trainer)
        elif isinstance(exception, KeyboardInterrupt):
            self._interrupted(signal.SIGINT, None, trainer)
        elif self._training and trainer.world_size == 1:
            path = self.last_path.with_name(EXCEPTION_NAME)
            if self._save_after_failure(trainer, path):
                self._report(
                    f"the fit failed in epoch {trainer.current_epoch}, after step "
                    f"{trainer.global_step} ({type(exception).__name__}); its state is saved in "
                    f"{path}. Resume from it explicitly (--ckpt_path {path}) once the cause is "
                    f"fixed; 'last' still names {self.last_path}."
                )

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Give SIGINT and SIGTERM back."""
        self._restore_handlers()

    # Saving -------------------------------------------------------------------------------

    def _resolve_dirpath(self, trainer: Trainer) -> Path | str:
        """The folder Lightning's ``ModelCheckpoint`` would use."""
        if self.dirpath is not None:
            return self.dirpath
        if trainer.loggers:
            logger = trainer.loggers[0]
            save_dir = logger.save_dir if logger.save_dir is not None else trainer.default_root_dir
            version = logger.version
            version = version if isinstance(version, str) else f"version_{version}"
            return os.path.join(save_dir, str(logger.name), version, "checkpoints")
        return os.path.join(trainer.default_root_dir, "checkpoints")

    def _save(self, trainer: Trainer, path: Path) -> None:
        """Write a checkpoint atomically: a temporary file, flushed, renamed over ``path``.

        A write that fails leaves the previous file as it was, and no temporary file.
        """
        temporary = path.with_name(f".{path.name}.partial")
        try:
            trainer.save_checkpoint(temporary)  # every rank takes part; rank 0 writes
            if trainer.is_global_zero:
                with open(temporary, "rb+") as written:
                    os.fsync(written.fileno())
                os.replace(temporary, path)
                _fsync_folder(path.parent)
        finally:
            if trainer.is_global_zero:
                temporary.unlink(missing_ok=True)
        trainer.strategy.barrier("ResumableCheckpoint")

    def _save_after_failure(self, trainer: Trainer, path: Path) -> bool:
        """`_save` while an exception is handled: a failure is reported, not raised."""
        try:
            self._save(trainer, path)
        except Exception as error:  # the fit's own exception must come through
            self._report(f"could not write {path} ({type(error).__name__}: {error})")
            return False
        return True

    # Signals ------------------------------------------------------------------------------

    def _restore_handlers(self) -> None:
        if not self._active:
            return
        self._active = False
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._active:  # called after the fit (by a copy someone kept): as before it
            self._pass_on(signal.Signals(signum), frame)
            return
        if signum == signal.SIGINT and self._signal is not None:
            self._restore_handlers()
            raise KeyboardInterrupt  # a second Ctrl+C: stop now
        if self._signal is None:
            self._signal = signal.Signals(signum)
            again = " (press Ctrl+C again to stop at once, without one)"
            self._report(
                f"{self._signal.name} received: the fit stops at the end of this training "
                "step (after the validation, if one is under way) and writes a resumable "
                "checkpoint there" + (again if signum == signal.SIGINT else "")
            )
        previous = self._previous.get(signal.Signals(signum))
        if signum == signal.SIGTERM and callable(previous):
            previous(signum, frame)

    def _pass_on(self, signum: signal.Signals, frame: FrameType | None) -> None:
        previous = self._previous.get(signum, signal.SIG_DFL)
        signal.signal(signum, previous)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            os.kill(os.getpid(), signum)  # the default action (the process ends)

    def _agreed_signal(self, trainer: Trainer) -> int | None:
        """The signal any rank received (every rank stops at the same step), or None."""
        mine = int(self._signal) if self._signal is not None else 0
        if trainer.world_size > 1:
            flag = torch.tensor([mine], device=trainer.strategy.root_device)
            mine = int(trainer.strategy.reduce(flag, reduce_op="max").item())
        return mine or None

    def _interrupted(self, signum: signal.Signals, path: Path | None, trainer: Trainer) -> None:
        where = f"in epoch {trainer.current_epoch}, after step {trainer.global_step}"
        if path is None:
            last = self.last_path if self.last_path.is_file() else None
            if self._signal is not None:
                how = f"stopped at once by a second {signum.name} {where}, mid-step, without"
            elif self._training:
                how = f"stopped at once by {signum.name} {where}, mid-step, without"
            else:
                how = f"stopped by {signum.name} before training started, without"
            message = f"{how} a checkpoint of that point; " + (
                f"the last resumable checkpoint is {last}." if last else "no checkpoint exists."
            )
        else:
            message = (
                f"interrupted by {signum.name} {where}; the resumable checkpoint of that point "
                f"is {path}. Resume with --ckpt_path last (vireid-zoo) or ckpt_path='{path}'."
            )
        self.interruption = TrainingInterrupted(signum, path, message, reported=True)
        self._report(message)

    def _report(self, message: str) -> None:
        if self._global_zero:
            print(f"vireid-zoo: {message}", file=sys.stderr, flush=True)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def find_last_checkpoint(folder: str | Path) -> Path:
    """The newest resumable checkpoint of a run folder.

    ``folder`` is either a checkpoints folder (``<folder>/last.ckpt``) or a logger's folder
    of versions: then the ``last.ckpt`` of the highest-numbered
    ``version_<N>/checkpoints`` that holds one (each fit, resumed or not, logs into a new
    version, so that is the latest fit's).

    Raises:
        FileNotFoundError: naming the folders searched.
    """
    folder = Path(folder)
    if (folder / LAST_NAME).is_file():
        return folder / LAST_NAME
    versions = sorted(
        (int(match.group(1)), path)
        for path in folder.glob("version_*")
        if (match := _VERSION.fullmatch(path.name)) and (path / "checkpoints" / LAST_NAME).is_file()
    )
    if versions:
        return versions[-1][1] / "checkpoints" / LAST_NAME
    raise FileNotFoundError(
        f"no resumable checkpoint in {folder}: it holds no {LAST_NAME} and no "
        f"version_<N>/checkpoints/{LAST_NAME}"
    )
