"""Converting checkpoints of the AGW reference codebase (issue 11).

The checkpoints are written here in the reference layout: the key names and nesting of
``embed_net`` (github.com/mangye16/Cross-Modal-Re-ID-baseline, ``model.py``) and the dict
its ``train.py`` saves, with random weights. Embeddings are checked against an
independent functional forward over those reference-layout weights, written below from
the reference architecture (nothing of the zoo's network code is used by it).
"""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vireid_zoo as vz
from helpers.configs import write_config
from vireid_zoo.cli import main
from vireid_zoo.core.contract import PretrainedConfig
from vireid_zoo.core.weights import WeightsMismatchError
from vireid_zoo.hub.conversion import (
    NUMPY_ALLOW_LIST,
    REPORTED_BY,
    ConversionError,
    agw_reference_names,
    convert_checkpoint,
    write_test_checkpoint,
)
from vireid_zoo.models import AGW, AGWModule, VIReIDNetwork

# --- The reference layout ------------------------------------------------------------------

LAYERS = (3, 4, 6, 3)  # ResNet-50 blocks per layer
PLANES = (64, 128, 256, 512)
STRIDES = (1, 2, 2, 1)  # last stride 1
REFERENCE_NON_LOCAL = (0, 2, 3, 0)
BN_EPS = 1e-5
Tensor = torch.Tensor
State = dict[str, torch.Tensor]


