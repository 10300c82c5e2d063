"""The two MHN-specific modules: MAM (aggregation) and DRM (dimensional refinement).

Zuo, Peng, Cheng and Wang, "Modality-perceptive Harmonization Network for
visible-infrared person re-identification", Information Fusion 118, 102979 (2025). Only
the abstract is public: what it states is followed, every other detail is an assumption
of this zoo, marked [A] and set by a constructor argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from vireid_zoo.blocks import ChannelAttention, SpatialAttention
from vireid_zoo.blocks.attention import ChannelPooling

MapMode = Literal["channel", "pixel", "both"]
MAP_MODES: tuple[MapMode, ...] = ("channel", "pixel", "both")
Cue = Literal["visible", "infrared", "product", "difference"]
CUES: tuple[Cue, ...] = ("visible", "infrared", "product", "difference")
"""MAM's cues: the two features, their product (co-activation) and their absolute
difference (disagreement: 0 exactly where the two modalities agree)."""
DEFAULT_CUES: tuple[Cue, ...] = CUES
"""The cues MAM reads by default [A]: all four."""


class ModalityPerceptiveAggregation(nn.Module):
    r"""Modality-Perceptive Aggregation Module (MAM): fuse paired features into a hybrid.

    Abstract: MAM "explicitly captures cross-modality consistency" between visible and
    infrared features and adaptively fuses them into a harmonious hybrid modality.
    [A]: from cues stacked along the channels ([`CUES`][], by default all four,
    $z = [f_v, f_i, f_v \odot f_i, |f_v - f_i|]$), a consistency map

    $$
    A = \sigma\big(W_c * \mathrm{GAP}(z) + W_p * z\big), \qquad
    f_h = A \odot f_v + (1 - A) \odot f_i,
    $$

    where $W_c, W_p$ are 1x1 convolutions from the cues' channels to C: ``"channel"``
    keeps only the channel-wise term (one weight per channel, from pooled descriptors),
    ``"pixel"`` only the pixel-wise one (one weight per channel and position), ``"both"``
    sums their logits, as attentional feature fusion does (Dai et al., "Attentional
    Feature Fusion", WACV 2021, the same $M \odot X + (1 - M) \odot Y$ form).

    The cues are what "consistency" can be read from. The product is co-activation, and
    it is blind to agreement: (1, 1) and (0.5, 2) have the same product, and from
    $f_v, f_i, f_v \odot f_i$ alone no map can single out where the two features are
    equal (a logit linear in them has a hyperbola, not a band around
    $f_v = f_i$, as its level set). The absolute difference is 0 exactly where they
    agree and unchanged by a shift or a sign flip common to both, so it gives the map a
    direct measure of cross-modality agreement.

    With ``zero_init`` the convolutions start at zero, so the map starts at 0.5 (the hybrid
    is the mean of the two modalities) [A]; otherwise they keep PyTorch's default
    initialisation. Each value of $f_h$ lies between those of $f_v$ and
    $f_i$: where $A = 1$ it is the visible feature, where $A = 0$ the
    infrared one.

    Args:
        channels: Channels C of the two feature maps.
        mode: ``"channel"``, ``"pixel"`` or ``"both"`` (the default) [A].
        cues: A non-empty subset of [`CUES`][], in any order [A] ([`DEFAULT_CUES`][]).
        zero_init: Start the map at 0.5 everywhere [A] (True).
    """

    def __init__(
        self,
        channels: int,
        mode: MapMode = "both",
        cues: Sequence[Cue] = DEFAULT_CUES,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        if mode not in MAP_MODES:
            raise ValueError(f"mode must be one of {MAP_MODES}, got {mode!r}")
        if channels <= 0:
            raise ValueError(f"channels must be > 0, got {channels!r}")
        if not cues or any(cue not in CUES for cue in cues) or len(set(cues)) != len(cues):
            raise ValueError(
                f"MAM cues must be a non-empty subset of {CUES} without repeats, got {cues!r}"
            )
        self.mode: MapMode = mode
        self.cues: tuple[Cue, ...] = tuple(cues)
        width = len(self.cues) * channels
        self.channel_conv = self._conv(width, channels, zero_init) if mode != "pixel" else None
        self.pixel_conv = self._conv(width, channels, zero_init) if mode != "channel" else None

    @staticmethod
    def _conv(width: int, channels: int, zero_init: bool) -> nn.Conv2d:
        conv = nn.Conv2d(width, channels, kernel_size=1)
        if zero_init:
            nn.init.zeros_(conv.weight)
            assert conv.bias is not None  # built with a bias
            nn.init.zeros_(conv.bias)
        return conv

    def cue_maps(self, visible: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """The cues stacked along the channels: (B, len(cues) * C, H, W)."""
        values = {
            "visible": lambda: visible,
            "infrared": lambda: infrared,
            "product": lambda: visible * infrared,
            "difference": lambda: (visible - infrared).abs(),
        }
        return torch.cat([values[cue]() for cue in self.cues], dim=1)

    def consistency_map(self, visible: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """The map A in (0, 1): (B, C, 1, 1) in ``"channel"`` mode, else (B, C, H, W)."""
        if visible.shape != infrared.shape or visible.dim() != 4:
            raise ValueError(
                "MAM fuses paired (B, C, H, W) feature maps of the same shape, got "
                f"{tuple(visible.shape)} and {tuple(infrared.shape)}"
            )
        cues = self.cue_maps(visible, infrared)
        logits = torch.zeros((), dtype=visible.dtype, device=visible.device)
        if self.channel_conv is not None:
            logits = logits + self.channel_conv(cues.mean(dim=(2, 3), keepdim=True))
        if self.pixel_conv is not None:
            logits = logits + self.pixel_conv(cues)
        return torch.sigmoid(logits)

    def forward(
        self, visible: torch.Tensor, infrared: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(hybrid, A)`` for paired maps: row j of both shows the same identity."""
        consistency = self.consistency_map(visible, infrared)
        return consistency * visible + (1.0 - consistency) * infrared, consistency


class DimensionalRefinement(nn.Module):
    """Dimensional Refinement Module (DRM): decoupled channel and spatial branches.

    Abstract: DRM "decouples semantic information along the channel and spatial
    dimensions" to enhance intra-modality diversity. [A]: on the map of a stage (layer4 by
    default, see ``drm_stage`` of [`MHN`][]), a channel branch
    re-weights channels only, squeeze-and-excitation style
    ([`ChannelAttention`][vireid_zoo.blocks.attention.ChannelAttention], one weight per channel, the
    same at every position), and a spatial branch re-weights positions only, CBAM style
    ([`SpatialAttention`][vireid_zoo.blocks.attention.SpatialAttention], one weight per position,
    the same for every channel). The branches run in parallel on the same map, not in sequence, so
    each sees one dimension only. Each branch's pooling, BNNeck, losses and their decorrelation live
    in [`MHN`][] and the module.

    Args:
        channels: Channels of the map.
        reduction: Hidden-width ratio of the channel branch's MLP [A] (16, as SE).
        channel_pooling: Descriptors of the channel branch [A]: ``("avg",)`` is SE,
            ``("avg", "max")`` CBAM's channel branch.
        kernel_size: Convolution size of the spatial branch [A] (7, as CBAM).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        channel_pooling: Sequence[ChannelPooling] = ("avg",),
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction, pooling=channel_pooling)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the channel-refined and the spatially refined maps of (B, C, H, W)."""
        return self.channel(feature_map), self.spatial(feature_map)
