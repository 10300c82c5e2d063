"""Model cards: the README.md a saved or published network comes with."""

from __future__ import annotations

from typing import Any

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult

from vireid_zoo.core.contract import PretrainedConfig

ETHICS_NOTE = (
    "Person re-identification matches people across surveillance cameras. It can be used "
    "to track individuals without their knowledge or consent, and infrared matching "
    "extends this to night-time footage. Use it only where the law allows, with a lawful "
    "basis, proportionality and oversight (e.g. the GDPR and the EU AI Act restrict remote "
    "biometric identification); never for unlawful surveillance, profiling of protected "
    "groups or decisions about individuals without human review. Accuracy varies with "
    "cameras, lighting, clothing and demographics, and errors identify the wrong person."
)


def model_card(method: str, paper: str, config: PretrainedConfig) -> ModelCard:
    """A model card with the Hub's model-index metadata, recipe, licence and ethics note.

    Args:
        method: The method's name, e.g. ``"AGW"``.
        paper: The method's paper, in one line.
        config: The network's contract and provenance.
    """
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