def _resnet50_layout(prefix: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of conv1, bn1, layer1..4 of the reference's resnet50 (no fc)."""
    layout: dict[str, tuple[int, ...]] = {f"{prefix}conv1.weight": (64, 3, 7, 7)}
    layout |= _bn_layout(f"{prefix}bn1", 64)
    inplanes = 64
    for layer, (blocks, planes) in enumerate(zip(LAYERS, PLANES, strict=True), start=1):
        for block in range(blocks):
            p = f"{prefix}layer{layer}.{block}."
            layout[f"{p}conv1.weight"] = (planes, inplanes, 1, 1)
            layout |= _bn_layout(f"{p}bn1", planes)
            layout[f"{p}conv2.weight"] = (planes, planes, 3, 3)
            layout |= _bn_layout(f"{p}bn2", planes)
            layout[f"{p}conv3.weight"] = (4 * planes, planes, 1, 1)
            layout |= _bn_layout(f"{p}bn3", 4 * planes)
            if block == 0:
                layout[f"{p}downsample.0.weight"] = (4 * planes, inplanes, 1, 1)
                layout |= _bn_layout(f"{p}downsample.1", 4 * planes)
            inplanes = 4 * planes
    return layout


def _bn_layout(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    names = ("weight", "bias", "running_mean", "running_var")
    return {f"{prefix}.{n}": (channels,) for n in names} | {f"{prefix}.num_batches_tracked": ()}


def _random(layout: dict[str, tuple[int, ...]], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random trained-looking values: He-scaled convs, BN affine around 1 and 0."""
    state = {}
    for key, shape in layout.items():
        kind = key.rsplit(".", 1)[1]
        if kind == "num_batches_tracked":
            state[key] = torch.tensor(7)
        elif kind == "running_mean":
            state[key] = torch.zeros(shape)
        elif kind == "running_var":
            state[key] = torch.ones(shape)
        elif len(shape) == 4:  # a conv: fan-out He initialisation, as resnet.py does
            fan_out = shape[0] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_out)
        elif kind == "weight":
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = 0.1 * torch.randn(shape, generator=gen)
    return state


def _unused(layout: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """The copies embed_net registers but never runs: NaN (any use shows), stored as
    stride-0 views so that the files stay small."""
    nan = torch.full((1,), float("nan"))
    return {
        k: torch.tensor(0) if k.endswith("num_batches_tracked") else nan.expand(shape)
        for k, shape in layout.items()
    }


def _non_local(prefix: str, channels: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Non_local(channels): g = Sequential(conv), W = Sequential(conv, BN), theta, phi."""
    layout: dict[str, tuple[int, ...]] = {}
    for name in ("g.0", "theta", "phi"):
        layout |= {f"{prefix}{name}.weight": (1, channels, 1, 1), f"{prefix}{name}.bias": (1,)}
    layout |= {f"{prefix}W.0.weight": (channels, 1, 1, 1), f"{prefix}W.0.bias": (channels,)}
    # The reference zero-initialises the BN of W; trained weights are not zero.
    return _random(layout | _bn_layout(f"{prefix}W.1", channels), gen)


def reference_state(
    num_classes: int = 11,
    non_local: tuple[int, ...] = REFERENCE_NON_LOCAL,
    *,
    seed: int = 0,
    pooling: str = "gem",
) -> OrderedDict[str, torch.Tensor]:
    """A state dict of embed_net (resnet50), in the order embed_net registers its modules.

    thermal_module.thermal and visible_module.visible are full ResNets of which only the
    stem runs; base_resnet.base is one of which only layer1..4 run. The BN running
    statistics are set from a calibration batch (as after training), so that activations
    stay in a sensible range through the 16 random blocks.
    """
    gen = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for prefix in ("thermal_module.thermal.", "visible_module.visible.", "base_resnet.base."):
        layout = _resnet50_layout(prefix)
        stem = {k: v for k, v in layout.items() if ".layer" not in k}
        layers = {k: v for k, v in layout.items() if ".layer" in k}
        used, unused = (layers, stem) if prefix == "base_resnet.base." else (stem, layers)
        values = {**_random(used, gen), **_unused(unused)}
        state |= {k: values[k] for k in layout}
    for stage, count in enumerate(non_local, start=1):
        for index in range(count):
            state |= _non_local(f"NL_{stage}.{index}.", 4 * PLANES[stage - 1], gen)
    state |= _random(_bn_layout("bottleneck", 2048), gen)
    state["bottleneck.bias"].zero_()  # frozen at its zero initialisation
    state["classifier.weight"] = 0.001 * torch.randn(num_classes, 2048, generator=gen)
    calibration = torch.randn(6, 3, 64, 32, generator=gen)
    reference_forward(state, calibration, calibration + 0.5, pooling=pooling, calibrate=True)
    return state


# --- An independent forward of the reference network ---------------------------------------


def _bn_apply(x: Tensor, state: State, prefix: str, train: bool, calibrate: bool) -> Tensor:
    return F.batch_norm(
        x,
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
        training=train or calibrate,
        momentum=1.0 if calibrate else 0.1,
        eps=BN_EPS,
    )


def _bottleneck(
    x: Tensor, state: State, p: str, stride: int, train: bool, calibrate: bool
) -> Tensor:
    bn = lambda y, name: _bn_apply(y, state, p + name, train, calibrate)  # noqa: E731
    out = F.relu(bn(F.conv2d(x, state[p + "conv1.weight"]), "bn1"))
    out = F.relu(bn(F.conv2d(out, state[p + "conv2.weight"], stride=stride, padding=1), "bn2"))
    out = bn(F.conv2d(out, state[p + "conv3.weight"]), "bn3")
    if p + "downsample.0.weight" in state:
        x = bn(F.conv2d(x, state[p + "downsample.0.weight"], stride=stride), "downsample.1")
    return F.relu(out + x)


def _non_local_apply(x: Tensor, state: State, p: str, train: bool, calibrate: bool) -> Tensor:
    """z = W(y) + x, y = (theta^T phi / N) g, with 1x1 convs to inter_channels."""
    batch, _, height, width = x.shape
    inter = state[p + "g.0.weight"].shape[0]
    conv = lambda name: F.conv2d(x, state[f"{p}{name}.weight"], state[f"{p}{name}.bias"])  # noqa: E731
    g = conv("g.0").reshape(batch, inter, -1).permute(0, 2, 1)
    theta = conv("theta").reshape(batch, inter, -1).permute(0, 2, 1)
    phi = conv("phi").reshape(batch, inter, -1)
    attention = torch.matmul(theta, phi)
    attention = attention / attention.shape[-1]
    y = torch.matmul(attention, g).permute(0, 2, 1).reshape(batch, inter, height, width)
    y = F.conv2d(y, state[p + "W.0.weight"], state[p + "W.0.bias"])
    return _bn_apply(y, state, p + "W.1", train, calibrate) + x


def _stem(x: Tensor, state: State, prefix: str, train: bool, calibrate: bool) -> Tensor:
    x = F.conv2d(x, state[prefix + "conv1.weight"], stride=2, padding=3)
    x = F.relu(_bn_apply(x, state, prefix + "bn1", train, calibrate))
    return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


def reference_forward(
    state: dict[str, torch.Tensor],
    visible: torch.Tensor | None,
    infrared: torch.Tensor | None,
    *,
    pooling: str = "gem",
    train: bool = False,
    calibrate: bool = False,
) -> dict[str, torch.Tensor]:
    """embed_net's forward: stems per modality, then the shared layers on the concatenation.

    Returns ``pool`` (pooled), ``feat`` (BN bottleneck), ``logits`` and, in eval, ``embedding``
    (L2-normalised ``feat``, the reference's reported test feature).
    """
    parts = []
    if visible is not None:
        parts.append(_stem(visible, state, "visible_module.visible.", train, calibrate))
    if infrared is not None:
        parts.append(_stem(infrared, state, "thermal_module.thermal.", train, calibrate))
    x = torch.cat(parts)
    for layer, (blocks, stride) in enumerate(zip(LAYERS, STRIDES, strict=True), start=1):
        count = len({k.split(".")[1] for k in state if k.startswith(f"NL_{layer}.")})
        after = list(range(blocks - count, blocks))  # after the last `count` blocks
        for block in range(blocks):
            prefix = f"base_resnet.base.layer{layer}.{block}."
            x = _bottleneck(x, state, prefix, stride if block == 0 else 1, train, calibrate)
            if block in after:
                x = _non_local_apply(
                    x, state, f"NL_{layer}.{after.index(block)}.", train, calibrate
                )
    if pooling == "gem":
        pool = (x.reshape(*x.shape[:2], -1).pow(3).mean(dim=-1) + 1e-12) ** (1 / 3)
    else:
        pool = x.mean(dim=(2, 3))
    feat = _bn_apply(pool, state, "bottleneck", train, calibrate)
    out = {"pool": pool, "feat": feat, "logits": feat @ state["classifier.weight"].t()}
    out["embedding"] = feat / feat.pow(2).sum(dim=1, keepdim=True).sqrt()
    return out


# --- Writing checkpoints as the reference does ------------------------------------------------

numpy_multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
_OLD_NUMPY_NAMES = {
    id(numpy_multiarray._reconstruct): b"numpy.core.multiarray\n_reconstruct\n",
    id(numpy_multiarray.scalar): b"numpy.core.multiarray\nscalar\n",
}


class _Numpy1Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pickles numpy objects under their numpy 1.x names, as the published files have them."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        old = _OLD_NUMPY_NAMES.get(id(obj))
        if old is None:
            super().save_global(obj, name)
            return
        self.write(pickle.GLOBAL + old)
        self.memoize(obj)


class Numpy1Pickle:
    """A ``pickle_module`` for ``torch.save`` that writes numpy 1.x global names."""

    Pickler = _Numpy1Pickler
    Unpickler = pickle.Unpickler

    @staticmethod
    def dump(obj: Any, file: Any, protocol: int = 2) -> None:
        _Numpy1Pickler(file, protocol).dump(obj)


def metadata(epoch: int = 40) -> dict[str, Any]:
    """The metrics train.py stores: cmc (float32 ndarray, 20 ranks), mAP, mINP, epoch."""
    cmc = np.linspace(0.475, 0.97, 20, dtype=np.float32)
    return {"cmc": cmc, "mAP": np.float64(0.4765), "mINP": np.float64(0.353), "epoch": epoch}


def save_reference(
    state: dict[str, torch.Tensor],
    path: Path,
    layout: str = "dict",
    *,
    legacy: bool = False,
    numpy1: bool = True,
) -> Path:
    """Save as train.py does (``dict``), under DataParallel (``module``) or bare (``bare``)."""
    if layout == "module":
        state = OrderedDict((f"module.{k}", v) for k, v in state.items())
    content: Any = state if layout == "bare" else {"net": state, **metadata()}
    kwargs: dict[str, Any] = {"_use_new_zipfile_serialization": not legacy}
    if numpy1:
        kwargs["pickle_module"] = Numpy1Pickle
    torch.save(content, path, **kwargs)
    return path


@pytest.fixture(scope="module")
def agw_state() -> OrderedDict[str, torch.Tensor]:
    return reference_state()


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(3, 3, 64, 32, generator=gen), torch.randn(3, 3, 64, 32, generator=gen)


def assert_embeddings_match(
    net: VIReIDNetwork, state: dict, images: tuple[torch.Tensor, torch.Tensor], pooling: str
) -> None:
    visible, infrared = images
    with torch.no_grad():
        for modality, batch in (("visible", visible), ("infrared", infrared)):
            inputs = (batch, None) if modality == "visible" else (None, batch)
            expected = reference_forward(state, *inputs, pooling=pooling)["embedding"]
            torch.testing.assert_close(
                net.extract_features(batch, modality), expected, atol=1e-6, rtol=0
            )


def without_non_local(state: dict[str, torch.Tensor], pooling: str) -> OrderedDict:
    """The reference's --method base network: no non-local blocks (re-calibrated)."""
    base = OrderedDict((k, v.clone()) for k, v in state.items() if not k.startswith("NL_"))
    calibration = torch.randn(6, 3, 64, 32, generator=torch.Generator().manual_seed(5))
    reference_forward(base, calibration, calibration + 0.5, pooling=pooling, calibrate=True)
    return base


# --- Strict conversion and exact embeddings ------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "legacy", "numpy1"),
    [
        ("dict", False, True),  # train.py's dict, numpy 1.x pickle names
        ("dict", True, True),  # the same in torch's legacy (pre-1.6) file format
        ("dict", False, False),  # written with numpy 2
        ("module", False, True),  # saved from a DataParallel model
        ("bare", False, True),  # a bare state dict
    ],
)
def test_strict_conversion_reproduces_the_reference_embeddings(
    agw_state: OrderedDict,
    images: tuple[torch.Tensor, torch.Tensor],
    tmp_path: Path,
    layout: str,
    legacy: bool,
    numpy1: bool,
) -> None:
    path = save_reference(
        agw_state, tmp_path / "sysu_agw_best.t", layout, legacy=legacy, numpy1=numpy1
    )
    net = vz.convert_checkpoint(path)
    assert isinstance(net, AGW) and not net.training
    assert net.backbone.arch == "resnet50" and net.neck.classifier.out_features == 11
    assert [len(s) for s in net.backbone.shared_stages] == list(LAYERS)
    assert net.pool.formula == "agw" and net.pool.eps == 1e-12
    assert_embeddings_match(net, agw_state, images, "gem")
    source = net.pretrained_cfg.source
    assert source["epoch"] == (None if layout == "bare" else 40)
    assert source["variant"]["non_local_blocks"] == [0, 2, 3, 0]
    assert net.pretrained_cfg.dataset == "sysu_mm01"  # from the reference's file name
    # Every stem, layer, non-local, neck and classifier weight came from the file.
    own = net.state_dict()
    torch.testing.assert_close(
        own["backbone.infrared_stages.0.conv1.weight"],
        agw_state["thermal_module.thermal.conv1.weight"],
    )
    torch.testing.assert_close(
        own["backbone.shared_stages.2.4.extra.out.weight"], agw_state["NL_3.1.W.0.weight"]
    )
    assert not any(torch.isnan(v.float()).any() for v in own.values())


def test_the_clamped_gem_would_miss_the_reference_by_more_than_1e6(
    agw_state: OrderedDict, images: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    net = convert_checkpoint(save_reference(agw_state, tmp_path / "a.t"))
    expected = reference_forward(agw_state, images[0], None)["embedding"]
    net.pool.formula, net.pool.eps = "clamp", 1e-6
    with torch.no_grad():
        difference = (net.extract_features(images[0], "visible") - expected).abs().max()
    assert difference > 1e-6  # why AGW's GeM defaults to the reference formula


@pytest.mark.parametrize("pooling", ["avg", "gem"])
def test_base_networks_without_non_local_and_the_pooling_argument(
    agw_state: OrderedDict,
    images: tuple[torch.Tensor, torch.Tensor],
    tmp_path: Path,
    pooling: str,
) -> None:
    state = without_non_local(agw_state, pooling)
    state["classifier.weight"] = torch.randn(206, 2048) * 1e-3  # e.g. RegDB's 206 identities
    path = save_reference(state, tmp_path / "regdb_base_p4_n8_lr_0.1_seed_0_trial_1_best.t")
    net = convert_checkpoint(path, pooling=pooling)
    assert not any("extra" in k for k in net.state_dict())
    assert net.neck.classifier.out_features == 206 and net.pretrained_cfg.dataset == "regdb"
    assert net.pretrained_cfg.source["chosen"]["pooling"] == pooling
    assert_embeddings_match(net, state, images, pooling)
    # The weights cannot tell the pooling: the other choice gives other embeddings.
    other = convert_checkpoint(path, pooling="gem" if pooling == "avg" else "avg")
    with torch.no_grad():
        assert not torch.allclose(
            other.extract_features(images[0], "visible"),
            net.extract_features(images[0], "visible"),
            atol=1e-3,
        )


def test_unexpected_missing_and_reshaped_keys_fail_naming_them(
    agw_state: OrderedDict, tmp_path: Path
) -> None:
    state = OrderedDict(agw_state)
    state["NL_3.0.extra.weight"] = torch.zeros(3)
    state["head.weight"] = torch.zeros(3)
    del state["base_resnet.base.layer3.5.conv2.weight"]
    state["NL_2.1.W.0.weight"] = torch.zeros(512, 2, 1, 1)
    path = save_reference(state, tmp_path / "broken.t")
    with pytest.raises(WeightsMismatchError) as error:
        convert_checkpoint(path)
    message = str(error.value)
    assert str(path) in message
    assert "2 unexpected (e.g. ['NL_3.0.extra.weight', 'head.weight'])" in message
    assert "1 missing (e.g. ['base_resnet.base.layer3.5.conv2.weight'])" in message
    assert "1 of another shape (e.g. ['NL_2.1.W.0.weight (file (512, 2, 1, 1)" in message
    assert "used exactly once" in message and "\n" not in message


def test_many_unexpected_keys_are_counted_and_dataparallel_must_be_all_or_none(
    agw_state: OrderedDict, tmp_path: Path
) -> None:
    state = OrderedDict(agw_state) | {f"extra_{i}.weight": torch.zeros(1) for i in range(8)}
    with pytest.raises(
        WeightsMismatchError, match=r"8 unexpected \(e.g. \['extra_0.weight', .* and 3 more"
    ):
        convert_checkpoint(save_reference(state, tmp_path / "many.t"))
    mixed = OrderedDict(agw_state)
    mixed["module.classifier.weight"] = mixed.pop("classifier.weight")
    with pytest.raises(ConversionError, match="1 keys have the DataParallel prefix"):
        convert_checkpoint(save_reference(mixed, tmp_path / "mixed.t"))


def test_the_trunk_is_read_from_the_keys(agw_state: OrderedDict, tmp_path: Path) -> None:
    # A missing block still reads as resnet50, and the strict load names its weights.
    state = OrderedDict(
        (k, v) for k, v in agw_state.items() if not k.startswith("base_resnet.base.layer3.5.")
    )
    with pytest.raises(
        WeightsMismatchError, match=r"15 missing \(e.g. \[.base_resnet.base.layer3.5.bn1.bias"
    ):
        convert_checkpoint(save_reference(state, tmp_path / "short.t"))
    # Without layer4, no trunk fits.
    state = OrderedDict(
        (k, v) for k, v in agw_state.items() if not k.startswith("base_resnet.base.layer4.")
    )
    with pytest.raises(ConversionError, match=r"\[3, 4, 6, 0\] blocks\) matches none"):
        convert_checkpoint(save_reference(state, tmp_path / "no_layer4.t"))


# --- Safety: only tensors and the metadata's numpy types are unpickled ---------------------


class _CreatesAFile:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.target), "w"))


