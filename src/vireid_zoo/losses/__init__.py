"""Losses shared by the methods: identity, triplet and centre losses."""

from vireid_zoo.losses.centre import HeteroCenterTripletLoss, modality_centres
from vireid_zoo.losses.distance import pairwise_euclidean
from vireid_zoo.losses.identity import IdentityLoss
from vireid_zoo.losses.triplet import (
    BatchHardTripletLoss,
    TripletKind,
    WeightedRegularizationTripletLoss,
    make_triplet_loss,
)

__all__ = [
    "BatchHardTripletLoss",
    "HeteroCenterTripletLoss",
    "IdentityLoss",
    "TripletKind",
    "WeightedRegularizationTripletLoss",
    "make_triplet_loss",
    "modality_centres",
    "pairwise_euclidean",
]
