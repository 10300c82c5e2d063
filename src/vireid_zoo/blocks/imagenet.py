"""The ImageNet weights a trunk starts from: a timm pretrained tag, or a local file.

The reference AGW, CAJ and DEEN code start from torchvision's ImageNet weights, which timm
publishes under the tag ``tv_in1k`` (``timm/resnet50.tv_in1k`` on the Hugging Face Hub); timm's
own default for ``resnet50`` is another recipe (``a1_in1k``), so every network of the zoo
names its tag (``backbone_weights``). torchvision and timm ResNets share one key layout
(``conv1``, ``bn1``, ``layer1`` ... ``layer4``, ``fc``), so a local file in either layout
loads (``backbone_weights_file``).

Offline, the download fails at once (no retries) with a message naming the repository and
file to fetch and the ``backbone_weights_file`` option.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import timm
from timm.models import get_pretrained_cfg
from timm.models.resnet import ResNet
from torch import nn

from vireid_zoo.core.weights import load_weights_strict, read_state_dict

REFERENCE_WEIGHTS = "tv_in1k"
"""torchvision's ImageNet weights, the initialisation of the reference VI-ReID code."""
WEIGHTS_FILE = "model.safetensors"
_PROBE_SECONDS = 3.0


class ImageNetWeightsUnavailableError(RuntimeError):
    """The ImageNet weights of a tag are neither cached nor downloadable."""


def available_tags(arch: str) -> list[str]:
    """The timm pretrained tags of ``arch`` (e.g. ``["a1_in1k", ..., "tv_in1k"]``)."""
    return [name.split(".", 1)[1] for name in timm.list_pretrained(f"{arch}.*")]


def imagenet_weights_file(arch: str, tag: str = REFERENCE_WEIGHTS) -> Path:
    """The local file of timm's ``{arch}.{tag}`` weights: from the cache, else downloaded.

    Raises:
        ValueError: ``tag`` is not a pretrained tag of ``arch``.
        ImageNetWeightsUnavailableError: not cached and the Hub cannot be reached (the
            message names the repository, the file and what to pass instead).
    """
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    tags = available_tags(arch)
    if tag not in tags:
        raise ValueError(f"backbone_weights={tag!r} is not a timm tag of {arch!r}; known: {tags}")
    config = get_pretrained_cfg(f"{arch}.{tag}")
    repo = config.hf_hub_id if config is not None else None
    if not repo:
        raise ImageNetWeightsUnavailableError(
            f"timm has no Hub repository for {arch}.{tag}; pass its state dict as "
            "backbone_weights_file=PATH"
        )
    cached = try_to_load_from_cache(repo, WEIGHTS_FILE)
    if isinstance(cached, str):
        return Path(cached)
    instructions = (
        f"Fetch {WEIGHTS_FILE} of the Hub repository {repo} (or the same weights in "
        f"torchvision's layout{f' from {config.url}' if config and config.url else ''}) on a "
        "machine with internet access and pass it as backbone_weights_file=PATH, or set "
        "backbone_pretrained=False to start from random weights."
    )
    if constants.HF_HUB_OFFLINE or not _reachable(constants.ENDPOINT):
        reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub is unreachable"
        raise ImageNetWeightsUnavailableError(
            f"The ImageNet weights {arch}.{tag} are not in the Hugging Face cache and {reason}. "
            + instructions
        )
    try:
        return Path(hf_hub_download(repo, WEIGHTS_FILE))
    except Exception as error:  # network, hub and checksum failures all end here
        raise ImageNetWeightsUnavailableError(
            f"The ImageNet weights {arch}.{tag} could not be downloaded "
            f"({type(error).__name__}: {error}). " + instructions
        ) from error


def load_imagenet_weights(model: ResNet, arch: str, path: Path, what: str) -> None:
    """Load an ImageNet state dict (timm or torchvision layout) strictly, ignoring ``fc.*``.

    BatchNorm ``num_batches_tracked`` counters may be absent (older files lack them;
    PyTorch then sets them to 0).

    Args:
        model: A timm ResNet of ``arch``.
        arch: Its architecture, for messages.
        path: The state dict file.
        what: How messages name the file (e.g. ``"backbone_weights_file"``).
    """
    given = {k: v for k, v in read_state_dict(path, what).items() if not k.startswith("fc.")}
    trunk = nn.Module()  # the ResNet without its ImageNet classifier
    for name, child in model.named_children():
        if name != "fc":
            trunk.add_module(name, child)
    load_weights_strict(
        trunk,
        given,
        repr(str(path)),
        target=f"timm architecture {arch!r} (only fc.* may differ)",
        allow_classifier_resize=False,
        may_be_missing=lambda key: key.endswith(".num_batches_tracked"),
        hint=f"Pass an ImageNet state dict of {arch!r} (timm or torchvision layout).",
    )


def _reachable(endpoint: str) -> bool:
    """Whether a TCP connection to the endpoint's host opens within a few seconds."""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=_PROBE_SECONDS):
            return True
    except OSError:
        return False
