"""Shared modality-aware building blocks: trunk, pooling, neck and attention."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.blocks.attention import ChannelAttention, NonLocalBlock, SpatialAttention
    from vireid_zoo.blocks.neck import BNNeck, HeadOutput, TestFeature
    from vireid_zoo.blocks.pooling import GeMFormula, GeneralizedMeanPooling
    from vireid_zoo.blocks.two_stream import (
        SUPPORTED_ARCHS,
        BlockWithInsert,
        TwoStreamResNet,
    )

__getattr__, __dir__, __all__ = attach(__name__, __file__)
