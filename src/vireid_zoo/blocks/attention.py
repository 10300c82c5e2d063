"""Attention blocks: channel (SE / CBAM), spatial (CBAM) and non-local."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

ChannelPooling = Literal["avg", "max"]
NonLocalNormalization = Literal["dot", "softmax"]


class ChannelAttention(nn.Module):
    r"""Channel attention: pooled channel descriptors -> shared MLP -> sigmoid -> scale.

    With ``pooling=("avg",)`` this is squeeze-and-excitation (Hu, Shen and Sun,
    "Squeeze-and-Excitation Networks", CVPR 2018, Sec. 3, squeeze and excitation); with
    ``("avg", "max")`` it is CBAM's channel branch (Woo et al., "CBAM: Convolutional Block
    Attention Module", ECCV 2018, Sec. 3, "Channel attention module"):
    $w = \sigma(\sum_{pool} \mathrm{MLP}(pool(F)))$, output $F \cdot w$.

    An optional mask (B, 1, H, W) restricts the pooling to a region: the average becomes
    $\sum_{hw} m\,F / \sum_{hw} m$ (masked GAP, e.g. over a parsed foreground) and
    the max is taken over positions with ``m > 0``. A sample whose mask is all zero (e.g.
    no person parsed) is pooled over the whole map, as without a mask.

    Args:
        channels: Number of input channels.
        reduction: Ratio between ``channels`` and the MLP's hidden width (at least 1 unit).
        pooling: Descriptors to pool, summed after the shared MLP.
        eps: Guards the masked average's denominator.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        pooling: Sequence[ChannelPooling] = ("avg",),
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if not pooling or any(kind not in ("avg", "max") for kind in pooling):
            raise ValueError(
                f"pooling must be a non-empty subset of ('avg', 'max'), got {pooling!r}"
            )
        if len(set(pooling)) != len(pooling):
            raise ValueError(f"pooling lists a descriptor twice: {pooling!r}")
        if channels <= 0 or reduction <= 0:
            raise ValueError(f"need channels > 0 and reduction > 0, got {channels}, {reduction}")
        hidden = max(1, channels // reduction)
        self.pooling: tuple[ChannelPooling, ...] = tuple(pooling)
        self.eps = eps
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def weights(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Return the attention weights (B, C, 1, 1), each in (0, 1).

        Args:
            x: Feature map (B, C, H, W).
            mask: Optional non-negative weights (B, 1, H, W) at the feature map's size.
        """
        if mask is not None and (
            mask.dim() != 4
            or mask.shape[1] != 1
            or mask.shape[0] != x.shape[0]
            or mask.shape[2:] != x.shape[2:]
        ):
            raise ValueError(
                f"mask must have shape {(x.shape[0], 1, *x.shape[2:])} for a feature map of "
                f"shape {tuple(x.shape)}, got {tuple(mask.shape)}"
            )
        scores = sum(self.mlp(self._pool(x, kind, mask)) for kind in self.pooling)
        return torch.sigmoid(scores)[..., None, None]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Re-weight the channels of ``x`` (B, C, H, W); see [`weights`][]."""
        return x * self.weights(x, mask)

    def _pool(
        self, x: torch.Tensor, kind: ChannelPooling, mask: torch.Tensor | None
    ) -> torch.Tensor:
        unmasked = x.mean(dim=(2, 3)) if kind == "avg" else x.amax(dim=(2, 3))
        if mask is None:
            return unmasked
        area = mask.sum(dim=(2, 3))
        if kind == "avg":
            pooled = (x * mask).sum(dim=(2, 3)) / area.clamp(min=self.eps)
        else:
            pooled = x.masked_fill(mask <= 0, float("-inf")).amax(dim=(2, 3))
        return torch.where(area > self.eps, pooled, unmasked)


class SpatialAttention(nn.Module):
    r"""CBAM spatial attention: channel-avg and channel-max maps -> conv -> sigmoid -> scale.

    Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018, Sec. 3,
    "Spatial attention module":
    $M_s = \sigma(f^{k \times k}([\mathrm{AvgPool}_c(F); \mathrm{MaxPool}_c(F)]))$,
    output $F \cdot M_s$. The convolution has no bias, as in the equation.

    Args:
        kernel_size: Odd size of the convolution (7 in the paper).
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size <= 0 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size!r}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Return the spatial attention map (B, 1, H, W), each value in (0, 1)."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Re-weight the positions of ``x`` (B, C, H, W); see [`weights`][]."""
        return x * self.weights(x)


class NonLocalBlock(nn.Module):
    r"""Non-local block with a residual connection, configured as in AGW.

    Wang et al., "Non-local Neural Networks", CVPR 2018, Sec. 3 (generic non-local
    operation, its dot-product and embedded-Gaussian forms, and the non-local block):
    $z_i = x_i + \mathrm{BN}(W_z\, y_i)$,
    $y_i = \sum_j f(x_i, x_j)\, g(x_j)$, where $\theta, \phi, g$ are 1x1
    convolutions to ``inter_channels``. With ``"dot"``,
    $f = \theta(x_i)^\top \phi(x_j) / N$ (N = H W, the paper's dot-product form);
    with ``"softmax"``, $f = \mathrm{softmax}_j(\theta(x_i)^\top \phi(x_j))$
    (embedded Gaussian). AGW (Ye et al., TPAMI 2021, its new baseline) uses ``"dot"`` with a
    single inter channel. The BN after $W_z$ is zero-initialised, so the block
    starts as the identity. With C input channels and one inter channel it has
    ``7 C + 3`` parameters.

    Args:
        in_channels: Channels C of the input (and output).
        inter_channels: Channels of the embeddings theta, phi and g.
        normalization: ``"dot"`` (divide by N) or ``"softmax"``.
    """

    def __init__(
        self,
        in_channels: int,
        inter_channels: int = 1,
        normalization: NonLocalNormalization = "dot",
    ) -> None:
        super().__init__()
        if normalization not in ("dot", "softmax"):
            raise ValueError(f"normalization must be 'dot' or 'softmax', got {normalization!r}")
        if in_channels <= 0 or inter_channels <= 0:
            raise ValueError(
                f"need in_channels > 0 and inter_channels > 0, got {in_channels}, {inter_channels}"
            )
        self.normalization: NonLocalNormalization = normalization
        self.theta = nn.Conv2d(in_channels, inter_channels, kernel_size=1)
        self.phi = nn.Conv2d(in_channels, inter_channels, kernel_size=1)
        self.g = nn.Conv2d(in_channels, inter_channels, kernel_size=1)
        self.out = nn.Conv2d(inter_channels, in_channels, kernel_size=1)
        self.bn = nn.BatchNorm2d(in_channels)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a feature map (B, C, H, W) to one of the same shape."""
        batch, _, height, width = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, N, I)
        phi = self.phi(x).flatten(2)  # (B, I, N)
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, N, I)
        affinity = theta @ phi  # (B, N, N): row i holds f(x_i, x_j) for all j
        if self.normalization == "dot":
            affinity = affinity / affinity.shape[-1]
        else:
            affinity = affinity.softmax(dim=-1)
        y = (affinity @ g).transpose(1, 2).reshape(batch, -1, height, width)
        return x + self.bn(self.out(y))
