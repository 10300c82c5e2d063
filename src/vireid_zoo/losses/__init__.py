"""Losses shared by the methods: identity, triplet and centre losses, feature normalisation."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.losses.centre import HeteroCenterTripletLoss, modality_centres
    from vireid_zoo.losses.distance import pairwise_euclidean
    from vireid_zoo.losses.identity import IdentityLoss
    from vireid_zoo.losses.normalization import FeatureNormalization, normalize_features
    from vireid_zoo.losses.triplet import (
        BatchHardTripletLoss,
        TripletKind,
        WeightedRegularizationTripletLoss,
        make_triplet_loss,
    )

__getattr__, __dir__, __all__ = attach(__name__, __file__)
