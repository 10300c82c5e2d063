"""CSCL's modules: the Parsing-aligned Attention Module and the Semantic-guided Part Alignment.

Liu et al., "Cross-Modality Semantic Consistency Learning for Visible-Infrared Person
Re-Identification", IEEE TMM 27, 568-580 (2025). The abstract binds what each module does
(PAM: parsing-aligned channel attention at several stages; SPAM: semantic-aligned part
features trained with a parsing loss); the formulas here are the METHODS.md [A] choices.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.blocks import ChannelAttention
from vireid_zoo.data.parsing import IGNORE_INDEX

PartPooling = Literal["class_softmax", "spatial_softmax"]

_EPS = 1e-6


def foreground_from_labels(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """The parsed foreground (B, 1, H, W): 1 on body parts, 0 on background and ignored pixels.

    Args:
        labels: (B, H, W) part maps, 0 = background.
        ignore_index: Label of pixels of unknown part.
    """
    return ((labels != 0) & (labels != ignore_index)).unsqueeze(1).float()


def foreground_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """The predicted foreground (B, 1, h, w): 1 - P(background) from SPAM's part logits."""
    return 1.0 - logits.softmax(dim=1)[:, :1]


def stage_mask(foreground: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Bring a foreground map (B, 1, H, W) to a stage's size (B, 1, h, w).

    Down-sampling averages (each cell holds its foreground fraction); up-sampling (a
    predicted layer4 foreground to an earlier stage) is bilinear. A sample with no
    foreground at all keeps an all-zero mask, which
    [`ChannelAttention`][vireid_zoo.blocks.attention.ChannelAttention] pools as no mask (a plain
    average).
    """
    # Plain ints: the sizes are static for an exported graph (only the batch is dynamic).
    target = (int(size[0]), int(size[1]))
    height, width = foreground.shape[-2:]
    if target[0] <= height and target[1] <= width:
        return F.adaptive_avg_pool2d(foreground, target)
    return F.interpolate(foreground, size=target, mode="bilinear", align_corners=False)


class ParsingAlignedAttention(nn.Module):
    r"""PAM: channel attention from a descriptor pooled over the parsed foreground.

    METHODS.md [A]: $z = \mathrm{GAP}(f \cdot M_{fg})$, taken as the foreground
    average $\sum_{hw} M f / \sum_{hw} M$ (a masked GAP: it differs from the plain
    mean of $f M$ by the per-image factor $HW / \sum M$, so the descriptor does
    not shrink with the person's size); $w = \sigma(\mathrm{MLP}(z))$ with reduction
    ``reduction``; output $f' = f + f \cdot w$.

    Args:
        channels: Channels of the stage.
        reduction: MLP reduction ratio (16).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.attention = ChannelAttention(channels, reduction, pooling=("avg",))

    def forward(self, x: torch.Tensor, foreground: torch.Tensor | None) -> torch.Tensor:
        """Re-weight ``x`` (B, C, h, w) by the attention of its foreground descriptor.

        Args:
            x: The stage's feature map.
            foreground: A foreground map (B, 1, H, W) at any size (see [`stage_mask`][]),
                or None for an unmasked GAP.
        """
        mask = None if foreground is None else stage_mask(foreground, x.shape[-2:])
        return x + x * self.attention.weights(x, mask)


class SemanticPartAlignment(nn.Module):
    r"""SPAM: part logits on the last feature map and part features pooled by them.

    METHODS.md [A]: a 1x1 convolution predicts ``num_parts + 1`` logits per position
    (index 0 the background, 1..K the body parts of the grouping), trained with the
    parsing loss. Part ``k``'s feature is $p_k = \sum_x a_k(x) f(x)$ with pooling
    weights that sum to one over the positions:

    * ``"class_softmax"``: $a_k(x) = P_k(x) / \sum_{x'} P_k(x')$ with
      $P = \mathrm{softmax}$ over the classes, so a position counts for the part it
      is parsed as (the parsing loss shapes the pooling directly);
    * ``"spatial_softmax"``: $a_k = \mathrm{softmax}_x(\text{logit}_k)$.

    Args:
        channels: Channels of the feature map.
        num_parts: K, body parts without the background.
        pooling: How logits become pooling weights.
    """

    def __init__(
        self, channels: int, num_parts: int = 4, pooling: PartPooling = "class_softmax"
    ) -> None:
        super().__init__()
        if num_parts < 2:
            raise ValueError(
                f"num_parts must be >= 2 (body parts, background aside), got {num_parts}"
            )
        if pooling not in ("class_softmax", "spatial_softmax"):
            raise ValueError(
                f"part pooling must be 'class_softmax' or 'spatial_softmax', got {pooling!r}"
            )
        self.num_parts = num_parts
        self.pooling: PartPooling = pooling
        self.classifier = nn.Conv2d(channels, num_parts + 1, kernel_size=1)

    def pooling_weights(self, logits: torch.Tensor) -> torch.Tensor:
        """Part pooling weights (B, K, h, w) from logits (B, K + 1, h, w); each part sums to 1."""
        if self.pooling == "class_softmax":
            probabilities = logits.softmax(dim=1)[:, 1:]
            return probabilities / probabilities.sum(dim=(2, 3), keepdim=True).clamp(min=_EPS)
        parts = logits[:, 1:]
        return parts.flatten(2).softmax(dim=2).view_as(parts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the part logits (B, K + 1, h, w) and the part features (B, K, C) of ``x``."""
        logits = self.classifier(x)
        parts = torch.einsum("bkhw,bchw->bkc", self.pooling_weights(logits), x)
        return logits, parts
