"""Small synthetic visible-infrared re-identification datasets in the real on-disk layouts.

None of the real datasets can be downloaded automatically, so the tests and the demo run on
synthetic trees written exactly as the real ones are (see ``docs/datasets.md``):

* SYSU-MM01 (:func:`make_sysu_mm01`)::

      root/cam1..cam6/<pid:04d>/<image:04d>.jpg      visible cams 1, 2, 4, 5; infrared 3, 6
      root/exp/train_id.txt, val_id.txt, test_id.txt  one line "1,4,7,..." (no newline)

* RegDB (:func:`make_regdb`)::

      root/Visible/<pid>/<gender>_<front|back>_v_<index:05d>_<pid>.bmp    RGB
      root/Thermal/<pid>/<gender>_<front|back>_t_<index:05d>_<pid>.bmp    8-bit grayscale
      root/idx/{train,test}_{visible,thermal}_{t}.txt    "<relative path> <label>", t = 1..10

  Each trial is its own seeded half/half split of the ids; labels are 0..N/2-1 in
  ascending pid order within the trial's training (or test) ids.

* LLCM (:func:`make_llcm`)::

      root/{train,test}_vis/cam1..cam9/<pid:04d>/<pid:04d>_c0K_s<seq>_f<frame>_vis.jpg
      root/{train,test}_nir/cam1,2,4..9/<pid:04d>/<pid:04d>_c0K_s<seq>_f<frame>_nir.jpg
      root/idx/train_vis.txt, train_nir.txt      "<relative path> <label 0..n_train-1>"
      root/idx/test_vis.txt, test_nir.txt        "<relative path> <pid>"
      root/idx/test_id.txt                       one line "2,5,9,..." (no newline)

Infrared images are single-channel files, visible ones RGB. Ids are split at random (test
ids interleaved with training ids). Not every id is seen by every camera: (id, camera)
folders are dropped at ``missing_camera_rate``, but every id keeps at least one visible and
one infrared camera. A dataset is written into a hidden sibling folder that is renamed to
``root`` only once complete, so an interrupted run never leaves a complete-looking tree.

Identity model. Each pid gets an :class:`Identity` from its own seeded generator: a
:class:`BodyShape` (stature, head size, shoulder and hip widths, leg length, limb
thickness), an upper and a lower :class:`Garment` (base and pattern :class:`Material`,
pattern kind, frequency, phase, how much of the arms or legs it covers), skin, hair
(length, hairline), shoes and optional hat and bag. Garment colours come from a weighted
palette of common clothing colours, so, as in real crowds, many people share a colour. A
material's infrared intensity is drawn independently of its colour, so colour never
transfers across modalities: what a model can match is what both renderings share, i.e.
body shape, garment coverage, the geometry of the patterns (drawn in body-local
coordinates, so they move and scale with the body), accessories, and the layout of skin
(bright under infrared) and clothes.

Rendering. :func:`render_person` first draws the per-pixel part map (LIP label ids) and
then colours every pixel from it: visible images use colours, patterns and skin on a
camera-specific coloured background; infrared images use the materials' infrared
intensities, warm skin, medium hair and a darker, cooler background, with a vignette,
stronger blur and sensor-like noise. Each image varies in pose (position, lean, arm and leg
spread, facing the camera or away, mirroring), scale and background texture; each camera
(:class:`CameraAppearance`) has its own background palette and texture, colour cast,
exposure, contrast, blur, noise and viewing distance. Everything is vectorised with numpy
over coordinate grids (1 to 2 ms per 128x64 image on one CPU core).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image

from vireid_zoo.data.records import MODALITIES, Modality, modality_code

__all__ = [
    "LIP_LABELS",
    "PATTERNS",
    "BodyShape",
    "CameraAppearance",
    "Garment",
    "Identity",
    "Material",
    "Pose",
    "draw_pose",
    "make_camera",
    "make_identity",
    "make_llcm",
    "make_regdb",
    "make_sysu_mm01",
    "render_person",
]

RGB = tuple[float, float, float]
Pattern = Literal["solid", "horizontal_stripes", "vertical_stripes", "checks", "dots", "diagonal"]
PATTERNS: tuple[str, ...] = get_args(Pattern)

LIP_LABELS: dict[str, int] = {
    "background": 0,
    "hat": 1,
    "hair": 2,
    "upper_clothes": 5,
    "pants": 9,
    "face": 13,
    "left_arm": 14,
    "right_arm": 15,
    "left_leg": 16,
    "right_leg": 17,
    "left_shoe": 18,
    "right_shoe": 19,
}
"""The LIP part labels :func:`render_person` uses. Left and right are the person's own:
a person facing the camera has the left arm on the image's right (mirrored images swap)."""

BACKGROUND, HAT, HAIR, UPPER, PANTS, FACE = 0, 1, 2, 5, 9, 13
LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG, LEFT_SHOE, RIGHT_SHOE = 14, 15, 16, 17, 18, 19
_BAG = 20
"""Internal region code of a carried bag. LIP has no bag label (bags are annotated as
background), so the returned part map shows a bag as background."""
_NUM_REGIONS = 21
_SKIN_REGIONS = (FACE, LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG)

