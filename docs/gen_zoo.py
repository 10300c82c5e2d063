"""The Model zoo page (``models/index.md``), written from the registry at every build.

mkdocs-gen-files runs this script during ``mkdocs build`` / ``mkdocs serve`` (``mkdocs.yml``:
``plugins: gen-files: scripts``). It imports every method package under
``src/vireid_zoo/models/`` (a new folder is picked up without any change here) and lists
every architecture of ``vireid_zoo.list_models()``, grouped by method, with its parameter
count (built with ``num_classes=0``), embedding dimension, the network class's ``paper``
and the weights ``vireid_zoo.list_pretrained()`` publishes. Nothing it writes is
committed. ``tests/test_docs.py`` imports its functions.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vireid_zoo.core.contract import PretrainedConfig

DOCS_DIR = Path(__file__).resolve().parent
MODELS_DIR = DOCS_DIR.parent / "src" / "vireid_zoo" / "models"
MODELS_PACKAGE = "vireid_zoo.models"
ZOO_PAGE = "models/index.md"


def discover_methods(models_dir: Path = MODELS_DIR) -> list[str]:
    """Method packages under ``src/vireid_zoo/models/`` (folders with an ``__init__.py``)."""
    return sorted(
        path.name
        for path in models_dir.iterdir()
        if path.is_dir() and not path.name.startswith("_") and (path / "__init__.py").is_file()
    )


@dataclass(frozen=True)
class ArchitectureInfo:
    """What the zoo table says about one registered architecture.

    Attributes:
        name: Registry name, e.g. ``"agw_resnet50"``.
        method: Method package (folder) the network class lives in, e.g. ``"agw"``.
        method_name: Display name of the method (the class's ``method_name``).
        network_class: Import path of the network class.
        parameters: Number of parameters without an identity classifier.
        embedding_dim: Size of the embedding ``extract_features`` returns.
        paper: The network class's ``paper`` attribute ("" if it has none).
        summary: First line of the factory's docstring.
    """

    name: str
    method: str
    method_name: str
    network_class: str
    parameters: int
    embedding_dim: int
    paper: str
    summary: str


@functools.cache
def architecture_info(name: str) -> ArchitectureInfo:
    """Build ``name`` with ``num_classes=0`` once per process and describe it.

    The network is built on PyTorch's ``meta`` device (shapes only, no memory, no
    initialisation cost); a network that cannot be built there is built on the CPU.
    """
    import torch

    from vireid_zoo.models.registry import _REGISTRY

    factory = _REGISTRY[name]
    try:
        with torch.device("meta"):
            network = factory(num_classes=0)
    except Exception:  # any failure on meta tensors: build it for real
        network = factory(num_classes=0)
    cls = type(network)
    module = cls.__module__
    prefix = f"{MODELS_PACKAGE}."
    method = module[len(prefix) :].split(".")[0] if module.startswith(prefix) else module
    return ArchitectureInfo(
        name=name,
        method=method,
        method_name=getattr(cls, "method_name", "") or method.upper(),
        network_class=f"{module}.{cls.__qualname__}",
        parameters=sum(p.numel() for p in network.parameters()),
        embedding_dim=int(network.embedding_dim),
        paper=str(getattr(cls, "paper", "") or ""),
        summary=((factory.__doc__ or "").strip().splitlines() or [""])[0],
    )


def registry_infos(methods: Iterable[str] | None = None) -> list[ArchitectureInfo]:
    """Describe every registered architecture, after importing every method package."""
    for method in discover_methods() if methods is None else methods:
        importlib.import_module(f"{MODELS_PACKAGE}.{method}")
    from vireid_zoo.models.registry import list_models

    return [architecture_info(name) for name in list_models()]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _arch_sort_key(info: ArchitectureInfo) -> tuple[str, int, str]:
    digits = re.search(r"(\d+)$", info.name)
    return (info.name.rstrip("0123456789"), int(digits.group(1)) if digits else 0, info.name)


def zoo_markdown(
    infos: Iterable[ArchitectureInfo],
    pretrained: dict[str, PretrainedConfig],
    method_pages: dict[str, str],
) -> str:
    """The Model zoo page.

    Args:
        infos: Every registered architecture.
        pretrained: Published pretrained names (``<architecture>.<tag>``) -> their
            configurations.
        method_pages: Method package -> its page, relative to the zoo page.

    Returns:
        The page's Markdown.
    """
    by_method: dict[str, list[ArchitectureInfo]] = {}
    for info in infos:
        by_method.setdefault(info.method, []).append(info)
    total = sum(len(v) for v in by_method.values())
    lines = [
        "# Model zoo",
        "",
        f"{total} architectures of {len(by_method)} methods are registered. This page is "
        "generated from the registry when the documentation is built "
        "(`vireid_zoo.list_models()`), so it always matches the code.",
        "",
        "- **parameters**: the network built with `num_classes=0`, as for inference (the "
        "identity classifier that training adds is not counted).",
        "- **embedding dim**: the size of `net.extract_features(images, modality)`'s "
        "L2-normalised output.",
        "- **pretrained**: weights published on the Hugging Face Hub and registered in "
        "`vireid_zoo.list_pretrained()`.",
        "",
        "```python",
        "import vireid_zoo as vz",
        "",
        'vz.list_models("agw_*")                        # registered architectures',
        'net = vz.create_model("agw_resnet50", num_classes=0).eval()',
        'emb = net.extract_features(images, modality="infrared")  # (B, embedding dim)',
        "```",
        "",
    ]
    if pretrained:
        lines += [
            "## Published pretrained weights",
            "",
            "| name | Hub repository | dataset | protocol | metrics (%) |",
            "|---|---|---|---|---|",
        ]
        for name, config in sorted(pretrained.items()):
            metrics = ", ".join(
                f"{key} {100 * value:.2f}" for key, value in sorted(config.metrics.items())
            )
            revision = f"@{config.revision}" if config.revision else ""
            lines.append(
                f"| `{name}` | `hf-hub:{config.hub_id}{revision}` | {_cell(config.dataset or '')}"
                f" | {_cell(config.protocol or '')} | {_cell(metrics) or '—'} |"
            )
        lines.append("")
    else:
        lines += [
            '!!! note "No pretrained weights are published yet"',
            "    `vireid_zoo.list_pretrained()` is empty: no weights trained with "
            "this zoo have been published. `create_model(name, pretrained=True)` therefore "
            "raises an error for every architecture. Train a model yourself "
            "([Training](../training.md)), or load weights you saved or published with "
            '`create_model("local-dir:PATH")` / `create_model("hf-hub:ORG/NAME")` '
            "([Publishing & loading](../hub.md)).",
            "",
        ]
    lines += ["## Architectures", ""]
    for method in sorted(by_method):
        members = sorted(by_method[method], key=_arch_sort_key)
        head = members[0]
        page = method_pages.get(method)
        title = f"[{head.method_name}]({page})" if page else head.method_name
        lines += [f"### {head.method_name}", ""]
        papers = sorted({info.paper for info in members if info.paper})
        lines.append(f"**Paper**: {_cell('; '.join(papers))}" if papers else "**Paper**: —")
        lines += [
            "",
            f"Method page: {title} · network class: `{head.network_class}`",
            "",
            "| architecture | parameters | embedding dim | pretrained | description |",
            "|---|---:|---:|---|---|",
        ]
        for info in members:
            tags = [f"`{name}`" for name in sorted(pretrained) if name.startswith(f"{info.name}.")]
            lines.append(
                f"| `{info.name}` | {info.parameters / 1e6:.2f} M ({info.parameters:,}) "
                f"| {info.embedding_dim} | {', '.join(tags) or 'none'} | {_cell(info.summary)} |"
            )
        lines.append("")
    return "\n".join(lines)


def zoo_page() -> str:
    """The page for the installed registry: every method, its page if ``docs/models/`` has one."""
    from vireid_zoo.models.registry import list_pretrained, pretrained_config

    methods = discover_methods()
    pretrained = {name: pretrained_config(name) for name in list_pretrained()}
    pages = {m: f"{m}.md" for m in methods if (DOCS_DIR / "models" / f"{m}.md").is_file()}
    return zoo_markdown(registry_infos(methods), pretrained, pages)


def write_zoo_page() -> None:
    """Add the page to the site being built (mkdocs-gen-files)."""
    import mkdocs_gen_files

    with mkdocs_gen_files.open(ZOO_PAGE, "w") as page:
        page.write(zoo_page())
    mkdocs_gen_files.set_edit_path(ZOO_PAGE, "gen_zoo.py")  # "edit this page": this script


if __name__ == "<run_path>":  # run by mkdocs-gen-files (runpy.run_path), not when imported
    write_zoo_page()
