"""Turning a model specification from the command line into a network ready to embed."""

from __future__ import annotations

from pathlib import Path

from vireid_zoo.core.contract import HF_HUB_PREFIX, LOCAL_DIR_PREFIX
from vireid_zoo.models.network import VIReIDNetwork, load_network
from vireid_zoo.models.registry import create_model, list_models, list_pretrained


def load_inference_network(spec: str, *, allow_untrained: bool = False) -> VIReIDNetwork:
    """Load the network a user names, in eval mode.

    Args:
        spec: ``hf-hub:ORG/NAME[@REVISION]``, ``local-dir:PATH`` (or a folder written by
            ``save_pretrained``), a published ``<architecture>.<tag>``, a Lightning
            checkpoint (``*.ckpt``, written by ``vireid-zoo fit``), or a bare architecture
            name, which has random weights and is refused unless ``allow_untrained``.
        allow_untrained: Accept a bare architecture name (random weights), on purpose.

    Raises:
        ValueError: for a bare architecture without ``allow_untrained``, or an unknown name.
    """
    if spec.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        network = create_model(spec)
    elif Path(spec).is_dir():
        network = load_network(spec)
    elif spec.endswith(".ckpt"):
        from vireid_zoo.hub.checkpoints import input_contract, load_trained_module

        module, content = load_trained_module(Path(spec))
        network = module.net
        # The checkpoint's own input size and normalisation, not the 288x144 defaults.
        network.pretrained_cfg = input_contract(module, content)
    elif spec in list_pretrained():
        network = create_model(spec, pretrained=True)
    elif spec in list_models():
        if not allow_untrained:
            raise ValueError(
                f"{spec!r} names an architecture, whose weights would be random. Name trained "
                "weights: a checkpoint (*.ckpt), 'hf-hub:ORG/NAME', 'local-dir:PATH' or a "
                f"published name ({list_pretrained() or 'none published yet'}); or pass "
                "--allow-untrained to use random weights on purpose."
            )
        network = create_model(spec, num_classes=0)
    else:
        raise ValueError(
            f"cannot load {spec!r}: expected hf-hub:ORG/NAME[@REV], local-dir:PATH, a saved "
            "folder, a *.ckpt checkpoint, a published name or an architecture name"
        )
    return network.eval()
