"""Lightning checkpoints written by the zoo: the trained module, and its input contract."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import torch

from vireid_zoo.core.contract import PretrainedConfig
from vireid_zoo.models.base import VIReIDModule
from vireid_zoo.models.network import INIT_ONLY_ARGUMENTS


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


def input_contract(module: VIReIDModule, checkpoint_content: dict[str, Any]) -> PretrainedConfig:
    """The input and embedding contract of a trained module, from its checkpoint.

    Input size, normalisation, interpolation and dataset come from the datamodule state
    that the checkpoint records; the embedding from the network.
    """
    data = next(
        (
            v
            for k, v in checkpoint_content.items()
            if k.endswith("DataModule") and isinstance(v, dict)
        ),
        {},
    )
    defaults = module.net.default_pretrained_cfg()
    return dataclasses.replace(
        defaults,
        input_size=tuple(data.get("image_size", defaults.input_size)),
        mean=tuple(data.get("mean", defaults.mean)),
        std=tuple(data.get("std", defaults.std)),
        interpolation=data.get("interpolation", defaults.interpolation),
        dataset=data.get("dataset"),
    )
