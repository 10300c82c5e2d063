"""Checks of the writers' and the renderer's arguments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MIN_IMAGE_SIZE = (16, 8)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_image_size(size: object) -> tuple[int, int]:
    min_height, min_width = _MIN_IMAGE_SIZE
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(
            isinstance(side, int | np.integer) and not isinstance(side, bool) for side in size
        )
        or size[0] < min_height
        or size[1] < min_width
    ):
        raise ValueError(
            f"image_size must be (height, width) integers of at least "
            f"({min_height}, {min_width}), got {size!r}"
        )
    return int(size[0]), int(size[1])


def _check_rate(rate: object) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate < 1.0:
        raise ValueError(f"missing_camera_rate must be in [0, 1), got {rate!r}")
    return float(rate)


def _check_split(name: str, count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 2:
        raise ValueError(
            f"{name} must be an integer >= 2 (a split needs at least 2 ids), got {count!r}"
        )
    return int(count)