def test_a_malicious_pickle_is_refused_and_nothing_in_it_runs(tmp_path: Path) -> None:
    target = tmp_path / "created_by_the_pickle"
    path = tmp_path / "sysu_agw_best.t"
    torch.save(
        {"net": {"classifier.weight": torch.zeros(2, 2)}, "cmc": _CreatesAFile(target)}, path
    )
    pickle.loads(pickle.dumps(_CreatesAFile(target))).close()  # the payload does work...
    target.unlink()
    with pytest.raises(ConversionError) as error:
        convert_checkpoint(path)
    assert not target.exists()  # ...but the converter never ran it
    message = str(error.value)
    assert (
        str(path) in message
        and "reference to io.open" in message
        and "nothing in it was run" in message
    )


def test_pickled_objects_and_foreign_files_are_refused_naming_what_they_hold(
    tmp_path: Path,
) -> None:
    module_file = tmp_path / "whole_model.t"
    torch.save(torch.nn.Linear(2, 2), module_file)  # torch.save(net): a pickled module
    with pytest.raises(ConversionError, match=r"whole_model.t.*torch.nn.modules.linear.Linear"):
        convert_checkpoint(module_file)
    text = tmp_path / "notes.t"
    text.write_text("not a checkpoint")
    with pytest.raises(
        ConversionError, match=r"notes.t: not a PyTorch checkpoint written by torch.save"
    ):
        convert_checkpoint(text)
    listed = tmp_path / "list.t"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ConversionError, match=r"list.t: holds a list, not an agw checkpoint"):
        convert_checkpoint(listed)
    extra = tmp_path / "extra.t"
    torch.save({"net": {"classifier.weight": torch.zeros(1)}, "optimizer": {}}, extra)
    with pytest.raises(ConversionError, match=r"holds the keys \['optimizer'\] beside 'net'"):
        convert_checkpoint(extra)
    strings = tmp_path / "strings.t"
    torch.save({"net": {"classifier.weight": "zeros"}}, strings)
    with pytest.raises(ConversionError, match="maps 'classifier.weight' to a str"):
        convert_checkpoint(strings)
    with pytest.raises(FileNotFoundError, match="missing.t"):
        convert_checkpoint(tmp_path / "missing.t")


