"""Saving, loading and publishing networks: safetensors + config.json + a model card.

Loading never unpickles: weights are read from ``model.safetensors`` only. Loading is
strict: every weight of the network must be in the file with its shape, and the file may
hold nothing else; only an identity classifier of another size (a different number of
training identities) may differ, and it is then re-initialised with a warning.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import ModelCard, ModelCardData, hf_hub_download
from huggingface_hub.repocard_data import EvalResult
from safetensors.torch import load_file

from vireid_zoo.pretrained import (
    HF_HUB_PREFIX,
    LOCAL_DIR_PREFIX,
    PretrainedConfig,
    parse_hub_source,
)

if TYPE_CHECKING:
    from vireid_zoo.models.network import VIReIDNetwork

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CLASSIFIER_MARKER = ".classifier."
ETHICS_NOTE = (
    "Person re-identification matches people across surveillance cameras. It can be used "
    "to track individuals without their knowledge or consent, and infrared matching "
    "extends this to night-time footage. Use it only where the law allows, with a lawful "
    "basis, proportionality and oversight (e.g. the GDPR and the EU AI Act restrict remote "
    "biometric identification); never for unlawful surveillance, profiling of protected "
    "groups or decisions about individuals without human review. Accuracy varies with "
    "cameras, lighting, clothing and demographics, and errors identify the wrong person."
)


class WeightsMismatchError(RuntimeError):
    """A weights file does not fit the network it is loaded into."""


def load_weights_strict(
    network: torch.nn.Module, state: dict[str, torch.Tensor], source: str
) -> list[str]:
    """Load ``state`` into ``network``; only a classifier of another size may differ.

    Returns:
        The classifier keys that were re-initialised (kept from ``network``).

    Raises:
        WeightsMismatchError: naming the missing, unexpected and reshaped keys.
    """
    expected = network.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = sorted(
        k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape
    )
    resized_classifiers = [k for k in reshaped if CLASSIFIER_MARKER in f".{k}"]
    others = [k for k in reshaped if k not in resized_classifiers]
    if missing or unexpected or others:
        raise WeightsMismatchError(
            f"the weights in {source} do not fit {type(network).__name__}: "
            f"{len(missing)} missing (e.g. {missing[:4]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:4]}), {len(others)} of another shape (e.g. "
            f"{[(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in others[:3]]}). "
            "They belong to another architecture or configuration."
        )
    if resized_classifiers:
        key = resized_classifiers[0]
        warnings.warn(
            f"{source}: the identity classifier has {state[key].shape[0]} classes and the "
            f"network {expected[key].shape[0]}; it is re-initialised (embeddings do not use "
            "it). Fine-tune before using its logits.",
            stacklevel=3,
        )
        state = {**state, **{k: expected[k] for k in resized_classifiers}}
    network.load_state_dict(state, strict=True)
    return resized_classifiers


def resolve_files(
    source: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> tuple[Path, Path]:
    """Return local paths of ``(config.json, model.safetensors)`` of a source.

    ``source`` is a folder (``local-dir:PATH`` or a plain path) or a Hub repository
    (``hf-hub:ORG/NAME[@REVISION]`` or ``ORG/NAME``); ``hf-hub:`` always means the Hub,
    even where a folder of that name exists. Only the safetensors file is fetched: a
    repository that holds only pickled weights is refused.
    """
    from_hub = source.startswith(HF_HUB_PREFIX)
    if from_hub:
        source, at_revision = parse_hub_source(source)
        revision = revision or at_revision
    folder = Path(source.removeprefix(LOCAL_DIR_PREFIX)).expanduser()
    if not from_hub and (source.startswith(LOCAL_DIR_PREFIX) or folder.is_dir()):
        config, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        for path in (config, weights):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} does not exist: a saved model folder holds {CONFIG_NAME} and "
                    f"{WEIGHTS_NAME} (written by save_pretrained)"
                )
        return config, weights
    download = {
        "repo_id": source,
        "revision": revision,
        "cache_dir": cache_dir,
        "force_download": force_download,
        "local_files_only": local_files_only,
        "token": token,
    }
    return (
        Path(hf_hub_download(filename=CONFIG_NAME, **download)),
        Path(hf_hub_download(filename=WEIGHTS_NAME, **download)),
    )


def read_config(path: Path) -> dict[str, Any]:
    """Read a JSON file written by the zoo (``config.json``, ``test_results.json``)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path} as JSON: {error}") from error


