"""Random colours, infrared intensities and garments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vireid_zoo.data.synthetic.appearance import PATTERNS, RGB, Garment, Material


def _rgb(values: np.ndarray) -> RGB:
    clipped = np.clip(values, 0.0, 1.0)
    return (float(clipped[0]), float(clipped[1]), float(clipped[2]))


_CLOTHING_COLOURS = np.array(
    [
        (0.08, 0.08, 0.09),  # black
        (0.90, 0.90, 0.88),  # white
        (0.50, 0.50, 0.52),  # grey
        (0.12, 0.16, 0.35),  # navy
        (0.22, 0.42, 0.75),  # blue
        (0.70, 0.12, 0.14),  # red
        (0.16, 0.42, 0.20),  # green
        (0.76, 0.68, 0.50),  # beige
        (0.42, 0.27, 0.15),  # brown
        (0.90, 0.78, 0.20),  # yellow
        (0.90, 0.55, 0.65),  # pink
        (0.45, 0.25, 0.55),  # purple
        (0.95, 0.50, 0.15),  # orange
        (0.25, 0.60, 0.60),  # teal
    ]
)
_CLOTHING_COLOUR_WEIGHTS = np.array([4, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1]) / 21.0
"""Common clothing colours and how often they are worn: as in real crowds, many people share
a colour, so colour alone (which never transfers to infrared) identifies nobody."""


def _random_fabric_colour(rng: np.random.Generator) -> RGB:
    """Draw a clothing colour: a common colour with a little variation."""
    index = rng.choice(len(_CLOTHING_COLOURS), p=_CLOTHING_COLOUR_WEIGHTS)
    return _rgb(_CLOTHING_COLOURS[index] + rng.uniform(-0.06, 0.06, 3))


def _contrasting_colour(rng: np.random.Generator, colour: RGB) -> RGB:
    """Draw a colour at least 0.35 away from ``colour`` (Euclidean RGB distance)."""
    while True:
        candidate = _random_fabric_colour(rng)
        if np.linalg.norm(np.subtract(candidate, colour)) >= 0.35:
            return candidate


def _contrasting_infrared(rng: np.random.Generator, infrared: float) -> float:
    """Draw an infrared intensity 0.2 to 0.45 away from ``infrared``, within [0.05, 0.95]."""
    step = rng.uniform(0.2, 0.45)
    brighter = rng.random() < 0.5
    if infrared + step > 0.95:
        brighter = False
    elif infrared - step < 0.05:
        brighter = True
    return float(infrared + step if brighter else infrared - step)


def _random_garment(rng: np.random.Generator, coverage_choices: Sequence[float]) -> Garment:
    base = Material(_random_fabric_colour(rng), float(rng.uniform(0.12, 0.9)))
    second_colour = _contrasting_colour(rng, base.colour)
    pattern_material = Material(second_colour, _contrasting_infrared(rng, base.infrared))
    return Garment(
        base=base,
        pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        pattern_material=pattern_material,
        frequency=float(rng.uniform(7.0, 15.0)),
        phase=(float(rng.random()), float(rng.random())),
        slant=int(rng.choice((-1, 1))),
        coverage=float(coverage_choices[int(rng.integers(len(coverage_choices)))]),
    )
