"""Lightning checkpoints written by the zoo: the trained module, and its input contract."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vireid_zoo.core.checkpoint_file import read_checkpoint
from vireid_zoo.core.contract import CHECKPOINT_CFG_KEY, PretrainedConfig
from vireid_zoo.core.weights import WeightsMismatchError, align_compiled_names
from vireid_zoo.models.base import (
    CHECKPOINT_KEY,
    VIReIDModule,
    describe_checkpoint,
    find_module_class,
    module_class_named,
)
from vireid_zoo.models.network import INIT_ONLY_ARGUMENTS, find_network_class
from vireid_zoo.models.spec import class_path, loading_trained_weights

CHECKPOINT_DECIDES = {"num_classes", "backbone_weights", *INIT_ONLY_ARGUMENTS}
"""Network arguments a command may give differently from the checkpoint it tests."""
CONTRACT_ARGUMENTS = ("image_size", "mean", "std", "interpolation")
"""Datamodule arguments that make a checkpoint's input contract (the network's input)."""


def reconcile_network(
    requested: Mapping[str, Any], content: Mapping[str, Any], source: str
) -> tuple[dict[str, Any] | None, list[str]]:
    """The network a command tests a checkpoint with: the checkpoint's, if it is what was asked.

    The module class, the network class and the trunk must be the ones the command asks
    for. Every other network argument the command sets away from the network's default
    must equal the checkpoint's, except the evaluation choices (``test_*``), where the
    command's value is used. Arguments the command leaves at their default take the
    checkpoint's value, and each such case is reported. ``num_classes`` (a classifier of
    another size is re-initialised, with a warning) and the initial-weights arguments are
    not compared; the network is built without its ImageNet initialisation, since the
    checkpoint's weights replace it (nothing is downloaded).

    Args:
        requested: The command's ``model`` (``class_path`` and ``init_args`` with the
            ``network`` specification).
        content: The checkpoint.
        source: The checkpoint's path, for messages.

    Returns:
        The network arguments to build (None when the checkpoint records no network: its
        weights are then compared when loading), and one note per argument taken from the
        checkpoint.

    Raises:
        WeightsMismatchError: naming what the checkpoint holds and what was asked.
    """
    trained = describe_checkpoint(content)
    network = dict(requested.get("init_args", {}).get("network") or {})
    if trained["identity"] is None or "class_path" not in network:
        return None, []
    module_type = find_module_class(requested.get("class_path"))
    network_type = find_network_class(network["class_path"])
    asked = _json_values(network.get("init_args", {}))
    identity = (
        class_path(module_type) if module_type else str(requested.get("class_path")),
        class_path(network_type) if network_type else network["class_path"],
        asked.get("arch", "?"),
    )
    fix = "Use the config the checkpoint was trained with, or a checkpoint of this model."
    recorded_module = trained["identity"][0]
    module_differs = recorded_module is not None and identity[0] != recorded_module
    if module_differs or identity[1:] != trained["identity"][1:] or network_type is None:
        module_name, network_name = (name.rsplit(".", 1)[-1] for name in identity[:2])
        raise WeightsMismatchError(
            f"{source} holds {trained['described']}, but the command asks for "
            f"{module_name}({network_name}, arch={identity[2]!r}). {fix}"
        )
    saved = _json_values(content["hyper_parameters"]["network"].get("init_args", {}))
    defaults = _json_values(
        {
            name: parameter.default
            for name, parameter in inspect.signature(network_type.__init__).parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }
    )
    effective, notes, differing = dict(saved), [], []
    for key in sorted(saved.keys() | asked.keys()):
        if key in CHECKPOINT_DECIDES or saved.get(key) == asked.get(key):
            continue
        if key.startswith("test_"):
            effective[key] = asked.get(key)
        elif key in asked and asked[key] != defaults.get(key, asked[key]):
            differing.append(f"{key}={saved.get(key)!r} in the checkpoint, {asked[key]!r} asked")
        else:
            notes.append(f"{key}={saved.get(key)!r} (the checkpoint's; the command left it unset)")
    if differing:
        raise WeightsMismatchError(
            f"{source} was trained with other network arguments than the command gives: "
            f"{'; '.join(differing)}. {fix}"
        )
    effective |= {k: asked[k] for k in ("num_classes", "backbone_weights") if k in asked}
    # The checkpoint's weights replace the initial ones: nothing is downloaded.
    effective |= {k: v for k, v in INIT_ONLY_ARGUMENTS.items() if k in saved}
    return effective, notes


def _json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments as JSON would hold them (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(dict(values), default=str))


def load_trained_module(checkpoint: Path) -> tuple[VIReIDModule, dict[str, Any]]:
    """Rebuild a zoo LightningModule from its checkpoint; returns it and the checkpoint.

    The module class is the one the checkpoint records (every zoo module records it, from
    the CLI or from Python); it must be a vireid-zoo class. The network is rebuilt from the
    checkpoint's specification without its ImageNet initialisation (the checkpoint's
    weights replace it), so nothing is downloaded. Weights saved through a hand-made
    ``torch.compile(module.net)`` (``net._orig_mod.*``) load too.
    """
    content = read_checkpoint(checkpoint)
    hparams = dict(content.get("hyper_parameters", {}))
    hparams.pop("_instantiator", None)
    recorded = hparams.pop("_class_path", None)
    name = content.get(CHECKPOINT_KEY, {}).get("module_class") or recorded
    module_class = module_class_named(name, str(checkpoint))
    with loading_trained_weights():
        module = module_class(**{**hparams, "init_from": None})
    state = align_compiled_names(module.state_dict(), content["state_dict"], str(checkpoint))
    module.load_state_dict(state)
    return module.eval(), content


def _datamodule_state(content: Mapping[str, Any]) -> dict[str, Any]:
    """The state a zoo datamodule recorded in a checkpoint (Lightning keys it by class)."""
    return next(
        (v for k, v in content.items() if k.endswith("DataModule") and isinstance(v, dict)),
        {},
    )


def recorded_contract(content: Mapping[str, Any]) -> dict[str, Any] | None:
    """The input contract a checkpoint records, by datamodule argument name.

    ``image_size`` (``[height, width]``), ``mean``, ``std`` and ``interpolation``, from the
    state of the datamodule the checkpoint was trained with, or else from the contract of
    converted weights ([`CHECKPOINT_CFG_KEY`][]); None when
    the checkpoint records neither (e.g. a fit given bare dataloaders).
    """
    data = _datamodule_state(content)
    if "image_size" in data:
        return _json_values({key: data[key] for key in CONTRACT_ARGUMENTS if key in data})
    stored = content.get(CHECKPOINT_CFG_KEY)
    if isinstance(stored, dict):
        cfg = PretrainedConfig.from_dict(stored)
        return _json_values(
            {
                "image_size": cfg.input_size,
                "mean": cfg.mean,
                "std": cfg.std,
                "interpolation": cfg.interpolation,
            }
        )
    return None


def reconcile_data(
    requested: Mapping[str, Any],
    defaults: Mapping[str, Any],
    content: Mapping[str, Any],
    source: str,
) -> tuple[dict[str, Any], list[str]]:
    """The input a command tests a checkpoint with: the checkpoint's input contract.

    For each of [`CONTRACT_ARGUMENTS`][]: a value the command leaves at the
    datamodule's default takes the checkpoint's (reported in a note); any other value
    must equal the checkpoint's. A checkpoint that records no contract leaves the
    command's values.

    Args:
        requested: The command's datamodule arguments (``data.init_args``).
        defaults: The datamodule class's defaults of those arguments.
        content: The checkpoint.
        source: The checkpoint's path, for messages.

    Returns:
        The arguments to set, and one note per value taken from the checkpoint.

    Raises:
        ValueError: naming each value the command sets away from the checkpoint's.
    """
    trained = recorded_contract(content)
    if trained is None:
        return {}, []
    asked = _json_values({key: requested.get(key) for key in CONTRACT_ARGUMENTS})
    default = _json_values({key: defaults.get(key) for key in CONTRACT_ARGUMENTS})
    effective, notes, differing = {}, [], []
    for key in CONTRACT_ARGUMENTS:
        if key not in trained or asked[key] == trained[key]:
            continue
        if asked[key] == default[key]:
            effective[key] = trained[key]
            notes.append(f"{key}={trained[key]!r} (the checkpoint's; the command left the default)")
        else:
            differing.append(
                f"{key}={trained[key]!r} in the checkpoint, {asked[key]!r} asked "
                f"(data.init_args.{key})"
            )
    if differing:
        raise ValueError(
            f"{source} was trained with another input than the command tests with: "
            f"{'; '.join(differing)}. Scores are only comparable, and publishable, at the "
            "input a model was trained with: drop these settings (the checkpoint's are then "
            "used) or set them to the checkpoint's values."
        )
    return effective, notes


def input_contract(module: VIReIDModule, checkpoint_content: dict[str, Any]) -> PretrainedConfig:
    """The input and embedding contract of a trained module, from its checkpoint.

    Input size, normalisation, interpolation and dataset come from the datamodule state
    that the checkpoint records; the embedding from the network. A checkpoint written for
    converted weights ([`vireid_zoo.hub.conversion.write_test_checkpoint`][]) records
    their contract and source instead, which are kept.
    """
    data = _datamodule_state(checkpoint_content)
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
