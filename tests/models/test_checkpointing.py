"""ResumableCheckpoint: last.ckpt at every epoch end and where a signal stops the fit, written
atomically; exact resumption within an epoch; ``--ckpt_path last``; exit statuses 130 / 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback, Trainer, seed_everything

from helpers.configs import write_config
from helpers.torch_state import deterministic_mode_restored
from vireid_zoo.cli import main
from vireid_zoo.cli.runs import checkpoint_folder
from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.models import (
    AGW,
    AGWModule,
    ResumableCheckpoint,
    TrainingInterrupted,
    find_last_checkpoint,
)

TESTS = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 3  # samples_per_epoch 18 / (P=3 x K=2)


def datamodule(root: Path, num_workers: int = 0) -> SYSUMM01DataModule:
    return SYSUMM01DataModule(
        root,
        image_size=(32, 16),
        num_identities=3,
        num_instances=2,
        num_workers=num_workers,
        samples_per_epoch=6 * STEPS_PER_EPOCH,
        trials=1,
        check_counts=False,
    )


def fit(
    root: Path,
    directory: Path,
    *,
    max_epochs: int = 3,
    ckpt_path: Path | None = None,
    num_workers: int = 0,
    callbacks: tuple[Callback, ...] = (),
    **trainer: object,
) -> AGWModule:
    seed_everything(0, verbose=False)
    module = AGWModule(AGW(13, arch="resnet18"), warmup_epochs=1, milestones=(1,))
    given = any(isinstance(callback, ResumableCheckpoint) for callback in callbacks)
    checkpointing = [] if given else [ResumableCheckpoint()]
    with deterministic_mode_restored():  # Trainer(deterministic=True) sets it
        lightning_trainer = Trainer(
            accelerator="cpu",
            max_epochs=max_epochs,
            deterministic=True,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=directory,
            callbacks=[*callbacks, *checkpointing],
            **trainer,
        )
        lightning_trainer.fit(module, datamodule=datamodule(root, num_workers), ckpt_path=ckpt_path)
    return module


def read(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)


class RecordLast(Callback):
    """Records the step saved in last.ckpt whenever a training batch starts."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen = path, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        saved = read(self.path)["global_step"] if self.path.is_file() else None
        self.seen.append((trainer.global_step, saved))


