"""Colour the part map, draw the background and apply the camera: [`render_person`][]."""

from __future__ import annotations

import numpy as np

from vireid_zoo.core.records import Modality, modality_code
from vireid_zoo.data.synthetic.appearance import CameraAppearance, Identity, Material, Pose
from vireid_zoo.data.synthetic.checks import _check_image_size
from vireid_zoo.data.synthetic.figure import (
    _BAG,
    _NUM_REGIONS,
    _SKIN_REGIONS,
    BACKGROUND,
    HAIR,
    HAT,
    LEFT_SHOE,
    PANTS,
    RIGHT_SHOE,
    UPPER,
    _draw_figure,
    _Figure,
)
from vireid_zoo.data.synthetic.sampling import draw_pose

_REFERENCE_HEIGHT = 128.0
"""Camera blur is given in pixels at this image height and scaled to the actual size."""


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
        pose: Pose to use; None draws one with [`draw_pose`][].

    Returns:
        ``(image, parts)``: the image as uint8, ``(H, W, 3)`` RGB for visible and
        ``(H, W)`` for infrared, and the ``(H, W)`` uint8 part map in LIP label ids
        ([`LIP_LABELS`][]; 0 where nothing of the person is drawn, and on a bag).
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