def test_the_numpy_allow_list_is_what_the_reference_metadata_needs(tmp_path: Path) -> None:
    names = {item[1] if isinstance(item, tuple) else item for item in NUMPY_ALLOW_LIST}
    assert names == {
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy.core.multiarray.scalar",
        np.ndarray,
        np.dtype,
        type(np.dtype(np.float32)),
        type(np.dtype(np.float64)),
    }
    # An integer array is not what the reference stores, and is refused.
    path = tmp_path / "int_cmc.t"
    content = {"net": {"classifier.weight": torch.zeros(1)}, "cmc": np.arange(20)}
    torch.save(content, path, pickle_module=Numpy1Pickle)
    with pytest.raises(ConversionError, match="Int64DType"):
        convert_checkpoint(path)
    # mINP is absent from the periodic saves of train.py.
    periodic = tmp_path / "periodic.t"
    state = {"net": {"classifier.weight": torch.zeros(1)}, **metadata()}
    del state["mINP"]
    torch.save(state, periodic, pickle_module=Numpy1Pickle)
    from vireid_zoo.hub.conversion import read_agw_checkpoint

    _, read = read_agw_checkpoint(periodic)
    assert read["epoch"] == 40 and read["mAP"] == pytest.approx(0.4765) and len(read["cmc"]) == 20


