"""Identity-centre losses across modalities."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.losses.distance import pairwise_euclidean
from vireid_zoo.losses.precision import in_float32

CentreNegatives = Literal["any", "cross_modality"]

MODALITY_NAMES = ("visible", "infrared", "hybrid")
"""Names of the modality codes 0, 1 and 2 (MHN's fused stream)."""


def modality_centres(
    features: torch.Tensor,
    labels: torch.Tensor,
    modalities: torch.Tensor,
    num_modalities: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature of each (identity, modality) pair present in the batch.

    Args:
        features: (B, D) features.
        labels: (B,) identity labels.
        modalities: (B,) modality codes: 0 visible, 1 infrared (2 hybrid, see
            [`MODALITY_NAMES`][]).
        num_modalities: How many modality codes there are (2, or 3 with MHN's hybrid).

    Returns:
        ``(centres, identities)``: centres (P, num_modalities, D), ``centres[k, m]`` the
        centre of modality ``m`` of identity ``identities[k]`` (sorted).

    Raises:
        ValueError: On mismatched shapes, an unknown modality code, or an identity that
            lacks one of the modalities in the batch.
    """
    if (
        features.dim() != 2
        or labels.shape != features.shape[:1]
        or (modalities.shape != labels.shape)
    ):
        raise ValueError(
            f"expected features (B, D), labels (B,) and modalities (B,), got "
            f"{tuple(features.shape)}, {tuple(labels.shape)} and {tuple(modalities.shape)}"
        )
    if not 1 <= num_modalities <= len(MODALITY_NAMES):
        raise ValueError(f"num_modalities must be 1..{len(MODALITY_NAMES)}, got {num_modalities}")
    if bool(((modalities < 0) | (modalities >= num_modalities)).any()):
        codes = enumerate(MODALITY_NAMES[:num_modalities])
        allowed = " or ".join(f"{code} ({name})" for code, name in codes)
        raise ValueError(f"modality codes must be {allowed}; got {modalities.unique().tolist()}")
    identities, index = labels.unique(return_inverse=True)
    slot = index * num_modalities + modalities.long()
    num_slots = num_modalities * identities.numel()
    counts = torch.bincount(slot, minlength=num_slots)
    if bool((counts == 0).any()):
        absent = (counts == 0).nonzero().flatten().tolist()
        described = ", ".join(
            f"identity {identities[s // num_modalities].item()} has no "
            f"{MODALITY_NAMES[s % num_modalities]} sample"
            for s in absent
        )
        raise ValueError(f"every identity needs every modality in the batch: {described}")
    sums = features.new_zeros(num_slots, features.shape[1]).index_add(0, slot, features)
    centres = sums / counts[:, None].to(features.dtype)
    return centres.view(-1, num_modalities, features.shape[1]), identities


class HeteroCenterTripletLoss(nn.Module):
    r"""Hetero-centre triplet loss: triplets between modality centres of identities.

    Liu et al., "Parameter Sharing Exploration and Hetero-Center Triplet Loss for
    Visible-Thermal Person Re-Identification", IEEE TMM 2021 (hetero-center triplet
    loss). With $c^y_v, c^y_t$ the visible and infrared centres of identity ``y``
    among the P identities of the batch, each centre is an anchor whose positive is the
    other modality's centre of its identity and whose negative is the nearest centre (of
    either modality) of any other identity:

    $$
    L = \frac{1}{2P}\sum_{y}\sum_{m \in \{v, t\}} \big[\rho + d(c^y_m, c^y_{\bar m})
    - \min_{y' \ne y,\, n \in \{v, t\}} d(c^y_m, c^{y'}_n)\big]_+ ,
    $$

    with $d$ from [`pairwise_euclidean`][] (the paper sums over
    anchors; the mean keeps the scale independent of P). With
    ``negatives="cross_modality"`` the negative is the nearest centre of the *other*
    modality only ($n = \bar m$), as CSCL's identity-aware centre mining.

    Args:
        margin: $\rho$.
        negatives: ``"any"`` (the paper) or ``"cross_modality"``.
    """

    def __init__(self, margin: float = 0.3, negatives: CentreNegatives = "any") -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin!r}")
        if negatives not in ("any", "cross_modality"):
            raise ValueError(f"negatives must be 'any' or 'cross_modality', got {negatives!r}")
        self.margin = margin
        self.negatives: CentreNegatives = negatives

    @in_float32
    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss; ``modalities`` is 0 for visible and 1 for infrared samples.

        Raises:
            ValueError: If an identity lacks a modality, or the batch has one identity.
        """
        centres, identities = modality_centres(features, labels, modalities)
        if identities.numel() < 2:
            raise ValueError(f"{type(self).__name__} needs at least two identities in the batch")
        flat = centres.flatten(0, 1)  # rows: id0 visible, id0 infrared, id1 visible, ...
        dist = pairwise_euclidean(flat, flat)
        rows = torch.arange(flat.shape[0], device=flat.device)
        owner, modality = rows // 2, rows % 2
        excluded = owner[:, None] == owner[None, :]
        if self.negatives == "cross_modality":
            excluded |= modality[:, None] == modality[None, :]
        positive = dist[rows, rows ^ 1]  # the other modality of the same identity
        negative = dist.masked_fill(excluded, float("inf")).amin(dim=1)
        return F.relu(self.margin + positive - negative).mean()