@pytest.mark.parametrize("every", [None, 2])
def test_last_ckpt_is_written_at_every_epoch_end_and_every_n_steps(
    sysu_root: Path, tmp_path: Path, every: int | None
) -> None:
    recorder = RecordLast(tmp_path / "checkpoints" / "last.ckpt")
    seed_everything(0, verbose=False)
    Trainer(
        accelerator="cpu",
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[recorder, ResumableCheckpoint(every_n_train_steps=every)],
    ).fit(AGWModule(AGW(13, arch="resnet18")), datamodule=datamodule(sysu_root))
    epoch_ends = {step: step - step % STEPS_PER_EPOCH for step in range(9)}
    if every is None:
        expected = [(step, epoch_ends[step] or None) for step in range(9)]
    else:
        expected = [(step, max(epoch_ends[step], step - step % every) or None) for step in range(9)]
    assert recorder.seen == expected
    assert read(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 9
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.ckpt"]


def test_a_failed_write_leaves_the_previous_checkpoint_whole(
    sysu_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = tmp_path / "checkpoints" / "last.ckpt"
    real_save = torch.save

    def save_then_crash(content: dict, path: object, *args: object, **kwargs: object) -> None:
        if content.get("epoch") == 1:  # the second epoch's checkpoint: half of it, then a crash
            real_save({"partial": torch.zeros(1)}, path)
            raise OSError("disk full")
        real_save(content, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        fit(sysu_root, tmp_path)
    assert read(last)["global_step"] == STEPS_PER_EPOCH  # the first epoch's, intact
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # no partial file


class Fail(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 4:
            raise RuntimeError("out of memory")


@pytest.fixture(scope="module")
def expected_weights(sysu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The final weights of the 3-epoch fit, run without interruption."""
    return fit(sysu_root, tmp_path_factory.mktemp("uninterrupted")).state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("name,num_workers", [("last.ckpt", 0), ("on_exception.ckpt", 2)])
def test_a_fit_resumed_within_an_epoch_ends_with_the_uninterrupted_weights(
    sysu_root: Path, tmp_path: Path, expected_weights: dict, name: str, num_workers: int
) -> None:
    # A fit that fails at step 5 of 9 (in its second epoch), having written last.ckpt at
    # step 4 (every 4 steps) and on_exception.ckpt where it failed (after step 4 too).
    with pytest.raises(RuntimeError, match="out of memory"):
        fit(
            sysu_root,
            tmp_path / "stopped",
            num_workers=num_workers,
            callbacks=(Fail(), ResumableCheckpoint(every_n_train_steps=4)),
        )
    checkpoint = tmp_path / "stopped" / "checkpoints" / name
    assert read(checkpoint)["global_step"] == 4 and read(checkpoint)["epoch"] == 1
    resumed = fit(sysu_root, tmp_path / "resumed", ckpt_path=checkpoint, num_workers=num_workers)
    assert_same_weights(resumed.state_dict(), expected_weights)
    stopped = read(checkpoint)["state_dict"]
    changed = [k for k, v in stopped.items() if not torch.equal(v, expected_weights[k])]
    assert len(changed) > 10  # the resumed steps did change the weights


def test_a_mid_epoch_checkpoint_without_the_loaders_position_is_refused(
    sysu_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="out of memory"):
        fit(sysu_root, tmp_path / "stopped", callbacks=(Fail(),))
    checkpoint = read(tmp_path / "stopped" / "checkpoints" / "on_exception.ckpt")
    assert checkpoint["loops"]["fit_loop"]["state_dict"].pop("combined_loader") == [
        {"epoch": 1, "steps": 1}
    ]
    torch.save(checkpoint, tmp_path / "older.ckpt")  # as a checkpoint without it would be
    with pytest.raises(RuntimeError, match="resumes epoch 1 after step 1 of it, but the"):
        fit(sysu_root, tmp_path / "resumed", ckpt_path=tmp_path / "older.ckpt")


def test_an_exception_writes_on_exception_ckpt_and_keeps_last(
    sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RuntimeError, match="out of memory"):
        fit(sysu_root, tmp_path, callbacks=(Fail(),))
    folder = tmp_path / "checkpoints"
    assert read(folder / "last.ckpt")["global_step"] == STEPS_PER_EPOCH
    assert read(folder / "on_exception.ckpt")["global_step"] == 4
    err = capsys.readouterr().err
    assert f"its state is saved in {folder / 'on_exception.ckpt'}" in err
    assert f"'last' still names {folder / 'last.ckpt'}" in err
    assert find_last_checkpoint(folder) == folder / "last.ckpt"


class SignalInValidation(Callback):
    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *_) -> None:
        if trainer.current_epoch == 1 and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.slow
def test_a_signal_during_validation_stops_the_fit_at_the_next_training_step(
    sysu_root: Path, tmp_path: Path
) -> None:
    def validated_fit(directory: Path, *callbacks: Callback, ckpt_path: Path | None = None):
        seed_everything(0, verbose=False)
        module = AGWModule(AGW(10, arch="resnet18"), warmup_epochs=1, milestones=(1,))
        data = SYSUMM01DataModule(
            sysu_root,
            image_size=(32, 16),
            num_identities=3,
            num_instances=2,
            num_workers=0,
            samples_per_epoch=6 * STEPS_PER_EPOCH,
            trials=1,
            check_counts=False,
            validation=True,  # a val split, validated every epoch
            test_batch_size=8,
        )
        with deterministic_mode_restored():  # Trainer(deterministic=True) sets it
            trainer = Trainer(
                accelerator="cpu",
                max_epochs=3,
                deterministic=True,
                logger=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                default_root_dir=directory,
                callbacks=[*callbacks],
            )
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
        return module

    expected = validated_fit(tmp_path / "a", ResumableCheckpoint()).state_dict()
    with pytest.raises(TrainingInterrupted) as stopped:
        validated_fit(tmp_path / "b", SignalInValidation(), ResumableCheckpoint())
    assert stopped.value.exit_code == 143
    # The validation of epoch 1 finished (and the epoch's last.ckpt), then one more step.
    last = tmp_path / "b" / "checkpoints" / "last.ckpt"
    assert stopped.value.checkpoint == last
    assert read(last)["global_step"] == 2 * STEPS_PER_EPOCH + 1
    resumed = validated_fit(tmp_path / "c", ResumableCheckpoint(), ckpt_path=last)
    assert_same_weights(resumed.state_dict(), expected)


def test_a_model_checkpoint_writing_last_too_is_refused(sysu_root: Path, tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    with pytest.raises(ValueError, match="set save_last: false on it"):
        fit(sysu_root, tmp_path, callbacks=(ModelCheckpoint(save_last=True), ResumableCheckpoint()))


class SignalAtStart(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.slow
def test_with_gradient_accumulation_the_fit_stops_after_an_optimiser_step(
    sysu_root: Path, tmp_path: Path
) -> None:
    accumulate = {"accumulate_grad_batches": 2, "max_epochs": 2}
    expected = fit(sysu_root, tmp_path / "a", **accumulate).state_dict()
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(sysu_root, tmp_path / "b", callbacks=(SignalAtStart(),), **accumulate)
    assert stopped.value.exit_code == 143
    # Epoch 0: micro-batches 0+1, then 2 (the last): 2 steps. The signal came before
    # micro-batch 0 of epoch 1; the fit stopped after micro-batch 1, at step 3.
    assert read(stopped.value.checkpoint)["global_step"] == 3
    resumed = fit(sysu_root, tmp_path / "c", ckpt_path=stopped.value.checkpoint, **accumulate)
    assert_same_weights(resumed.state_dict(), expected)


class SignalFirstBatch(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_stopped_fit_gives_the_signal_handlers_back(sysu_root: Path, tmp_path: Path) -> None:
    # Were a handler of the callback left installed, a later plain Lightning fit would chain
    # to it, and SIGTERM's default action would end the process.
    before = [signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)]
    for run in ("first", "second"):
        with pytest.raises(TrainingInterrupted) as stopped:
            fit(sysu_root, tmp_path / run, callbacks=(SignalFirstBatch(),))
        assert read(stopped.value.checkpoint)["global_step"] == 1
        assert [signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)] == before
    with pytest.raises(ValueError, match="several ResumableCheckpoint"):
        fit(sysu_root, tmp_path / "two", callbacks=(ResumableCheckpoint(), ResumableCheckpoint()))


def test_find_last_checkpoint_takes_the_highest_version_holding_one(tmp_path: Path) -> None:
    for version in ("version_2", "version_10", "version_11", "version_x"):
        (tmp_path / version / "checkpoints").mkdir(parents=True)
    for version in ("version_2", "version_10", "version_x"):
        (tmp_path / version / "checkpoints" / "last.ckpt").touch()
    # version_11 (e.g. a test run's folder) holds none; version_x is no version.
    assert find_last_checkpoint(tmp_path) == tmp_path / "version_10" / "checkpoints" / "last.ckpt"
    (tmp_path / "last.ckpt").touch()  # a checkpoints folder itself
    assert find_last_checkpoint(tmp_path) == tmp_path / "last.ckpt"
    with pytest.raises(FileNotFoundError, match=f"no resumable checkpoint in {tmp_path / 'none'}"):
        find_last_checkpoint(tmp_path / "none")


TOP_K = {
    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
    "init_args": {"dirpath": "top", "save_last": False},
}
LAST = {
    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
    "init_args": {"dirpath": "l", "save_last": True},
}


@pytest.mark.parametrize(
    "trainer,expected",
    [
        ({"default_root_dir": "r", "logger": False, "callbacks": [TOP_K]}, "r/checkpoints"),
        ({"logger": False, "callbacks": [TOP_K, LAST]}, "l"),
        ({"default_root_dir": "r"}, "r/lightning_logs"),
        ({"default_root_dir": "r", "logger": True}, "r/lightning_logs"),
        ({"default_root_dir": "r", "logger": False}, "r/checkpoints"),
        ({"default_root_dir": "r", "logger": []}, "r/checkpoints"),
        (
            {
                "logger": {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": "s", "name": "n", "version": None},
                }
            },
            "s/n",
        ),
        (
            {
                "logger": [
                    {
                        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                        "init_args": {"save_dir": "s", "name": "", "version": 3},
                    }
                ]
            },
            "s/version_3/checkpoints",
        ),
        (
            {
                "logger": False,
                "callbacks": [
                    {
                        "class_path": "vireid_zoo.models.ResumableCheckpoint",
                        "init_args": {"dirpath": "d"},
                    }
                ],
            },
            "d",
        ),
    ],
)
def test_the_run_folder_follows_the_checkpoint_callback_then_the_logger(
    trainer: dict, expected: str
) -> None:
    assert checkpoint_folder(trainer) == Path(expected)


def test_an_unknown_logger_is_named() -> None:
    trainer = {"logger": {"class_path": "lightning.pytorch.loggers.WandbLogger", "init_args": {}}}
    with pytest.raises(ValueError, match="logger lightning.pytorch.loggers.WandbLogger"):
        checkpoint_folder(trainer)


# --- vireid-zoo fit, interrupted in a subprocess --------------------------------------------


def cli_config(tmp_path: Path, root: Path, name: str, *extra_callbacks: dict) -> Path:
    """A 4-epoch fit of 3 steps an epoch, default logger (version folders), last.ckpt."""
    config = write_config(tmp_path, root, data={"samples_per_epoch": 6 * STEPS_PER_EPOCH})
    settings = yaml.safe_load(config.read_text())
    del settings["trainer"]["logger"]
    settings["trainer"] |= {
        "max_epochs": 4,
        "deterministic": True,
        "callbacks": [{"class_path": "vireid_zoo.models.ResumableCheckpoint"}, *extra_callbacks],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(settings))
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "vireid_zoo.cli", *args],
        env={**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def uninterrupted(sysu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The final weights of the 4-epoch fit, run without interruption (in a subprocess too:
    the thread count, hence the floating-point sums, is the same)."""
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    completed = run_cli("fit", "--config", str(cli_config(tmp_path, sysu_root, "fit.yaml")))
    assert completed.returncode == 0, completed.stderr[-3000:]
    last = tmp_path / "run" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    return read(last)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("name,status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_fit_resumes_with_last_to_the_uninterrupted_weights(
    sysu_root: Path, tmp_path: Path, uninterrupted: dict, name: str, status: int
) -> None:
    signal_at = {
        "class_path": "helpers.interrupt.SendSignal",
        "init_args": {"name": name, "epoch": 1, "batch": 1},
    }
    interrupted = cli_config(tmp_path, sysu_root, "interrupted.yaml", signal_at)
    stopped = run_cli("fit", "--config", str(interrupted))
    assert stopped.returncode == status, stopped.stderr[-3000:]
    runs = tmp_path / "run" / "lightning_logs"
    last = runs / "version_0" / "checkpoints" / "last.ckpt"
    assert f"interrupted by {name} in epoch 1, after step 5" in stopped.stderr
    assert f"the resumable checkpoint of that point is {last}" in stopped.stderr
    assert read(last)["global_step"] == STEPS_PER_EPOCH + 2  # the step the signal came in

    config = cli_config(tmp_path, sysu_root, "fit.yaml")
    resumed = run_cli("fit", "--config", str(config), "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"--ckpt_path last is {last}" in resumed.stderr
    final = read(runs / "version_1" / "checkpoints" / "last.ckpt")
    assert final["global_step"] == 4 * STEPS_PER_EPOCH
    assert_same_weights(final["state_dict"], uninterrupted)


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_without_a_checkpoint(
    sysu_root: Path, tmp_path: Path
) -> None:
    twice = {
        "class_path": "helpers.interrupt.SendSignal",
        "init_args": {"name": "SIGINT", "epoch": 1, "batch": 1, "times": 2},
    }
    stopped = run_cli("fit", "--config", str(cli_config(tmp_path, sysu_root, "fit.yaml", twice)))
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    last = tmp_path / "run" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert "stopped at once by a second SIGINT in epoch 1" in stopped.stderr
    assert f"the last resumable checkpoint is {last}" in stopped.stderr
    assert read(last)["global_step"] == STEPS_PER_EPOCH  # the first epoch's end, untouched


def test_ckpt_path_last_without_a_checkpoint_names_where_it_looked(
    sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = cli_config(tmp_path, sysu_root, "fit.yaml")
    assert main(["fit", "--config", str(config), "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    runs = tmp_path / "run" / "lightning_logs"
    assert len(err) == 1 and f"no resumable checkpoint in {runs}" in err[0]
    assert "to train from scratch, leave --ckpt_path out" in err[0]
    assert not (tmp_path / "run").exists()  # nothing was started, nothing written


@pytest.mark.slow
@pytest.mark.distributed
def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(
    sysu_root: Path, tmp_path: Path
) -> None:
    to_rank_1 = {
        "class_path": "helpers.interrupt.SendSignal",
        "init_args": {"name": "SIGINT", "epoch": 1, "batch": 0, "rank": 1},
    }
    config = cli_config(tmp_path, sysu_root, "fit.yaml", to_rank_1)
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.logger", "false"]
    # 2 ranks x P=2 identities x K=2: 3 steps of 8 pairs cover the 18 of an epoch.
    stopped = run_cli("fit", "--config", str(config), *ddp, "--data.init_args.num_identities", "2")
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert stopped.stderr.count("interrupted by SIGINT in epoch 1, after step 4") == 1
    assert read(last)["global_step"] == STEPS_PER_EPOCH + 1


def test_sigterm_without_resumable_checkpoint_still_exits_143(
    sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Lightning alone stops on SIGTERM with SystemExit(None), which would be status 0.
    config = write_config(tmp_path, sysu_root)
    settings = yaml.safe_load(config.read_text())
    settings["trainer"]["callbacks"] = [
        {
            "class_path": "helpers.interrupt.SendSignal",
            "init_args": {"name": "SIGTERM", "epoch": 0, "batch": 0},
        }
    ]
    config.write_text(yaml.safe_dump(settings))
    assert main(["fit", "--config", str(config)]) == 143
    assert "vireid-zoo fit: stopped by SIGTERM" in capsys.readouterr().err