def test_unknown_codebases_and_options_are_named() -> None:
    with pytest.raises(ValueError, match="unknown codebase 'ddag'; known: agw"):
        convert_checkpoint("x.t", codebase="ddag")
    with pytest.raises(TypeError, match="arch"):
        convert_checkpoint("x.t", arch="resnet18")
    with pytest.raises(ValueError, match="pooling must be 'gem'"):
        convert_checkpoint("x.t", pooling="max")


# --- Provenance, saving and loading ---------------------------------------------------------


@pytest.fixture(scope="module")
def converted(agw_state: OrderedDict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("converted")
    path = save_reference(agw_state, folder / "sysu_agw_p4_n8_lr_0.1_seed_0_best.t")
    convert_checkpoint(path).save_pretrained(folder / "zoo")
    return folder


def test_provenance_is_in_the_config_and_the_card_never_as_measured(converted: Path) -> None:
    source_file = converted / "sysu_agw_p4_n8_lr_0.1_seed_0_best.t"
    saved = json.loads((converted / "zoo" / "config.json").read_text())
    cfg = saved["pretrained_cfg"]
    assert cfg["metrics"] == {} and cfg["recipe"] == {}
    source = cfg["source"]
    from vireid_zoo.core.files import file_sha256

    assert source["codebase"] == "agw" and source["file"] == source_file.name
    assert source["sha256"] == file_sha256(source_file) and source["epoch"] == 40
    assert source["reported_metrics"] == {
        "rank1": 0.475,
        "rank5": pytest.approx(0.579211),
        "rank10": pytest.approx(0.709474),
        "rank20": 0.97,
        "mAP": 0.4765,
        "mINP": 0.353,
    }
    assert source["reported_by"] == REPORTED_BY
    card = (converted / "zoo" / "README.md").read_text()
    measured, reported = card.split("## Source (converted weights)")
    assert "## Results (measured by vireid-zoo)" in measured
    assert "| (none yet: measure the converted weights with `vireid-zoo test`) | |" in measured
    assert "model-index" not in measured  # the Hub's results only ever hold measured ones
    assert (
        "### Results reported by the source checkpoint (the reference selects its best epoch "
        "on the test set)" in reported
    )
    assert "| rank1 | 47.50 |" in reported and "| mAP | 47.65 |" in reported
    assert source["sha256"] in reported and "epoch: 40" in reported


def test_a_converted_folder_loads_back_in_one_line(
    converted: Path, agw_state: OrderedDict, images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    for net in (
        vz.create_model(f"local-dir:{converted / 'zoo'}"),
        VIReIDNetwork.from_pretrained(converted / "zoo"),
    ):
        assert isinstance(net, AGW) and net.pretrained_cfg.source["epoch"] == 40
        assert_embeddings_match(net, agw_state, images, "gem")


def test_configs_saved_before_the_source_field_still_load() -> None:
    old = PretrainedConfig("agw_resnet18", embedding_dim=512).to_dict()
    del old["source"]
    assert PretrainedConfig.from_dict(old).source is None


def test_convert_checkpoint_is_exported_lazily() -> None:
    from vireid_zoo.hub import conversion

    assert vz.convert_checkpoint is conversion.convert_checkpoint
    assert "convert_checkpoint" in vz.__all__
    code = "import sys, vireid_zoo; print('vireid_zoo.hub.conversion' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        vz.nothing  # noqa: B018


def test_the_test_checkpoint_rebuilds_what_the_weights_cannot_tell(
    agw_state: OrderedDict, images: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    from vireid_zoo.hub.checkpoints import load_trained_module

    state = without_non_local(agw_state, "avg")
    net = convert_checkpoint(save_reference(state, tmp_path / "base.t"), pooling="avg")
    checkpoint = write_test_checkpoint(net, tmp_path / "base.ckpt")
    content = torch.load(checkpoint, weights_only=True)  # a plain, weights-only file
    assert content["hyper_parameters"]["network"]["init_args"]["pooling"] == "avg"
    assert content["vireid_zoo_pretrained_cfg"]["source"] == net.pretrained_cfg.source
    module, _ = load_trained_module(checkpoint)
    assert module.hparams["network"]["init_args"]["non_local_blocks"] == [0, 0, 0, 0]
    assert_embeddings_match(module.net, state, images, "avg")
    with pytest.raises(TypeError, match="expected a converted AGW"):
        write_test_checkpoint(vz.create_model("mhn_resnet18", num_classes=2), tmp_path / "x")


# --- The command line: convert, measure with `vireid-zoo test`, publish ---------------------


def test_convert_then_test_then_publish_from_the_command_line(
    sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file

    from vireid_zoo.data import SYSUMM01DataModule

    # Reference weights whose BN statistics fit the synthetic test images, as trained
    # weights fit their data (random weights run on other images overflow float32).
    data = SYSUMM01DataModule(
        root=sysu_root, image_size=(64, 32), num_workers=0, trials=2, check_counts=False
    )
    data.setup("test")
    batches = list(data.test_dataloader())
    images_ = torch.cat([b["image"] for b in batches])
    modalities = torch.cat([b["modality"] for b in batches])
    state = reference_state(num_classes=13)  # the synthetic set's 13 training identities
    reference_forward(state, images_[modalities == 0], images_[modalities == 1], calibrate=True)
    source = save_reference(state, tmp_path / "sysu_agw_p4_n8_lr_0.1_seed_0_best.t")

    checkpoint, folder = tmp_path / "agw_sysu.ckpt", tmp_path / "agw-sysu"
    convert = ["convert", str(source), "--codebase", "agw", "--output", str(folder)]
    assert main([*convert, "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert f"reported by {REPORTED_BY}, not measured by vireid-zoo: rank1 47.50%" in out
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert main(convert) == 2  # never over an existing folder
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (
        main(["convert", str(source), "--codebase", "nope", "--output", str(tmp_path / "x")]) == 2
    )
    assert "unknown codebase 'nope'; known: agw" in capsys.readouterr().err

    # Unmeasured weights are not published.
    publish = ["publish", str(checkpoint), "--repo-id", "me/agw-sysu", "--output"]
    assert main([*publish, str(tmp_path / "published")]) == 2
    assert "refuses to publish without measured metrics" in capsys.readouterr().err

    # `vireid-zoo test` measures the converted network: the config must ask for its trunk
    # (a ResNet-18 config is refused), and what the config leaves at its default comes
    # from the checkpoint, with a note. The input is the converted weights' contract (the
    # reference's 288x144): another size is refused, naming both.
    config = write_config(tmp_path, sysu_root, data={"image_size": [64, 32]})
    tested = tmp_path / "tested"
    args = ["--config", str(config), "--trainer.default_root_dir", str(tested)]
    assert main(["test", *args, "--ckpt_path", str(checkpoint)]) == 2
    assert "asks for AGWModule(AGW, arch='resnet18')" in capsys.readouterr().err
    args += ["--model.network.arch", "resnet50"]
    assert main(["test", *args, "--ckpt_path", str(checkpoint)]) == 2
    assert "image_size=[288, 144] in the checkpoint, [64, 32] asked" in capsys.readouterr().err
    args += ["--data.init_args.image_size", "[288, 144]"]
    assert main(["test", *args, "--ckpt_path", str(checkpoint)]) == 0
    assert "non_local_blocks=[0, 2, 3, 0] (the checkpoint's" in capsys.readouterr().err
    results = tested / "test_results.json"
    measured = json.loads(results.read_text())["tasks"]["sysu_mm01/all"]["mean"]
    assert all(0 <= value <= 1 for value in measured.values())

    assert main([*publish, str(tmp_path / "published"), "--results", str(results)]) == 0
    published = tmp_path / "published"
    cfg = json.loads((published / "config.json").read_text())["pretrained_cfg"]
    converted_cfg = json.loads((folder / "config.json").read_text())["pretrained_cfg"]
    assert cfg["source"] == converted_cfg["source"] and cfg["dataset"] == "sysu_mm01"
    assert cfg["metrics"]["sysu_mm01/all/mAP"] == pytest.approx(measured["mAP"])
    assert cfg["recipe"] == {} and cfg["hub_id"] == "me/agw-sysu" and cfg["license"] == "other"
    card = (published / "README.md").read_text()
    measured_part, reported_part = card.split("## Source (converted weights)")
    assert "| sysu_mm01/all/mAP |" in measured_part and "model-index" in measured_part
    assert "| rank1 | 47.50 |" in reported_part and "sysu_mm01" not in reported_part
    first, second = (
        load_file(folder / "model.safetensors"),
        load_file(published / "model.safetensors"),
    )
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


# --- The AGW training step equals the reference's ---------------------------------------------


def reference_wrt(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Weighted regularisation triplet: softmax-weighted positive and negative distances
    (row max shift, +1e-6 in the normaliser), then the soft margin loss."""
    n = len(labels)
    norms = features.pow(2).sum(dim=1, keepdim=True).expand(n, n)
    dist = (norms + norms.t() - 2 * features @ features.t()).clamp(min=1e-12).sqrt()
    positive = labels[:, None].eq(labels[None, :]).float()
    negative = 1 - positive

    def weights(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shifted = torch.exp(scores - (scores * mask).max(dim=1, keepdim=True)[0]) * mask
        return shifted / (shifted.sum(dim=1, keepdim=True) + 1e-6)

    furthest = (dist * positive * weights(dist * positive, positive)).sum(dim=1)
    closest = (dist * negative * weights(-dist * negative, negative)).sum(dim=1)
    return F.soft_margin_loss(closest - furthest, torch.ones_like(closest))


def reference_step(
    state: OrderedDict, visible: torch.Tensor, infrared: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """One step of the reference's train.py at epoch 0, in place on ``state``.

    CE on the bottleneck logits + WRT on the pooled features of both modalities; SGD
    (momentum 0.9, Nesterov, weight decay 5e-4) with three groups: everything but the
    bottleneck and the classifier at a tenth of the learning rate, which at warm-up epoch
    0 is 0.1 * (0 + 1) / 10. The copies embed_net never runs get no gradient (SGD skips
    them), nor does the frozen bottleneck bias.
    """
    unused = (
        "visible_module.visible.layer",
        "thermal_module.thermal.layer",
        "base_resnet.base.conv1",
        "base_resnet.base.bn1",
    )
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    trainable = [
        k
        for k in state
        if not k.startswith(unused) and not k.endswith(buffers) and k != "bottleneck.bias"
    ]
    for key in trainable:
        state[key].requires_grad_(True)
    out = reference_forward(state, visible, infrared, train=True)
    both = torch.cat([labels, labels])
    loss = F.cross_entropy(out["logits"], both) + reference_wrt(out["pool"], both)
    lr = 0.1 * (0 + 1) / 10
    head = ("bottleneck.", "classifier.")
    sgd = torch.optim.SGD(
        [
            {"params": [state[k] for k in trainable if not k.startswith(head)], "lr": 0.1 * lr},
            {"params": [state[k] for k in trainable if k.startswith("bottleneck.")], "lr": lr},
            {"params": [state["classifier.weight"]], "lr": lr},
        ],
        lr=lr,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
    )
    sgd.zero_grad()
    loss.backward()
    sgd.step()
    for key in trainable:
        state[key] = state[key].detach()
    return loss.detach()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_agw_training_step_equals_an_independent_reference_step(
    agw_state: OrderedDict, tmp_path: Path, dtype: torch.dtype
) -> None:
    """AGWModule's step (CE + WRT, two parameter groups, Nesterov SGD, warm-up epoch 0).

    In float32 the loss agrees to 4e-6 and the updated weights to 2e-6; random weights are
    ill-conditioned (one step moves the stems by about 0.3), so float32 rounding of their
    large gradients shows at 1e-6. In float64 both agree to 1e-10: the same arithmetic.
    """
    gen = torch.Generator().manual_seed(3)
    visible = torch.randn(6, 3, 64, 32, generator=gen, dtype=dtype)
    infrared = torch.randn(6, 3, 64, 32, generator=gen, dtype=dtype) + 0.5
    labels = torch.tensor([0, 0, 4, 4, 9, 9])
    # Trained features are close enough for the reference's soft margin loss,
    # log(1 + exp(-x)), not to overflow; random ones are not: scale layer4's output down.
    state = OrderedDict((k, v.clone()) for k, v in agw_state.items())
    for key in state:
        if key.startswith("base_resnet.base.layer4.") and key.endswith(
            ("bn3.weight", "bn3.bias", "downsample.1.weight", "downsample.1.bias")
        ):
            state[key] *= 0.1

    # The zoo: AGWModule from the converted weights, its optimiser at warm-up epoch 0.
    module = AGWModule(convert_checkpoint(save_reference(state, tmp_path / "a.t")))
    module = module.to(dtype).train()
    module.log_dict = lambda *args, **kwargs: None  # no trainer attached
    optimizer = module.configure_optimizers()["optimizer"]
    batch = {
        "visible": visible,
        "infrared": infrared,
        "visible_pid": labels,
        "infrared_pid": labels,
    }
    loss = module.training_step(batch, 0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    state = OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in state.items())
    initial = OrderedDict((k, v.clone()) for k, v in state.items())
    reference_loss = reference_step(state, visible, infrared, labels)

    loss_tolerance, weight_tolerance = (4e-6, 2e-6) if dtype == torch.float32 else (1e-10, 1e-10)
    torch.testing.assert_close(loss.detach(), reference_loss, atol=loss_tolerance, rtol=0)
    names = agw_reference_names(module.net)
    for key, value in module.net.state_dict().items():
        if key.endswith("num_batches_tracked"):  # the functional BN does not count
            continue
        torch.testing.assert_close(
            value,
            state[names[key]],
            atol=weight_tolerance,
            rtol=0,
            msg=lambda m, k=key: f"{k}: {m}",
        )
    # The step did move the weights (the trunk at lr 0.001, the neck at 0.01).
    stem = "visible_module.visible.conv1.weight"
    assert (state[stem] - initial[stem]).abs().max() > 1e-3
