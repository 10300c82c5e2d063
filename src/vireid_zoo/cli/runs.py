"""Run folders of the Lightning commands: where ``--ckpt_path last`` looks, and no debris.

A fit writes its checkpoints where Lightning's ``ModelCheckpoint`` would: the
``dirpath`` of its checkpoint callback if set, else ``<save_dir>/<name>/version_<N>/
checkpoints`` of its logger (``<default_root_dir>/lightning_logs/version_<N>/checkpoints``
with the default logger), else ``<default_root_dir>/checkpoints`` without a logger. Every
command logs into a new ``version_<N>``, so ``--ckpt_path last`` resolves to the
``last.ckpt`` of the highest-numbered version that holds one (the latest fit's), found from
the command's own trainer settings before anything is created.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, Trainer

from vireid_zoo.models.checkpointing import find_last_checkpoint

VERSIONED_LOGGERS = ("TensorBoardLogger", "CSVLogger")


def _class_name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("class_path", "")).rsplit(".", 1)[-1]


def _init_args(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    return entry.get("init_args") or {}


def checkpoint_folder(trainer: Mapping[str, Any]) -> Path:
    """Where a command's checkpoints are: a checkpoints folder, or a folder of versions.

    The ``dirpath`` of the command's ``ResumableCheckpoint`` (or, without one, of a
    ``ModelCheckpoint`` with ``save_last``) if it sets one, else the logger's folder.

    Args:
        trainer: The command's ``trainer`` settings (``default_root_dir``, ``logger``,
            ``callbacks``), as parsed.

    Raises:
        ValueError: the logger is not one whose folders are known (the default,
            TensorBoard or CSV logger) and no checkpoint callback sets ``dirpath``.
    """
    root = Path(trainer.get("default_root_dir") or os.getcwd())
    callbacks = trainer.get("callbacks") or []
    writers = [c for c in callbacks if _class_name(c) == "ResumableCheckpoint"] or [
        c
        for c in callbacks
        if _class_name(c) == "ModelCheckpoint" and _init_args(c).get("save_last")
    ]
    for callback in writers[:1]:
        if _init_args(callback).get("dirpath"):
            return Path(_init_args(callback)["dirpath"])
    logger = trainer.get("logger")
    if isinstance(logger, list):
        logger = logger[0] if logger else False
    if logger is False:
        return root / "checkpoints"
    if logger is None or logger is True:
        return root / "lightning_logs"
    if _class_name(logger) not in VERSIONED_LOGGERS:
        raise ValueError(
            f"--ckpt_path last cannot tell where the logger {logger.get('class_path')} keeps "
            "its runs; pass the checkpoint's path, or set the checkpoint callback's dirpath"
        )
    arguments = logger.get("init_args") or {}
    folder = Path(arguments.get("save_dir") or root)
    if arguments.get("name"):
        folder = folder / str(arguments["name"])
    version = arguments.get("version")
    if version is None:
        return folder
    return folder / (version if isinstance(version, str) else f"version_{version}") / "checkpoints"


def resolve_last(trainer: Mapping[str, Any]) -> Path:
    """``--ckpt_path last``: the newest ``last.ckpt`` of the command's run folder.

    Raises:
        FileNotFoundError: there is none, naming the folder searched (never a silent
            fresh start).
    """
    folder = checkpoint_folder(trainer)
    try:
        return find_last_checkpoint(folder)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"--ckpt_path last: {error} (the run folder of trainer.default_root_dir="
            f"{trainer.get('default_root_dir')!r} and this logger). Give the run's "
            "default_root_dir / logger, or the checkpoint's path; to train from scratch, "
            "leave --ckpt_path out"
        ) from None


class RunStarted(Callback):
    """Records whether a command ran a batch (a run that did not start leaves no folder)."""

    def __init__(self) -> None:
        self.started = False

    def _start(self, *_: Any, **__: Any) -> None:
        self.started = True

    on_train_batch_start = on_validation_batch_start = _start
    on_test_batch_start = on_predict_batch_start = _start


@contextmanager
def removed_unless_started(trainer: Trainer, started: RunStarted) -> Iterator[None]:
    """Remove what a failed command created in its log folder if it never ran a batch.

    The logger creates the run's folder (``version_<N>``) and LightningCLI writes its
    ``config.yaml`` when the trainer sets up, before the checkpoint is restored and the
    data loaded: a command failing there leaves no folder it created (or no config file,
    in an existing folder).
    """
    folder = Path(trainer.log_dir or trainer.default_root_dir)  # every rank asks
    existed, config_existed = folder.exists(), (folder / "config.yaml").exists()
    try:
        yield
    except BaseException:
        if not started.started and trainer.is_global_zero:
            if not existed:
                shutil.rmtree(folder, ignore_errors=True)
            elif not config_existed:
                (folder / "config.yaml").unlink(missing_ok=True)
        raise
