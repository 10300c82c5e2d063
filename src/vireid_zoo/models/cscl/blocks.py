"""CSCL's modules: the Parsing-aligned Attention Module and the Semantic-guided Part Alignment.

Liu et al., "Cross-Modality Semantic Consistency Learning for Visible-Infrared Person
Re-Identification", IEEE TMM 27, 568-580 (2025). The abstract binds what each module does
(PAM: parsing-aligned channel attention at several stages; SPAM: semantic-aligned part
features trained with a parsing loss); the formulas here are assumptions of this zoo
([A]), each open choice an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.blocks import ChannelAttention
from vireid_zoo.blocks.attention import ChannelPooling
from vireid_zoo.data.parsing import IGNORE_INDEX

PartPooling = Literal["class_softmax", "spatial_softmax"]
ForegroundRule = Literal["soft", "hard"]
"""How a predicted foreground probability becomes a PAM mask: the probability itself
(``"soft"``), or 1 where it exceeds one half and 0 elsewhere (``"hard"``)."""


def foreground_from_labels(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """The parsed foreground (B, 1, H, W): 1 on body parts, 0 on background and ignored pixels.

    Args:
        labels: (B, H, W) part maps, 0 = background.
        ignore_index: Label of pixels of unknown part.
    """
    return ((labels != 0) & (labels != ignore_index)).unsqueeze(1).float()


def foreground_from_logits(logits: torch.Tensor, rule: ForegroundRule = "soft") -> torch.Tensor:
    """The predicted foreground (B, 1, h, w) from SPAM's part logits (B, K + 1, h, w).

    ``"soft"``: 1 - P(background); ``"hard"``: 1 where a body part is the most likely
    class, 0 where the background is.
    """
    if rule == "hard":
        return (logits.argmax(dim=1, keepdim=True) != 0).to(logits.dtype)
    return 1.0 - logits.softmax(dim=1)[:, :1]


def foreground_from_probability(
    probability: torch.Tensor, rule: ForegroundRule = "soft"
) -> torch.Tensor:
    """A PAM mask from a foreground probability: itself (``"soft"``) or ``> 0.5`` (``"hard"``)."""
    return (probability > 0.5).to(probability.dtype) if rule == "hard" else probability


def stage_mask(foreground: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Bring a foreground map (B, 1, H, W) to a stage's size (B, 1, h, w).

    Down-sampling averages (each cell holds its foreground fraction); up-sampling (a
    predicted layer4 foreground to an earlier stage) is bilinear. A sample with no
    foreground at all keeps an all-zero mask, which
    [`ChannelAttention`][vireid_zoo.blocks.attention.ChannelAttention] pools as no mask (a plain
    average).
    """
    height, width = foreground.shape[-2:]
    # Plain ints: the sizes are static for an exported graph (only the batch is dynamic).
    target = (int(size[0]), int(size[1]))
    if target[0] <= height and target[1] <= width:
        return F.adaptive_avg_pool2d(foreground, target)
    return F.interpolate(foreground, size=target, mode="bilinear", align_corners=False)


class ParsingAlignedAttention(nn.Module):
    r"""PAM: channel attention from a descriptor pooled over the (parsed) foreground.

    [A]: $z = \mathrm{GAP}(f \cdot M_{fg})$, taken as the foreground average
    $\sum_{hw} M f / \sum_{hw} M$ (a masked GAP: it differs from the plain mean of
    $f M$ by the per-image factor $HW / \sum M$, so the descriptor does not
    shrink with the person's size; ``pooling=("avg", "max")`` adds the maximum over the
    foreground, CBAM style); $w = \sigma(\mathrm{MLP}(z))$ with reduction
    ``reduction``; output $f' = f + f \cdot w$ (``residual``) or $f \cdot w$.

    With ``predict_mask`` the PAM also predicts its own foreground from its input, a 1x1
    convolution to one logit per position ([`mask_logits`][]), which the network trains
    against the parsed foreground and pools over, in training and at test alike.

    Args:
        channels: Channels of the stage.
        reduction: MLP reduction ratio (16).
        pooling: Foreground descriptors, ``("avg",)`` or ``("avg", "max")``.
        residual: Output $f + f w$ (True) or $f w$.
        predict_mask: Build the foreground predictor.
        eps: Floor of the masked average's denominator.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        pooling: Sequence[ChannelPooling] = ("avg",),
        residual: bool = True,
        predict_mask: bool = False,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.attention = ChannelAttention(channels, reduction, pooling=pooling, eps=eps)
        self.residual = residual
        self.mask_head = nn.Conv2d(channels, 1, kernel_size=1) if predict_mask else None

    def mask_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Foreground logits (B, 1, h, w) of a stage map (B, C, h, w).

        Raises:
            RuntimeError: The PAM was built without ``predict_mask``.
        """
        if self.mask_head is None:
            raise RuntimeError("this PAM predicts no foreground: build it with predict_mask")
        return self.mask_head(x)

    def forward(self, x: torch.Tensor, foreground: torch.Tensor | None) -> torch.Tensor:
        """Re-weight ``x`` (B, C, h, w) by the attention of its foreground descriptor.

        Args:
            x: The stage's feature map.
            foreground: A foreground map (B, 1, H, W) at any size (see [`stage_mask`][]),
                or None for an unmasked GAP.
        """
        mask = None if foreground is None else stage_mask(foreground, x.shape[-2:])
        reweighted = x * self.attention.weights(x, mask)
        return x + reweighted if self.residual else reweighted


class SemanticPartAlignment(nn.Module):
    r"""SPAM: part logits on the last feature map and part features pooled by them.

    [A]: a 1x1 convolution predicts ``num_parts + 1`` logits per position
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
        eps: ``"class_softmax"``: floor of a part's total probability (the normaliser).
    """

    def __init__(
        self,
        channels: int,
        num_parts: int = 4,
        pooling: PartPooling = "class_softmax",
        eps: float = 1e-6,
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
        if not eps > 0:
            raise ValueError(f"part pooling eps must be > 0, got {eps!r}")
        self.num_parts = num_parts
        self.pooling: PartPooling = pooling
        self.eps = eps
        self.classifier = nn.Conv2d(channels, num_parts + 1, kernel_size=1)

    def pooling_weights(self, logits: torch.Tensor) -> torch.Tensor:
        """Part pooling weights (B, K, h, w) from logits (B, K + 1, h, w); each part sums to 1."""
        if self.pooling == "class_softmax":
            probabilities = logits.softmax(dim=1)[:, 1:]
            return probabilities / probabilities.sum(dim=(2, 3), keepdim=True).clamp(min=self.eps)
        parts = logits[:, 1:]
        return parts.flatten(2).softmax(dim=2).view_as(parts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the part logits (B, K + 1, h, w) and the part features (B, K, C) of ``x``."""
        logits = self.classifier(x)
        parts = torch.einsum("bkhw,bchw->bkc", self.pooling_weights(logits), x)
        return logits, parts
