"""Pretrained configurations: the contract a published model comes with (timm style).

A [`PretrainedConfig`][] travels in a published model's ``config.json``. It states the
input contract (size, normalisation, interpolation), the embedding contract (dimension,
which feature, normalised) and the provenance (dataset, protocol, measured metrics,
commit, licence; for converted weights, their source). The zoo registers a named
pretrained model (``agw_resnet50.sysu_mm01``) only when its weights really exist on the
Hub.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet normalisation mean (RGB), the input contract of every trunk of the zoo."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet normalisation standard deviation (RGB)."""

HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
CHECKPOINT_CFG_KEY = "vireid_zoo_pretrained_cfg"
"""Key of a Lightning checkpoint that carries the [`PretrainedConfig`][] of the weights it
holds (written for converted weights; read by ``vireid-zoo publish``)."""
_HUB_SOURCE = re.compile(r"^hf-hub:(?P<repo>[\w.\-]+/[\w.\-]+)(?:@(?P<revision>[\w.\-/]+))?$")


@dataclass
class PretrainedConfig:
    """What a user needs to use a published model correctly, and where it comes from.

    Attributes:
        architecture: Registry name, e.g. ``"agw_resnet50"``.
        input_size: ``(height, width)`` the model was trained at.
        mean: Normalisation mean of the input.
        std: Normalisation standard deviation of the input.
        interpolation: Resize interpolation of the test transform.
        embedding_dim: Size of ``extract_features``'s output.
        feature: Which feature the embedding is (e.g. ``"bn"``: BNNeck output).
        normalized: Whether embeddings are L2-normalised (always true in this zoo).
        dataset: Training dataset (``sysu_mm01``, ``regdb``, ``llcm``, or a name).
        protocol: Evaluation protocol of ``metrics``.
        metrics: Measured test scores (fractions), e.g. ``{"sysu_mm01/all/mAP": 0.47}``.
        recipe: Training hyperparameters.
        commit: vireid-zoo commit (or version) that trained it.
        license: Licence of the weights.
        hub_id: ``org/name`` on the Hugging Face Hub.
        revision: Hub revision (branch, tag or commit) of the weights.
        source: Where converted weights come from (see
            [`vireid_zoo.hub.conversion.convert_checkpoint`][]), None for weights trained by
            the zoo: ``codebase``, ``repository``, ``file`` (name), ``sha256``, ``epoch``
            and ``reported_metrics``, the scores stored in the source checkpoint
            (fractions; reported by it, never measured by the zoo; ``reported_by`` says
            how they were obtained), ``variant`` and ``chosen`` (what the weights told
            and what was chosen at conversion), ``licence`` and ``note``. ``metrics``
            stays empty until the zoo measures the weights.
    """

    architecture: str
    input_size: tuple[int, int] = (288, 144)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    embedding_dim: int = 0
    feature: str = "bn"
    normalized: bool = True
    dataset: str | None = None
    protocol: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    commit: str | None = None
    license: str = "apache-2.0"
    hub_id: str | None = None
    revision: str | None = None
    source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainedConfig:
        """Rebuild from [`to_dict`][] output; unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown pretrained_cfg keys {unknown}; known: {sorted(known)}")
        values = dict(values)
        for key in ("input_size", "mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def parse_hub_source(source: str) -> tuple[str, str | None]:
    """Split ``hf-hub:org/name[@revision]`` into ``(repo_id, revision)``."""
    match = _HUB_SOURCE.match(source)
    if match is None:
        raise ValueError(
            f"malformed Hub source {source!r}: expected 'hf-hub:ORG/NAME' or "
            "'hf-hub:ORG/NAME@REVISION'"
        )
    return match.group("repo"), match.group("revision")
