"""The interface every network of the zoo implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from vireid_zoo.blocks import Modality, TwoStreamResNet


class VIReIDNetwork(nn.Module, ABC):
    """A visible-infrared re-identification network.

    Attributes:
        backbone: The ImageNet-initialised trunk (its parameters form the optimiser's
            backbone group; everything else is a new layer).
        embedding_dim: Size of the embedding :meth:`extract_features` returns.
    """

    backbone: TwoStreamResNet
    embedding_dim: int

    @abstractmethod
    def extract_features(self, images: torch.Tensor, modality: Modality) -> torch.Tensor:
        """Return L2-normalised embeddings (B, embedding_dim) of images of one modality.

        The modality chooses the stem; it is the images' modality, never their role as
        query or gallery.
        """
