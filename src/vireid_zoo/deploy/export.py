"""Export a network's embedding function to ONNX: one file per modality.

[`to_onnx`][] exports ``net.extract_features(images, modality)`` for one modality, so the
modality's stem is baked into the graph: a deployment that embeds both visible and
infrared images needs two files (one per stem). The graph maps ``images`` (B, 3, H, W),
float32, already resized and normalised, to ``embeddings`` (B, D), already L2-normalised,
with a dynamic batch dimension B; H and W are fixed.

Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``. With torch 2.14
it exports the timm ResNets with the non-local blocks and GeM pooling in about a second,
honours the requested opset (17) and needs nothing beyond onnx. The torch.export-based
exporter (``dynamo=True``) also gives a matching graph, but needs onnxscript, takes about
ten times longer, and cannot down-convert to opset 17 (it falls back to 18). The
TorchScript exporter is deprecated in torch: switch to ``dynamo=True`` when it goes away.

The file's ``metadata_props`` hold the input contract as strings: ``modality``,
``input_size`` (JSON ``[height, width]``), ``mean`` and ``std`` (JSON lists),
``interpolation``, ``embedding_dim``, ``normalized`` (``"true"``), ``architecture`` and
``vireid_zoo_version``.

Needs the optional packages onnx and onnxruntime: ``pip install 'vireid-zoo[onnx]'``.
"""

from __future__ import annotations

import copy
import io
import json
import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from vireid_zoo.core.records import Modality, modality_code
from vireid_zoo.core.version import __version__
from vireid_zoo.deploy.retrieval import InputSpec, input_spec
from vireid_zoo.models.network import VIReIDNetwork

ONNX_EXTRA = "onnx"
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"
TRACE_BATCH_SIZE = 2
"""Batch size of the example input (not 1, so no size-1 broadcasting is traced in)."""
PARITY_BATCH_SIZES = (3, 1)
"""Batches the parity check runs: a batch other than the traced one, and a single image."""


class ExportParityError(RuntimeError):
    """The ONNX graph's embeddings differ from PyTorch's by more than the tolerance.

    Attributes:
        max_abs_diff: The largest absolute difference of an embedding component.
        atol: The tolerance.
    """

    def __init__(self, modality: str, max_abs_diff: float, atol: float) -> None:
        self.max_abs_diff = max_abs_diff
        self.atol = atol
        super().__init__(
            f"the ONNX export of the {modality} embedding differs from PyTorch by up to "
            f"{max_abs_diff:.3g} (max abs difference), above atol={atol:g}; nothing was written"
        )


def _require_onnx() -> tuple[ModuleType, ModuleType]:
    """Import onnx and onnxruntime, or explain how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            f"ONNX export needs the onnx and onnxruntime packages ({error.name} is missing): "
            f"pip install 'vireid-zoo[{ONNX_EXTRA}]'"
        ) from error
    return onnx, onnxruntime


class _Embedder(nn.Module):
    """``extract_features`` of one modality as a one-input module (what is exported)."""

    def __init__(self, net: VIReIDNetwork, modality: Modality) -> None:
        super().__init__()
        self.net = net
        self.modality = modality

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed images of the fixed modality."""
        return self.net.extract_features(images, self.modality)


def _embedder(net: VIReIDNetwork, modality: Modality) -> _Embedder:
    """A float32 CPU eval-mode copy of ``net`` for one modality (``net`` is left as is)."""
    return _Embedder(copy.deepcopy(net).cpu().float(), modality).eval()


def _random_images(batch: int, size: Sequence[int], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *size, generator=generator)


