"""Seeded random streams: every drawn thing has its own independent generator."""

from __future__ import annotations

import numpy as np

# Stream tags of the seeded generators: each (seed, tag, ...) key is an independent stream,
# so every image depends only on its own key, not on the order it is written in.
_STREAM_IDENTITY = 0
_STREAM_CAMERA = 1
_STREAM_SPLIT = 2
_STREAM_FOLDERS = 3
_STREAM_IMAGE = 4
_DATASET_CODES = {"sysu_mm01": 1, "regdb": 2, "llcm": 3}


def _generator(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _image_rng(seed: int, dataset: str, *key: int) -> np.random.Generator:
    return _generator(seed, _STREAM_IMAGE, _DATASET_CODES[dataset], *key)
