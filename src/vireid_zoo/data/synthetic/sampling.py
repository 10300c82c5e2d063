"""Draw identities, cameras and poses from seeded generators."""

from __future__ import annotations

from colorsys import hsv_to_rgb
from typing import Literal

import numpy as np

from vireid_zoo.data.synthetic.appearance import (
    BodyShape,
    CameraAppearance,
    Identity,
    Material,
    Pose,
)
from vireid_zoo.data.synthetic.materials import (
    _random_fabric_colour,
    _random_garment,
    _rgb,
)
from vireid_zoo.data.synthetic.seeding import (
    _DATASET_CODES,
    _STREAM_CAMERA,
    _STREAM_IDENTITY,
    _generator,
)

_SKIN_LIGHT = np.array([0.96, 0.80, 0.69])
_SKIN_DARK = np.array([0.36, 0.22, 0.15])
_HAIR_COLOURS = ((0.07, 0.06, 0.05), (0.24, 0.15, 0.09), (0.45, 0.30, 0.17), (0.80, 0.67, 0.42))
_SLEEVE_COVERAGES = (0.3, 0.55, 1.0, 1.0)
_LEG_COVERAGES = (0.35, 0.7, 1.0, 1.0, 1.0)


def make_identity(pid: int, seed: int = 0) -> Identity:
    """Draw the appearance of person ``pid`` from a generator seeded by ``(seed, pid)``.

    Args:
        pid: Person id (any non-negative integer).
        seed: Dataset seed.

    Returns:
        The [`Identity`][]; the same arguments always give the same identity.
    """
    rng = _generator(seed, _STREAM_IDENTITY, pid)
    gender: Literal["male", "female"] = "female" if rng.random() < 0.5 else "male"
    broad = 0.012 if gender == "male" else -0.008
    body = BodyShape(
        stature=float(rng.uniform(0.9, 1.0)),
        head_radius=float(rng.uniform(0.055, 0.072)),
        head_aspect=float(rng.uniform(0.75, 0.92)),
        shoulder_half_width=float(rng.uniform(0.095, 0.135) + broad),
        hip_half_width=float(rng.uniform(0.07, 0.1)),
        waist_level=float(rng.uniform(0.44, 0.54)),
        arm_thickness=float(rng.uniform(0.024, 0.036)),
        leg_thickness=float(rng.uniform(0.035, 0.05)),
    )
    upper = _random_garment(rng, _SLEEVE_COVERAGES)
    lower = _random_garment(rng, _LEG_COVERAGES)
    skin_tone = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * rng.random()
    skin = Material(_rgb(skin_tone), float(rng.uniform(0.72, 0.92)))
    hair_colour = np.array(_HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))])
    hair = Material(_rgb(hair_colour + rng.uniform(-0.04, 0.04, 3)), float(rng.uniform(0.38, 0.55)))
    long_hair = rng.random() < (0.6 if gender == "female" else 0.1)
    hair_length = float(rng.uniform(0.06, 0.16)) if long_hair else 0.0
    hairline = float(rng.uniform(0.15, 0.6))
    shoes = Material(
        _rgb(rng.uniform(0.03, 0.6) * np.ones(3) + rng.uniform(-0.05, 0.05, 3)),
        float(rng.uniform(0.1, 0.6)),
    )
    hat_material = Material(_random_fabric_colour(rng), float(rng.uniform(0.1, 0.9)))
    bag_material = Material(_random_fabric_colour(rng), float(rng.uniform(0.1, 0.9)))
    has_hat = rng.random() < 0.2
    has_bag = rng.random() < 0.35
    return Identity(
        pid=pid,
        gender=gender,
        body=body,
        upper=upper,
        lower=lower,
        skin=skin,
        hair=hair,
        hair_length=hair_length,
        hairline=hairline,
        shoes=shoes,
        hat=hat_material if has_hat else None,
        bag=bag_material if has_bag else None,
        bag_side=int(rng.choice((-1, 1))),
    )


def make_camera(
    camera: int, seed: int = 0, *, dataset: str = "sysu_mm01", low_light: bool = False
) -> CameraAppearance:
    """Draw the appearance of one camera of one dataset.

    Args:
        camera: Camera number.
        seed: Dataset seed.
        dataset: ``"sysu_mm01"``, ``"regdb"`` or ``"llcm"``; each has its own cameras.
        low_light: Draw a dim, noisy visible exposure (LLCM is a low-light dataset).

    Returns:
        The [`CameraAppearance`][]; the same arguments always give the same camera.
    """
    if dataset not in _DATASET_CODES:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {list(_DATASET_CODES)}")
    rng = _generator(seed, _STREAM_CAMERA, _DATASET_CODES[dataset], camera)

    def background_material(
        value_range: tuple[float, float], ir_range: tuple[float, float]
    ) -> Material:
        colour = hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.5), rng.uniform(*value_range))
        return Material(colour, float(rng.uniform(*ir_range)))

    wall = background_material((0.35, 0.9), (0.06, 0.32))
    floor = background_material((0.2, 0.7), (0.04, 0.25))
    prop = background_material((0.15, 0.9), (0.05, 0.4))
    texture = tuple(
        (float(rng.uniform(0.5, 6.0)), float(rng.uniform(0.5, 6.0)), float(rng.uniform(0.02, 0.1)))
        for _ in range(3)
    )
    exposure = rng.uniform(0.35, 0.7) if low_light else rng.uniform(0.85, 1.15)
    noise = rng.uniform(0.03, 0.06) if low_light else rng.uniform(0.008, 0.03)
    return CameraAppearance(
        camera=camera,
        wall=wall,
        floor=floor,
        prop=prop,
        horizon=float(rng.uniform(0.55, 0.85)),
        texture=texture,
        colour_cast=_rgb(rng.uniform(0.85, 1.15, 3)),
        exposure=float(exposure),
        contrast=float(rng.uniform(0.8, 1.2)),
        blur=float(rng.uniform(0.3, 0.9)),
        noise=float(noise),
        view_scale=float(rng.uniform(0.88, 1.0)),
    )


def draw_pose(
    rng: np.random.Generator, camera: CameraAppearance, facing_away: bool | None = None
) -> Pose:
    """Draw the pose of one image.

    Args:
        rng: Generator of the image.
        camera: Camera taking the image (its viewing distance scales the person).
        facing_away: Force the person to face away (True) or towards the camera (False);
            None draws it (30 % facing away).

    Returns:
        The [`Pose`][].
    """
    height_fraction = rng.uniform(0.84, 1.0) * camera.view_scale
    centre = rng.uniform(0.4, 0.6)
    ground = rng.uniform(0.975, 0.995)
    lean = rng.uniform(-0.04, 0.04)
    arm_spread = rng.uniform(0.0, 0.07, 2)
    leg_spread = rng.uniform(-0.01, 0.05, 2)
    mirrored = rng.random() < 0.5
    drawn_facing_away = rng.random() < 0.3
    return Pose(
        height_fraction=float(height_fraction),
        centre=float(centre),
        ground=float(ground),
        lean=float(lean),
        arm_spread=(float(arm_spread[0]), float(arm_spread[1])),
        leg_spread=(float(leg_spread[0]), float(leg_spread[1])),
        mirrored=bool(mirrored),
        facing_away=drawn_facing_away if facing_away is None else facing_away,
    )