def check_onnx_parity(
    net: VIReIDNetwork,
    model: str | Path | bytes,
    *,
    modality: Modality,
    image_size: Sequence[int],
    atol: float = 1e-4,
) -> float:
    """Compare an exported graph with PyTorch on random batches of 3 and 1 images.

    onnxruntime runs on the CPU with as many threads as torch (``torch.get_num_threads()``).

    Args:
        net: The network that was exported.
        model: The ONNX file, or its serialised bytes.
        modality: The modality it was exported for.
        image_size: ``(height, width)`` it was exported at.
        atol: Largest accepted absolute difference of an embedding component.

    Returns:
        The largest absolute difference seen.

    Raises:
        ExportParityError: The difference exceeds ``atol``.
        RuntimeError: A batch gives embeddings of the wrong shape (the batch dimension is
            not dynamic).
    """
    modality_code(modality)
    _, onnxruntime = _require_onnx()
    embedder = _embedder(net, modality)
    source = model if isinstance(model, bytes) else str(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    largest = 0.0
    for seed, batch in enumerate(PARITY_BATCH_SIZES):
        images = _random_images(batch, image_size, seed)
        with torch.inference_mode():
            expected = embedder(images).numpy()
        (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})
        if actual.shape != expected.shape:
            raise RuntimeError(
                f"the ONNX graph returned shape {actual.shape} for {batch} image(s), expected "
                f"{expected.shape}: its batch dimension is not dynamic"
            )
        largest = max(largest, float(abs(actual - expected).max()))
    if not largest <= atol:
        raise ExportParityError(modality, largest, atol)
    return largest


def to_onnx(
    net: VIReIDNetwork,
    path: str | Path,
    *,
    modality: Modality,
    image_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    interpolation: str | None = None,
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Export the embedding of one modality to an ONNX file, atomically.

    The network is copied, put in eval mode and exported on the CPU in float32; ``net``
    itself is not changed. The graph's batch dimension is dynamic; its height and width
    are ``image_size``.

    Args:
        net: The network.
        path: The ``.onnx`` file to write (its folder is created; an existing file is
            replaced only once the export has succeeded).
        modality: ``"visible"`` or ``"infrared"``: the stem baked into the graph.
        image_size: ``(height, width)`` of the input; None: the network's published
            input size (``net.pretrained_cfg``, see [`input_spec`][];
            288 x 144 for untrained weights).
        mean: Normalisation mean recorded in the metadata (the graph does not normalise);
            None: the network's.
        std: Normalisation standard deviation recorded likewise; None: the network's.
        interpolation: Resize interpolation recorded likewise; None: the network's.
        opset: ONNX opset version.
        check: Compare onnxruntime with PyTorch (batches of 3 and 1) before writing.
        atol: Largest accepted absolute difference of an embedding component.

    Returns:
        The written path.

    Raises:
        ValueError: An unknown modality or a malformed input contract.
        ImportError: onnx or onnxruntime is not installed (naming the pip extra).
        ExportParityError: With ``check``, the outputs differ by more than ``atol``; then
            nothing is written.
    """
    modality_code(modality)
    onnx, _ = _require_onnx()
    spec = input_spec(net, image_size, mean, std, interpolation)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated, but chosen on purpose (module docstring).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            _embedder(net, modality),
            (_random_images(TRACE_BATCH_SIZE, spec.image_size, seed=0),),
            # torch annotates f as a path, but the TorchScript exporter writes to any binary
            # file object.
            buffer,  # type: ignore[arg-type]
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load_model_from_string(buffer.getvalue())
    # Shape inference loses the embedding size behind the L2 normalisation's division.
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = net.embedding_dim
    onnx.helper.set_model_props(model, _metadata(net, modality, spec))
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    if check:
        check_onnx_parity(net, data, modality=modality, image_size=spec.image_size, atol=atol)
    return _write_atomically(Path(path), data)


def _metadata(net: VIReIDNetwork, modality: Modality, spec: InputSpec) -> dict[str, str]:
    return {
        "modality": modality,
        "input_size": json.dumps(list(spec.image_size)),
        "mean": json.dumps(list(spec.mean)),
        "std": json.dumps(list(spec.std)),
        "interpolation": spec.interpolation,
        "embedding_dim": str(net.embedding_dim),
        "normalized": "true",
        "architecture": net.architecture,
        "vireid_zoo_version": __version__,
    }


def _write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to a hidden sibling file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
