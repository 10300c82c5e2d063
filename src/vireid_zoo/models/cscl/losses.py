"""CSCL's losses: parsing, division and Identity-aware Center Mining (ICM).

Liu et al., "Cross-Modality Semantic Consistency Learning for Visible-Infrared Person
Re-Identification", IEEE TMM 27, 568-580 (2025). The abstract names the three losses and
what they do; their formulas are assumptions of this zoo ([A]), as is the foreground loss
that trains the PAMs' mask predictors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.core.choices import check_choice
from vireid_zoo.data.parsing import IGNORE_INDEX
from vireid_zoo.losses.centre import modality_centres
from vireid_zoo.losses.distance import pairwise_euclidean
from vireid_zoo.losses.normalization import FeatureNormalization, normalize_features
from vireid_zoo.losses.precision import in_float32
from vireid_zoo.models.cscl.blocks import stage_mask

CentreForm = Literal["pull", "hinge"]
CentreDistance = Literal["euclidean", "squared_euclidean"]


def downsample_labels(labels: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Down-sample (B, H, W) label maps to ``size`` by nearest-exact (cell-centre) sampling."""
    resized = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")
    return resized[:, 0].long()


class ParsingLoss(nn.Module):
    r"""Pixel-wise cross-entropy of SPAM's part logits against the parsing labels.

    [A]: the labels (B, H, W) are down-sampled to the logits' (h, w) grid by
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


class ForegroundLoss(nn.Module):
    r"""Binary cross-entropy of the PAMs' foreground logits against the parsed foreground.

    [A]: at each PAM's grid, the target of a cell is the fraction of its pixels that are
    body parts (not background) among its pixels that are not ``ignore_index``, and the
    cell weighs by the fraction of such pixels (a cell of ignored pixels only counts for
    nothing); the loss is the weighted mean over cells, averaged over the PAMs.

    Args:
        ignore_index: Label of ignored pixels.
        eps: Floor of the valid fractions it divides by.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX, eps: float = 1e-6) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.eps = eps

    @in_float32
    def forward(self, logits: Sequence[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Mean loss of foreground logits (B, 1, h_s, w_s), one per PAM, for labels (B, H, W)."""
        if not logits:
            raise ValueError("the foreground loss needs the logits of at least one PAM")
        valid = (labels != self.ignore_index)[:, None].float()
        foreground = valid * (labels != 0)[:, None].float()
        losses = []
        for stage_logits in logits:
            size = stage_logits.shape[-2:]
            weight = stage_mask(valid, size)
            target = stage_mask(foreground, size) / weight.clamp(min=self.eps)
            summed = F.binary_cross_entropy_with_logits(
                stage_logits, target.clamp(max=1.0), weight=weight, reduction="sum"
            )
            losses.append(summed / weight.sum().clamp(min=self.eps))
        return torch.stack(losses).mean()


class DivisionLoss(nn.Module):
    r"""Mean absolute cosine similarity between the different parts of a sample.

    [A]: each part's vectors are first normalised over the batch (``normalization=
    "standardize"``: per part and dimension, minus the mean and divided by the standard
    deviation over the B samples, [`normalize_features`][]),
    then $L = \frac{1}{B K (K - 1)} \sum_b \sum_{j \ne k} |\cos(z^b_j, z^b_k)|$: 0 when
    the parts vary independently of each other across the samples, 1 when they vary alike.

    Why standardise: pooled part features come after a ReLU, so they are non-negative and
    the cosine of two of them is 0 only when they use disjoint channels (it is about 0.98
    at initialisation); standardised, parts can be decorrelated while sharing channels.
    ``normalization="none"`` compares the vectors as given, which suits non-negative part
    maps (the module's ``division_target="maps"``): their cosine is 0 exactly when the parts
    cover disjoint positions.

    Args:
        normalization: ``"standardize"`` (default), ``"l2"`` or ``"none"``.
        eps: Floor of the standardisation's variances and of the cosine's norms.
    """

    def __init__(
        self, normalization: FeatureNormalization = "standardize", eps: float = 1e-5
    ) -> None:
        super().__init__()
        normalize_features(torch.zeros(1, 1), normalization, eps)  # checks both arguments
        self.normalization: FeatureNormalization = normalization
        self.eps = eps

    @in_float32
    def forward(self, parts: torch.Tensor) -> torch.Tensor:
        """Mean loss of parts (B, K, D), K >= 2 (features, or flattened part maps)."""
        if parts.dim() != 3 or parts.shape[1] < 2:
            raise ValueError(f"expected part features (B, K >= 2, D), got {tuple(parts.shape)}")
        normalised = torch.stack(
            [normalize_features(part, self.normalization, self.eps) for part in parts.unbind(1)],
            dim=1,
        )
        unit = F.normalize(normalised, dim=2, eps=self.eps)
        cosine = unit @ unit.transpose(1, 2)
        off_diagonal = ~torch.eye(parts.shape[1], dtype=torch.bool, device=parts.device)
        return cosine.abs()[:, off_diagonal].mean()


class IdentityCenterMiningLoss(nn.Module):
    r"""ICM: reduce the distance between the visible and infrared centres of each identity.

    Abstract: the Identity-aware Center Mining loss "reduces the distance between the
    modality centres within each identity". [A]: with $c^y_v, c^y_i$ the visible
    and infrared centres of identity y among the P identities of the batch and $d$
    the Euclidean distance (``distance="squared_euclidean"``: its square),

    - ``form="pull"``: $L = \frac{1}{P}\sum_y d(c^y_v, c^y_i)$, which pulls every
      identity's centres together whatever the other identities do: a gradient step on it
      alone shortens every identity's centre distance;
    - ``form="hinge"``: the hetero-centre triplet loss with cross-modality negatives (below),
      which asks an identity's cross-modality centre distance to be smaller, by the margin
      m, than the distance to the nearest other identity's centre of the other modality,
      and stops pulling once it is:

    $$
    L = \frac{1}{2P}\sum_y \big[d(c^y_v, c^y_i) - \min_{y' \ne y}
    d(c^y_v, c^{y'}_i) + m\big]_+ + \big[d(c^y_v, c^y_i) - \min_{y' \ne y}
    d(c^y_i, c^{y'}_v) + m\big]_+ .
    $$

    Args:
        margin: m (``"hinge"`` only), >= 0.
        form: ``"pull"`` or ``"hinge"``.
        distance: ``"euclidean"`` or ``"squared_euclidean"``.
    """

    def __init__(
        self,
        margin: float = 0.3,
        form: CentreForm = "hinge",
        distance: CentreDistance = "euclidean",
    ) -> None:
        super().__init__()
        check_choice("ICM form", form, CentreForm)
        check_choice("ICM distance", distance, CentreDistance)
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin!r}")
        self.margin = margin
        self.form: CentreForm = form
        self.distance: CentreDistance = distance

    @in_float32
    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss; ``modalities`` is 0 for visible and 1 for infrared samples.

        Raises:
            ValueError: If an identity lacks a modality, or (``"hinge"``) the batch has a
                single identity.
        """
        centres, identities = modality_centres(features, labels, modalities)
        dist = pairwise_euclidean(centres[:, 0], centres[:, 1])  # (visible y, infrared y')
        if self.distance == "squared_euclidean":
            dist = dist.pow(2)
        positive = dist.diagonal()
        if self.form == "pull":
            return positive.mean()
        if identities.numel() < 2:
            raise ValueError(f"{type(self).__name__} needs at least two identities in the batch")
        others = dist.masked_fill(
            torch.eye(len(dist), dtype=torch.bool, device=dist.device), float("inf")
        )
        visible_anchor = F.relu(self.margin + positive - others.amin(dim=1))
        infrared_anchor = F.relu(self.margin + positive - others.amin(dim=0))
        return 0.5 * (visible_anchor.mean() + infrared_anchor.mean())
