"""Publishing a trained checkpoint: its network, contract, measured metrics and card.

``vireid-zoo test`` writes ``test_results.json`` next to its logs, recording the
checkpoint's SHA-256; :func:`publish` only accepts results of the very checkpoint it
publishes (or evaluates it first from a config), so every published number is measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

from vireid_zoo import __version__
from vireid_zoo.evaluation import MultiTrialResult
from vireid_zoo.hub import read_config
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.network import INIT_ONLY_ARGUMENTS
from vireid_zoo.pretrained import CHECKPOINT_CFG_KEY, PretrainedConfig

RESULTS_NAME = "test_results.json"
RECIPE_KEYS_DROPPED = (
    "_class_path",
    "_instantiator",
    "num_classes",
    "init_from",
    "backbone_weights_file",
)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def load_trained_module(checkpoint: Path) -> tuple[VIReIDModule, dict[str, Any]]:
    """Rebuild a zoo LightningModule from its checkpoint; returns it and the checkpoint.

    The module class comes from the checkpoint's ``_class_path`` (recorded by the CLI) and
    must be a vireid-zoo class.
    """
    content = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hparams = dict(content.get("hyper_parameters", {}))
    class_path = hparams.pop("_class_path", "")
    hparams.pop("_instantiator", None)
    if not class_path.startswith("vireid_zoo."):
        raise ValueError(
            f"{checkpoint} does not record a vireid-zoo model class (found {class_path!r}); "
            "publish checkpoints written by 'vireid-zoo fit'"
        )
    module_path, class_name = class_path.rsplit(".", 1)
    module_class = getattr(importlib.import_module(module_path), class_name)
    if not (isinstance(module_class, type) and issubclass(module_class, VIReIDModule)):
        raise ValueError(f"{class_path} is not a VIReIDModule")
    module = module_class(**{**hparams, **INIT_ONLY_ARGUMENTS, "init_from": None})
    module.load_state_dict(content["state_dict"])
    return module.eval(), content


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"vireid-zoo {__version__}"


def pretrained_config_for(
    module: VIReIDModule,
    checkpoint_content: dict[str, Any],
    results: dict[str, Any],
    *,
    repo_id: str | None,
    license: str | None,
) -> PretrainedConfig:
    """The contract and provenance of a trained module, with its measured metrics."""
    tasks = results["tasks"]
    metrics = {
        f"{task}/{score}": value
        for task, record in tasks.items()
        for score, value in record["mean"].items()
    }
    protocol = "; ".join(
        f"{task} ({record['protocol']} rules, mean of {len(record['trials'])} trial(s)"
        f"{', ' + record['reranking'] if record['reranking'] else ''})"
        for task, record in tasks.items()
    )
    contract = input_contract(module, checkpoint_content)
    # Converted weights were trained by their source codebase: the module's defaults are
    # not their recipe (the card points to the source instead).
    recipe = (
        contract.recipe
        if contract.source
        else {k: v for k, v in dict(module.hparams).items() if k not in RECIPE_KEYS_DROPPED}
    )
    return dataclasses.replace(
        contract,
        protocol=protocol,
        metrics=metrics,
        recipe=recipe,
        commit=_git_commit(),
        license=license or contract.license,
        hub_id=repo_id,
    )


def input_contract(module: VIReIDModule, checkpoint_content: dict[str, Any]) -> PretrainedConfig:
    """The input and embedding contract of a trained module, from its checkpoint.

    Input size, normalisation, interpolation and dataset come from the datamodule state
    that the checkpoint records; the embedding from the network. A checkpoint written for
    converted weights (:func:`vireid_zoo.conversion.write_test_checkpoint`) records their
    contract and source instead, which are kept.
    """
    data = next(
        (
            v
            for k, v in checkpoint_content.items()
            if k.endswith("DataModule") and isinstance(v, dict)
        ),
        {},
    )
    stored = checkpoint_content.get(CHECKPOINT_CFG_KEY)
    defaults = (
        PretrainedConfig.from_dict(stored)
        if isinstance(stored, dict)
        else module.net.default_pretrained_cfg()
    )
    return dataclasses.replace(
        defaults,
        input_size=tuple(data.get("image_size", defaults.input_size)),
        mean=tuple(data.get("mean", defaults.mean)),
        std=tuple(data.get("std", defaults.std)),
        interpolation=data.get("interpolation", defaults.interpolation),
        dataset=data.get("dataset", defaults.dataset),
    )


def measured_results(checkpoint: Path, results: Path | None, config: Path | None) -> dict[str, Any]:
    """Test results of ``checkpoint``: read from ``results`` or measured with ``config``."""
    if results is None and config is None:
        raise ValueError(
            "publish refuses to publish without measured metrics: pass --results "
            f"{RESULTS_NAME} (written by 'vireid-zoo test --ckpt_path {checkpoint}') or "
            "--config CONFIG to evaluate the checkpoint now"
        )
    if results is None:
        from vireid_zoo.cli import run_lightning

        with tempfile.TemporaryDirectory() as scratch:
            run_lightning(
                [
                    "test",
                    "--config",
                    str(config),
                    "--ckpt_path",
                    str(checkpoint),
                    "--trainer.logger",
                    "false",
                    "--trainer.default_root_dir",
                    scratch,
                ]
            )
            record = _read_results(Path(scratch) / RESULTS_NAME, f"the test run of {config}")
    else:
        record = _read_results(results, str(results))
        if record.get("checkpoint_sha256") != file_sha256(checkpoint):
            raise ValueError(
                f"the results in {results} were measured on {record.get('checkpoint')}, not on "
                f"{checkpoint} (their SHA-256 differ); run 'vireid-zoo test --ckpt_path "
                f"{checkpoint}' and pass the {RESULTS_NAME} it writes"
            )
    return record


def _read_results(path: Path, origin: str) -> dict[str, Any]:
    """A ``test_results.json`` with at least one task; errors name ``origin``."""
    record = read_config(path)
    if not isinstance(record, dict) or not record.get("tasks"):
        raise ValueError(
            f"{origin} holds no test results ({path} has no 'tasks'): it is not a "
            f"{RESULTS_NAME} written by 'vireid-zoo test'"
        )
    return record


def publish(
    checkpoint: str | Path,
    repo_id: str,
    *,
    results: str | Path | None = None,
    config: str | Path | None = None,
    output: str | Path | None = None,
    private: bool = False,
    license: str | None = None,
) -> str:
    """Publish a trained checkpoint's network to the Hub (or to ``output``).

    Args:
        checkpoint: A Lightning checkpoint written by ``vireid-zoo fit``.
        repo_id: ``ORG/NAME`` on the Hub.
        results: ``test_results.json`` of this checkpoint (from ``vireid-zoo test``).
        config: A test config to evaluate the checkpoint now (when no ``results``).
        output: Write the folder here instead of pushing (to inspect it first).
        private: Create the repository as private.
        license: Licence of the weights (default: apache-2.0, or the licence a
            converted checkpoint records).

    Returns:
        The commit URL, or the output folder.
    """
    checkpoint = Path(checkpoint)
    record = measured_results(
        checkpoint, Path(results) if results else None, Path(config) if config else None
    )
    module, content = load_trained_module(checkpoint)
    cfg = pretrained_config_for(module, content, record, repo_id=repo_id, license=license)
    if output is not None:
        module.net.save_pretrained(output, pretrained_cfg=cfg)
        return str(output)
    return str(
        module.net.push_to_hub(
            repo_id,
            pretrained_cfg=cfg,
            private=private,
            commit_message=f"Publish {cfg.architecture} trained on {cfg.dataset}",
        )
    )
