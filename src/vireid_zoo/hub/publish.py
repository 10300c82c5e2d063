"""Publishing a trained checkpoint: its network, contract, measured metrics and card.

[`publish`][] only accepts the ``test_results.json`` of the very checkpoint it publishes
(``vireid-zoo test`` records the checkpoint's SHA-256), measured at the input contract the
checkpoint records (size, normalisation, interpolation), so every published number is
measured, and measured on the input the published contract states.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

from vireid_zoo.core.contract import PretrainedConfig
from vireid_zoo.core.files import file_sha256
from vireid_zoo.core.version import __version__
from vireid_zoo.evaluation.results import RESULTS_NAME, read_results
from vireid_zoo.hub.checkpoints import input_contract, load_trained_module
from vireid_zoo.models.base import VIReIDModule

RECIPE_KEYS_DROPPED = ("_class_path", "_instantiator", "network", "init_from")
"""Module arguments that are not the training recipe (the network has its own config)."""


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


def contract_values(contract: PretrainedConfig) -> dict[str, Any]:
    """The input half of a contract, as ``test_results.json`` records it."""
    return {
        "input_size": list(contract.input_size),
        "mean": list(contract.mean),
        "std": list(contract.std),
        "interpolation": contract.interpolation,
    }


def measured_results(
    checkpoint: Path, results: Path | None, contract: PretrainedConfig
) -> dict[str, Any]:
    """The ``test_results.json`` record of ``checkpoint``, measured at its input contract.

    Args:
        checkpoint: The checkpoint to publish.
        results: Its ``test_results.json``.
        contract: The checkpoint's contract ([`input_contract`][]).

    Raises:
        ValueError: without results, for results of another checkpoint, or for results
            measured at another input than the checkpoint's contract (or not recording it).
    """
    if results is None:
        raise ValueError(
            "publish refuses to publish without measured metrics: pass the "
            f"{RESULTS_NAME} written by 'vireid-zoo test --ckpt_path {checkpoint}' (the "
            "command 'vireid-zoo publish --config CONFIG' runs that test first)"
        )
    record = read_results(results, str(results))
    if record.get("checkpoint_sha256") != file_sha256(checkpoint):
        raise ValueError(
            f"the results in {results} were measured on {record.get('checkpoint')}, not on "
            f"{checkpoint} (their SHA-256 differ); run 'vireid-zoo test --ckpt_path "
            f"{checkpoint}' and pass the {RESULTS_NAME} it writes"
        )
    measured_at, expected = record.get("input_contract"), contract_values(contract)
    if measured_at is None:
        raise ValueError(
            f"{results} does not record the input it was measured at (an older 'vireid-zoo "
            f"test' wrote it); run 'vireid-zoo test --ckpt_path {checkpoint}' again and pass "
            f"the {RESULTS_NAME} it writes"
        )
    if measured_at != expected:
        raise ValueError(
            f"the results in {results} were measured at input {measured_at}, but {checkpoint} "
            f"states the input contract {expected}: published metrics must be measured at the "
            f"published input. Run 'vireid-zoo test --ckpt_path {checkpoint}' without "
            "overriding the input (it then uses the checkpoint's) and pass its results"
        )
    return record


def publish(
    checkpoint: str | Path,
    repo_id: str,
    *,
    results: str | Path | None = None,
    output: str | Path | None = None,
    private: bool = False,
    license: str | None = None,
) -> str:
    """Publish a trained checkpoint's network to the Hub (or to ``output``).

    Args:
        checkpoint: A Lightning checkpoint written by ``vireid-zoo fit``.
        repo_id: ``ORG/NAME`` on the Hub.
        results: ``test_results.json`` of this checkpoint (from ``vireid-zoo test``).
        output: Write the folder here instead of pushing (to inspect it first).
        private: Create the repository as private.
        license: Licence of the weights (default: apache-2.0, or the licence a
            converted checkpoint records).

    Returns:
        The commit URL, or the output folder.
    """
    checkpoint = Path(checkpoint)
    module, content = load_trained_module(checkpoint)
    contract = input_contract(module, content)
    record = measured_results(checkpoint, Path(results) if results else None, contract)
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
