"""What a synthetic person, camera and image look like: the appearance dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

RGB = tuple[float, float, float]
Pattern = Literal["solid", "horizontal_stripes", "vertical_stripes", "checks", "dots", "diagonal"]
PATTERNS: tuple[Pattern, ...] = get_args(Pattern)


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
        pattern: Kind of pattern, one of `PATTERNS`.
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
