"""CSCL's losses: parsing, division and Identity-aware Center Mining (ICM).

Liu et al., "Cross-Modality Semantic Consistency Learning for Visible-Infrared Person
Re-Identification", IEEE TMM 27, 568-580 (2025). The abstract names the three losses and
what they do; the formulas are the METHODS.md [A] choices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.data.parsing import IGNORE_INDEX
from vireid_zoo.losses.centre import HeteroCenterTripletLoss
from vireid_zoo.losses.precision import in_float32


def downsample_labels(labels: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Down-sample (B, H, W) label maps to ``size`` by nearest-exact (cell-centre) sampling."""
    resized = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")
    return resized[:, 0].long()


class ParsingLoss(nn.Module):
    r"""Pixel-wise cross-entropy of SPAM's part logits against the parsing labels.

    METHODS.md [A]: the labels (B, H, W) are down-sampled to the logits' (h, w) grid by
    [`downsample_labels`][]; pixels labelled ``ignore_index`` count for nothing (a batch
    whose pixels are all ignored gives 0, not NaN):
    $L = \frac{1}{|V|}\sum_{x \in V} -\log \mathrm{softmax}(z(x))_{y(x)}$, V the
    positions not ignored.

    Args:
        ignore_index: Label of ignored pixels.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.ignore_index = ignore_index

    @in_float32
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss of logits (B, K + 1, h, w) against labels (B, H, W).

        Raises:
            ValueError: A label is neither a class of the logits nor ``ignore_index``.
        """
        target = downsample_labels(labels, logits.shape[-2:])
        valid = target != self.ignore_index
        num_classes = logits.shape[1]
        if bool(((target[valid] < 0) | (target[valid] >= num_classes)).any()):
            raise ValueError(
                f"parsing labels {sorted(set(target[valid].tolist()))} do not fit the model's "
                f"{num_classes} part classes (background + num_parts={num_classes - 1}): set "
                "the model's num_parts to the datamodule's parsing_grouping size minus one"
            )
        if not bool(valid.any()):
            return logits.sum() * 0.0
        return F.cross_entropy(logits, target, ignore_index=self.ignore_index)


class DivisionLoss(nn.Module):
    r"""Mean absolute cosine similarity between the different part features of a sample.

    METHODS.md [A]: $L = \frac{1}{B K (K - 1)} \sum_b \sum_{j \ne k}
    |\cos(p^b_j, p^b_k)|$: 0 when the parts are pairwise orthogonal, 1 (its maximum) when
    they are all parallel.
    """

    @in_float32
    def forward(self, parts: torch.Tensor) -> torch.Tensor:
        """Mean loss of part features (B, K, D), K >= 2."""
        if parts.dim() != 3 or parts.shape[1] < 2:
            raise ValueError(f"expected part features (B, K >= 2, D), got {tuple(parts.shape)}")
        unit = F.normalize(parts, dim=2)
        cosine = unit @ unit.transpose(1, 2)
        off_diagonal = ~torch.eye(parts.shape[1], dtype=torch.bool, device=parts.device)
        return cosine.abs()[:, off_diagonal].mean()


class IdentityCenterMiningLoss(HeteroCenterTripletLoss):
    r"""ICM: pull each identity's visible and infrared centres together, past a margin.

    METHODS.md [A]: with $c^y_v, c^y_i$ the visible and infrared centres of identity
    y among the P identities of the batch and $d$ the Euclidean distance,

    $$
    L = \frac{1}{2P}\sum_y \big[d(c^y_v, c^y_i) - \min_{y' \ne y} d(c^y_v, c^{y'}_i)
    + m\big]_+ + \big[d(c^y_v, c^y_i) - \min_{y' \ne y} d(c^y_i, c^{y'}_v) + m\big]_+ ,
    $$

    i.e. the cross-modality distance of an identity's centres must be smaller, by the
    margin m, than the distance to the nearest other identity's centre of the other
    modality, in both directions: the hetero-centre triplet loss with cross-modality
    negatives only.

    Args:
        margin: m (0.3).
    """

    def __init__(self, margin: float = 0.3) -> None:
        super().__init__(margin, negatives="cross_modality")