_JPEG_QUALITY = 90
_REFERENCE_HEIGHT = 128.0
"""Camera blur is given in pixels at this image height and scaled to the actual size."""
_MIN_IMAGE_SIZE = (16, 8)

# Stream tags of the seeded generators: each (seed, tag, ...) key is an independent stream,
# so every image depends only on its own key, not on the order it is written in.
_STREAM_IDENTITY = 0
_STREAM_CAMERA = 1
_STREAM_SPLIT = 2
_STREAM_FOLDERS = 3
_STREAM_IMAGE = 4
_DATASET_CODES = {"sysu_mm01": 1, "regdb": 2, "llcm": 3}

SYSU_VISIBLE_CAMERAS = (1, 2, 4, 5)
SYSU_INFRARED_CAMERAS = (3, 6)
LLCM_VISIBLE_CAMERAS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
LLCM_INFRARED_CAMERAS = (1, 2, 4, 5, 6, 7, 8, 9)
REGDB_TRIALS = 10


# --------------------------------------------------------------------------- appearance


@dataclass(frozen=True)
class Material:
    """A surface as each modality sees it.

    Attributes:
        colour: Visible RGB colour, each channel in [0, 1].
        infrared: Infrared intensity in [0, 1] (near-infrared reflectance or thermal
            emission), drawn independently of ``colour``.
    """

    colour: RGB
    infrared: float


@dataclass(frozen=True)
class Garment:
    """One garment: a base material with a pattern in a second material.

    Attributes:
        base: Material of the garment.
        pattern: Kind of pattern, one of :data:`PATTERNS`.
        pattern_material: Material of the pattern's second colour; its infrared intensity
            differs from the base's by at least 0.2, so the pattern survives in infrared.
        frequency: Pattern cycles per body height (stripes, checks, dots).
        phase: Pattern offset in cycles along the body's horizontal and vertical axes.
        slant: Direction of diagonal stripes, +1 or -1.
        coverage: Fraction of each arm (upper garment) or leg (lower garment) the garment
            covers, from the shoulder or hip outward; the rest is bare skin.
    """

    base: Material
    pattern: Pattern
    pattern_material: Material
    frequency: float
    phase: tuple[float, float]
    slant: int
    coverage: float


@dataclass(frozen=True)
class BodyShape:
    """Body proportions, lengths in body heights (0 = top of the head, 1 = soles).

    Attributes:
        stature: Relative height in (0, 1]; scales the person within the frame.
        head_radius: Vertical radius of the head.
        head_aspect: Head width over head height.
        shoulder_half_width: Half the shoulder width.
        hip_half_width: Half the hip width.
        waist_level: Height of the waist line; larger means shorter legs.
        arm_thickness: Radius of the arms at the shoulder.
        leg_thickness: Radius of the legs at the hip.
    """

    stature: float
    head_radius: float
    head_aspect: float
    shoulder_half_width: float
    hip_half_width: float
    waist_level: float
    arm_thickness: float
    leg_thickness: float


@dataclass(frozen=True)
class Identity:
    """Everything that makes one synthetic person recognisable.

    Attributes:
        pid: Person id.
        gender: ``"male"`` or ``"female"`` (RegDB file names; hair length and build).
        body: Body proportions.
        upper: Upper garment (torso and sleeves).
        lower: Lower garment (hips and legs).
        skin: Skin; bright under infrared (body heat).
        hair: Hair; medium under infrared.
        hair_length: How far the hair falls below the head, in body heights (0 = short).
        hairline: Where the face starts, as a fraction of the head radius above its centre.
        shoes: Shoes.
        hat: Hat, or None.
        bag: Bag carried at the hip, or None.
        bag_side: +1 for a bag on the person's left, -1 on the right.
    """

    pid: int
    gender: Literal["male", "female"]
    body: BodyShape
    upper: Garment
    lower: Garment
    skin: Material
    hair: Material
    hair_length: float
    hairline: float
    shoes: Material
    hat: Material | None
    bag: Material | None
    bag_side: int


@dataclass(frozen=True)
class CameraAppearance:
    """What one camera adds to every image it takes.

    A camera renders either modality (LLCM cameras switch between them): the background's
    visible colours and infrared intensities are independent, like those of people.

    Attributes:
        camera: Camera number.
        wall: Material of the upper background.
        floor: Material of the floor.
        prop: Material of a pillar or door that appears in some images.
        horizon: Fraction of the image height where the floor starts.
        texture: Background texture components ``(cycles along y, cycles along x,
            amplitude)`` per image height and width; each image shifts their phases.
        colour_cast: Per-channel gain of visible images.
        exposure: Brightness of visible images (low-light cameras below 1).
        contrast: Contrast around mid-grey.
        blur: Gaussian blur sigma in pixels at a 128-pixel image height (infrared: x1.5).
        noise: Standard deviation of additive noise, intensities in [0, 1] (infrared: x1.3).
        view_scale: How large people appear, from the camera's distance (about 0.9 to 1).
    """

    camera: int
    wall: Material
    floor: Material
    prop: Material
    horizon: float
    texture: tuple[tuple[float, float, float], ...]
    colour_cast: RGB
    exposure: float
    contrast: float
    blur: float
    noise: float
    view_scale: float