def read_weights(path: Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file (never a pickle)."""
    try:
        return load_file(str(path), device=str(map_location))
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"cannot read the safetensors weights {path}: {error}") from error


def model_card(network: VIReIDNetwork, config: PretrainedConfig) -> ModelCard:
    """A model card with the Hub's model-index metadata, recipe, licence and ethics note."""
    method = getattr(network, "method_name", type(network).__name__)
    paper = getattr(network, "paper", "")
    dataset = config.dataset or "unknown"
    eval_results = [
        EvalResult(
            task_type="person-re-identification",
            task_name="Visible-infrared person re-identification",
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_config=name.rsplit("/", 1)[0],
            metric_type=name.rsplit("/", 1)[1],
            metric_value=round(100 * value, 2),
            metric_name=f"{name} (%)",
        )
        for name, value in sorted(config.metrics.items())
    ]
    card_data = ModelCardData(
        library_name="vireid-zoo",
        license=config.license,
        tags=["person-re-identification", "visible-infrared", "cross-modality", method.lower()],
        datasets=[dataset] if config.dataset else None,
        model_name=config.hub_id or config.architecture,
        eval_results=eval_results or None,
    )
    rows = "\n".join(
        f"| {name} | {100 * value:.2f} |" for name, value in sorted(config.metrics.items())
    )
    recipe = "\n".join(f"- `{k}`: `{v}`" for k, v in sorted(config.recipe.items()))
    if not recipe and config.source:
        recipe = "- trained by the source codebase with its own recipe (see Source)"
    if not rows and config.source:
        rows = "| (none yet: measure the converted weights with `vireid-zoo test`) | |"
    source = _source_section(config.source)
    height, width = config.input_size
    text = f"""---
{card_data.to_yaml()}
---

# {config.hub_id or config.architecture}

**{method}** for visible-infrared person re-identification, from
[vireid-zoo](https://github.com/vireid-zoo/vireid-zoo) (architecture `{config.architecture}`).

- Paper: {paper or "see the method's README in vireid-zoo"}
- Training data: {dataset}
- Evaluation protocol: {config.protocol or "not stated"}
- Code: vireid-zoo {config.commit or ""}

## Use

```python
import vireid_zoo as vz
net = vz.create_model("hf-hub:{config.hub_id or "ORG/NAME"}").eval()
embeddings = net.extract_features(images, modality="infrared")  # or "visible"
```

Input: RGB images resized to {height}x{width} ({config.interpolation}), scaled to [0, 1] and
normalised with mean {list(config.mean)} and std {list(config.std)}; infrared images are
read as 3-channel images. Output: {config.embedding_dim}-d embeddings ({config.feature}
feature), L2-normalised; compare them with the dot product. The modality selects the
network's stem: pass each image's own modality, whatever its role (query or gallery).

## Results (measured by vireid-zoo)

| metric | value (%) |
|---|---|
{rows or "| (none) | |"}
{source}
## Training recipe

{recipe or "- not recorded"}

## Licence

{config.license}

## Intended use and limitations

Research on cross-modality person re-identification, and evaluation under the stated
protocol. The numbers above hold for the stated dataset and protocol only; they do not
transfer to other cameras, places or populations without re-evaluation. Embeddings are
not identities: a nearest neighbour is a candidate for human review, not a decision.

{ETHICS_NOTE}
"""
    return ModelCard(text)


def _source_section(source: dict[str, Any] | None) -> str:
    """The card's section on converted weights: their source and its reported scores."""
    if not source:
        return ""
    lines = [
        "",
        "## Source (converted weights)",
        "",
        f"Converted by vireid-zoo from a checkpoint of the `{source.get('codebase')}` "
        f"codebase ({source.get('repository', 'repository not recorded')}).",
        "",
        f"- file: `{source.get('file')}`",
        f"- SHA-256: `{source.get('sha256')}`",
        f"- epoch: {source.get('epoch', 'not stored')}",
    ]
    for label, key in (("read from the weights", "variant"), ("chosen at conversion", "chosen")):
        if source.get(key):
            values = ", ".join(f"`{k}={v!r}`" for k, v in source[key].items())
            lines.append(f"- {label}: {values}")
    if source.get("note"):
        lines.append(f"- {source['note']}")
    if source.get("licence"):
        lines.append(f"- licence: {source['licence']}")
    reported = source.get("reported_metrics") or {}
    rows = [f"| {name} | {100 * value:.2f} |" for name, value in reported.items()]
    lines += [
        "",
        f"### Results reported by {source.get('reported_by') or 'the source checkpoint'}",
        "",
        "Stored in the source file by the code that trained it; not measured by vireid-zoo "
        "(its own measurements are the table above).",
        "",
        "| metric | value (%) |",
        "|---|---|",
        *(rows or ["| (none stored) | |"]),
        "",
    ]
    return "\n".join(lines)
