"""EMIF losses: cross-modality Gaussian distribution consistency and a batch-centre loss.

Zhang et al., "Learning enhancing modality-invariant features for visible-infrared person
re-identification", IJMLC 16(1), 2025: the modality-invariant module aligns the visible and
infrared feature distributions directly, with a consistency loss built on a Gaussian
assumption. The abstract gives no formula: the form of that loss (the features'
normalisation, diagonal or full covariances, the divergence, per identity or per batch, the
variance estimator, eps) is an assumption of this zoo ([A]), each part an argument.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from vireid_zoo.losses.normalization import FeatureNormalization, normalize_features
from vireid_zoo.losses.precision import in_float32

Divergence = Literal["kl", "wasserstein"]
GaussianFit = Literal["identity", "batch"]
VarianceSource = Literal["identity", "batch"]
DimReduction = Literal["mean", "sum"]
Covariance = Literal["diagonal", "full"]


def gaussian_divergence(
    mean_p: torch.Tensor,
    var_p: torch.Tensor,
    mean_q: torch.Tensor,
    var_q: torch.Tensor,
    divergence: Divergence = "kl",
) -> torch.Tensor:
    r"""Per-dimension divergence between diagonal Gaussians; shapes (..., D) -> (..., D).

    ``"kl"`` is the symmetric KL divergence $KL(p\|q) + KL(q\|p)$, with
    $KL(p\|q) = \frac12\sum_d [\log\frac{s_q^2}{s_p^2} + \frac{s_p^2 + (\mu_p -
    \mu_q)^2}{s_q^2} - 1]$; the two log terms cancel, which leaves
    $\frac12 [\frac{s_p^2 + \Delta^2}{s_q^2} + \frac{s_q^2 + \Delta^2}{s_p^2} - 2]$
    per dimension (no logarithm to evaluate). ``"wasserstein"`` is the squared
    2-Wasserstein distance $\Delta^2 + (s_p - s_q)^2$. Variances must be > 0.
    """
    gap = (mean_p - mean_q).pow(2)
    if divergence == "kl":
        return 0.5 * ((var_p + gap) / var_q + (var_q + gap) / var_p - 2.0)
    if divergence == "wasserstein":
        return gap + (var_p.sqrt() - var_q.sqrt()).pow(2)
    raise ValueError(f"divergence must be 'kl' or 'wasserstein', got {divergence!r}")


def _batch_variance(features: torch.Tensor, ddof: int) -> torch.Tensor:
    """Variance (D,) over all rows; 0 when there are too few rows to estimate one."""
    if len(features) < 2:
        return features.new_zeros(features.shape[1])
    return features.var(dim=0, correction=ddof)


def _identity_moments(
    features: torch.Tensor, index: torch.Tensor, num_ids: int, ddof: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-identity means (P, D) and, unless ``ddof`` is None, variances (P, D).

    Identities with fewer than 2 rows take the variance of all rows (the batch level).
    """
    counts = torch.bincount(index, minlength=num_ids).to(features.dtype)[:, None]
    sums = features.new_zeros(num_ids, features.shape[1]).index_add(0, index, features)
    means = sums / counts.clamp(min=1)
    if ddof is None:
        return means, None
    squares = (features - means[index]).pow(2)  # two-pass: deviations from the identity mean
    spread = features.new_zeros(means.shape).index_add(0, index, squares)
    variances = spread / (counts - ddof).clamp(min=1)
    return means, torch.where(counts < 2, _batch_variance(features, ddof), variances)


