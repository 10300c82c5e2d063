"""Converting checkpoints of other codebases into zoo networks.

[`convert_checkpoint`][] reads a checkpoint written by another codebase's training
script, maps its weights one to one onto the zoo network that is the same architecture,
and returns that network in eval mode, with the checkpoint's provenance in
``pretrained_cfg.source``. ``vireid-zoo convert`` does the same and saves a zoo folder.

Checkpoints of research codebases are pickles. They are read with
``torch.load(weights_only=True)`` and the smallest allow-list their metadata needs
([`NUMPY_ALLOW_LIST`][]: numpy's array and scalar reconstructors, ``ndarray``, ``dtype``
and the float32 / float64 dtypes): nothing in the file is run, and a file that holds
anything else is refused, naming what it held.

Codebases:

``agw``
    The AGW baseline (github.com/mangye16/Cross-Modal-Re-ID-baseline), with the
    ``ICCV21_CAJ/`` (CAJ) and ``PAMI23_Supervised/`` (CAJ+) folders, whose network
    (``embed_net``) and checkpoints are the same: what their ``train.py`` /
    ``train_ext.py`` save, ``{"net": state_dict, "cmc": ndarray, "mAP": float, "mINP":
    float, "epoch": int}`` (``mINP`` absent from the periodic saves), or a bare state
    dict, with or without a DataParallel ``module.`` prefix. It converts to the zoo's
    [`AGW`][].
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import timm
import torch

from vireid_zoo.blocks.two_stream import SUPPORTED_ARCHS, BlockWithInsert
from vireid_zoo.core.contract import CHECKPOINT_CFG_KEY
from vireid_zoo.core.files import file_sha256
from vireid_zoo.core.weights import compare_weights, require_fit
from vireid_zoo.models.agw.model import AGW
from vireid_zoo.models.agw.module import AGWModule
from vireid_zoo.models.network import VIReIDNetwork

__all__ = [
    "AGW_REPOSITORY",
    "CODEBASES",
    "NUMPY_ALLOW_LIST",
    "REPORTED_BY",
    "ConversionError",
    "agw_reference_names",
    "convert_checkpoint",
    "read_agw_checkpoint",
    "write_test_checkpoint",
]

AGW_REPOSITORY = "https://github.com/mangye16/Cross-Modal-Re-ID-baseline"
AGW_LICENCE = (
    "the source repository's code is under the MIT licence (its LICENSE file); its README "
    "states no licence for the checkpoints: check their terms before redistributing them"
)
REPORTED_BY = "the source checkpoint (the reference selects its best epoch on the test set)"
"""How the scores stored in a source checkpoint were obtained (the card's heading)."""

# numpy 2 moved numpy.core to numpy._core; files name it as the numpy that wrote them did.
_MULTIARRAY = importlib.import_module(
    "numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray"
)
NUMPY_ALLOW_LIST: tuple[Any, ...] = (
    # The metadata of an agw checkpoint: "cmc", a float32 ndarray, and "mAP" / "mINP",
    # numpy float scalars; under the names numpy 1.x and numpy 2 pickle them with.
    *(
        (getattr(_MULTIARRAY, name), f"{module}.multiarray.{name}")
        for name in ("_reconstruct", "scalar")
        for module in ("numpy.core", "numpy._core")
    ),
    np.ndarray,
    np.dtype,
    type(np.dtype(np.float32)),
    type(np.dtype(np.float64)),
)
"""The only non-torch names an agw checkpoint may reference (``torch.load`` allow-list)."""

_METADATA_KEYS = ("cmc", "mAP", "mINP", "epoch")
_DATAPARALLEL_PREFIX = "module."
_MAX_LISTED = 5
_RANKS = (1, 5, 10, 20)
_MIN_NAME_OVERLAP = 0.9
_DATASET_PREFIXES = {"sysu": "sysu_mm01", "regdb": "regdb", "llcm": "llcm"}

# Reference-layout names (embed_net in the reference model.py).
_STEMS = {"visible": "visible_module.visible.", "infrared": "thermal_module.thermal."}
_SHARED = "base_resnet.base."
_UNUSED_PREFIXES = (
    # embed_net builds three full ResNets and uses the stems of two and the layers of one.
    *(f"{stem}layer{i}." for stem in _STEMS.values() for i in range(1, 5)),
    f"{_SHARED}conv1.",
    f"{_SHARED}bn1.",
)
_NON_LOCAL_KEY = re.compile(r"^NL_(?P<stage>[1-4])\.(?P<index>\d+)\.")
# Zoo NonLocalBlock child -> reference Non_local child.
_NON_LOCAL_PARTS = {"theta.": "theta.", "phi.": "phi.", "g.": "g.0.", "out.": "W.0.", "bn.": "W.1."}


class ConversionError(ValueError):
    """A file is not a checkpoint the converter can read, or its weights do not fit."""


def convert_checkpoint(path: str | Path, codebase: str = "agw", **overrides: Any) -> VIReIDNetwork:
    """Convert a checkpoint of another codebase into a zoo network, strictly.

    Example:
        ```python
        import vireid_zoo as vz

        net = vz.convert_checkpoint("sysu_agw_p4_n8_lr_0.1_seed_0_best.t")  # eval mode
        embeddings = net.extract_features(images, "infrared")
        net.save_pretrained("agw-sysu")  # loads with create_model("local-dir:agw-sysu")
        ```

    Args:
        path: The checkpoint file.
        codebase: The codebase that wrote it (see [`CODEBASES`][]).
        **overrides: What the weights cannot tell, per codebase. ``agw``: ``pooling``
            (``"gem"``, the reference default ``--method agw``, or ``"avg"``, its
            ``--method base``), ``dataset`` (training dataset recorded in the provenance;
            default: read from the reference's file-name prefix ``sysu_`` / ``regdb_``,
            else unknown) and ``test_feature`` (``"bn"``, the reference's reported
            feature, or ``"pool"``).

    Returns:
        The network in eval mode; ``pretrained_cfg.source`` names the codebase, the
        file, its SHA-256, the epoch and the scores the checkpoint reports (never
        measured by the zoo: ``pretrained_cfg.metrics`` is empty).

    Raises:
        ConversionError: (a ``ValueError``) the file is not a checkpoint of the codebase:
            it holds something else (nothing in it is run), or its weights do not map
            one to one onto the network (the error names the keys).
        FileNotFoundError: ``path`` does not exist.
    """
    if codebase not in CODEBASES:
        raise ValueError(f"unknown codebase {codebase!r}; known: {', '.join(sorted(CODEBASES))}")
    return CODEBASES[codebase](Path(path), **overrides)


# Reading the file ------------------------------------------------------------------------


def read_agw_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read an agw checkpoint safely: its state dict (prefix removed) and its metadata.

    Raises:
        ConversionError: The file is not a ``torch.save`` file, holds objects of other
            types than tensors, containers, numbers and the numpy types of
            [`NUMPY_ALLOW_LIST`][], or is not laid out as the agw codebase saves.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    content = _safe_load(path)
    if isinstance(content, Mapping) and "net" in content:
        state, metadata = content["net"], {k: v for k, v in content.items() if k != "net"}
        extra = sorted(str(k) for k in metadata if k not in _METADATA_KEYS)
        if extra:
            raise ConversionError(
                f"{path}: holds the keys {extra} beside 'net'; a checkpoint of the agw "
                f"codebase holds only 'net' and {list(_METADATA_KEYS)}"
            )
    else:
        state, metadata = content, {}
    if not isinstance(state, Mapping) or not state:
        raise ConversionError(
            f"{path}: holds {_describe(state)}, not an agw checkpoint: a dict "
            "{'net': state_dict, 'cmc': ..., 'mAP': ..., 'epoch': ...} or a state dict"
        )
    wrong = [(k, v) for k, v in state.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if wrong:
        key, value = wrong[0]
        raise ConversionError(
            f"{path}: its state dict maps {key!r} to {_describe(value)} ({len(wrong)} "
            "entries are not name -> tensor); a state dict holds only tensors"
        )
    return _strip_dataparallel(dict(state), path), _check_metadata(metadata, path)


def _safe_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with the numpy allow-list.

    The weights-only unpickler builds tensors, containers and numbers, and calls nothing
    but the allow-listed numpy reconstructors; any other reference in the file is refused
    before anything is built from it.
    """
    with path.open("rb") as handle:
        head = handle.read(4)
    # torch.save writes a zip archive, or (before PyTorch 1.6) a pickle protocol 2 stream.
    if not (head == b"PK\x03\x04" or head[:1] == b"\x80"):
        raise ConversionError(
            f"{path}: not a PyTorch checkpoint written by torch.save (it starts with "
            f"{head!r}, neither a zip archive nor a pickle)"
        )
    try:
        with torch.serialization.safe_globals(list(NUMPY_ALLOW_LIST)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch, pickle and zip raise many kinds for foreign files
        message = str(error)
        if "Weights only load failed" in message and "Unsupported operand" not in message:
            raise ConversionError(
                f"{path}: refused, and nothing in it was run: it holds "
                f"{_refused_object(message)}, which no checkpoint of the agw codebase "
                "holds (they hold tensors, numpy metric arrays and numbers). Convert only "
                "checkpoints written by the codebase's training scripts."
            ) from None
        raise ConversionError(
            f"{path}: not a PyTorch checkpoint written by torch.save "
            f"({type(error).__name__}: {message.strip().splitlines()[0] if message else ''})"
        ) from None


def _refused_object(message: str) -> str:
    """What a weights-only load refused, from torch's message."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return f"a pickled reference to {found.group(1)}"
    found = re.search(r"but got (<class '[^']+'>)", message)
    if found:
        return f"an object of type {found.group(1)}"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return f"an object the weights-only unpickler refuses ({lines[-1] if lines else message})"


def _describe(value: Any) -> str:
    if torch.is_tensor(value):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return (
            f"a dict with keys {sorted(map(str, value))[:_MAX_LISTED]}"
            if value
            else "an empty dict"
        )
    return f"a {type(value).__name__}"


def _strip_dataparallel(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    prefixed = [k for k in state if k.startswith(_DATAPARALLEL_PREFIX)]
    if not prefixed:
        return state
    if len(prefixed) != len(state):
        plain = [k for k in state if not k.startswith(_DATAPARALLEL_PREFIX)]
        raise ConversionError(
            f"{path}: {len(prefixed)} keys have the DataParallel prefix 'module.' and "
            f"{len(plain)} do not (e.g. {plain[:_MAX_LISTED]}); a checkpoint has all or none"
        )
    return {k.removeprefix(_DATAPARALLEL_PREFIX): v for k, v in state.items()}


def _check_metadata(metadata: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check the types of cmc / mAP / mINP / epoch and return them as Python values."""
    checked: dict[str, Any] = {}
    for key, value in metadata.items():
        if key == "cmc":
            array = value.numpy() if torch.is_tensor(value) else value
            if not (isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.ndim == 1):
                raise ConversionError(
                    f"{path}: 'cmc' holds {_describe(value)}; the agw codebase stores a 1-d "
                    "float ndarray"
                )
            checked[key] = [float(v) for v in array]
        elif key == "epoch":
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConversionError(f"{path}: 'epoch' holds {_describe(value)}, not an int")
            checked[key] = int(value)
        else:
            number = _number(value)
            if number is None:
                raise ConversionError(f"{path}: {key!r} holds {_describe(value)}, not a number")
            checked[key] = number
    return checked


def _number(value: Any) -> float | None:
    if torch.is_tensor(value):
        return float(value.item()) if value.numel() == 1 and value.is_floating_point() else None
    if isinstance(value, np.ndarray):
        return float(value.item()) if value.size == 1 and value.dtype.kind == "f" else None
    if isinstance(value, bool) or not isinstance(value, float | int | np.floating):
        return None
    return float(value)


# The agw codebase -------------------------------------------------------------------------


def _convert_agw(
    path: Path,
    *,
    pooling: str = "gem",
    dataset: str | None = None,
    test_feature: str = "bn",
) -> AGW:
    if pooling not in ("gem", "avg"):
        raise ValueError(
            f"pooling must be 'gem' (the reference's --method agw) or 'avg' (--method base), "
            f"got {pooling!r}"
        )
    state, metadata = read_agw_checkpoint(path)
    variant = _agw_variant(state, path)
    network = AGW(
        variant["num_classes"],
        arch=variant["arch"],
        non_local_blocks=variant["non_local_blocks"],
        non_local_channels=variant["non_local_channels"],
        gem_p=3.0,
        gem_formula="agw",
        pooling=pooling,  # type: ignore[arg-type]
        test_feature=test_feature,  # type: ignore[arg-type]
    )
    dropped = _load_agw_weights(network, state, path, variant)
    dataset_from = "the dataset argument" if dataset else None
    if dataset is None:
        prefix = path.name.split("_", 1)[0].lower()
        dataset = _DATASET_PREFIXES.get(prefix)
        dataset_from = f"the file name (prefix {prefix!r})" if dataset else None
    source = {
        "codebase": "agw",
        "repository": AGW_REPOSITORY,
        "file": path.name,
        "sha256": file_sha256(path),
        "epoch": metadata.get("epoch"),
        "reported_metrics": _reported_metrics(metadata),
        "reported_by": REPORTED_BY,
        "variant": {k: variant[k] for k in ("arch", "non_local_blocks", "num_classes")}
        | {"non_local_channels": variant["non_local_channels"]},
        "chosen": {"pooling": pooling, "test_feature": test_feature},
        "licence": AGW_LICENCE,
        "note": (
            f"dropped {len(dropped)} tensors ({sum(v.numel() for v in dropped.values()):,} "
            "values) that the source network registers but never uses: the unused layers "
            "of its visible, thermal and shared ResNet copies"
        )
        + (f"; dataset from {dataset_from}" if dataset_from else ""),
    }
    network.pretrained_cfg = dataclasses.replace(
        network.default_pretrained_cfg(), dataset=dataset, source=source, license="other"
    )
    return network.eval()


def _agw_variant(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, Any]:
    """What the weights tell: trunk, non-local blocks, their width, number of classes."""
    if "classifier.weight" not in state:
        raise ConversionError(
            f"{path}: no 'classifier.weight' among its {len(state)} keys (e.g. "
            f"{sorted(state)[:_MAX_LISTED]}): not the state dict of the agw codebase's embed_net"
        )
    counts = [0, 0, 0, 0]
    for stage in range(1, 5):
        indices = {
            int(m["index"])
            for k in state
            if (m := _NON_LOCAL_KEY.match(k)) is not None and int(m["stage"]) == stage
        }
        if indices != set(range(len(indices))):
            raise ConversionError(
                f"{path}: the non-local blocks of layer{stage} are numbered {sorted(indices)}; "
                "embed_net numbers them 0..N-1"
            )
        counts[stage - 1] = len(indices)
    widths = {
        v.shape[0] for k, v in state.items() if _NON_LOCAL_KEY.match(k) and ".g.0.weight" in k
    }
    if len(widths) > 1:
        raise ConversionError(f"{path}: the non-local blocks have different widths {widths}")
    return {
        "arch": _agw_arch(state, path),
        "non_local_blocks": counts,
        "non_local_channels": widths.pop() if widths else 1,
        "num_classes": int(state["classifier.weight"].shape[0]),
    }


def _agw_arch(state: Mapping[str, torch.Tensor], path: Path) -> str:
    """The trunk whose layer1..layer4 fit the shared ResNet's weights (names and shapes).

    An exact fit is chosen; otherwise the trunk that shares most names with the file, so
    that the strict load then names the few weights that differ. A file that shares less
    than 90% of its layer names with every trunk is refused here.
    """
    layers = {
        k.removeprefix(_SHARED): tuple(v.shape)
        for k, v in state.items()
        if k.startswith(f"{_SHARED}layer") and not k.endswith("num_batches_tracked")
    }
    if not layers:
        raise ConversionError(
            f"{path}: no '{_SHARED}layer*' weights: not the state dict of the agw codebase's "
            "embed_net"
        )
    candidates = ("resnet50", *(a for a in SUPPORTED_ARCHS if a != "resnet50"))

    def fit(arch: str) -> tuple[float, int]:
        expected = _timm_layer_shapes(arch)
        shared = layers.keys() & expected.keys()
        same_shape = sum(layers[k] == expected[k] for k in shared)
        return len(shared) / len(layers.keys() | expected.keys()), same_shape

    if _timm_layer_shapes("resnet50") == layers:  # the reference's only trunk, checked first
        return "resnet50"
    best = max(candidates, key=fit)  # max keeps the first of equals: resnet50
    if fit(best)[0] < _MIN_NAME_OVERLAP:
        blocks = [
            len({k.split(".")[1] for k in layers if k.startswith(f"layer{i}.")})
            for i in (1, 2, 3, 4)
        ]
        raise ConversionError(
            f"{path}: the shared ResNet ({_SHARED}layer1..4, {blocks} blocks) matches none of "
            f"the trunks {', '.join(candidates)} (at most {fit(best)[0]:.0%} of the weight "
            f"names in common, with {best})"
        )
    return best


@functools.cache
def _timm_layer_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        resnet = timm.create_model(arch, pretrained=False)
    return {
        k: tuple(v.shape)
        for k, v in resnet.state_dict().items()
        if k.startswith("layer") and not k.endswith("num_batches_tracked")
    }


def agw_reference_names(network: AGW) -> dict[str, str]:
    """The agw codebase's (``embed_net``) name of every weight of a zoo AGW, one to one.

    The inverse of the conversion: ``{zoo_key: reference_key}`` for the whole state dict
    of ``network`` (an AGW with the reference trunk layout, ``split_stage=0``).
    """
    if network.backbone.split_stage != 0:
        raise ValueError("the agw codebase's embed_net shares everything after the stems")
    names = {k: _reference_key(k, network) for k in network.state_dict()}
    assert len(set(names.values())) == len(names), "the key mapping must be one to one"
    return names


def _reference_key(zoo_key: str, network: AGW) -> str:
    if zoo_key.startswith("neck.bn."):
        return "bottleneck." + zoo_key.removeprefix("neck.bn.")
    if zoo_key == "neck.classifier.weight":
        return "classifier.weight"
    for modality, stem in _STEMS.items():
        prefix = f"backbone.{modality}_stages.0."
        if zoo_key.startswith(prefix):
            return stem + zoo_key.removeprefix(prefix)
    stage_index, block, rest = zoo_key.removeprefix("backbone.shared_stages.").split(".", 2)
    stage = int(stage_index) + 1  # split_stage is 0: shared stage j is layer j + 1
    if rest.startswith("block."):
        rest = rest.removeprefix("block.")
    elif rest.startswith("extra."):
        rest = rest.removeprefix("extra.")
        blocks = network.backbone.shared_stage(stage)
        first = next(i for i, b in enumerate(blocks) if isinstance(b, BlockWithInsert))
        part = next(p for p in _NON_LOCAL_PARTS if rest.startswith(p))
        return f"NL_{stage}.{int(block) - first}.{_NON_LOCAL_PARTS[part]}{rest.removeprefix(part)}"
    return f"{_SHARED}layer{stage}.{block}.{rest}"


def _load_agw_weights(
    network: AGW, state: dict[str, torch.Tensor], path: Path, variant: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """Load every used reference weight exactly once; return the dropped (unused) ones."""
    own = network.state_dict()
    names = {reference: zoo for zoo, reference in agw_reference_names(network).items()}
    dropped = {k: v for k, v in state.items() if k.startswith(_UNUSED_PREFIXES)}
    used = {k: v for k, v in state.items() if k not in dropped}
    described = (
        f"the agw codebase's embed_net as read from the file ({variant['arch']}, non-local "
        f"blocks {tuple(variant['non_local_blocks'])}, {variant['num_classes']} classes)"
    )
    require_fit(
        compare_weights(
            {reference: own[zoo] for reference, zoo in names.items()},
            used,
            may_be_missing=lambda key: key.endswith(".num_batches_tracked"),
        ),
        source=str(path),
        target=described,
        allow_classifier_resize=False,
        hint="Only the copies embed_net never runs (visible_module.visible.layer*, "
        "thermal_module.thermal.layer*, base_resnet.base.conv1 / bn1) are dropped; every other "
        "weight must be used exactly once. Is it a checkpoint of another codebase, or of a "
        "modified model.py?",
    )
    converted = {z: state[k] if k in state else own[z] for k, z in names.items()}
    network.load_state_dict(converted, strict=True)
    return dropped


def _reported_metrics(metadata: dict[str, Any]) -> dict[str, float]:
    """Rank-k and mAP / mINP as stored in the checkpoint (fractions)."""
    reported = {
        f"rank{rank}": metadata["cmc"][rank - 1]
        for rank in _RANKS
        if rank <= len(metadata.get("cmc", []))
    }
    reported |= {k: metadata[k] for k in ("mAP", "mINP") if k in metadata}
    # Rounded to 1e-6, the resolution of the float32 they were computed in.
    return {k: round(v, 6) for k, v in reported.items() if math.isfinite(v)}


CODEBASES: dict[str, Callable[..., VIReIDNetwork]] = {"agw": _convert_agw}
"""Converters by codebase name (``convert_checkpoint(path, codebase=...)``)."""


# Testing a converted network with `vireid-zoo test` ---------------------------------------


def write_test_checkpoint(network: VIReIDNetwork, path: str | Path) -> Path:
    """Write a converted AGW as a Lightning checkpoint for ``vireid-zoo test`` / ``publish``.

    The checkpoint records the network's constructor arguments as the module's
    hyperparameters (``vireid-zoo test --ckpt_path`` rebuilds exactly this network from
    them, whatever the config says about the model) and its ``pretrained_cfg``, so that
    ``vireid-zoo publish`` keeps the source provenance next to the metrics the test
    measured.

    Raises:
        TypeError: ``network`` is not an AGW.
    """
    if not isinstance(network, AGW):
        raise TypeError(f"expected a converted AGW, got {type(network).__name__}")
    module = AGWModule(network)
    cfg = network.pretrained_cfg or network.default_pretrained_cfg()
    content = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        CHECKPOINT_CFG_KEY: cfg.to_dict(),
    }
    module.on_save_checkpoint(content)  # records the module class, as a fit does
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)
    return path
