"""Two-stream ResNet trunk: modality-specific early stages, shared later stages.

The trunk that AGW (Ye et al., "Deep Learning for Person Re-identification: A Survey and
Outlook", TPAMI 2021, its AGW baseline) and the methods of this zoo build on: an ImageNet ResNet
whose first stage(s) are duplicated, one copy per modality, while the later stages are
shared, so that low-level modality differences are absorbed before a common embedding
is learnt. The last stride is set to 1 (Luo et al., "Bag of Tricks and a Strong Baseline
for Deep Person Re-identification", CVPRW 2019, the "last stride" trick) to keep a finer final map.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn

from vireid_zoo.blocks.imagenet import (
    REFERENCE_WEIGHTS,
    imagenet_weights_file,
    load_imagenet_weights,
)
from vireid_zoo.core.records import Modality

#: timm architectures with the plain ResNet layout (7x7 stem, 1x1-conv downsample paths).
SUPPORTED_ARCHS: tuple[str, ...] = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
)
LAST_STAGE = 4
"""Index of the last residual stage (layer4)."""


class BlockWithInsert(nn.Module):
    """A residual block followed by a module inserted after it.

    Made by [`TwoStreamResNet.insert_after_block`][]. Its children are ``block`` (the
    original residual block, whose parameter names are kept under ``block.``) and
    ``extra`` (the inserted module, under ``extra.``).

    Args:
        block: The residual block that runs first.
        extra: The module applied to the block's output.
    """

    def __init__(self, block: nn.Module, extra: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the block, then the inserted module."""
        return self.extra(self.block(x))


class TwoStreamResNet(nn.Module):
    """ResNet with modality-specific stages ``0..split_stage`` and shared later stages.

    Stage 0 is the stem (``conv1``, ``bn1``, ``act1``, ``maxpool``) and stages 1..4 are
    ``layer1``..``layer4`` of a timm ResNet. The visible and infrared copies of the
    specific stages start from the same weights. State-dict keys are
    ``visible_stages.{s}.*``, ``infrared_stages.{s}.*`` (``s`` = stage index) and
    ``shared_stages.{s - split_stage - 1}.{block}.*``; the stem keeps timm's names
    (``visible_stages.0.conv1.weight``).

    The networks of the zoo pass their ``backbone_pretrained``, ``backbone_weights`` and
    ``backbone_weights_file`` arguments as ``pretrained``, ``weights`` and ``weights_file``.

    Args:
        arch: A timm architecture from `SUPPORTED_ARCHS`.
        pretrained: Start from ImageNet weights (needs the network or a filled cache).
        weights: The timm pretrained tag of those weights (default ``"tv_in1k"``,
            torchvision's, as the reference VI-ReID code; see
            [`vireid_zoo.blocks.imagenet`][]).
        weights_file: A local ``.safetensors`` (preferred) or ``.pth``/``.pt`` ImageNet state
            dict of the same architecture, in timm's or torchvision's layout; when given it
            is used instead of the download, whatever ``pretrained`` says. Loading is strict
            except for the ``fc.*`` head.
        split_stage: Last modality-specific stage, 0 (stem only, the AGW setting) to 3.
        last_stride: Stride of ``layer4``'s first block (its strided conv and its
            downsample path): 1 doubles the final map's height and width, 2 is ImageNet's.

    Raises:
        ValueError: An unsupported ``arch``, ``split_stage`` or ``last_stride``.
        ImageNetWeightsUnavailableError: The ImageNet weights could not be fetched.
        WeightsMismatchError: ``weights_file`` does not match the architecture.
    """

    def __init__(
        self,
        arch: str = "resnet50",
        *,
        pretrained: bool = False,
        weights: str = REFERENCE_WEIGHTS,
        weights_file: str | Path | None = None,
        split_stage: int = 0,
        last_stride: int = 1,
    ) -> None:
        super().__init__()
        if split_stage not in range(LAST_STAGE):
            raise ValueError(
                f"split_stage must be 0..{LAST_STAGE - 1} (at least layer4 is shared), "
                f"got {split_stage!r}"
            )
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        resnet = _build_resnet(arch, pretrained, weights, weights_file)
        layers = [_residual_stage(resnet, stage) for stage in range(1, LAST_STAGE + 1)]
        _set_first_block_stride(layers[-1], last_stride)
        stem = nn.Sequential(
            OrderedDict(
                conv1=resnet.conv1, bn1=resnet.bn1, act1=resnet.act1, maxpool=resnet.maxpool
            )
        )
        stages = [stem, *layers]
        self.arch = arch
        self.split_stage = split_stage
        self.last_stride = last_stride
        #: Channels of the feature map after each stage 0..4.
        self.stage_channels: tuple[int, ...] = tuple(
            _num_channels(info) for info in resnet.feature_info
        )
        self.out_channels: int = self.stage_channels[-1]
        self.visible_stages = nn.ModuleList(stages[: split_stage + 1])
        self.infrared_stages = copy.deepcopy(self.visible_stages)
        self.shared_stages = nn.ModuleList(stages[split_stage + 1 :])

    def forward_specific(self, x: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Run the stages ``0..split_stage`` of the given modality's stream.

        Args:
            x: Images, (B, 3, H, W).
            modality: ``"visible"`` or ``"infrared"``: the images' modality (never their
                role as query or gallery).

        Returns:
            The feature map after stage ``split_stage``.
        """
        if modality == "visible":
            stages = self.visible_stages
        elif modality == "infrared":
            stages = self.infrared_stages
        else:
            raise ValueError(f"modality must be 'visible' or 'infrared', got {modality!r}")
        for stage in stages:
            x = stage(x)
        return x

    def forward_shared(
        self, x: torch.Tensor, start_stage: int | None = None, end_stage: int | None = None
    ) -> torch.Tensor:
        """Run the shared stages ``start_stage..end_stage`` (inclusive, absolute indices).

        Args:
            x: The feature map entering ``start_stage``.
            start_stage: First stage to run; defaults to ``split_stage + 1``.
            end_stage: Last stage to run; defaults to 4. Methods with their own heads on a
                late stage stop earlier.

        Returns:
            The feature map after ``end_stage``.
        """
        first = self.split_stage + 1
        start = first if start_stage is None else start_stage
        end = LAST_STAGE if end_stage is None else end_stage
        if not first <= start <= end <= LAST_STAGE:
            raise ValueError(
                f"need {first} <= start_stage <= end_stage <= {LAST_STAGE} (shared stages "
                f"with split_stage={self.split_stage}), got start_stage={start_stage!r}, "
                f"end_stage={end_stage!r}"
            )
        for stage in self.shared_stages[start - first : end - first + 1]:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Map images of one modality to the final feature map (B, out_channels, h, w)."""
        return self.forward_shared(self.forward_specific(x, modality))

    def shared_stage(self, stage: int) -> nn.Sequential:
        """The residual blocks of shared stage ``stage`` (absolute index, 1..4).

        Raises:
            ValueError: ``stage`` is modality-specific (``<= split_stage``) or not a stage.
        """
        first = self.split_stage + 1
        if not first <= stage <= LAST_STAGE:
            raise ValueError(
                f"stage {stage!r} is not shared: the shared stages are {first}..{LAST_STAGE} "
                f"(split_stage={self.split_stage})"
            )
        blocks = self.shared_stages[stage - first]
        assert isinstance(blocks, nn.Sequential)  # every stage is the stem or a ResNet layer
        return blocks

    def insert_after_block(self, stage: int, block: int, module: nn.Module) -> None:
        """Insert ``module`` after residual block ``block`` (0-based) of a shared stage.

        The block is replaced in place by a [`BlockWithInsert`][], so block indices do
        not move: its parameters become ``shared_stages.{j}.{block}.block.*`` and the
        module's ``shared_stages.{j}.{block}.extra.*``, with ``j = stage - split_stage - 1``.
        AGW's non-local blocks go after blocks 2, 3 of stage 2 and 3, 4, 5 of stage 3.

        Args:
            stage: Absolute index of a shared stage (``split_stage + 1`` .. 4).
            block: Index of the residual block within that stage.
            module: Module mapping the block's output to a tensor of the same shape.
        """
        blocks = self.shared_stage(stage)
        if not 0 <= block < len(blocks):
            raise ValueError(f"stage {stage} has blocks 0..{len(blocks) - 1}, got block {block!r}")
        if isinstance(blocks[block], BlockWithInsert):
            raise ValueError(f"block {block} of stage {stage} already has an inserted module")
        blocks[block] = BlockWithInsert(blocks[block], module)