@dataclass(frozen=True)
class Pose:
    """Where and how one image shows the person.

    Attributes:
        height_fraction: Height of a full-stature person over the image height.
        centre: Horizontal position of the feet, as a fraction of the image width.
        ground: Height of the soles, as a fraction of the image height from the top.
        lean: Horizontal offset of the head relative to the feet, in body heights.
        arm_spread: Outward offsets of the left and right hands, in body heights.
        leg_spread: Outward offsets of the left and right ankles, in body heights.
        mirrored: Whether the image is a mirror image (the bag changes side).
        facing_away: Whether the person shows their back (hair instead of face).
    """

    height_fraction: float
    centre: float
    ground: float
    lean: float
    arm_spread: tuple[float, float]
    leg_spread: tuple[float, float]
    mirrored: bool
    facing_away: bool


def _generator(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> RGB:
    """Convert a colour from HSV (each in [0, 1]) to RGB."""
    sector = int(hue * 6.0) % 6
    fraction = hue * 6.0 - int(hue * 6.0)
    low = value * (1.0 - saturation)
    falling = value * (1.0 - saturation * fraction)
    rising = value * (1.0 - saturation * (1.0 - fraction))
    table = (
        (value, rising, low),
        (falling, value, low),
        (low, value, rising),
        (low, falling, value),
        (rising, low, value),
        (value, low, falling),
    )
    red, green, blue = table[sector]
    return (float(red), float(green), float(blue))


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
        The :class:`Identity`; the same arguments always give the same identity.
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
        The :class:`CameraAppearance`; the same arguments always give the same camera.
    """
    if dataset not in _DATASET_CODES:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {list(_DATASET_CODES)}")
    rng = _generator(seed, _STREAM_CAMERA, _DATASET_CODES[dataset], camera)

    def background_material(
        value_range: tuple[float, float], ir_range: tuple[float, float]
    ) -> Material:
        colour = _hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.5), rng.uniform(*value_range))
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
        The :class:`Pose`.
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


# --------------------------------------------------------------------------- rendering


def _ellipse(
    u: np.ndarray, v: np.ndarray, centre: tuple[float, float], radii: tuple[float, float]
) -> np.ndarray:
    return ((u - centre[0]) / radii[0]) ** 2 + ((v - centre[1]) / radii[1]) ** 2 <= 1.0


def _capsule(
    u: np.ndarray,
    v: np.ndarray,
    start: tuple[float, float],
    end: tuple[float, float],
    radii: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Return the mask of a tapered limb from ``start`` to ``end`` and the position along it.

    The position is 0 at ``start`` and 1 at ``end`` (clipped), so a garment that covers a
    fraction of the limb is ``mask & (position <= fraction)``.
    """
    du, dv = end[0] - start[0], end[1] - start[1]
    position = np.clip(((u - start[0]) * du + (v - start[1]) * dv) / (du * du + dv * dv), 0, 1)
    distance_sq = (u - start[0] - position * du) ** 2 + (v - start[1] - position * dv) ** 2
    radius = radii[0] + (radii[1] - radii[0]) * position
    return distance_sq <= radius * radius, position


def _pattern_mask(garment: Garment, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Return where ``garment`` shows its pattern colour, in body-local coordinates."""
    along_u = garment.frequency * u + garment.phase[0]
    along_v = garment.frequency * v + garment.phase[1]
    if garment.pattern == "horizontal_stripes":
        return np.sin(2 * np.pi * along_v) > 0.2
    if garment.pattern == "vertical_stripes":
        return np.sin(2 * np.pi * along_u) > 0.2
    if garment.pattern == "checks":
        return (np.sin(2 * np.pi * along_u) > 0) ^ (np.sin(2 * np.pi * along_v) > 0)
    if garment.pattern == "dots":
        return (along_u % 1.0 - 0.5) ** 2 + (along_v % 1.0 - 0.5) ** 2 < 0.08
    if garment.pattern == "diagonal":
        return np.sin(2 * np.pi * (along_v + garment.slant * along_u) / np.sqrt(2)) > 0
    return np.zeros(np.broadcast_shapes(np.shape(u), np.shape(v)), dtype=bool)


@dataclass(frozen=True)
class _Figure:
    """The drawn person: internal region codes, pattern masks and torso-relative offset."""

    regions: np.ndarray
    upper_pattern: np.ndarray
    lower_pattern: np.ndarray
    side_offset: np.ndarray


def _draw_figure(identity: Identity, pose: Pose, size: tuple[int, int]) -> _Figure:
    """Draw the person's regions on a grid of ``size`` pixels.

    Coordinates are body-local, in body heights: ``v`` runs from the top of the head (0) to
    the soles (1) and ``u`` from the body axis towards the person's left, so mirroring and
    facing away only change the sign that maps ``u`` onto image columns.
    """
    height, width = size
    body = identity.body
    person_px = height * min(pose.height_fraction * body.stature, pose.ground - 0.01)
    top = height * pose.ground - person_px
    v = ((np.arange(height, dtype=np.float32) + 0.5 - top) / person_px)[:, None]
    columns = (np.arange(width, dtype=np.float32) + 0.5 - width * pose.centre)[None, :]
    image_sign = (-1.0 if pose.facing_away else 1.0) * (-1.0 if pose.mirrored else 1.0)
    u = image_sign * (columns / person_px - pose.lean * (1.0 - v))

    head_r = body.head_radius
    head_w = head_r * body.head_aspect
    shoulder_v = 2 * head_r + 0.015
    waist_v = body.waist_level
    crotch_v = waist_v + 0.06
    ankle_v = 0.955
    labels_swapped = pose.mirrored  # a mirror image swaps the person's left and right
    left_arm, right_arm = (RIGHT_ARM, LEFT_ARM) if labels_swapped else (LEFT_ARM, RIGHT_ARM)
    left_leg, right_leg = (RIGHT_LEG, LEFT_LEG) if labels_swapped else (LEFT_LEG, RIGHT_LEG)
    left_shoe, right_shoe = (RIGHT_SHOE, LEFT_SHOE) if labels_swapped else (LEFT_SHOE, RIGHT_SHOE)

    regions = np.zeros((height, width), dtype=np.uint8)
    if identity.bag is not None:
        side = identity.bag_side
        inner, outer = body.hip_half_width + 0.01, body.hip_half_width + 0.1
        bag = (
            (side * u >= inner) & (side * u <= outer) & (v >= waist_v - 0.07) & (v <= waist_v + 0.1)
        )
        regions[bag] = _BAG
    if identity.hair_length > 0 and not pose.facing_away:
        long_hair = (
            (np.abs(u) <= head_w * 1.12) & (v >= head_r) & (v <= shoulder_v + identity.hair_length)
        )
        regions[long_hair] = HAIR

    for side, leg_label, spread in (
        (1, left_leg, pose.leg_spread[0]),
        (-1, right_leg, pose.leg_spread[1]),
    ):
        hip_u = side * body.hip_half_width * 0.5
        ankle_u = side * (body.hip_half_width * 0.5 + spread)
        leg, along = _capsule(
            u,
            v,
            (hip_u, waist_v + 0.03),
            (ankle_u, ankle_v),
            (body.leg_thickness, body.leg_thickness * 0.7),
        )
        regions[leg] = leg_label
        regions[leg & (along <= identity.lower.coverage)] = PANTS
    hips = (np.abs(u) <= body.hip_half_width) & (v >= waist_v) & (v <= crotch_v)
    regions[hips] = PANTS

    neck = (np.abs(u) <= head_w * 0.45) & (v >= head_r) & (v <= shoulder_v + 0.02)
    regions[neck] = FACE
    torso_t = np.clip((v - shoulder_v) / (waist_v - shoulder_v), 0.0, 1.0)
    torso_half_width = (
        body.shoulder_half_width + (body.hip_half_width - body.shoulder_half_width) * torso_t
    )
    shoulders = _ellipse(u, v, (0.0, shoulder_v + 0.045), (body.shoulder_half_width, 0.045))
    torso = (
        (v >= shoulder_v + 0.045) & (v <= waist_v + 0.02) & (np.abs(u) <= torso_half_width)
    ) | shoulders
    regions[torso] = UPPER

    head = _ellipse(u, v, (0.0, head_r), (head_w, head_r))
    regions[head] = HAIR if pose.facing_away else FACE
    regions[head & (v <= head_r * (1.0 - identity.hairline))] = HAIR
    if identity.hair_length > 0 and pose.facing_away:
        back_hair = (
            (np.abs(u) <= head_w * 1.05) & (v >= head_r) & (v <= shoulder_v + identity.hair_length)
        )
        regions[back_hair] = HAIR
    if identity.hat is not None:
        crown = head & (v <= head_r * 0.85)
        brim = _ellipse(u, v, (0.0, head_r * 0.8), (head_w * 1.3, head_r * 0.16))
        regions[crown | brim] = HAT

    for side, arm_label, spread in (
        (1, left_arm, pose.arm_spread[0]),
        (-1, right_arm, pose.arm_spread[1]),
    ):
        shoulder_u = side * (body.shoulder_half_width - body.arm_thickness * 0.6)
        hand_u = side * (body.shoulder_half_width + spread)
        arm, along = _capsule(
            u,
            v,
            (shoulder_u, shoulder_v + 0.035),
            (hand_u, shoulder_v + 0.34),
            (body.arm_thickness, body.arm_thickness * 0.75),
        )
        regions[arm] = arm_label
        regions[arm & (along <= identity.upper.coverage)] = UPPER

    for side, shoe_label, spread in (
        (1, left_shoe, pose.leg_spread[0]),
        (-1, right_shoe, pose.leg_spread[1]),
    ):
        shoe_u = side * (body.hip_half_width * 0.5 + spread + 0.01)
        shoe = _ellipse(u, v, (shoe_u, 0.975), (body.leg_thickness * 1.15, 0.028))
        regions[shoe] = shoe_label

    return _Figure(
        regions=regions,
        upper_pattern=_pattern_mask(identity.upper, u, v - shoulder_v),
        lower_pattern=_pattern_mask(identity.lower, u, v - waist_v),
        side_offset=np.clip(np.abs(u) / (body.shoulder_half_width * 1.4), 0.0, 1.0),
    )


def _material_value(material: Material, modality: Modality) -> tuple[float, ...]:
    """Return the RGB colour (visible) or the 1-tuple infrared intensity of ``material``."""
    return material.colour if modality == "visible" else (material.infrared,)


def _palette(identity: Identity, modality: Modality) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the value of every region code and of the two pattern materials.

    Visible values are RGB rows, infrared values single intensities.
    """
    materials: dict[int, Material | None] = {
        HAT: identity.hat,
        HAIR: identity.hair,
        UPPER: identity.upper.base,
        PANTS: identity.lower.base,
        LEFT_SHOE: identity.shoes,
        RIGHT_SHOE: identity.shoes,
        _BAG: identity.bag,
    }
    materials.update(dict.fromkeys(_SKIN_REGIONS, identity.skin))

    channels = 3 if modality == "visible" else 1
    palette = np.zeros((_NUM_REGIONS, channels), dtype=np.float32)
    for region, material in materials.items():
        if material is not None:
            palette[region] = _material_value(material, modality)
    upper_pattern = np.array(
        _material_value(identity.upper.pattern_material, modality), dtype=np.float32
    )
    lower_pattern = np.array(
        _material_value(identity.lower.pattern_material, modality), dtype=np.float32
    )
    return palette, upper_pattern, lower_pattern


def _colour_figure(identity: Identity, figure: _Figure, modality: Modality) -> np.ndarray:
    """Colour every pixel from its region code (and garment pattern), with soft shading."""
    palette, upper_pattern, lower_pattern = _palette(identity, modality)
    regions = figure.regions
    values = np.take(palette, regions, axis=0)
    values[figure.upper_pattern & (regions == UPPER)] = upper_pattern
    values[figure.lower_pattern & (regions == PANTS)] = lower_pattern
    shading_strength = 0.25 if modality == "visible" else 0.15
    shading = 1.0 - shading_strength * figure.side_offset**2
    return values * shading[..., None]


def _background(
    camera: CameraAppearance, modality: Modality, rng: np.random.Generator, size: tuple[int, int]
) -> np.ndarray:
    """Draw the camera's background (wall, floor, an optional prop) with a per-image texture."""
    height, width = size
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]
    x = ((np.arange(width, dtype=np.float32) + 0.5) / width)[None, :]
    phases = rng.random(len(camera.texture)).tolist()
    brightness = rng.uniform(0.9, 1.1)
    horizon = camera.horizon + rng.uniform(-0.04, 0.04)
    has_prop = rng.random() < 0.5
    prop_left, prop_width = rng.uniform(-0.1, 1.0), rng.uniform(0.08, 0.25)

    texture = np.zeros((height, width), dtype=np.float32)
    for (cycles_y, cycles_x, amplitude), phase in zip(camera.texture, phases, strict=True):
        texture += amplitude * np.sin(2 * np.pi * (cycles_y * y + cycles_x * x + phase))
    prop = has_prop & (x >= prop_left) & (x <= prop_left + prop_width) & (y < horizon)
    material_index = np.where(y >= horizon, 1, prop * 2).astype(np.uint8)
    palette = np.array(
        [
            _material_value(material, modality)
            for material in (camera.wall, camera.floor, camera.prop)
        ],
        dtype=np.float32,
    )
    return np.take(palette, material_index, axis=0) * ((1.0 + texture) * brightness)[..., None]


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Blur the first two axes of ``image`` with a separable Gaussian (edges replicated)."""
    if sigma < 0.25:
        return image
    radius = int(np.ceil(2.5 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    height, width = image.shape[:2]
    edges = [(radius, radius), (radius, radius)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, edges, mode="edge")
    rows = sum(weight * padded[shift : shift + height] for shift, weight in enumerate(weights))
    return sum(weight * rows[:, shift : shift + width] for shift, weight in enumerate(weights))


def _apply_camera(
    image: np.ndarray,
    camera: CameraAppearance,
    modality: Modality,
    rng: np.random.Generator,
) -> np.ndarray:
    """Apply the camera's exposure, contrast, blur and noise; return uint8 pixels."""
    height, width, channels = image.shape
    if modality == "visible":
        image = image * (np.array(camera.colour_cast, dtype=np.float32) * camera.exposure)
        blur, noise = camera.blur, camera.noise
    else:
        y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
        x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
        vignette = 1.0 - 0.3 * (x**2 + y**2) / 2.0
        image = image * vignette[..., None]
        blur, noise = camera.blur * 1.5, camera.noise * 1.3
    image = (image - 0.5) * camera.contrast + 0.5
    image = _gaussian_blur(image, blur * height / _REFERENCE_HEIGHT)
    pixel_noise = rng.standard_normal((height, width, channels), dtype=np.float32)
    row_noise = rng.standard_normal((height, 1, 1), dtype=np.float32)
    image = image + noise * pixel_noise
    if modality == "infrared":
        image = image + 0.5 * noise * row_noise  # sensor line noise
    pixels = np.clip(image * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    return pixels if modality == "visible" else pixels[..., 0]


def render_person(
    identity: Identity,
    modality: Modality,
    camera: CameraAppearance,
    rng: np.random.Generator,
    size: tuple[int, int],
    pose: Pose | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one image of ``identity`` and the part map that drove its colouring.

    The random draws of an image (pose, background, noise) depend only on ``rng``, never
    on the identity: two identities rendered with identically seeded generators share
    pose, background and noise and differ only where their parts differ.

    Args:
        identity: Who to draw.
        modality: ``"visible"`` (colours) or ``"infrared"`` (infrared intensities).
        camera: Camera taking the image.
        rng: Generator of this image.
        size: ``(height, width)`` in pixels, at least 16 x 8.
        pose: Pose to use; None draws one with :func:`draw_pose`.

    Returns:
        ``(image, parts)``: the image as uint8, ``(H, W, 3)`` RGB for visible and
        ``(H, W)`` for infrared, and the ``(H, W)`` uint8 part map in LIP label ids
        (:data:`LIP_LABELS`; 0 where nothing of the person is drawn, and on a bag).
    """
    modality_code(modality)
    height, width = _check_image_size(size)
    if pose is None:
        pose = draw_pose(rng, camera)
    background = _background(camera, modality, rng, (height, width))
    figure = _draw_figure(identity, pose, (height, width))
    person = (figure.regions != BACKGROUND)[..., None]
    picture = np.where(person, _colour_figure(identity, figure, modality), background)
    image = _apply_camera(picture, camera, modality, rng)
    parts = np.where(figure.regions == _BAG, BACKGROUND, figure.regions).astype(np.uint8)
    return image, parts


# --------------------------------------------------------------------------- writing


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


@contextmanager
def _staged_directory(root: Path) -> Iterator[Path]:
    """Yield a hidden sibling folder of ``root`` that becomes ``root`` on success.

    Raises:
        FileExistsError: ``root`` exists and is not an empty directory.
    """
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"dataset root '{root}' already exists and is not an empty folder; "
            "remove it or choose another root"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        yield staging
        if root.exists():
            root.rmdir()
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _save_image(path: Path, image: np.ndarray) -> None:
    """Save ``image`` (RGB or single-channel uint8) as JPEG or BMP after its suffix."""
    if path.suffix == ".jpg":
        Image.fromarray(image).save(path, format="JPEG", quality=_JPEG_QUALITY)
    else:
        Image.fromarray(image).save(path, format="BMP")


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_id_line(path: Path, pids: Sequence[int]) -> None:
    path.write_text(",".join(str(pid) for pid in pids), encoding="utf-8")


def _split_ids(seed: int, dataset: str, counts: Sequence[int]) -> list[list[int]]:
    """Shuffle pids 1..sum(counts) and cut them into sorted splits of the given sizes."""
    rng = _generator(seed, _STREAM_SPLIT, _DATASET_CODES[dataset])
    order = rng.permutation(np.arange(1, sum(counts) + 1))
    bounds = np.cumsum([0, *counts])
    return [
        sorted(int(pid) for pid in order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _present_cameras(
    rng: np.random.Generator,
    visible: Sequence[int],
    infrared: Sequence[int],
    missing_rate: float,
) -> tuple[list[int], list[int]]:
    """Drop cameras at ``missing_rate``, keeping at least one of each modality."""
    kept = []
    for cameras in (visible, infrared):
        keep = rng.random(len(cameras)) >= missing_rate
        rescue = int(rng.integers(len(cameras)))
        if not keep.any():
            keep[rescue] = True
        kept.append([camera for camera, present in zip(cameras, keep, strict=True) if present])
    return kept[0], kept[1]


def _image_rng(seed: int, dataset: str, *key: int) -> np.random.Generator:
    return _generator(seed, _STREAM_IMAGE, _DATASET_CODES[dataset], *key)


def make_sysu_mm01(
    root: str | os.PathLike[str],
    *,
    num_train_ids: int = 16,
    num_val_ids: int = 4,
    num_test_ids: int = 8,
    images_per_camera: int = 4,
    image_size: tuple[int, int] = (128, 64),
    missing_camera_rate: float = 0.15,
    seed: int = 0,
) -> Path:
    """Write a synthetic SYSU-MM01 tree (layout in the module docstring).

    Args:
        root: Folder to create; it must not exist or be empty.
        num_train_ids: Ids listed in ``exp/train_id.txt`` (at least 2).
        num_val_ids: Ids listed in ``exp/val_id.txt`` (at least 2).
        num_test_ids: Ids listed in ``exp/test_id.txt`` (at least 2).
        images_per_camera: Images in each (id, camera) folder.
        image_size: ``(height, width)`` of every image.
        missing_camera_rate: Probability that an (id, camera) folder is absent; every id
            keeps at least one visible (1, 2, 4, 5) and one infrared (3, 6) camera.
        seed: Seed of everything drawn; the same arguments give byte-identical files.

    Returns:
        The dataset root.

    Raises:
        ValueError: On an impossible argument.
        FileExistsError: ``root`` exists and is not empty.
    """
    counts = [
        _check_split("num_train_ids", num_train_ids),
        _check_split("num_val_ids", num_val_ids),
        _check_split("num_test_ids", num_test_ids),
    ]
    per_camera = _check_int("images_per_camera", images_per_camera, 1)
    size = _check_image_size(image_size)
    rate = _check_rate(missing_camera_rate)
    seed = _check_int("seed", seed, 0)
    dataset = "sysu_mm01"
    splits = _split_ids(seed, dataset, counts)
    cameras = {cam: make_camera(cam, seed, dataset=dataset) for cam in range(1, 7)}
    root = Path(root)
    with _staged_directory(root) as staging:
        for pid in range(1, sum(counts) + 1):
            identity = make_identity(pid, seed)
            folder_rng = _generator(seed, _STREAM_FOLDERS, _DATASET_CODES[dataset], pid)
            visible, infrared = _present_cameras(
                folder_rng, SYSU_VISIBLE_CAMERAS, SYSU_INFRARED_CAMERAS, rate
            )
            for modality, cams in (("visible", visible), ("infrared", infrared)):
                for cam in cams:
                    folder = staging / f"cam{cam}" / f"{pid:04d}"
                    folder.mkdir(parents=True)
                    for index in range(1, per_camera + 1):
                        rng = _image_rng(seed, dataset, pid, cam, index)
                        image, _ = render_person(identity, modality, cameras[cam], rng, size)
                        _save_image(folder / f"{index:04d}.jpg", image)
        (staging / "exp").mkdir()
        for name, pids in zip(("train_id", "val_id", "test_id"), splits, strict=True):
            _write_id_line(staging / "exp" / f"{name}.txt", pids)
    return root


def make_regdb(
    root: str | os.PathLike[str],
    *,
    num_ids: int = 20,
    images_per_modality: int = 10,
    image_size: tuple[int, int] = (128, 64),
    seed: int = 0,
) -> Path:
    """Write a synthetic RegDB tree (layout in the module docstring).

    Image ``k`` of a person is a visible/thermal pair sharing a frame index and a view
    (front or back), as in the real dataset; each modality has its own camera and pose.

    Args:
        root: Folder to create; it must not exist or be empty.
        num_ids: Number of persons, even and at least 4: each of the 10 trials trains on a
            random half and tests on the other half.
        images_per_modality: Visible images, and thermal images, per person.
        image_size: ``(height, width)`` of every image.
        seed: Seed of everything drawn; the same arguments give byte-identical files.

    Returns:
        The dataset root.

    Raises:
        ValueError: On an impossible argument.
        FileExistsError: ``root`` exists and is not empty.
    """
    total = _check_int("num_ids", num_ids, 4)
    if total % 2:
        raise ValueError(f"num_ids must be even (each trial splits the ids in halves), got {total}")
    per_modality = _check_int("images_per_modality", images_per_modality, 1)
    size = _check_image_size(image_size)
    seed = _check_int("seed", seed, 0)
    dataset = "regdb"
    trees = {"visible": ("Visible", "v", 1), "infrared": ("Thermal", "t", 2)}
    cameras = {cam: make_camera(cam, seed, dataset=dataset) for _, _, cam in trees.values()}
    files: dict[str, dict[int, list[str]]] = {"visible": {}, "infrared": {}}
    root = Path(root)
    with _staged_directory(root) as staging:
        for pid in range(1, total + 1):
            identity = make_identity(pid, seed)
            for modality in ("visible", "infrared"):
                (staging / trees[modality][0] / str(pid)).mkdir(parents=True)
                files[modality][pid] = []
            for index in range(1, per_modality + 1):
                frame = (pid - 1) * per_modality + index
                view_rng = _generator(seed, _STREAM_FOLDERS, _DATASET_CODES[dataset], pid, index)
                facing_away = bool(view_rng.random() < 0.3)
                view = "back" if facing_away else "front"
                for modality, (tree, letter, cam) in trees.items():
                    rng = _image_rng(seed, dataset, pid, cam, index)
                    pose = draw_pose(rng, cameras[cam], facing_away=facing_away)
                    image, _ = render_person(identity, modality, cameras[cam], rng, size, pose)
                    name = f"{identity.gender}_{view}_{letter}_{frame:05d}_{pid}.bmp"
                    _save_image(staging / tree / str(pid) / name, image)
                    files[modality][pid].append(f"{tree}/{pid}/{name}")
        (staging / "idx").mkdir()
        for trial in range(1, REGDB_TRIALS + 1):
            order = _generator(seed, _STREAM_SPLIT, _DATASET_CODES[dataset], trial).permutation(
                np.arange(1, total + 1)
            )
            halves = {"train": sorted(order[: total // 2]), "test": sorted(order[total // 2 :])}
            for split, pids in halves.items():
                for modality, file_stem in (("visible", "visible"), ("infrared", "thermal")):
                    lines = [
                        f"{path} {label}"
                        for label, pid in enumerate(pids)
                        for path in files[modality][int(pid)]
                    ]
                    _write_lines(staging / "idx" / f"{split}_{file_stem}_{trial}.txt", lines)
    return root


_LLCM_SUFFIXES: dict[str, str] = {"visible": "vis", "infrared": "nir"}


def _write_llcm_folder(
    folder: Path,
    identity: Identity,
    modality: Modality,
    camera: CameraAppearance,
    seed: int,
    size: tuple[int, int],
    count: int,
) -> list[str]:
    """Write ``count`` frames of one LLCM (id, camera, modality) sequence; return their names."""
    key = (identity.pid, camera.camera, modality_code(modality))
    sequence_rng = _generator(seed, _STREAM_FOLDERS, _DATASET_CODES["llcm"], *key)
    sequence = int(sequence_rng.integers(100000, 1000000))
    first_frame = int(sequence_rng.integers(100, 5000))
    folder.mkdir(parents=True)
    names = []
    for index in range(count):
        rng = _image_rng(seed, "llcm", *key, index)
        image, _ = render_person(identity, modality, camera, rng, size)
        name = (
            f"{identity.pid:04d}_c{camera.camera:02d}_s{sequence}_f{first_frame + 10 * index}"
            f"_{_LLCM_SUFFIXES[modality]}.jpg"
        )
        _save_image(folder / name, image)
        names.append(name)
    return names


def make_llcm(
    root: str | os.PathLike[str],
    *,
    num_train_ids: int = 16,
    num_test_ids: int = 8,
    images_per_camera: int = 3,
    image_size: tuple[int, int] = (128, 64),
    missing_camera_rate: float = 0.15,
    seed: int = 0,
) -> Path:
    """Write a synthetic LLCM tree (layout in the module docstring).

    Cameras switch modality: camera K shows the same scene in ``*_vis/camK`` and
    ``*_nir/camK`` (there is no near-infrared camera 3). Visible images are dim and noisy,
    as in the low-light real dataset.

    Args:
        root: Folder to create; it must not exist or be empty.
        num_train_ids: Training ids (at least 2); labels 0..n-1 in ascending pid order.
        num_test_ids: Test ids (at least 2), listed in ``idx/test_id.txt``.
        images_per_camera: Images in each (id, camera, modality) folder.
        image_size: ``(height, width)`` of every image.
        missing_camera_rate: Probability that an (id, camera, modality) folder is absent;
            every id keeps at least one visible and one near-infrared camera.
        seed: Seed of everything drawn; the same arguments give byte-identical files.

    Returns:
        The dataset root.

    Raises:
        ValueError: On an impossible argument.
        FileExistsError: ``root`` exists and is not empty.
    """
    counts = [
        _check_split("num_train_ids", num_train_ids),
        _check_split("num_test_ids", num_test_ids),
    ]
    per_camera = _check_int("images_per_camera", images_per_camera, 1)
    size = _check_image_size(image_size)
    rate = _check_rate(missing_camera_rate)
    seed = _check_int("seed", seed, 0)
    dataset = "llcm"
    train_ids, test_ids = _split_ids(seed, dataset, counts)
    cameras = {
        cam: make_camera(cam, seed, dataset=dataset, low_light=True) for cam in LLCM_VISIBLE_CAMERAS
    }
    root = Path(root)
    with _staged_directory(root) as staging:
        (staging / "idx").mkdir()
        for split, pids in (("train", train_ids), ("test", test_ids)):
            lines: dict[str, list[str]] = {modality: [] for modality in MODALITIES}
            for label, pid in enumerate(pids):
                identity = make_identity(pid, seed)
                folder_rng = _generator(seed, _STREAM_FOLDERS, _DATASET_CODES[dataset], pid)
                present = _present_cameras(
                    folder_rng, LLCM_VISIBLE_CAMERAS, LLCM_INFRARED_CAMERAS, rate
                )
                for modality, cams in zip(MODALITIES, present, strict=True):
                    for cam in cams:
                        folder = f"{split}_{_LLCM_SUFFIXES[modality]}/cam{cam}/{pid:04d}"
                        names = _write_llcm_folder(
                            staging / folder,
                            identity,
                            modality,
                            cameras[cam],
                            seed,
                            size,
                            per_camera,
                        )
                        listed_label = label if split == "train" else pid
                        lines[modality] += [f"{folder}/{name} {listed_label}" for name in names]
            for modality, suffix in _LLCM_SUFFIXES.items():
                _write_lines(staging / "idx" / f"{split}_{suffix}.txt", lines[modality])
        _write_id_line(staging / "idx" / "test_id.txt", test_ids)
    return root
