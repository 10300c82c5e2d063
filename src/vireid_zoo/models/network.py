"""The interface every network of the zoo implements, with Hub saving and loading."""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import save_model
from torch import nn

from vireid_zoo.blocks import TwoStreamResNet
from vireid_zoo.core.card import model_card
from vireid_zoo.core.classes import import_zoo_class
from vireid_zoo.core.contract import (
    HF_HUB_PREFIX,
    LOCAL_DIR_PREFIX,
    PretrainedConfig,
    parse_hub_source,
)
from vireid_zoo.core.records import Modality
from vireid_zoo.core.sources import CONFIG_NAME, WEIGHTS_NAME, read_config, resolve_files
from vireid_zoo.core.weights import WeightsMismatchError, load_weights_strict, read_weights

N = TypeVar("N", bound="VIReIDNetwork")

NETWORK_CLASSES: dict[str, type[VIReIDNetwork]] = {}
"""Concrete network classes by ``module.QualName``; a downloaded config can only name one
of these (nothing is imported on its behalf)."""

INIT_ONLY_ARGUMENTS = {"backbone_pretrained": False, "backbone_weights_file": None}
"""Constructor arguments that only matter when training from scratch: a loaded network
takes its weights from the file, never from an ImageNet download."""


class VIReIDNetwork(nn.Module, PyTorchModelHubMixin, ABC, library_name="vireid-zoo"):
    """A visible-infrared re-identification network.

    Subclasses set ``method_name`` and ``paper`` and build ``backbone``. Saving, loading and
    publishing come from huggingface_hub's ``PyTorchModelHubMixin``, restricted to
    safetensors: ``save_pretrained(dir, pretrained_cfg=...)``, ``from_pretrained(source)``
    (a folder, ``local-dir:PATH``, ``ORG/NAME`` or ``hf-hub:ORG/NAME[@REVISION]``) and
    ``push_to_hub(repo_id, pretrained_cfg=...)``. The constructor's arguments are saved in
    ``config.json`` and rebuild the network when it is loaded.

    Attributes:
        backbone: The ImageNet-initialised trunk (its parameters form the optimiser's
            backbone group; everything else is a new layer).
        embedding_dim: Size of the embedding [`extract_features`][] returns.
        pretrained_cfg: The input / embedding contract and provenance of loaded weights.
    """

    method_name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    backbone: TwoStreamResNet
    embedding_dim: int
    pretrained_cfg: PretrainedConfig | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls):
            NETWORK_CLASSES[f"{cls.__module__}.{cls.__qualname__}"] = cls

    @abstractmethod
    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Return L2-normalised embeddings (B, embedding_dim) of images of one modality.

        The modality chooses the stem; it is the images' modality, never their role as
        query or gallery.
        """

    # Identity and contract -----------------------------------------------------------------

    @property
    def architecture(self) -> str:
        """Registry name of this network, e.g. ``"agw_resnet50"``."""
        return f"{self.method_name.lower()}_{self.backbone.arch}"

    def default_pretrained_cfg(self) -> PretrainedConfig:
        """The contract of this network before anything is known of its training."""
        return PretrainedConfig(
            architecture=self.architecture,
            embedding_dim=self.embedding_dim,
            feature=str(getattr(self, "test_feature", "embedding")),
        )

    # Saving ----------------------------------------------------------------------------------

    def save_pretrained(
        self,
        save_directory: str | Path,
        *,
        pretrained_cfg: PretrainedConfig | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Write ``model.safetensors``, ``config.json`` and a model card (``README.md``).

        Args:
            save_directory: Folder to write.
            pretrained_cfg: Contract and provenance to record (default: the network's).
            **kwargs: ``PyTorchModelHubMixin.save_pretrained`` arguments (``push_to_hub``,
                ``repo_id``, ...).
        """
        if pretrained_cfg is not None:
            self.pretrained_cfg = pretrained_cfg
        return super().save_pretrained(save_directory, **kwargs)

    def push_to_hub(
        self, repo_id: str, *, pretrained_cfg: PretrainedConfig | None = None, **kwargs: Any
    ) -> str:
        """Upload weights, config and card to ``repo_id`` (see [`save_pretrained`][])."""
        if pretrained_cfg is not None:
            self.pretrained_cfg = pretrained_cfg
        return super().push_to_hub(repo_id, **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        cfg = self.pretrained_cfg or self.default_pretrained_cfg()
        save_model(self, str(save_directory / WEIGHTS_NAME))
        arguments = self._hub_mixin_config or {}
        assert isinstance(arguments, dict)  # the constructor's arguments (none is a config)
        config = {
            **arguments,
            "network_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "pretrained_cfg": cfg.to_dict(),
        }
        (save_directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))
        model_card(self.method_name, self.paper, cfg).save(save_directory / "README.md")

    # Loading ---------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls: type[N], pretrained_model_name_or_path: str | Path, **kwargs: Any
    ) -> N:
        """Load a saved network (safetensors only; strict but for the classifier's size).

        Args:
            pretrained_model_name_or_path: A folder, ``local-dir:PATH``, ``ORG/NAME`` or
                ``hf-hub:ORG/NAME[@REVISION]``.
            **kwargs: ``revision``, ``cache_dir``, ``local_files_only``, ``token``,
                ``map_location``, and constructor overrides such as ``num_classes`` (a
                different number re-initialises the classifier, with a warning).

        Raises:
            FileNotFoundError: a folder (or ``local-dir:PATH``) that does not exist or lacks
                a file; such a source is never looked up on the Hub.
            WeightsMismatchError: the source holds a network of another class than ``cls``
                (named both), or weights that do not fit.
        """
        source = str(pretrained_model_name_or_path)
        # A folder is checked (and ~ expanded) here: the mixin would send any name that is
        # not an existing folder to the Hub.
        config_path, _ = resolve_files(source, **_download_arguments(kwargs))
        if source.startswith(HF_HUB_PREFIX):
            source, revision = parse_hub_source(source)
            kwargs.setdefault("revision", revision)
        else:
            local = Path(source.removeprefix(LOCAL_DIR_PREFIX)).expanduser()
            source = str(local) if local.is_dir() else source
        saved = read_config(config_path).get("network_class")
        if inspect.isabstract(cls) or saved is not None:
            saved_class = network_class(saved, str(config_path))
            if not issubclass(saved_class, cls):
                raise WeightsMismatchError(
                    f"{pretrained_model_name_or_path} holds a network of class "
                    f"{saved_class.__name__} ({saved}), not {cls.__name__}: load it with "
                    f"{saved_class.__name__}.from_pretrained or vireid_zoo.load_network"
                )
            cls = saved_class
        # Explicit super(): ``cls`` may have been replaced by the class the config names.
        return super(VIReIDNetwork, cls).from_pretrained(source, **kwargs)  # noqa: UP008

    @classmethod
    def _from_pretrained(
        cls: type[N],
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        config: dict[str, Any] | None = None,
        map_location: str = "cpu",
        **model_kwargs: Any,
    ) -> N:
        parameters = inspect.signature(cls.__init__).parameters
        model_kwargs |= {k: v for k, v in INIT_ONLY_ARGUMENTS.items() if k in parameters}
        network = cls(**model_kwargs)
        _, weights = resolve_files(
            model_id,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
        )
        load_weights_strict(network, read_weights(weights, map_location), source=model_id)
        if config and "pretrained_cfg" in config:
            network.pretrained_cfg = PretrainedConfig.from_dict(config["pretrained_cfg"])
        return network.eval()


def _download_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("revision", "cache_dir", "force_download", "local_files_only", "token")
    return {k: kwargs[k] for k in keys if k in kwargs}


def network_class(name: object, source: str) -> type[VIReIDNetwork]:
    """The zoo network class ``name`` (``module.QualName``) names; nothing else is accepted.

    Args:
        name: The class path, from a ``config.json``, a checkpoint or a config.
        source: Where the name comes from, for the message.

    Raises:
        ValueError: ``name`` is not a network class of the zoo.
    """
    found = find_network_class(name)
    if found is None:
        raise ValueError(
            f"{source} names network class {name!r}, which is not a vireid-zoo network "
            f"(known: {sorted(NETWORK_CLASSES)}); it was not saved by vireid-zoo, or by a "
            "newer version"
        )
    return found


def load_network(source: str, **kwargs: Any) -> VIReIDNetwork:
    """Load a saved network of any zoo class from a folder or the Hub."""
    return VIReIDNetwork.from_pretrained(source, **kwargs)


def find_network_class(name: object) -> type[VIReIDNetwork] | None:
    """The zoo network class ``name`` (``module.QualName``) names, or None."""
    found = import_zoo_class(name)
    return found if found is not None and issubclass(found, VIReIDNetwork) else None