class GaussianConsistencyLoss(nn.Module):
    r"""Cross-modality feature distribution consistency under a Gaussian assumption.

    EMIF's modality-invariant module (Zhang et al., IJMLC 2025, abstract): the visible and
    infrared features are modelled as Gaussians $N(\mu_v, \Sigma_v)$,
    $N(\mu_i, \Sigma_i)$ and the divergence between them is the loss, aligning the
    two distributions directly rather than through pairwise metric terms. Everything below
    is an assumption of this zoo ([A]):

    - ``normalization="standardize"``: the features of both modalities are first
      standardised together ([`normalize_features`][]:
      per dimension, minus the mean and divided by the standard deviation of all the rows
      of the batch), so the loss does not depend on the features' scale: a network cannot
      lower it by shrinking its features (e.g. a BNNeck's weight), only by bringing the two
      modalities' distributions together relative to the spread of the features. ``"l2"``
      L2-normalises each row instead (invariant to a common scale only); ``"none"``
      compares the raw features (the loss then scales with their square).
    - ``fit="identity"``: one pair of Gaussians per identity present in the batch, the
      loss the mean over identities; ``fit="batch"``: one Gaussian per modality over the
      whole batch (labels unused).
    - ``covariance="diagonal"``: per-dimension variances, compared by
      [`gaussian_divergence`][]; ``"full"``: full covariances, compared by the squared
      2-Wasserstein distance $\lVert\mu_v - \mu_i\rVert^2 + \mathrm{tr}\,\Sigma_v
      + \mathrm{tr}\,\Sigma_i - 2\,\mathrm{tr}(\Sigma_v^{1/2}\Sigma_i\Sigma_v^{1/2})^{1/2}$
      (``divergence="wasserstein"`` only: the KL inverts covariances that a few images per
      identity leave singular). With $\Sigma = A^\top A$ for the centred rows
      $A$, the trace of the square root is the nuclear norm of $A_v A_i^\top$
      (a K x K matrix), so no D x D matrix is formed.
    - Variances (covariances) with Bessel's correction (``unbiased=True``) or without.
      ``variance="batch"`` gives every identity its modality's batch-level (co)variance
      (over all of that modality's rows) while keeping per-identity means, which is
      steadier when there are few images per identity.
    - An identity with a single image in a modality (K = 1) has no variance of its own:
      it takes its modality's batch-level variance. A modality with a single image in the
      whole batch has variance 0. With diagonal covariances ``eps`` is then added to every
      variance, so every variance is at least ``eps`` and the loss and its gradient stay
      finite (no NaN); the full form divides by nothing and needs no floor.
    - Per identity, the divergence is averaged (``reduction="mean"``, so the loss's scale
      does not depend on the embedding size) or summed (``"sum"``, the textbook
      divergence) over dimensions.
    - The statistics are computed in float32 (or float64 for float64 inputs) with
      autocast disabled, so float16 features neither overflow nor underflow.

    Args:
        divergence: ``"wasserstein"`` (squared 2-Wasserstein, the default) or ``"kl"``
            (symmetric KL, noisy with few images per identity: see the EMIF README).
        fit: ``"identity"`` or ``"batch"``.
        variance: ``"identity"`` or ``"batch"`` (only read with ``fit="identity"``).
        eps: Added to every variance of the standardisation and of diagonal Gaussians, > 0.
        unbiased: Bessel-corrected variance (divide by n - 1) instead of by n.
        reduction: ``"mean"`` or ``"sum"`` over the embedding dimensions.
        normalization: ``"standardize"``, ``"l2"`` or ``"none"`` (see above).
        covariance: ``"diagonal"`` or ``"full"``.
    """

    def __init__(
        self,
        divergence: Divergence = "wasserstein",
        fit: GaussianFit = "identity",
        variance: VarianceSource = "identity",
        eps: float = 1e-5,
        unbiased: bool = True,
        reduction: DimReduction = "mean",
        normalization: FeatureNormalization = "standardize",
        covariance: Covariance = "diagonal",
    ) -> None:
        super().__init__()
        for name, value, allowed in (
            ("divergence", divergence, ("kl", "wasserstein")),
            ("fit", fit, ("identity", "batch")),
            ("variance", variance, ("identity", "batch")),
            ("reduction", reduction, ("mean", "sum")),
            ("normalization", normalization, ("standardize", "l2", "none")),
            ("covariance", covariance, ("diagonal", "full")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        if covariance == "full" and divergence != "wasserstein":
            raise ValueError(
                f"covariance='full' needs divergence='wasserstein', got {divergence!r}: the KL "
                "inverts covariances, which a few images per identity leave singular"
            )
        self.divergence: Divergence = divergence
        self.fit: GaussianFit = fit
        self.variance: VarianceSource = variance
        self.eps = eps
        self.unbiased = unbiased
        self.reduction: DimReduction = reduction
        self.normalization: FeatureNormalization = normalization
        self.covariance: Covariance = covariance

    def forward(
        self,
        visible: torch.Tensor,
        infrared: torch.Tensor,
        visible_labels: torch.Tensor | None = None,
        infrared_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss between visible (Nv, D) and infrared (Ni, D) features (a float32 scalar).

        Labels (identity of each row) are needed with ``fit="identity"``; every identity
        must then appear in both modalities.
        """
        if visible.dim() != 2 or infrared.dim() != 2 or visible.shape[1] != infrared.shape[1]:
            raise ValueError(
                f"expected visible (Nv, D) and infrared (Ni, D) features, got "
                f"{tuple(visible.shape)} and {tuple(infrared.shape)}"
            )
        if len(visible) == 0 or len(infrared) == 0:
            raise ValueError("the Gaussian consistency loss needs features of both modalities")
        if self.fit == "batch":
            num_groups = 1
            visible_index = torch.zeros(len(visible), dtype=torch.long, device=visible.device)
            infrared_index = visible_index.new_zeros(len(infrared))
        else:
            num_groups, visible_index, infrared_index = self._identity_index(
                visible, infrared, visible_labels, infrared_labels
            )
        dtype = torch.promote_types(visible.dtype, torch.float32)
        with torch.autocast(device_type=visible.device.type, enabled=False):
            joint = torch.cat([visible.to(dtype), infrared.to(dtype)])
            joint = normalize_features(joint, self.normalization, self.eps)
            visible, infrared = joint[: len(visible)], joint[len(visible) :]
            if self.covariance == "full":
                divergence = self._full_wasserstein(
                    visible, infrared, visible_index, infrared_index, num_groups
                )
                scale = visible.shape[1] if self.reduction == "mean" else 1
                return (divergence / scale).mean()
            own_variance = self.fit == "batch" or self.variance == "identity"
            stats = []
            for features, rows in ((visible, visible_index), (infrared, infrared_index)):
                means, variances = _identity_moments(
                    features, rows, num_groups, self._ddof if own_variance else None
                )
                if variances is None:
                    variances = _batch_variance(features, self._ddof).expand_as(means)
                stats.append((means, variances))
            (mean_v, var_v), (mean_i, var_i) = stats
            divergence = gaussian_divergence(
                mean_v, var_v + self.eps, mean_i, var_i + self.eps, self.divergence
            )
            per_group = divergence.mean(-1) if self.reduction == "mean" else divergence.sum(-1)
            return per_group.mean()

    @property
    def _ddof(self) -> int:
        return 1 if self.unbiased else 0

    def _factor(self, rows: torch.Tensor) -> torch.Tensor:
        """A matrix A (n, D) with A^T A the (co)variance of ``rows``; zeros for one row."""
        if len(rows) < 2:
            return torch.zeros_like(rows)
        return (rows - rows.mean(dim=0)) / float(len(rows) - self._ddof) ** 0.5

    def _full_wasserstein(
        self,
        visible: torch.Tensor,
        infrared: torch.Tensor,
        visible_index: torch.Tensor,
        infrared_index: torch.Tensor,
        num_groups: int,
    ) -> torch.Tensor:
        """Squared 2-Wasserstein distance of full-covariance Gaussians per group (P,)."""
        own_variance = self.fit == "batch" or self.variance == "identity"
        batch_factors = (self._factor(visible), self._factor(infrared))
        distances = []
        for group in range(num_groups):
            pair = []
            for features, index, batch_factor in (
                (visible, visible_index, batch_factors[0]),
                (infrared, infrared_index, batch_factors[1]),
            ):
                rows = features[index == group]
                factor = self._factor(rows) if own_variance and len(rows) > 1 else batch_factor
                pair.append((rows.mean(dim=0), factor))
            (mean_v, factor_v), (mean_i, factor_i) = pair
            cross = torch.linalg.svdvals(factor_v @ factor_i.T).sum()
            bures = factor_v.pow(2).sum() + factor_i.pow(2).sum() - 2.0 * cross
            distances.append((mean_v - mean_i).pow(2).sum() + bures)
        return torch.stack(distances)

    def _identity_index(
        self,
        visible: torch.Tensor,
        infrared: torch.Tensor,
        visible_labels: torch.Tensor | None,
        infrared_labels: torch.Tensor | None,
    ) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(number of identities, visible rows' identity index, infrared rows' index)."""
        if visible_labels is None or infrared_labels is None:
            raise ValueError("fit='identity' needs the identity labels of both modalities")
        if visible_labels.shape != visible.shape[:1] or infrared_labels.shape != infrared.shape[:1]:
            raise ValueError(
                f"expected one label per row, got {tuple(visible_labels.shape)} labels for "
                f"{len(visible)} visible and {tuple(infrared_labels.shape)} for "
                f"{len(infrared)} infrared rows"
            )
        identities, index = torch.cat([visible_labels, infrared_labels]).unique(return_inverse=True)
        visible_index, infrared_index = index[: len(visible)], index[len(visible) :]
        for name, present in (("visible", visible_index), ("infrared", infrared_index)):
            missing = torch.ones(len(identities), dtype=torch.bool, device=identities.device)
            missing[present] = False
            if bool(missing.any()):
                raise ValueError(
                    f"identities {identities[missing].tolist()} have no {name} feature in the "
                    "batch; fit='identity' needs every identity in both modalities"
                )
        return len(identities), visible_index, infrared_index


@in_float32
def batch_centre_loss(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r"""Centre loss with the batch's identity means as centres.

    Wen et al., "A Discriminative Feature Learning Approach for Deep Face Recognition",
    ECCV 2016, Eq. 2, $\frac12\sum_b \lVert x_b - c_{y_b}\rVert^2$, averaged over the
    batch; the centres $c_y$ are the batch means of each identity instead of learnt
    vectors ([A]: no extra parameters), pulling each class together.

    Args:
        features: (B, D) features.
        labels: (B,) identity labels.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"expected features (B, D) and labels (B,), got {tuple(features.shape)} and "
            f"{tuple(labels.shape)}"
        )
    identities, index = labels.unique(return_inverse=True)
    counts = torch.bincount(index, minlength=len(identities)).to(features.dtype)[:, None]
    sums = features.new_zeros(len(identities), features.shape[1]).index_add(0, index, features)
    centres = sums / counts
    return 0.5 * (features - centres[index]).pow(2).sum(dim=1).mean()
