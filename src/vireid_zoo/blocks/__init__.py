"""Shared modality-aware building blocks: trunk, pooling, neck and attention."""

from vireid_zoo.blocks.attention import ChannelAttention, NonLocalBlock, SpatialAttention
from vireid_zoo.blocks.neck import BNNeck
from vireid_zoo.blocks.pooling import GeMFormula, GeneralizedMeanPooling
from vireid_zoo.blocks.two_stream import (
    SUPPORTED_ARCHS,
    BlockWithInsert,
    Modality,
    TwoStreamResNet,
)

__all__ = [
    "SUPPORTED_ARCHS",
    "BNNeck",
    "BlockWithInsert",
    "ChannelAttention",
    "GeMFormula",
    "GeneralizedMeanPooling",
    "Modality",
    "NonLocalBlock",
    "SpatialAttention",
    "TwoStreamResNet",
]
