"""Scale-free views of a batch of features, for losses that compare feature distributions.

A loss built on raw distances between features scales with the features: a network can
lower it by shrinking its features (e.g. the weight of a BNNeck) without bringing anything
closer. Comparing the features after [`normalize_features`][] removes that way out.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from vireid_zoo.core.choices import check_choice

FeatureNormalization = Literal["standardize", "l2", "none"]
"""How a loss makes its features scale-free before comparing them (see
[`normalize_features`][])."""


def normalize_features(
    features: torch.Tensor, normalization: FeatureNormalization, eps: float = 1e-5
) -> torch.Tensor:
    r"""The rows of ``features`` (N, D) in a space where their scale no longer matters.

    - ``"standardize"``: each dimension minus its mean over the N rows, divided by its
      standard deviation over them, $(x_{nd} - m_d) / \sqrt{v_d + \epsilon}$ (the
      variance divides by N). The statistics are those of all the rows given, so pass the
      rows of every modality together: the differences between modalities are kept, only
      the common per-dimension shift and scale are removed. The result is unchanged by
      any map $x_d \mapsto a_d x_d + b_d$ ($a_d > 0$) applied to all rows,
      e.g. a BatchNorm's affine weights (up to $\epsilon$), and the statistics are
      not detached, so the gradient has no component along such a rescaling.
    - ``"l2"``: each row divided by its L2 norm (unchanged by a common scale of all the
      dimensions, not by per-dimension scales).
    - ``"none"``: the features as they are.

    Computed in float32 (float64 for float64 input) with autocast off.

    Args:
        features: (N, D) features.
        normalization: ``"standardize"``, ``"l2"`` or ``"none"``.
        eps: Added to every variance (``"standardize"``) or the norm's floor (``"l2"``), > 0.

    Raises:
        ValueError: An unknown ``normalization``, ``eps`` <= 0, or features that are not (N, D).
    """
    check_choice("normalization", normalization, FeatureNormalization)
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    if features.dim() != 2:
        raise ValueError(f"expected (N, D) features, got {tuple(features.shape)}")
    if normalization == "none":
        return features
    dtype = torch.promote_types(features.dtype, torch.float32)
    with torch.autocast(device_type=features.device.type, enabled=False):
        features = features.to(dtype)
        if normalization == "l2":
            return F.normalize(features, dim=1, eps=eps)
        centred = features - features.mean(dim=0)
        return centred / (centred.pow(2).mean(dim=0) + eps).sqrt()