def _build_resnet(
    arch: str, pretrained: bool, weights: str, weights_file: str | Path | None
) -> ResNet:
    """Create the timm ResNet and fill it with the requested ImageNet weights."""
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"arch must be one of {', '.join(SUPPORTED_ARCHS)}; got {arch!r}")
    model = timm.create_model(arch, pretrained=False)
    assert isinstance(model, ResNet)  # every supported architecture is a timm ResNet
    if weights_file is not None:
        load_imagenet_weights(model, arch, Path(weights_file), "backbone_weights_file")
    elif pretrained:
        path = imagenet_weights_file(arch, weights)
        load_imagenet_weights(model, arch, path, f"the {arch}.{weights} weights")
    return model


def _residual_stage(resnet: ResNet, stage: int) -> nn.Sequential:
    """``layer{stage}`` of a timm ResNet, which adds its stages by name (untyped)."""
    layer = resnet.get_submodule(f"layer{stage}")
    assert isinstance(layer, nn.Sequential)
    return layer


def _num_channels(info: Mapping[str, object]) -> int:
    """The ``num_chs`` of an entry of timm's ``feature_info`` (its values are untyped)."""
    channels = info["num_chs"]
    assert isinstance(channels, int)
    return channels


def _set_first_block_stride(stage: nn.Sequential, stride: int) -> None:
    """Set the stride of a stage's first block: its strided conv and its downsample conv."""
    block = stage[0]
    if isinstance(block, BasicBlock):
        strided = block.conv1
    elif isinstance(block, Bottleneck):
        strided = block.conv2
    else:
        raise TypeError(f"expected a timm BasicBlock or Bottleneck, got {type(block).__name__}")
    downsample = block.downsample
    if not isinstance(downsample, nn.Sequential) or not isinstance(downsample[0], nn.Conv2d):
        raise TypeError("expected the first block's downsample path to start with a Conv2d")
    strided.stride = (stride, stride)
    downsample[0].stride = (stride, stride)
