"""The part map: LIP labels and the person's regions drawn in body-local coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vireid_zoo.data.synthetic.appearance import Garment, Identity, Pose

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
"""The LIP part labels [`render_person`][] uses. Left and right are the person's own:
a person facing the camera has the left arm on the image's right (mirrored images swap)."""

BACKGROUND, HAT, HAIR, UPPER, PANTS, FACE = 0, 1, 2, 5, 9, 13
LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG, LEFT_SHOE, RIGHT_SHOE = 14, 15, 16, 17, 18, 19
_BAG = 20
"""Internal region code of a carried bag. LIP has no bag label (bags are annotated as
background), so the returned part map shows a bag as background."""
_NUM_REGIONS = 21
_SKIN_REGIONS = (FACE, LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG)


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
