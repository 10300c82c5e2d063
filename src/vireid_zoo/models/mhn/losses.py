"""MHN's losses: modality harmonisation, modality consistency and branch decorrelation.

Zuo, Peng, Cheng and Wang, "Modality-perceptive Harmonization Network for
visible-infrared person re-identification", Information Fusion 118, 102979 (2025). The
abstract names the harmonisation and consistency losses and what they do; their formulas
here are assumptions [A] (``reference/METHODS.md``, section "MHN").

Samples carry a modality code: 0 visible, 1 infrared, 2 hybrid (MAM's fused stream).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.losses.centre import modality_centres
from vireid_zoo.losses.precision import in_float32

Distance = Literal["euclidean", "squared_euclidean", "cosine"]
DISTANCES: tuple[Distance, ...] = ("euclidean", "squared_euclidean", "cosine")
_PROBABILITY_FLOOR = 1e-12


def paired_distance(x: torch.Tensor, y: torch.Tensor, distance: Distance) -> torch.Tensor:
    r"""Distance between rows ``x[k]`` and ``y[k]`` of two (N, D) matrices: (N,).

    ``"euclidean"`` is exactly 0 for coincident rows, with a zero (finite) gradient
    there; ``"cosine"`` is $1 - \cos$.
    """
    if distance == "cosine":
        return 1.0 - F.cosine_similarity(x, y, dim=1)
    squared = (x - y).pow(2).sum(dim=1)
    if distance == "squared_euclidean":
        return squared
    return torch.where(squared > 0, squared.clamp(min=1e-12).sqrt(), 0.0)


class ModalityHarmonizationLoss(nn.Module):
    r"""Modality harmonisation loss: the hybrid centre between, and close to, both modalities.

    Abstract: it "adjusts the distribution of the generated hybrid modality" and aligns
    the feature distributions across modalities. [A] (METHODS.md): with
    $c^y_v, c^y_i, c^y_h$ the visible, infrared and hybrid centres of identity y
    among the P identities of the batch, $d_v = d(c^y_h, c^y_v)$,
    $d_i = d(c^y_h, c^y_i)$,

    $$
    L_{mh} = \frac{1}{P}\sum_y \big[d_v + d_i + |d_v - d_i|\big]
    = \frac{1}{P}\sum_y 2 \max(d_v, d_i).
    $$

    The first two terms pull the hybrid towards both modalities and, through it, the two
    modalities towards each other; the third keeps the hybrid equidistant from them. It is
    0 exactly when the three centres coincide.

    Args:
        distance: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"`` [A].
    """

    def __init__(self, distance: Distance = "euclidean") -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.distance: Distance = distance

    @in_float32
    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss over identities; ``modalities``: 0 visible, 1 infrared, 2 hybrid."""
        centres = modality_centres(features, labels, modalities, 3)[0]
        visible, infrared, hybrid = centres.unbind(dim=1)
        to_visible = paired_distance(hybrid, visible, self.distance)
        to_infrared = paired_distance(hybrid, infrared, self.distance)
        return (to_visible + to_infrared + (to_visible - to_infrared).abs()).mean()


class ModalityConsistencyLoss(nn.Module):
    r"""Modality consistency loss: the same identity predicted alike in every modality.

    Abstract: it "strengthens identity-related coherence across modalities". [A]
    (METHODS.md): with $p^y_m$ the mean softmax identity prediction of the samples
    of identity y in modality m (identity-averaged, so an identity counts once whatever
    its number of samples), the symmetric Kullback-Leibler divergence

    $$
    S(p, q) = \tfrac12\big[KL(p \| q) + KL(q \| p)\big]
    = \tfrac12 \sum_k (p_k - q_k)(\log p_k - \log q_k),
    $$

    averaged over identities and over the pairs of modalities present: (visible,
    infrared) and, when hybrid samples (code 2) are given, (visible, hybrid) and
    (infrared, hybrid). It is 0 exactly when the predictions agree.
    """

    @in_float32
    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss; ``modalities``: 0 visible, 1 infrared and optionally 2 hybrid."""
        num_modalities = 3 if bool((modalities == 2).any()) else 2
        probabilities, _ = modality_centres(
            logits.softmax(dim=1), labels, modalities, num_modalities
        )
        log_probabilities = probabilities.clamp(min=_PROBABILITY_FLOOR).log()
        first, second = torch.triu_indices(num_modalities, num_modalities, offset=1)
        difference = probabilities[:, first] - probabilities[:, second]
        log_ratio = log_probabilities[:, first] - log_probabilities[:, second]
        return 0.5 * (difference * log_ratio).sum(dim=2).mean()


class BranchDecorrelationLoss(nn.Module):
    r"""Decorrelation of DRM's channel and spatial embeddings: mean absolute cosine.

    [A] (METHODS.md): $L_{dc} = \frac{1}{B}\sum_b |\cos(e^c_b, e^s_b)|$ over the
    channel- and spatial-branch embeddings of each sample, 0 when they are orthogonal and
    1 when parallel, so the two branches carry different (decoupled) information.

    Args:
        eps: Guards the cosine's denominator.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    @in_float32
    def forward(self, channel: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
        """Mean |cos| between matching rows of two (B, D) embeddings."""
        if channel.shape != spatial.shape or channel.dim() != 2:
            raise ValueError(
                f"expected two (B, D) embeddings, got {tuple(channel.shape)} and "
                f"{tuple(spatial.shape)}"
            )
        return F.cosine_similarity(channel, spatial, dim=1, eps=self.eps).abs().mean()
