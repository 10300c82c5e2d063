"""Tiny CLI configs for tests: ResNet-18 on small synthetic datasets, on the CPU."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "vireid_zoo" / "configs"
"""The packaged recipes, ``<method>/<dataset>.yaml``."""


def model_arguments(model_class: str, settings: dict[str, object]) -> dict[str, object]:
    """``model.init_args`` of a tiny ResNet-18: each setting under the network or the module."""
    module_path, name = model_class.rsplit(".", 1)
    module_type = getattr(importlib.import_module(module_path), name)
    network_parameters = inspect.signature(module_type.network_class.__init__).parameters
    network = {"arch": "resnet18", "backbone_pretrained": False}
    network |= {k: v for k, v in settings.items() if k in network_parameters}
    return {"network": network, **{k: v for k, v in settings.items() if k not in network}}


def write_config(
    tmp_path: Path,
    root: Path,
    model_class: str = "vireid_zoo.models.AGWModule",
    data: dict[str, object] | None = None,
    **model: object,
) -> Path:
    """A tiny fit/test config: ResNet-18, 32x16 images, 2 steps per epoch, CPU."""
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": 1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(tmp_path / "run"),
        },
        "model": {"class_path": model_class, "init_args": model_arguments(model_class, model)},
        "data": {
            "class_path": "vireid_zoo.data.SYSUMM01DataModule",
            "init_args": {
                "root": str(root),
                "image_size": [32, 16],
                "num_identities": 3,
                "num_instances": 2,
                "num_workers": 0,
                "trials": 2,
                "samples_per_epoch": 12,
                "check_counts": False,
                **(data or {}),
            },
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
