"""`vireid-zoo fit` on 2 CPU processes (gloo), then `test` on 1 and 2 processes.

Lightning's ``ddp`` launcher re-runs the command line for each rank, so the CLI runs in
a subprocess.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.configs import write_config

SYNC_WARNING = "It is recommended to use"
"""Lightning's advice for epoch-level values logged unsynchronised under DDP."""


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # Warnings are silenced but for the one the zoo's logging must not cause.
    env = {**os.environ, "PYTHONWARNINGS": f"ignore,default:{SYNC_WARNING}"}
    completed = subprocess.run(
        [sys.executable, "-m", "vireid_zoo.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


def logged_test_metrics(directory: Path) -> dict[str, str]:
    (metrics_file,) = directory.rglob("metrics.csv")
    rows = list(csv.DictReader(metrics_file.open()))
    return {k: v for row in rows for k, v in row.items() if k.startswith("test/") and v}


@pytest.mark.distributed
def test_ddp_fit_then_test_gives_the_single_process_metrics(
    sysu_root: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sysu_root)
    settings = yaml.safe_load(config.read_text())
    settings["trainer"] |= {"max_epochs": 2, "enable_checkpointing": True}
    settings["data"]["init_args"]["validation"] = True  # validation metrics are logged too
    config.write_text(yaml.safe_dump(settings))
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    fit = run_cli("fit", "--config", str(config), *ddp)
    (checkpoint,) = (tmp_path / "run").rglob("*.ckpt")
    assert "epoch=1" in checkpoint.name

    results = {}
    for devices in ("1", "2"):
        out = tmp_path / f"test{devices}"
        completed = run_cli(
            "test",
            "--config",
            str(config),
            "--ckpt_path",
            str(checkpoint),
            "--trainer.devices",
            devices,
            "--trainer.strategy",
            "ddp" if devices == "2" else "auto",
            "--trainer.logger",
            "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.save_dir",
            str(out),
        )
        results[devices] = logged_test_metrics(out)
        assert SYNC_WARNING not in fit.stderr + completed.stderr
    assert "test/sysu_mm01/all/mAP" in results["1"]
    assert len(results["1"]) == 2 * (6 + 6 + 2 * 6)  # 2 tasks x (mean, std, 2 trials) x 6
    assert results["1"] == results["2"]
