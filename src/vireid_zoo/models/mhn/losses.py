"""MHN's losses: modality harmonisation, modality consistency and branch decorrelation.

Zuo, Peng, Cheng and Wang, "Modality-perceptive Harmonization Network for
visible-infrared person re-identification", Information Fusion 118, 102979 (2025). The
abstract names the harmonisation and consistency losses and what they do, not their
formulas: those here are assumptions of this zoo [A], each open choice an argument.

Samples carry a modality code: 0 visible, 1 infrared, 2 hybrid (MAM's fused stream).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vireid_zoo.losses.centre import modality_centres
from vireid_zoo.losses.normalization import FeatureNormalization, normalize_features
from vireid_zoo.losses.precision import in_float32

Distance = Literal["euclidean", "squared_euclidean", "cosine"]
DISTANCES: tuple[Distance, ...] = ("euclidean", "squared_euclidean", "cosine")


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
    the feature distributions across modalities. [A]: the features are first made
    scale-free (``normalization="l2"``: each row divided by its L2 norm, see
    [`normalize_features`][]), so that the loss cannot
    be lowered by shrinking the features, only by bringing their directions together.
    Then, with $c^y_v, c^y_i, c^y_h$ the visible, infrared and hybrid centres of
    identity y among the P identities of the batch, $d_v = d(c^y_h, c^y_v)$,
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
        normalization: ``"l2"`` (default), ``"standardize"`` (per dimension, the three
            streams together) or ``"none"`` (the raw features: the loss then scales with
            them) [A]. Why L2 and not EMIF's standardisation: see the MHN README.
        eps: The L2 norm's floor (added to the standardisation's variances), > 0 [A].
    """

    def __init__(
        self,
        distance: Distance = "euclidean",
        normalization: FeatureNormalization = "l2",
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        normalize_features(torch.zeros(1, 1), normalization, eps)  # checks both arguments
        self.distance: Distance = distance
        self.normalization: FeatureNormalization = normalization
        self.eps = eps

    @in_float32
    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss over identities; ``modalities``: 0 visible, 1 infrared, 2 hybrid."""
        features = normalize_features(features, self.normalization, self.eps)
        centres = modality_centres(features, labels, modalities, 3)[0]
        visible, infrared, hybrid = centres.unbind(dim=1)
        to_visible = paired_distance(hybrid, visible, self.distance)
        to_infrared = paired_distance(hybrid, infrared, self.distance)
        return (to_visible + to_infrared + (to_visible - to_infrared).abs()).mean()


class ModalityConsistencyLoss(nn.Module):
    r"""Modality consistency loss: the same identity predicted alike in every modality.

    Abstract: it "strengthens identity-related coherence across modalities". [A]: with
    $p^y_m$ the mean softmax identity prediction of the samples
    of identity y in modality m (identity-averaged, so an identity counts once whatever
    its number of samples), the symmetric Kullback-Leibler divergence

    $$
    S(p, q) = \tfrac12\big[KL(p \| q) + KL(q \| p)\big]
    = \tfrac12 \sum_k (p_k - q_k)(\log p_k - \log q_k),
    $$

    averaged over identities and over the pairs of modalities present: (visible,
    infrared) and, when hybrid samples (code 2) are given, (visible, hybrid) and
    (infrared, hybrid). It is 0 exactly when the predictions agree.

    Args:
        floor: Probabilities are clamped to at least this before the logarithm [A] (1e-12:
            a class the network rules out entirely still gives a finite loss).
    """

    def __init__(self, floor: float = 1e-12) -> None:
        super().__init__()
        if not 0 < floor < 1:
            raise ValueError(f"floor must be in (0, 1), got {floor!r}")
        self.floor = floor

    @in_float32
    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss; ``modalities``: 0 visible, 1 infrared and optionally 2 hybrid."""
        num_modalities = 3 if bool((modalities == 2).any()) else 2
        probabilities, _ = modality_centres(
            logits.softmax(dim=1), labels, modalities, num_modalities
        )
        log_probabilities = probabilities.clamp(min=self.floor).log()
        first, second = torch.triu_indices(num_modalities, num_modalities, offset=1)
        difference = probabilities[:, first] - probabilities[:, second]
        log_ratio = log_probabilities[:, first] - log_probabilities[:, second]
        return 0.5 * (difference * log_ratio).sum(dim=2).mean()


class BranchDecorrelationLoss(nn.Module):
    r"""Decorrelation of DRM's channel and spatial embeddings: mean absolute cosine.

    [A]: each embedding is first standardised over the batch (``normalization=
    "standardize"``: per dimension, minus its mean and divided by its standard deviation
    over the B rows, [`normalize_features`][]), then
    $L_{dc} = \frac{1}{B}\sum_b |\cos(z^c_b, z^s_b)|$ over the channel- and
    spatial-branch embeddings of each sample: 0 when the two branches vary independently
    across the samples (orthogonal), 1 when one is a per-dimension rescaling of the other,
    so the two branches carry different (decoupled) information.

    Standardising first matters: on features with a trainable per-dimension scale (a
    BNNeck output), the cosine can be lowered by giving the two branches' necks
    complementary weights (each branch's embedding then uses other dimensions) without
    the branches computing anything different; standardised features leave only the
    branches' own variation to decorrelate. The same value on the images of one modality
    measures how redundant the two branches are there (the README's intra-modality
    diversity is one minus it).

    Args:
        eps: Floor of the standardisation's variances and of the cosine's denominator [A].
        normalization: ``"standardize"`` (default), ``"l2"`` or ``"none"`` [A].
    """

    def __init__(
        self, eps: float = 1e-5, normalization: FeatureNormalization = "standardize"
    ) -> None:
        super().__init__()
        normalize_features(torch.zeros(1, 1), normalization, eps)  # checks both arguments
        self.eps = eps
        self.normalization: FeatureNormalization = normalization

    @in_float32
    def forward(self, channel: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
        """Mean |cos| between matching rows of two (B, D) embeddings."""
        if channel.shape != spatial.shape or channel.dim() != 2:
            raise ValueError(
                f"expected two (B, D) embeddings, got {tuple(channel.shape)} and "
                f"{tuple(spatial.shape)}"
            )
        channel = normalize_features(channel, self.normalization, self.eps)
        spatial = normalize_features(spatial, self.normalization, self.eps)
        return F.cosine_similarity(channel, spatial, dim=1, eps=self.eps).abs().mean()
